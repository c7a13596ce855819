"""Queuing a defined event's backfill: the one module of events_app/defined_events that talks to Celery. The task is
reached by its stable name (events_app/tasks.py registers it), as users_app/merges/queue.py does for merges."""

from django.conf import settings

from config.kernel.tasks import task_publish, task_publish_on_commit

# A public interface: queued messages outlive deploys. Never rename.
DEFINED_EVENT_BACKFILL_TASK = "cairn.defined_event_backfill"
DEFINED_EVENT_SWEEP_TASK = "cairn.defined_event_sweep"


def backfill_queue_on_commit(*, defined_event_id: int) -> None:
    """Queue the backfill once the definition is committed (before, the task would find nothing)."""
    task_publish_on_commit(DEFINED_EVENT_BACKFILL_TASK, defined_event_id, what=f"defined event {defined_event_id}")


def backfill_publish(*, defined_event_id: int, resweep: bool = False) -> bool:
    """Publish the task now; `resweep`: to run CAIRN_DEFINED_EVENT_RESWEEP_SECONDS from now (the second pass)."""
    countdown = settings.CAIRN_DEFINED_EVENT_RESWEEP_SECONDS if resweep else None
    return task_publish(
        DEFINED_EVENT_BACKFILL_TASK, defined_event_id, what=f"defined event {defined_event_id}", countdown=countdown
    )
