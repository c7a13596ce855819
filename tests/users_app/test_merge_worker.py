"""The async path of merges with real processes: a real `celery -A config worker -B` (worker plus beat) on
real Redis and the test database. A worker SIGKILLed half-way through a 20,000-event merge, and a Redis
outage during identify: in both, the merge finishes through beat's sweep with every event exactly once."""

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from events_app.models import Event, Session
from tests.builders import profile_build
from tests.conftest import REPO, WorkerProcess, free_port, wait_for, worker_environment
from users_app.models import MergeRecord, Profile
from users_app.services.identify import profile_identify

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

HISTORY = 20_000


def beat_args(name: str) -> list[str]:
    schedule = REPO / "test-output" / f"beat-{name}-{os.getpid()}-{time.time_ns()}"
    return ["-B", "-s", str(schedule)]


def source_with_history(environment, user_id: int, events: int) -> Profile:
    return profile_build(
        environment,
        user_id,
        events=events,
        sessions=20,
        days=10,
        session_key="s",
        session_every=timedelta(hours=1),
        session_length=timedelta(minutes=30),
        event_name=lambda index: f"event {index % 7}",
        batch_size=5000,
    )


def moved(record: MergeRecord) -> int:
    return Event.objects.filter(original_profile_id=record.source_id, profile_id=record.destination_id).count()


def test_a_merge_whose_worker_is_killed_half_way_finishes_after_a_new_worker_starts(
    environment, redis_broker, monkeypatch
):
    # Small batches with a pause, so the merge takes several seconds and can be killed half-way; a short
    # stale period and sweep interval, so the test does not wait the production 45 + 15 seconds.
    monkeypatch.setenv("CAIRN_MERGE_BATCH_SIZE", "500")
    monkeypatch.setenv("CAIRN_MERGE_BATCH_PAUSE_MS", "100")
    monkeypatch.setenv("CAIRN_MERGE_STALE_SECONDS", "5")
    monkeypatch.setenv("CAIRN_MERGE_SWEEP_SECONDS", "2")
    alice = profile_build(environment, 1, identity="alice")
    Event.objects.create(
        environment=environment, profile=alice, original_profile=alice, name="signup", timestamp=timezone.now()
    )
    source = source_with_history(environment, 2, HISTORY)
    all_event_ids = set(Event.objects.values_list("pk", flat=True))

    first_worker = WorkerProcess().start()  # no beat: when it dies, nothing is left to sweep
    try:
        record = profile_identify(environment=environment, user_id=source.user_id, identity="alice").merge
        wait_for(lambda: moved(record) >= 2000, timeout=60, interval=0.05)
        first_worker.kill()
    finally:
        first_worker.stop()
    record.refresh_from_db()
    half_way = moved(record)
    assert record.status == "running"
    assert 0 < half_way < HISTORY, half_way

    second_worker = WorkerProcess(beat_args("kill")).start()
    try:
        # Redis would redeliver the dead worker's message only after its visibility timeout (600 s); the
        # sweep on beat sees the stale heartbeat and queues it again.
        wait_for(lambda: MergeRecord.objects.get(pk=record.pk).status == "done", timeout=120, interval=0.5)
    finally:
        second_worker.stop()

    record.refresh_from_db()
    assert record.events_moved == HISTORY and record.sessions_moved == 20
    assert record.attempts >= 2
    # Every event exactly once: the same rows, none lost, none copied, all with alice now.
    assert set(Event.objects.values_list("pk", flat=True)) == all_event_ids
    assert Event.objects.filter(profile=alice).count() == HISTORY + 1
    assert not Event.objects.filter(profile=source).exists()
    assert not Session.objects.filter(profile=source).exists()


class PrivateRedis:
    """A redis-server of this test's own, so stopping it never touches the Redis other people use."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            ),
            timeout=20,
        )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


IDENTIFY_SCRIPT = """
import json, sys, time, django
django.setup()
from django.test import Client
started = time.monotonic()
answer = Client().post("/api/v1/identify", json.loads(sys.argv[1]), content_type="application/json")
print(json.dumps({"status": answer.status_code, "body": answer.json(), "seconds": time.monotonic() - started}))
"""


def identify_in_another_process(redis_url: str, body: dict) -> dict:
    """POST /api/v1/identify through the whole Django stack in a process whose broker is `redis_url`."""
    env = {**worker_environment(), "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", IDENTIFY_SCRIPT, json.dumps(body)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_identify_while_redis_is_down_and_the_sweep_finishes_the_merge_when_it_is_back(environment, monkeypatch, api):
    monkeypatch.setenv("CAIRN_MERGE_STALE_SECONDS", "3")
    monkeypatch.setenv("CAIRN_MERGE_SWEEP_SECONDS", "2")
    broker = PrivateRedis().start()
    monkeypatch.setenv("REDIS_URL", broker.url)
    alice = profile_build(environment, 1, identity="alice")
    source = source_with_history(environment, 2, 30)
    worker = WorkerProcess(beat_args("outage")).start()
    try:
        broker.stop()

        answer = identify_in_another_process(
            broker.url, {"app_id": environment.app_id, "user_id": str(source.user_id), "identity": "alice"}
        )

        assert answer["status"] == 200, answer
        assert answer["body"]["user_id"] == str(alice.user_id)
        assert answer["body"]["merge"]["status"] == "pending"
        print(f"identify with Redis down answered in {answer['seconds'] * 1000:.0f} ms")
        record = MergeRecord.objects.get(pk=answer["body"]["merge"]["id"])
        # Reads are right already: alice counts the visitor's history, the visitor answers its tombstone.
        assert api.get(f"/api/v1/users/{alice.user_id}").json()["event_count"] == 30
        assert api.get(f"/api/v1/users/{source.user_id}").json()["merged_into"] == str(alice.user_id)
        time.sleep(4)  # longer than the stale period: only the missing broker keeps it pending
        assert MergeRecord.objects.get(pk=record.pk).status == "pending"

        broker.start()

        wait_for(lambda: MergeRecord.objects.get(pk=record.pk).status == "done", timeout=120, interval=0.5)
    finally:
        worker.stop()
        broker.stop()
    record.refresh_from_db()
    assert record.events_moved == 30
    assert Event.objects.filter(profile=alice).count() == 30
