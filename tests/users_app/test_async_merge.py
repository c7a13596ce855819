"""SPEC 2 case 4 on the real async path: identify queues the merge after commit on real Redis, reads are
right while the task waits, and a real `celery -A config worker` then moves the history."""

import json

import pytest

from events_app.models import Event
from tests.conftest import wait_for
from users_app.models import MergeRecord, Profile

pytestmark = pytest.mark.worker


def queued_tasks(redis_broker) -> list[str]:
    """Names of the tasks waiting in Celery's default queue on the real broker."""
    return [json.loads(message)["headers"]["task"] for message in redis_broker.lrange("celery", 0, -1)]


def test_reads_are_right_before_the_merge_task_runs_and_after_a_real_worker_runs_it(
    start_celery_worker, redis_broker, calls
):
    calls.track_bulk(
        [
            {"identity": "alice", "event": "Upgrade", "session_id": "alice-tab"},
            {"identity": "alice", "event": "pageview", "session_id": "alice-tab"},
        ]
    )
    calls.track_bulk(
        [
            {"user_id": "9001", "event": name, "session_id": tab}
            for name, tab in (("pageview", "t1"), ("Sign Up", "t1"), ("pageview", "t2"))
        ]
    )
    alice_id = calls.user_by_identity("alice").json()["user_id"]

    # No worker is running: the merge task waits in Redis, queued when identify's transaction committed.
    answer = calls.identify("9001", "alice")
    assert answer.status_code == 200
    assert answer.json()["user_id"] == alice_id
    assert answer.json()["merge"]["status"] == "pending"
    merge_id = answer.json()["merge"]["id"]
    assert queued_tasks(redis_broker) == ["cairn.merge_apply"]

    alice = calls.user(alice_id).json()
    assert (alice["event_count"], alice["session_count"]) == (5, 3)
    assert [m["status"] for m in calls.merges(identity="alice").json()["results"]] == ["pending"]
    assert calls.user("9001").json()["merged_into"] == alice_id
    assert len(calls.events(alice_id).json()["results"]) == 5
    source = Profile.objects.get(user_id=9001)
    assert Event.objects.filter(profile=source).count() == 3  # not moved yet: the reads did the work

    start_celery_worker()

    def finished():
        [merge] = calls.merges(identity="alice").json()["results"]
        return merge if merge["status"] == "done" else None

    merge = wait_for(finished, timeout=60)
    assert merge["id"] == merge_id
    assert merge["events_moved"] == 3
    assert merge["finished_at"] is not None
    assert MergeRecord.objects.get(pk=merge_id).sessions_moved == 2
    assert not Event.objects.filter(profile=source).exists()
    assert Event.objects.filter(profile__user_id=int(alice_id)).count() == 5
    alice_after = calls.user(alice_id).json()
    assert (alice_after["event_count"], alice_after["session_count"]) == (5, 3)
    assert alice_after["properties"] == alice["properties"]
    assert "cairn.merge_apply" not in queued_tasks(redis_broker)
