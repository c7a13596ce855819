"""Celery adapters for events_app services: take ids, call one service, own the retry policy. Task names are a
public interface (queued messages outlive deploys): never rename them. events_app/defined_events/queue.py
publishes them by name. Each task imports its service when it runs, as users_app/tasks.py does."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from events_app.defined_events.queue import DEFINED_EVENT_BACKFILL_TASK, DEFINED_EVENT_SWEEP_TASK

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(name=DEFINED_EVENT_BACKFILL_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def defined_event_backfill_task(self, defined_event_id: int) -> str:
    """A defined event's backfill, then its re-sweep (events_app/defined_events/backfill.py). Idempotent: a
    redelivered or repeated run continues from the state in the DefinedEvent row."""
    from events_app.defined_events.backfill import defined_event_backfill

    try:
        return defined_event_backfill(defined_event_id=defined_event_id)
    except TRANSIENT_ERRORS as error:
        raise self.retry(exc=error, countdown=min(2**self.request.retries, 60)) from error


# acks_late=False: a sweep a dead worker lost is replaced by the next one.
@shared_task(name=DEFINED_EVENT_SWEEP_TASK, ignore_result=True, acks_late=False)
def defined_event_sweep_task() -> int:
    """Beat: queue again the backfills whose task was lost (config/settings.py CELERY_BEAT_SCHEDULE)."""
    from events_app.defined_events.backfill import defined_event_sweep

    return defined_event_sweep()


# acks_late=False: a catch-up a dead worker lost is replaced by the next one (its transaction rolled back whole).
@shared_task(name="cairn.rollups_catch_up", ignore_result=True, acks_late=False)
def rollups_catch_up_task() -> int | None:
    """Beat: count new events into the rollups (events_app/rollups/catch_up.py), for at most a minute per run."""
    from events_app.rollups.catch_up import rollups_catch_up

    return rollups_catch_up(time_budget_seconds=60).through_event_id


# acks_late=False: a run a dead worker lost is replaced by the next one (each partition is made in one transaction).
@shared_task(name="cairn.event_partitions_ensure", ignore_result=True, acks_late=False)
def event_partitions_ensure_task() -> int:
    """Beat: the events' partitions of this month and the months ahead, and of the months with rows in DEFAULT
    (events_app/partitions.py); answers how many it made."""
    from events_app.partitions import event_partitions_ensure

    return len(event_partitions_ensure().created)
