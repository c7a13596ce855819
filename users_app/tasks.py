"""Celery adapters for users_app services: take ids, call one service, own the retry policy. Task names are a
public interface (queued messages outlive deploys): never rename them. users_app/merges/queue.py publishes
`cairn.merge_apply` by this name.

Each task imports its service when it runs (HackSoft's pattern): loading the adapters, which every process does
at start-up (users_app/apps.py) so that the queue finds them, does not load the merge services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from users_app.deletion.queue import DELETION_RUN_TASK, DELETION_SWEEP_TASK, EVENT_RETENTION_TASK
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
    from users_app.models import MergeRecord

    try:
        return merge_apply(merge_id=merge_id).status
    except MergeRecord.DoesNotExist:
        # Its person was deleted (users_app/deletion/person.py deletes a merge in flight first): nothing to move.
        return "deleted"
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


@shared_task(
    name=DELETION_RUN_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
)
def deletion_run_task(self, deletion_request_id: int) -> str:
    """Heap's user deletion request (users_app/deletion/requests.py). Idempotent: a redelivered or repeated
    run continues from the state in the request's row."""
    from users_app.deletion.person import PersonBusy
    from users_app.deletion.requests import deletion_request_run

    try:
        request = deletion_request_run(deletion_request_id=deletion_request_id)
    except (*TRANSIENT_ERRORS, PersonBusy) as error:
        raise self.retry(exc=error, countdown=min(2**self.request.retries, 60)) from error
    return request.status if request is not None else "missing"


@shared_task(name=DELETION_SWEEP_TASK, ignore_result=True, acks_late=False)
def deletion_sweep_task() -> int:
    """Beat: queue again deletion requests whose task was lost (config/settings.py CELERY_BEAT_SCHEDULE)."""
    from users_app.deletion.requests import deletion_sweep

    return deletion_sweep()


# acks_late=False: a pass a dead worker lost is replaced by the next one; each batch it did is committed.
@shared_task(name=EVENT_RETENTION_TASK, ignore_result=True, acks_late=False)
def event_retention_task() -> int:
    """Beat: remove events past each environment's retention (users_app/deletion/retention.py)."""
    from users_app.deletion.retention import event_retention_sweep

    return event_retention_sweep().events_deleted
