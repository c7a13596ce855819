"""The admin's "Delete this person" (SPEC 12): confirmed on a page that counts what will go, then the same
deletion request and task as Heap's API. And the environment's event retention setting in its admin."""

import pytest

from events_app.models import Event
from tests.builders import identify, set_properties, track
from users_app.models import DeletionRequest, Environment, MergeRecord, Profile


@pytest.fixture
def alice(environment):
    """alice: an identified profile with two events and a plan, and an anonymous device merged into her."""
    track(environment, identity="alice", event="signup")
    track(environment, identity="alice", event="upgrade")
    set_properties(environment, identity="alice", plan="Startup")
    track(environment, user_id=501, event="pageview")
    identify(environment, 501, "alice")
    return Profile.objects.get(identity="alice")


def test_the_confirmation_page_says_what_will_go(staff, alice):
    page = staff.get(f"/admin/users_app/profile/{alice.pk}/delete-person/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "alice" in text
    for line in ("2 profiles", "3 events", "2 sessions", "1 merge record"):
        assert line in text, line
    assert Profile.objects.filter(identity="alice").exists()  # a GET deletes nothing


def test_the_profile_page_links_to_the_deletion(staff, alice):
    page = staff.get(f"/admin/users_app/profile/{alice.pk}/change/").content.decode()
    assert f"/admin/users_app/profile/{alice.pk}/delete-person/" in page


def test_confirming_deletes_the_person_through_the_deletion_task(
    staff, boss, alice, calls, eager_celery, django_capture_on_commit_callbacks
):
    tombstone = Profile.objects.get(user_id=501)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/users_app/profile/{tombstone.pk}/delete-person/")

    assert response.status_code == 302
    request = DeletionRequest.objects.get()
    assert request.status == "done" and request.requested_by == boss
    assert (request.users_deleted, request.profiles_deleted, request.events_deleted) == (1, 2, 3)
    assert not Profile.objects.exists() and not Event.objects.exists() and not MergeRecord.objects.exists()
    assert calls.user(str(alice.user_id)).status_code == 404 and calls.user("501").status_code == 404


def test_viewers_cannot_reach_the_deletion(viewer, alice):
    for method in (viewer.get, viewer.post):
        assert method(f"/admin/users_app/profile/{alice.pk}/delete-person/").status_code in (302, 403)
    assert Profile.objects.filter(identity="alice").exists()


def test_unknown_profiles_are_a_404(staff, environment):
    assert staff.get("/admin/users_app/profile/999999/delete-person/").status_code == 404
    assert staff.post("/admin/users_app/profile/999999/delete-person/").status_code == 404


def test_the_retention_is_set_in_the_environment_admin(staff, environment):
    form = {
        "name": environment.name,
        "app_id": environment.app_id,
        "blocked_identities": "",
        "merge_hold_threshold": "25",
        "allowed_origins": "",
        "ingest_limit_per_minute": "0",
        "event_retention_days": "90",
    }
    assert staff.post(f"/admin/users_app/environment/{environment.pk}/change/", form).status_code == 302
    assert Environment.objects.get(pk=environment.pk).event_retention_days == 90

    form["event_retention_days"] = ""
    assert staff.post(f"/admin/users_app/environment/{environment.pk}/change/", form).status_code == 302
    assert Environment.objects.get(pk=environment.pk).event_retention_days is None  # forever
