"""Who may open what: everything outside the ingest and read APIs needs a login; viewers (signed in, not
staff) get the Users view and profiles; admin pages and merge actions answer viewers 403 (not a login
redirect loop); hostile values show as text in the list."""

import re

import pytest

from tests.builders import HOSTILE_IMG, HOSTILE_SCRIPT, identify, set_properties, signed_in_as, track
from users_app.models import Environment, MergeRecord, Profile


@pytest.fixture
def held_merge(environment):
    environment.merge_hold_threshold = 0  # every merge into an identity is held
    environment.save()
    track(environment, user_id=1)
    identify(environment, 1, "alice")
    track(environment, user_id=2)
    identify(environment, 2, "alice")
    return MergeRecord.objects.get(source__user_id=2)


def test_pages_need_a_login(client, held_merge):
    alice = Profile.objects.get(identity="alice")
    for url in ["/users/", f"/users/{alice.user_id}/", "/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    response = client.get(f"/admin/users_app/mergerecord/{held_merge.pk}/approve/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_viewers_see_the_users_view_and_profiles(viewer, held_merge):
    assert viewer.get("/users/").status_code == 200
    assert viewer.get(f"/users/{Profile.objects.get(identity='alice').user_id}/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/users_app/mergerecord/",
        "/admin/users_app/mergerecord/{merge}/change/",
        "/admin/users_app/mergerecord/{merge}/approve/",
        "/admin/users_app/mergerecord/{merge}/undo/",
        "/admin/users_app/mergerecord/identities/",
        "/admin/users_app/environment/",
        "/admin/users_app/environment/{environment}/rotate-key/",
        "/admin/users_app/profile/",
        "/admin/events_app/event/",
    ],
)
def test_viewers_get_403_on_admin_pages(viewer, held_merge, path):
    url = path.format(merge=held_merge.pk, environment=held_merge.environment_id)
    assert viewer.get(url).status_code == 403


def test_viewers_cannot_run_merge_actions(viewer, held_merge, api):
    key_hash = Environment.objects.get(pk=held_merge.environment_id).api_key_hash
    assert viewer.post(f"/admin/users_app/mergerecord/{held_merge.pk}/approve/", {"confirm": "yes"}).status_code == 403
    assert (
        viewer.post(
            "/admin/users_app/mergerecord/",
            {"action": "approve_selected", "_selected_action": [held_merge.pk], "confirm": "yes"},
        ).status_code
        == 403
    )
    assert viewer.post(f"/admin/users_app/environment/{held_merge.environment_id}/rotate-key/").status_code == 403
    assert MergeRecord.objects.get(pk=held_merge.pk).status == MergeRecord.Status.HELD
    assert Environment.objects.get(pk=held_merge.environment_id).api_key_hash == key_hash


def test_staff_open_the_admin(held_merge):
    staff = signed_in_as("ops", password="pw-ops-12345", is_staff=True)
    # Staff are admins without per-model permission rows.
    assert staff.get("/admin/users_app/mergerecord/").status_code == 200
    assert staff.get(f"/admin/users_app/mergerecord/{held_merge.pk}/approve/").status_code == 200


def test_the_read_api_needs_no_login_but_a_key(client, api, held_merge):
    assert api.get("/api/v1/users/search").status_code == 200
    assert client.get("/api/v1/users/search").status_code == 401


def test_hostile_values_show_as_text_in_the_users_list(viewer, environment):
    track(environment, user_id=66)
    identify(environment, 66, HOSTILE_SCRIPT)
    set_properties(environment, user_id=66, plan=HOSTILE_IMG, **{HOSTILE_IMG: HOSTILE_SCRIPT})
    track(environment, user_id=67)
    set_properties(environment, user_id=67, plan=HOSTILE_SCRIPT)
    response = viewer.get(
        "/users/", {"col": ["plan", HOSTILE_IMG], "f0": HOSTILE_IMG, "f0_op": "set", "q": HOSTILE_SCRIPT[:8]}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in html  # the identity, as text
    assert re.search(r"<td>&quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;</td>", html)  # the plan, as text
    # Filtering by a hostile value finds it (and escapes it in the form).
    found = viewer.get("/users/", {"f0": "plan", "f0_op": "eq", "f0_v": HOSTILE_SCRIPT}).content.decode()
    assert "User 67" in found and "<script>alert(1)" not in found
