"""Publishing a Celery task by its stable name, now or once the transaction commits: what every package's queue
module shares (users_app/merges/queue.py, users_app/deletion/queue.py; docs/architecture.md, "Side effects").

A task is reached through Celery's registry by its name (a public interface: queued messages outlive deploys),
not by importing the tasks module, whose tasks call back into the packages that queue them. Publishing never
raises: a broker that cannot take the message is logged and answered False, and the work stays recorded in the
database for its sweep to queue again."""

import logging
from functools import partial

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def task_publish(task_name: str, *args, what: str, countdown: float | None = None) -> bool:
    """Publish now (to run `countdown` seconds later, if given). False if the broker could not take it (`what`
    names the work in the warning)."""
    try:
        current_app.tasks[task_name].apply_async(args, countdown=countdown)
    except Exception:  # kombu raises several types for an unreachable broker; none may fail the caller
        logger.warning("Could not queue %s; the sweep will retry it.", what, exc_info=True)
        return False
    return True


def task_publish_on_commit(task_name: str, *args, what: str) -> None:
    """Publish once the current transaction commits (a task published before would find nothing)."""
    transaction.on_commit(partial(task_publish, task_name, *args, what=what))
