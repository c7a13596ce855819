"""Deleting a person (SPEC 12): the whole person goes, every table is clean of their values, only counts remain;
merges in flight and held merges of that person; a run that dies half-way."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from config.kernel.errors import NotFound
from events_app.models import Event, Session
from tests.builders import apply_pending_merges, every_text_cell_containing, profile_build, track
from users_app.deletion import requests as deletion_requests
from users_app.deletion.person import person_deletion_preview
from users_app.deletion.requests import deletion_request_create, deletion_request_for_profile, deletion_request_run
from users_app.merges.actions import merge_approve
from users_app.models import DeletionRequest, MergeAction, MergeRecord, Profile, UserProperty
from users_app.tasks import merge_apply_task

IDENTITY = "zelda.kx93@example.org"
PLAN = "Plan-Qv7Rt-Secret"
CITY = "Town-Jq81-Private"
EVENT_VALUE = "/path/Kx55-personal"
PERSONAL_VALUES = (IDENTITY, PLAN, CITY, EVENT_VALUE)


def a_person_with_everything(calls, environment, boss) -> dict:
    """Zelda: an identified profile (properties, events) and an anonymous device merged into it (done), with the
    merge's admin action and a LogEntry naming her; plus Bob, who must survive."""
    assert calls.add_properties({"plan": PLAN, "city": CITY}, identity=IDENTITY).status_code == 200
    assert calls.track(identity=IDENTITY, event="signup", properties={"path": EVENT_VALUE}).status_code == 200
    assert calls.track(user_id="5551", event="pageview", properties={"path": EVENT_VALUE}).status_code == 200
    assert calls.add_properties({"device_city": CITY}, user_id="5551").status_code == 200
    answer = calls.identify("5551", IDENTITY).json()
    apply_pending_merges()
    merge = MergeRecord.objects.get(pk=answer["merge"]["id"])
    assert merge.status == "done" and merge.source_properties
    MergeAction.objects.create(merge=merge, action="note", actor=boss, note=f"checked with {IDENTITY} by phone")
    LogEntry.objects.create(
        user=boss,
        content_type=ContentType.objects.get_for_model(MergeRecord),
        object_id=str(merge.pk),
        object_repr=str(merge),
        action_flag=CHANGE,
        change_message=f"Looked at the merge into {IDENTITY}",
    )
    assert calls.track(user_id="777", event="pageview").status_code == 200
    assert calls.add_properties({"plan": "Free"}, user_id="777").status_code == 200
    person = Profile.objects.get(identity=IDENTITY)
    return {"person": person, "user_ids": [str(person.user_id), "5551"], "merge": merge}


def test_deleting_a_person_removes_every_personal_value_from_every_table(calls, environment, boss):
    zelda = a_person_with_everything(calls, environment, boss)
    for value in PERSONAL_VALUES:
        assert every_text_cell_containing(value), value  # the scan sees them before
    preview = person_deletion_preview(zelda["person"])
    assert (preview.profiles, preview.events, preview.sessions, preview.merges) == (2, 2, 2, 1)
    assert preview.properties >= 3  # plan, city, device_city, and the Initial ones

    request = deletion_request_create(environment=environment, users=[{"user_id": "5551"}])
    done = deletion_request_run(deletion_request_id=request.pk)

    assert done.status == "done" and done.users_requested == 1 and done.users_deleted == 1
    assert (done.profiles_deleted, done.events_deleted, done.sessions_deleted, done.merges_deleted) == (2, 2, 2, 1)
    assert done.users == [] and done.person_pks == []
    for value in PERSONAL_VALUES:
        assert every_text_cell_containing(value) == [], value
    for user_id in zelda["user_ids"]:
        assert calls.user(user_id).status_code == 404
    assert calls.user_by_identity(IDENTITY).status_code == 404
    assert not MergeAction.objects.exists() and not LogEntry.objects.exists()
    # Bob is untouched.
    bob = calls.user("777").json()
    assert bob["event_count"] == 1 and bob["properties"]["plan"]["value"] == "Free"


