"""Celery adapters for users_app services. Task names are a public interface: never rename them."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from users_app.services.merge_history import merge_apply, merge_mark_failed
from users_app.services.merge_sweep import merge_sweep

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    name="cairn.merge_apply",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=6,
)
def merge_apply_task(self, merge_id: int) -> str:
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
    return merge_sweep()
