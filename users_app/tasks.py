"""Celery adapters for users_app services: take ids, call one service, own the retry policy. Task names are a
public interface (queued messages outlive deploys): never rename them. users_app/merges/queue.py publishes
`cairn.merge_apply` by this name.

Each task imports its service when it runs (HackSoft's pattern): loading the adapters, which every process does
at start-up (users_app/apps.py) so that the queue finds them, does not load the merge services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from users_app.merges.queue import MERGE_APPLY_TASK

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    name=MERGE_APPLY_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=6,
)
def merge_apply_task(self, merge_id: int) -> str:
    from users_app.merges.apply import merge_apply, merge_mark_failed

    try:
        return merge_apply(merge_id=merge_id).status
    except TRANSIENT_ERRORS as error:
        if self.request.retries >= self.max_retries:
            merge_mark_failed(merge_id=merge_id, error=repr(error))
            raise
        raise self.retry(exc=error, countdown=min(2**self.request.retries, 60)) from error
    except Exception as error:
        merge_mark_failed(merge_id=merge_id, error=repr(error))
        raise


# acks_late=False overrides CELERY_TASK_ACKS_LATE (on for every other task): a sweep a dead worker lost is simply
# replaced by the next one, seconds later, so there is nothing to redeliver.
@shared_task(name="cairn.merge_sweep", ignore_result=True, acks_late=False)
def merge_sweep_task() -> int:
    """Beat runs this every CAIRN_MERGE_SWEEP_SECONDS (config/settings.py CELERY_BEAT_SCHEDULE)."""
    from users_app.merges.sweep import merge_sweep

    return merge_sweep()