def test_reports_no_longer_count_a_deleted_person(calls, api, environment, boss):
    zelda = a_person_with_everything(calls, environment, boss)
    query = {"measure": "unique_users", "from": "2000-01-01", "to": "2100-01-01", "interval": "month"}
    before = api.get("/api/v1/reports/query", **query).json()["series"][0]["total"]

    deletion_request_run(deletion_request_id=deletion_request_for_profile(profile=zelda["person"]).pk)

    assert api.get("/api/v1/reports/query", **query).json()["series"][0]["total"] == before - 1


def test_a_later_call_with_an_old_user_id_starts_a_new_anonymous_profile(calls, environment, boss):
    zelda = a_person_with_everything(calls, environment, boss)
    deletion_request_run(deletion_request_id=deletion_request_for_profile(profile=zelda["person"]).pk)

    assert calls.track(user_id="5551", event="came back").status_code == 200

    again = calls.user("5551").json()
    assert again["identity"] is None and again["merged_into"] is None
    assert again["event_count"] == 1 and again["properties"] == {}


def test_a_merge_in_flight_into_the_person_finds_nothing_and_finishes_cleanly(calls, environment):
    assert calls.track(identity=IDENTITY, event="signup").status_code == 200
    assert calls.track(user_id="5551", event="pageview").status_code == 200
    merge_id = calls.identify("5551", IDENTITY).json()["merge"]["id"]
    assert MergeRecord.objects.get(pk=merge_id).status == "pending"  # the task has not run

    request = deletion_request_create(environment=environment, users=[{"identity": IDENTITY}])
    assert deletion_request_run(deletion_request_id=request.pk).users_deleted == 1

    # The queued task arrives after the deletion: no record, nothing to move, no error, nothing recreated.
    assert merge_apply_task.apply(args=[merge_id]).get() == "deleted"
    assert not Profile.objects.filter(user_id=5551).exists()
    assert not Event.objects.exists() and not Session.objects.exists()


def test_a_held_merge_into_the_person_goes_and_its_source_stays_its_own_user(calls, environment):
    environment.merge_hold_threshold = 0
    environment.save()
    assert calls.track(identity=IDENTITY, event="signup").status_code == 200
    assert calls.track(user_id="5551", event="pageview").status_code == 200
    held = calls.identify("5551", IDENTITY).json()["merge"]
    assert held["status"] == "held"

    request = deletion_request_create(environment=environment, users=[{"identity": IDENTITY}])
    assert deletion_request_run(deletion_request_id=request.pk).merges_deleted == 1

    assert not MergeRecord.objects.filter(pk=held["id"]).exists()
    # Held: the device never became part of the person, so it stays, with its own history.
    source = calls.user("5551").json()
    assert source["event_count"] == 1 and source["identity"] is None
    assert every_text_cell_containing(IDENTITY) == []


def test_an_approve_of_a_held_merge_after_the_deletion_is_refused(calls, environment, admin):
    environment.merge_hold_threshold = 0
    environment.save()
    assert calls.track(identity=IDENTITY, event="signup").status_code == 200
    assert calls.track(user_id="5551", event="pageview").status_code == 200
    held_id = calls.identify("5551", IDENTITY).json()["merge"]["id"]
    deletion_request_run(
        deletion_request_id=deletion_request_create(environment=environment, users=[{"identity": IDENTITY}]).pk
    )

    with pytest.raises(NotFound):  # the admin's page answers "There is no merge #n"
        merge_approve(merge_id=held_id, actor=admin)


