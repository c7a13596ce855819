"""What admins can do with a merge (SPEC 5): approve or reject a held merge, retry a failed one (undoing a
finished one is undo.py, on the same plumbing). Each action runs in one transaction, refuses clearly
(InvalidInput) rather than corrupting data, and leaves a MergeAction row naming who did it and when."""

from django.db import transaction
from django.utils import timezone

from config.kernel.errors import InvalidInput, NotFound
from users_app.merges.queue import merge_queue_on_commit
from users_app.merges.request import merge_redirect
from users_app.models import MergeAction, MergeRecord
from users_app.services.locks import profiles_lock


def merge_locked(merge_id: int) -> MergeRecord:
    """The merge record under its row lock, or NotFound."""
    record = MergeRecord.objects.select_for_update().filter(pk=merge_id).first()
    if record is None:
        raise NotFound(f"There is no merge #{merge_id}.", field="merge_id")
    return record


def action_record(record: MergeRecord, action: str, actor, note: str = "") -> None:
    """The MergeAction row naming who did what to the merge, and when."""
    MergeAction.objects.create(merge=record, action=action, actor=actor, note=note)


def action_refusal(code: str, record: MergeRecord, reason: str) -> InvalidInput:
    """The error an action raises instead of corrupting data; the admin shows its message as is."""
    return InvalidInput(code=code, message=f"Merge #{record.pk}: {reason}", field=None)


def merge_approve(*, merge_id: int, actor) -> MergeRecord:
    """Held -> applied: the source becomes a tombstone of the destination at once (reads follow), its
    properties are merged, and the task is queued to move its history."""
    with transaction.atomic():
        record = merge_locked(merge_id)
        if record.status != MergeRecord.Status.HELD:
            raise action_refusal("not_held", record, f"it is {record.status}; only a held merge can be approved.")
        locked = profiles_lock([record.source_id, record.destination_id])
        source, destination = locked[record.source_id], locked[record.destination_id]
        if source.is_tombstone or source.identity is not None:
            raise action_refusal(
                "source_changed",
                record,
                f"User {source.user_id} has since been merged or identified; it can no longer be merged "
                "here. Reject this merge instead.",
            )
        if destination.identity != record.identity:
            raise action_refusal("destination_changed", record, "the destination no longer owns this identity.")
        merge_redirect(record=record)
        action_record(record, "approve", actor)
    return record


def merge_reject(*, merge_id: int, actor, note: str = "") -> MergeRecord:
    """Held -> rejected: nothing moves; the source stays a separate user."""
    with transaction.atomic():
        record = merge_locked(merge_id)
        if record.status != MergeRecord.Status.HELD:
            raise action_refusal("not_held", record, f"it is {record.status}; only a held merge can be rejected.")
        record.status = MergeRecord.Status.REJECTED
        record.finished_at = timezone.now()
        record.save(update_fields=["status", "finished_at"])
        action_record(record, "reject", actor, note)
    return record


def merge_retry(*, merge_id: int, actor) -> MergeRecord:
    """Failed -> pending, queued again. The last error stays on the record until a run succeeds."""
    with transaction.atomic():
        record = merge_locked(merge_id)
        if record.status != MergeRecord.Status.FAILED:
            raise action_refusal("not_failed", record, f"it is {record.status}; only a failed merge can be retried.")
        record.status = MergeRecord.Status.PENDING
        record.heartbeat_at = timezone.now()
        record.save(update_fields=["status", "heartbeat_at"])
        action_record(record, "retry", actor)
        merge_queue_on_commit(merge_id=record.pk)
    return record
