"""A defined event's backfill on the real async path: queued on commit on real Redis, run by a real
`celery -A config worker`, which then queues and runs the re-sweep; reports flag the numbers until it is done."""

import json

import pytest

from events_app.models import DefinedEvent
from tests.conftest import WorkerProcess, wait_for, worker_environment
from tests.events_app.test_defined_events import BUY, SELL, click, define, report, total

pytestmark = pytest.mark.worker


def test_a_real_worker_backfills_a_definition_queued_on_commit(transactional_db, redis_broker, calls, api):
    events = [{"user_id": str(500 + n), "event": "click", "properties": click(BUY)} for n in range(25)]
    events += [{"user_id": "600", "event": "click", "properties": click(SELL)}]
    assert calls.track_bulk(events).json()["accepted"] == 26
    assert define(api).status_code == 201
    queued = [json.loads(message)["headers"]["task"] for message in redis_broker.lrange("celery", 0, -1)]
    assert queued == ["cairn.defined_event_backfill"]
    waiting = report(api)
    assert waiting["backfilling"] is True and total(waiting) == 0

    worker = WorkerProcess(env={**worker_environment(), "CAIRN_DEFINED_EVENT_RESWEEP_SECONDS": "1"}).start()
    try:
        wait_for(lambda: DefinedEvent.objects.filter(resweep_done_at__isnull=False).exists(), timeout=60)
    finally:
        worker.stop()
    answer = report(api)
    assert "backfilling" not in answer and total(answer) == 25
    assert api.get("/api/v1/defined-events").json()["results"][0]["backfill"] == "done"
    assert calls.track(user_id="700", event="click", properties=click(BUY)).status_code == 200  # matched at ingest
    assert total(report(api)) == 26
