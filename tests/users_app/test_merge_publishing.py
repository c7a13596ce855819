"""When a merge task is queued: after identify's transaction commits, and, for the identify API, only once
its response has been sent (users_app/merges/queue.py, publish_after_response)."""

import base64
import json

import pytest
from django.core.signals import request_finished, request_started

from tests.builders import profile_build
from users_app.merges import queue
from users_app.merges.queue import publish_after_response
from users_app.models import MergeRecord
from users_app.services.identify import profile_identify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_left_waiting():
    yield
    queue._this_request.merge_ids = None


def queued_merge_ids(redis_broker) -> list[int]:
    """The merge_id argument of every cairn.merge_apply message waiting on the real broker."""
    ids = []
    for raw in redis_broker.lrange("celery", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "cairn.merge_apply"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


@pytest.fixture
def visitor_of_alice(environment):
    profile_build(environment, 1, identity="alice")
    profile_build(environment, 2)


def merge_alice(environment, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return profile_identify(environment=environment, user_id=2, identity="alice").merge.pk


def test_outside_a_request_the_merge_is_queued_when_identify_commits(
    redis_broker, environment, visitor_of_alice, django_capture_on_commit_callbacks
):
    merge_id = merge_alice(environment, django_capture_on_commit_callbacks)
    assert queued_merge_ids(redis_broker) == [merge_id]


def test_in_an_identify_request_the_merge_is_queued_once_the_response_is_sent(
    redis_broker, environment, visitor_of_alice, django_capture_on_commit_callbacks
):
    publish_after_response()
    merge_id = merge_alice(environment, django_capture_on_commit_callbacks)
    assert queued_merge_ids(redis_broker) == []  # committed, not queued yet: the answer goes out first
    request_finished.send(sender=None)
    assert queued_merge_ids(redis_broker) == [merge_id]
    request_finished.send(sender=None)  # nothing twice
    assert queued_merge_ids(redis_broker) == [merge_id]


def test_a_request_that_never_finished_has_its_merges_queued_by_the_next_one(
    redis_broker, environment, visitor_of_alice, django_capture_on_commit_callbacks
):
    publish_after_response()
    merge_id = merge_alice(environment, django_capture_on_commit_callbacks)
    request_started.send(sender=None)
    assert queued_merge_ids(redis_broker) == [merge_id]


def test_eager_celery_is_never_deferred(
    environment, visitor_of_alice, eager_celery, django_capture_on_commit_callbacks
):
    """Embedded mode: the task runs in-process, so it keeps running at commit, inside the call."""
    publish_after_response()
    merge_id = merge_alice(environment, django_capture_on_commit_callbacks)
    assert MergeRecord.objects.get(pk=merge_id).status == "done"
