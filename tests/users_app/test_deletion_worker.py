"""Heap's deletion on the real async path: the request's task is queued on commit on real Redis, and a real
`celery -A config worker` deletes the person; a merge queued for that person finds nothing."""

import json

import pytest

from tests.conftest import API_KEY, wait_for
from tests.users_app.test_deletion_api import basic, bearer

pytestmark = pytest.mark.worker


def test_a_real_worker_runs_a_deletion_request_queued_on_commit(start_celery_worker, redis_broker, calls, api):
    assert calls.track(identity="alice", event="signup").status_code == 200
    assert calls.track(user_id="9001", event="pageview").status_code == 200
    assert calls.identify("9001", "alice").json()["merge"]["status"] == "pending"  # waits in Redis, no worker yet
    token = api.post("/api/public/v0/auth_token", "", **basic(calls.app_id, API_KEY)).json()["access_token"]

    request_id = api.post("/api/public/v0/user_deletion", {"users": [{"identity": "alice"}]}, **bearer(token)).json()[
        "deletion_request_id"
    ]
    queued = [json.loads(message)["headers"]["task"] for message in redis_broker.lrange("celery", 0, -1)]
    assert sorted(queued) == ["cairn.deletion_run", "cairn.merge_apply"]

    start_celery_worker()

    def done():
        status = api.client.get(f"/api/public/v0/deletion_status/{request_id}", **bearer(token)).json()
        return status if status["status"] == "done" else None

    status = wait_for(done, timeout=60)
    assert (status["users_requested"], status["users_deleted"]) == (1, 1)
    assert calls.user("9001").status_code == 404 and calls.user_by_identity("alice").status_code == 404
    # Both messages were taken and acknowledged, whichever ran first.
    wait_for(lambda: redis_broker.llen("celery") == 0, timeout=30)