def test_a_run_that_dies_half_way_is_finished_by_the_next_with_exact_counts(environment, settings, monkeypatch):
    settings.CAIRN_DELETION_BATCH_SIZE = 10
    person = profile_build(environment, 4242, identity=IDENTITY, events=55, sessions=3)
    UserProperty.objects.create(profile=person, key="plan", key_hash="x" * 64, value=PLAN, set_at=person.created_at)
    request = deletion_request_create(environment=environment, users=[{"identity": IDENTITY}, {"user_id": "99"}])
    real_count = deletion_requests._count_batch
    calls = []

    def dies_on_the_third_batch(*args):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("worker killed")  # inside the batch's transaction: that batch rolls back
        real_count(*args)

    monkeypatch.setattr(deletion_requests, "_count_batch", dies_on_the_third_batch)
    with pytest.raises(RuntimeError):
        deletion_request_run(deletion_request_id=request.pk)
    half = DeletionRequest.objects.get(pk=request.pk)
    assert half.status == "running" and half.users == [] and half.events_deleted == 10
    assert Event.objects.count() == 45

    monkeypatch.setattr(deletion_requests, "_count_batch", real_count)
    done = deletion_request_run(deletion_request_id=request.pk)
    assert done.status == "done" and done.users_requested == 2 and done.users_deleted == 1
    assert (done.events_deleted, done.sessions_deleted, done.profiles_deleted) == (55, 3, 1)
    assert not Event.objects.exists() and not Profile.objects.exists()
    # Running it once more changes nothing.
    assert deletion_request_run(deletion_request_id=request.pk).users_deleted == 1


def test_deleting_a_person_in_one_environment_leaves_the_same_user_id_elsewhere(environment, other_environment):
    track(environment, user_id=31, event="here")
    track(other_environment, user_id=31, event="there")
    request = deletion_request_create(environment=environment, users=[{"user_id": "31"}])

    deletion_request_run(deletion_request_id=request.pk)

    assert not Profile.objects.filter(environment=environment).exists()
    assert Event.objects.get(environment=other_environment).name == "there"


def test_the_audit_trail_of_a_person_with_a_short_identity_goes_and_unrelated_lines_containing_it_stay(
    calls, environment, boss
):
    """Log lines are matched by their object (the person's profiles, merge records, properties) and by texts that
    are exactly the identity, never by substring: "a" is part of most of the log's text."""
    assert calls.track(identity="a", event="signup").status_code == 200
    assert calls.add_properties({"plan": PLAN}, identity="a").status_code == 200
    assert calls.track(user_id="5551", event="pageview").status_code == 200
    merge = MergeRecord.objects.get(pk=calls.identify("5551", "a").json()["merge"]["id"])
    assert calls.track(identity="a-team", event="signup").status_code == 200
    assert calls.track(user_id="5552", event="pageview").status_code == 200
    other_merge = MergeRecord.objects.get(pk=calls.identify("5552", "a-team").json()["merge"]["id"])
    person, bob = Profile.objects.get(identity="a"), Profile.objects.get(identity="a-team")

    def log(model, object_id, text: str, message: str = "") -> LogEntry:
        return LogEntry.objects.create(
            user=boss,
            content_type=ContentType.objects.get_for_model(model),
            object_id=str(object_id),
            object_repr=text,
            action_flag=CHANGE,
            change_message=message,
        )

    naming = [
        log(Profile, person.pk, str(person), "Looked at her profile"),
        log(MergeRecord, merge.pk, str(merge), "approve"),
        log(UserProperty, person.properties.get(key="plan").pk, f"plan={PLAN}"),
        log(Profile, 999_999, "a", "Deleted."),  # a profile of hers gone earlier: its text is exactly the identity
        log(MergeRecord, 999_998, "Merge #999998: User 42 -> a (rejected)"),  # a merge record of hers gone earlier
    ]
    unrelated = [
        log(type(environment), environment.pk, str(environment), "Rotated the API key."),
        log(Profile, bob.pk, str(bob), "Changed a lot."),
        log(MergeRecord, other_merge.pk, str(other_merge), "approve (a note)"),
        log(MergeRecord, 999_997, "Merge #999997: User 43 -> b -> a (done)"),  # another identity ending in "a"
        log(UserProperty, 999_996, "a=b", "Added a value."),
    ]

    deletion_request_run(deletion_request_id=deletion_request_for_profile(profile=person).pk)

    remaining = set(LogEntry.objects.values_list("pk", flat=True))
    assert remaining == {entry.pk for entry in unrelated}
    assert not {entry.pk for entry in naming} & remaining
    assert every_text_cell_containing(PLAN) == []
