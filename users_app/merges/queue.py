"""Queuing a merge's task: the one module of the merges that talks to Celery.

Every caller that queues a merge in a transaction (identify's merge_redirect, approve, retry) calls
`merge_queue_on_commit`, the one on-commit path: a task published before its row is committed would find
nothing. The sweep publishes with `merge_publish` directly: its merges were committed long ago, it runs in no
transaction of its own, and it needs to know whether the broker took each message (it stops at the first
refusal and gives the queued ones a fresh heartbeat).

The task is reached by its stable name in Celery's registry (users_app/tasks.py registers it; users_app/apps.py
imports that module in every process), not by importing users_app/tasks.py: the sweep's task calls the sweep,
which publishes through this module, so an import of the tasks here would close a circle.
"""

import threading
from functools import partial

from celery import current_app
from django.core.signals import request_finished, request_started
from django.db import transaction
from django.dispatch import receiver

from config.kernel.tasks import task_publish

# The apply task's name (users_app/tasks.py): a public interface, queued messages outlive deploys.
MERGE_APPLY_TASK = "cairn.merge_apply"


def merge_publish(*, merge_id: int) -> bool:
    """Publish the merge's task now. False if the broker could not take it: the merge stays pending and the
    sweep queues it again. Publishing gives up quickly (CELERY_BROKER_TRANSPORT_OPTIONS; figures in
    docs/operations.md, "Outages"), so a caller never waits long for a broker that is down."""
    return task_publish(MERGE_APPLY_TASK, merge_id, what=f"merge {merge_id}")


def merge_queue_on_commit(*, merge_id: int) -> None:
    """Queue the merge's task once the transaction commits (or, in a request that asked for it, once its
    response is sent: publish_after_response). If the broker is down, the caller still succeeds: the merge
    stays pending and the periodic sweep queues it again."""
    transaction.on_commit(partial(_publish_now_or_after_response, merge_id))


# ---- publishing after the response -------------------------------------------------------------------------

# Publishing costs a broker round trip and some of Celery's CPU (docs/benchmarks.md, "Ingest and merges"). Nothing
# in the answer depends on it (the merge is recorded, reads already follow the tombstone), so an API view may let
# its client have the answer first: the merges its request committed are published when the response has been
# sent (request_finished; under gunicorn after the body is written). A process killed in between leaves the merge
# pending, exactly as a broker outage does, and the sweep queues it.
_this_request = threading.local()


def publish_after_response() -> None:
    """Called by an API view at the start of a request: merges it commits are queued after its response."""
    if not current_app.conf.task_always_eager:  # eager: the task itself would run after the response
        _this_request.merge_ids = []


def _publish_now_or_after_response(merge_id: int) -> None:
    waiting = getattr(_this_request, "merge_ids", None)
    if waiting is None:
        merge_publish(merge_id=merge_id)
    else:
        waiting.append(merge_id)


@receiver(request_started, dispatch_uid="cairn_merges_request_started")
@receiver(request_finished, dispatch_uid="cairn_merges_request_finished")
def _publish_waiting_merges(**kwargs) -> None:
    """At the end of a request (and, should one have ended without it, at the start of the next one in this
    thread), publish what the request left waiting."""
    waiting, _this_request.merge_ids = getattr(_this_request, "merge_ids", None), None
    for merge_id in waiting or ():
        merge_publish(merge_id=merge_id)
