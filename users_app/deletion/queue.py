"""Queuing a deletion request's task: the one module of users_app/deletion that talks to Celery. The task is
reached by its stable name (users_app/tasks.py registers it), as merges/queue.py does for merges."""

import logging
from functools import partial

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

# A public interface: queued messages outlive deploys. Never rename.
DELETION_RUN_TASK = "cairn.deletion_run"
DELETION_SWEEP_TASK = "cairn.deletion_sweep"
EVENT_RETENTION_TASK = "cairn.event_retention"


def deletion_publish(*, deletion_request_id: int) -> bool:
    """Publish the request's task now. False if the broker could not take it: the request stays pending and
    the deletion sweep queues it again."""
    try:
        current_app.tasks[DELETION_RUN_TASK].delay(deletion_request_id)
    except Exception:  # kombu raises several types for an unreachable broker; none may fail the request
        logger.warning(
            "Could not queue deletion request %s; the sweep will retry it.", deletion_request_id, exc_info=True
        )
        return False
    return True


def deletion_queue_on_commit(*, deletion_request_id: int) -> None:
    """Queue the task once the transaction that recorded the request commits (before, it would find nothing)."""
    transaction.on_commit(partial(deletion_publish, deletion_request_id=deletion_request_id))
