"""The merge lifecycle through the services (SPEC 4 and 5): held merges, approve, reject, undo, retry,
sweep; each admin action audited. On PostgreSQL; the worker's part runs in-process here (the real-worker
path has its own tests in test_merge_worker.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.kernel.errors import InvalidInput
from events_app.models import Event, Session
from tests.builders import ago, apply_pending_merges, identified
from users_app.merges.actions import merge_approve, merge_reject, merge_retry
from users_app.merges.apply import merge_mark_failed
from users_app.merges.sweep import merge_sweep
from users_app.merges.undo import merge_undo
from users_app.models import MergeAction, MergeRecord, Profile

pytestmark = pytest.mark.django_db


def profile_of(user_id) -> Profile:
    return Profile.objects.get(user_id=int(user_id))


def snapshot(user_id) -> dict:
    """Everything a profile is: its own row, properties, and the events and sessions it owns now."""
    profile = profile_of(user_id)
    return {
        "profile": (profile.user_id, profile.identity, profile.merged_into_id, profile.first_seen, profile.last_seen),
        "properties": {row.key: (row.value, row.is_number, row.set_at) for row in profile.properties.all()},
        "events": sorted(
            Event.objects.filter(profile=profile).values_list(
                "pk", "original_profile_id", "session_id", "name", "timestamp", "properties", "idempotency_key"
            )
        ),
        "sessions": sorted(
            Session.objects.filter(profile=profile).values_list(
                "pk", "original_profile_id", "session_key", "started_at", "ended_at", "landing_page", "referrer"
            )
        ),
    }


def api_view(calls, user_id) -> dict:
    """What the read API says about a user (counts include pending merges)."""
    detail = calls.user(user_id).json()
    events = calls.events(user_id, limit=1000).json()["results"]
    return {**detail, "events": events}


def anonymous_visitor(calls, user_id: str, events: int = 1) -> str:
    for index in range(events):
        assert calls.track(user_id=user_id, event=f"visit {index}").status_code == 200
    return user_id


def refused(code: str, action, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        action(**kwargs)
    assert caught.value.code == code, caught.value
    assert caught.value.message
    return caught.value


# ---- held merges ------------------------------------------------------------------------------------------


def test_merges_beyond_the_threshold_are_held_and_the_source_stays_its_own_user(calls, environment):
    environment.merge_hold_threshold = 3
    environment.save()
    alice_id = identified(calls, "alice", event="signup")
    for user_id in ("31", "32", "33"):
        anonymous_visitor(calls, user_id)
        assert calls.identify(user_id, "alice").json()["merge"]["status"] == "pending"
    anonymous_visitor(calls, "34", events=2)
    calls.add_properties({"plan": "Free"}, user_id="34")

    answer = calls.identify("34", "alice").json()

    # The person did log in: the answer names alice's user_id, and says the merge is held.
    assert answer["user_id"] == alice_id
    assert answer["merge"]["status"] == "held"
    held = MergeRecord.objects.get(pk=answer["merge"]["id"])
    assert held.status == "held" and held.source.user_id == 34
    assert held.source_properties["plan"]["value"] == "Free"
    # Nothing moved: 34 is still its own user in every read, and alice does not count its history.
    source = calls.user("34").json()
    assert source["merged_into"] is None and source["event_count"] == 2
    assert source["properties"]["plan"]["value"] == "Free"
    alice = calls.user(alice_id).json()
    assert alice["event_count"] == 1 + 3  # her signup and the three applied merges
    assert "plan" not in alice["properties"]
    # Identifying again does not pile up held records.
    assert calls.identify("34", "alice").json()["merge"]["id"] == held.pk
    assert MergeRecord.objects.filter(status="held").count() == 1
    # Later activity of 34 stays with 34 while held.
    calls.track(user_id="34", event="still separate")
    assert calls.user("34").json()["event_count"] == 3


def test_the_threshold_counts_only_the_last_24_hours_and_only_applied_merges(calls, environment):
    environment.merge_hold_threshold = 2
    environment.save()
    identified(calls, "alice", event="signup")
    for user_id in ("41", "42"):
        anonymous_visitor(calls, user_id)
        calls.identify(user_id, "alice")
    MergeRecord.objects.update(requested_at=timezone.now() - timedelta(hours=25))
    anonymous_visitor(calls, "43")
    assert calls.identify("43", "alice").json()["merge"]["status"] == "pending"
    anonymous_visitor(calls, "44")
    assert calls.identify("44", "alice").json()["merge"]["status"] == "pending"
    anonymous_visitor(calls, "45")
    assert calls.identify("45", "alice").json()["merge"]["status"] == "held"
    # A rejected merge does not count toward the threshold; another identity is not affected.
    identified(calls, "bob", event="signup")
    anonymous_visitor(calls, "46")
    assert calls.identify("46", "bob").json()["merge"]["status"] == "pending"


def held_merge(calls, environment, user_id: str = "51") -> MergeRecord:
    environment.merge_hold_threshold = 0
    environment.save()
    anonymous_visitor(calls, user_id, events=3)
    calls.add_properties({"plan": "Startup"}, user_id=user_id)
    merge_id = calls.identify(user_id, "alice").json()["merge"]["id"]
    return MergeRecord.objects.get(pk=merge_id, status="held")


def test_approve_applies_a_held_merge_and_records_who(calls, environment, admin):
    alice_id = identified(calls, "alice", event="signup")
    record = held_merge(calls, environment)

    approved = merge_approve(merge_id=record.pk, actor=admin)

    assert approved.status == "pending"
    # From the moment the approval commits, reads treat 51 as alice.
    assert calls.user("51").json()["merged_into"] == alice_id
    alice = calls.user(alice_id).json()
    assert alice["event_count"] == 4
    assert alice["properties"]["plan"]["value"] == "Startup"
    apply_pending_merges()
    record.refresh_from_db()
    assert record.status == "done" and record.events_moved == 3
    assert Event.objects.filter(profile=profile_of(alice_id)).count() == 4
    action = MergeAction.objects.get(merge=record)
    assert (action.action, action.actor) == ("approve", admin)
    assert action.created_at is not None
    refused("not_held", merge_approve, merge_id=record.pk, actor=admin)
    refused("not_held", merge_reject, merge_id=record.pk, actor=admin)


def test_reject_keeps_the_source_separate_and_records_the_note(calls, environment, admin):
    alice_id = identified(calls, "alice", event="signup")
    record = held_merge(calls, environment)

    rejected = merge_reject(merge_id=record.pk, actor=admin, note="shared demo login")

    assert rejected.status == "rejected"
    assert calls.user("51").json()["merged_into"] is None
    assert calls.user("51").json()["event_count"] == 3
    assert calls.user(alice_id).json()["event_count"] == 1
    action = MergeAction.objects.get(merge=record)
    assert (action.action, action.actor, action.note) == ("reject", admin, "shared demo login")
    refused("not_held", merge_approve, merge_id=record.pk, actor=admin)
    refused("undo_refused", merge_undo, merge_id=record.pk, actor=admin)


def test_a_rejected_device_logging_in_again_is_not_held_again(calls, environment, admin):
    # Rejected is for good: the admin is not asked about the same device at its every login (found by QA).
    alice_id = identified(calls, "alice", event="signup")
    record = held_merge(calls, environment)
    merge_reject(merge_id=record.pk, actor=admin)

    again = calls.identify("51", "alice").json()

    assert again["user_id"] == alice_id and again["merge"] == {"id": record.pk, "status": "rejected"}
    assert list(MergeRecord.objects.values_list("pk", "status")) == [(record.pk, "rejected")]
    assert calls.user("51").json()["merged_into"] is None
    # Another identity is another question.
    identified(calls, "bob", event="signup")
    assert calls.identify("51", "bob").json()["merge"]["status"] == "held"


def test_approve_is_refused_when_the_source_has_since_become_someone(calls, environment, admin):
    identified(calls, "alice", event="signup")
    record = held_merge(calls, environment)
    environment.merge_hold_threshold = 25
    environment.save()
    # 51 logs in as a brand new identity: it takes that identity (SPEC 2 rule 3) and is no longer anonymous.
    calls.identify("51", "carol")
    error = refused("source_changed", merge_approve, merge_id=record.pk, actor=admin)
    assert "Reject" in error.message
    assert not MergeAction.objects.exists()


def test_unknown_merge_is_a_not_found_error(admin, db):
    refused("not_found", merge_undo, merge_id=999999, actor=admin)


# ---- undo -------------------------------------------------------------------------------------------------


def build_two_people(calls) -> tuple[str, str]:
    """alice (identified) and anonymous visitor 61, each with sessions, events and properties; some of the
    visitor's property values are newer than alice's, some older, one key only the visitor has."""
    calls.track(identity="alice", event="signup", timestamp=ago(days=3), session_id="alice-s1")
    calls.track(identity="alice", event="pricing", timestamp=ago(days=3, minutes=-5), session_id="alice-s1")
    calls.track(identity="alice", event="server call", timestamp=ago(days=1))
    calls.add_properties({"plan": "Free", "Initial Referrer": "alice.example"}, identity="alice")
    calls.track(
        user_id="61", event="pageview", timestamp=ago(days=5), session_id="visitor-s1", properties={"path": "/landing"}
    )
    calls.track(user_id="61", event="pageview", timestamp=ago(days=2), session_id="visitor-s2")
    calls.track(user_id="61", event="server call", timestamp=ago(hours=5), idempotency_key="v-1")
    calls.add_properties({"plan": "Startup", "Initial Referrer": "visitor.example", "color": "red"}, user_id="61")
    calls.add_properties({"company": "Acme"}, identity="alice")  # newer than anything of the visitor
    calls.add_properties({"company": "Old Co"}, user_id="61")
    calls.add_properties({"company": "Acme Inc"}, identity="alice")
    return calls.user_by_identity("alice").json()["user_id"], "61"


def test_undo_restores_both_profiles_exactly(calls, admin):
    alice_id, visitor_id = build_two_people(calls)
    before = {"alice": snapshot(alice_id), "visitor": snapshot(visitor_id)}
    api_before = {"alice": api_view(calls, alice_id), "visitor": api_view(calls, visitor_id)}

    merge_id = calls.identify(visitor_id, "alice").json()["merge"]["id"]
    apply_pending_merges()
    merged = calls.user(alice_id).json()
    assert merged["event_count"] == 6 and merged["session_count"] == 5
    assert merged["properties"]["plan"]["value"] == "Startup"  # the visitor's is newer
    assert merged["properties"]["Initial Referrer"]["value"] == "visitor.example"  # the visitor came first
    assert merged["properties"]["color"]["value"] == "red"
    assert merged["properties"]["company"]["value"] == "Acme Inc"

    undone = merge_undo(merge_id=merge_id, actor=admin)

    assert undone.status == "reverted"
    assert snapshot(alice_id) == before["alice"]
    assert snapshot(visitor_id) == before["visitor"]
    assert {"alice": api_view(calls, alice_id), "visitor": api_view(calls, visitor_id)} == api_before
    action = MergeAction.objects.get(merge_id=merge_id)
    assert (action.action, action.actor) == ("undo", admin)
    assert "3 events" in action.note
    refused("undo_refused", merge_undo, merge_id=merge_id, actor=admin)


def test_undo_gives_the_source_what_arrived_for_it_since_and_keeps_the_destinations_later_values(calls, admin):
    alice_id, visitor_id = build_two_people(calls)
    before_apply = snapshot(alice_id)
    merge_id = calls.identify(visitor_id, "alice").json()["merge"]["id"]
    # A late call with the old user_id before the task ran, and one after; alice's own activity after.
    calls.track(user_id=visitor_id, event="late before move", timestamp=ago(hours=1))
    apply_pending_merges()
    calls.track(user_id=visitor_id, event="late after move", timestamp=ago(minutes=30), session_id="visitor-s3")
    calls.track(identity="alice", event="alice after merge", timestamp=ago(minutes=20))
    calls.add_properties({"color": "blue"}, identity="alice")  # alice set a key the merge had added

    merge_undo(merge_id=merge_id, actor=admin)

    visitor = calls.user(visitor_id).json()
    assert visitor["merged_into"] is None
    assert visitor["event_count"] == 5
    assert {e["event"] for e in calls.events(visitor_id).json()["results"]} >= {"late before move", "late after move"}
    # visitor-s1, -s2, visitor-s3 and two server-call sessions (5 h and 1 h ago).
    assert visitor["session_count"] == 5
    assert visitor["last_seen"] == Event.objects.get(name="late after move").timestamp.isoformat()
    alice = calls.user(alice_id).json()
    assert alice["event_count"] == 4
    assert [e["event"] for e in calls.events(alice_id).json()["results"]][0] == "alice after merge"
    assert alice["properties"]["plan"]["value"] == "Free"  # replaced by the merge: restored
    assert alice["properties"]["color"]["value"] == "blue"  # set again after the merge: kept
    assert alice["properties"]["Initial Referrer"]["value"] == "alice.example"
    # First seen goes back from the visitor's 5 days ago to alice's own 3 days ago; last seen is her latest.
    assert alice["first_seen"] == before_apply["profile"][3].isoformat() != visitor["first_seen"]
    assert alice["last_seen"] == Event.objects.get(name="alice after merge").timestamp.isoformat()
    assert (
        Event.objects.filter(original_profile__user_id=int(visitor_id))
        .exclude(profile__user_id=int(visitor_id))
        .count()
        == 0
    )
    # alice's server call 10 minutes after visitor-s3 had continued that session (the owner's recent one);
    # after the undo each person's sessions hold only their own events.
    for event in Event.objects.filter(profile__user_id__in=[int(alice_id), int(visitor_id)]):
        assert event.session.profile_id == event.profile_id, event.name
    assert Session.objects.filter(session_key="visitor-s3").count() == 2
    assert "split" in MergeAction.objects.get(merge_id=merge_id).note


def test_undo_is_refused_while_a_later_merge_depends_on_it_and_allowed_in_reverse_order(calls, admin):
    alice_id = identified(calls, "alice", event="signup")
    calls.add_properties({"plan": "Free"}, identity="alice")
    original = snapshot(alice_id)["properties"]
    anonymous_visitor(calls, "71")
    calls.add_properties({"plan": "Startup"}, user_id="71")
    anonymous_visitor(calls, "72")
    calls.add_properties({"plan": "Growth"}, user_id="72")
    first = calls.identify("71", "alice").json()["merge"]["id"]
    second = calls.identify("72", "alice").json()["merge"]["id"]
    apply_pending_merges()
    assert calls.user(alice_id).json()["properties"]["plan"]["value"] == "Growth"

    error = refused("undo_refused", merge_undo, merge_id=first, actor=admin)

    assert f"#{second}" in error.message and "plan" in error.message
    assert MergeRecord.objects.get(pk=first).status == "done"
    assert calls.user("71").json()["merged_into"] == alice_id  # nothing changed
    assert not MergeAction.objects.exists()
    merge_undo(merge_id=second, actor=admin)
    assert calls.user(alice_id).json()["properties"]["plan"]["value"] == "Startup"
    merge_undo(merge_id=first, actor=admin)
    assert snapshot(alice_id)["properties"] == original
    assert calls.user(alice_id).json()["event_count"] == 1


def test_undo_of_an_unrelated_earlier_merge_is_allowed(calls, admin):
    alice_id = identified(calls, "alice", event="signup")
    anonymous_visitor(calls, "73")
    calls.add_properties({"plan": "Startup"}, user_id="73")
    anonymous_visitor(calls, "74")
    calls.add_properties({"segment": "b2b"}, user_id="74")
    first = calls.identify("73", "alice").json()["merge"]["id"]
    calls.identify("74", "alice")
    apply_pending_merges()
    merge_undo(merge_id=first, actor=admin)
    alice = calls.user(alice_id).json()
    assert "plan" not in alice["properties"] and alice["properties"]["segment"]["value"] == "b2b"
    assert alice["event_count"] == 2


def test_undo_is_refused_for_merges_that_are_not_done(calls, environment, admin):
    identified(calls, "alice", event="signup")
    anonymous_visitor(calls, "75")
    pending = calls.identify("75", "alice").json()["merge"]["id"]
    assert "Wait" in refused("undo_refused", merge_undo, merge_id=pending, actor=admin).message
    record = held_merge(calls, environment, user_id="76")
    assert "Reject" in refused("undo_refused", merge_undo, merge_id=record.pk, actor=admin).message


# ---- retry and sweep --------------------------------------------------------------------------------------


def failed_merge(calls) -> MergeRecord:
    identified(calls, "alice", event="signup")
    anonymous_visitor(calls, "81", events=4)
    merge_id = calls.identify("81", "alice").json()["merge"]["id"]
    # What the task does when a run fails for good: status failed with the error kept.
    MergeRecord.objects.filter(pk=merge_id).update(status="running", attempts=7)
    merge_mark_failed(merge_id=merge_id, error="OperationalError('server closed the connection')")
    return MergeRecord.objects.get(pk=merge_id, status="failed")


def test_retry_queues_a_failed_merge_again_and_it_finishes(
    calls, admin, eager_celery, django_capture_on_commit_callbacks
):
    record = failed_merge(calls)
    assert "closed" in record.last_error
    refused("undo_refused", merge_undo, merge_id=record.pk, actor=admin)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        retried = merge_retry(merge_id=record.pk, actor=admin)

    assert retried.status == "pending" and len(callbacks) == 1
    record.refresh_from_db()
    assert record.status == "done" and record.events_moved == 4 and record.last_error == ""
    assert record.attempts == 8
    action = MergeAction.objects.get(merge=record)
    assert (action.action, action.actor) == ("retry", admin)
    refused("not_failed", merge_retry, merge_id=record.pk, actor=admin)


def test_actions_without_a_user_are_recorded_as_system(calls):
    record = failed_merge(calls)
    merge_retry(merge_id=record.pk, actor=None)
    assert MergeAction.objects.get(merge=record).actor is None


def test_sweep_requeues_pending_and_stalled_merges_only(calls, eager_celery, settings):
    settings.CAIRN_MERGE_STALE_SECONDS = 60
    identified(calls, "alice", event="signup")
    ids = {}
    for user_id in ("91", "92", "93", "94"):
        anonymous_visitor(calls, user_id, events=2)
        ids[user_id] = calls.identify(user_id, "alice").json()["merge"]["id"]
    long_ago = timezone.now() - timedelta(minutes=5)
    # 91: pending since the broker was down; 92: running, its worker died; 93: running and alive; 94: new.
    MergeRecord.objects.filter(pk=ids["91"]).update(requested_at=long_ago)
    MergeRecord.objects.filter(pk=ids["92"]).update(status="running", requested_at=long_ago, heartbeat_at=long_ago)
    MergeRecord.objects.filter(pk=ids["93"]).update(
        status="running", requested_at=long_ago, heartbeat_at=timezone.now()
    )

    assert merge_sweep() == 2

    statuses = dict(MergeRecord.objects.values_list("pk", "status"))
    assert statuses[ids["91"]] == "done" and statuses[ids["92"]] == "done"
    assert statuses[ids["93"]] == "running" and statuses[ids["94"]] == "pending"
    assert MergeRecord.objects.get(pk=ids["92"]).events_moved == 2
    assert merge_sweep() == 0


def test_sweep_leaves_a_merge_queued_moments_ago_alone(calls, settings):
    settings.CAIRN_MERGE_STALE_SECONDS = 60
    identified(calls, "alice", event="signup")
    anonymous_visitor(calls, "95")
    calls.identify("95", "alice")
    assert merge_sweep() == 0
    assert MergeRecord.objects.get().status == "pending"


def test_undo_splits_a_visit_that_logged_in_into_each_persons_part(calls, admin):
    # The tracker's visit v1 starts anonymous, logs in (the merge), and goes on under alice's user_id: one
    # session (SPEC: the visit stays one). Undone, each person keeps their own part of the visit.
    alice_id = identified(calls, "alice", event="signup")
    calls.track(user_id="62", event="landing", session_id="v1", timestamp=ago(minutes=30))
    calls.track(user_id="62", event="pricing", session_id="v1", timestamp=ago(minutes=25))
    visitor_before = snapshot("62")
    merge_id = calls.identify("62", "alice").json()["merge"]["id"]
    apply_pending_merges()
    calls.track(user_id=alice_id, event="dashboard", session_id="v1", timestamp=ago(minutes=20))
    assert Session.objects.filter(session_key="v1").count() == 1  # one visit while merged
    assert calls.user(alice_id).json()["session_count"] == 2

    merge_undo(merge_id=merge_id, actor=admin)

    assert snapshot("62") == visitor_before  # its session holds exactly its two events again
    alice_sessions = Session.objects.filter(profile__user_id=int(alice_id), session_key="v1")
    assert [e.name for e in Event.objects.filter(session__in=alice_sessions)] == ["dashboard"]
    assert alice_sessions.get().started_at == Event.objects.get(name="dashboard").timestamp
    assert calls.user(alice_id).json()["event_count"] == 2
