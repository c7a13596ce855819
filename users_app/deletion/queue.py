"""Queuing a deletion request's task: the one module of users_app/deletion that talks to Celery. The task is
reached by its stable name (users_app/tasks.py registers it), as merges/queue.py does for merges."""

from config.kernel.tasks import task_publish, task_publish_on_commit

# A public interface: queued messages outlive deploys. Never rename.
DELETION_RUN_TASK = "cairn.deletion_run"
DELETION_SWEEP_TASK = "cairn.deletion_sweep"
EVENT_RETENTION_TASK = "cairn.event_retention"


def deletion_publish(*, deletion_request_id: int) -> bool:
    """Publish the request's task now. False if the broker could not take it: the request stays pending and
    the deletion sweep queues it again."""
    return task_publish(DELETION_RUN_TASK, deletion_request_id, what=f"deletion request {deletion_request_id}")


def deletion_queue_on_commit(*, deletion_request_id: int) -> None:
    """Queue the task once the transaction that recorded the request commits (before, it would find nothing)."""
    task_publish_on_commit(DELETION_RUN_TASK, deletion_request_id, what=f"deletion request {deletion_request_id}")
