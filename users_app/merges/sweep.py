"""The beat sweep (SPEC 5): re-queues merges whose task was lost, and re-homes rows written for a tombstone
whose merge was undone meanwhile. The task's work is in apply.py."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from events_app.models import Event, Session
from users_app.merges.queue import merge_publish
from users_app.models import MergeAction, MergeRecord, Profile
from users_app.people import is_person

# The sweep queues at most this many merges per run; the rest wait for the next run.
SWEEP_LIMIT = 500
# After an undo, the sweep keeps re-homing rows that a concurrent ingest call wrote for the old tombstone.
REVERT_REPAIR_WINDOW = timedelta(hours=1)


def _repair_reverted(since: datetime) -> None:
    """An ingest call that resolved a user_id just before its merge was undone may still write a row for the
    tombstone's old destination; move such rows back (set-based, by the original profile's index)."""
    for source_id in MergeAction.objects.filter(
        action="undo", created_at__gte=since, merge__status=MergeRecord.Status.REVERTED
    ).values_list("merge__source_id", flat=True):
        if Profile.objects.filter(is_person(), pk=source_id).exists():
            for model in (Event, Session):
                model.objects.filter(original_profile_id=source_id).exclude(profile_id=source_id).update(
                    profile_id=source_id
                )


def merge_sweep() -> int:
    """Re-queue merges whose task was lost: pending (the broker was down at identify time, or the message
    was lost) or running with no heartbeat for CAIRN_MERGE_STALE_SECONDS (its worker died; Redis would
    only redeliver after its visibility timeout). Returns how many were queued. Queuing a merge that is in
    fact still running is harmless: merge_apply is idempotent."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.CAIRN_MERGE_STALE_SECONDS)
    stuck = list(
        MergeRecord.objects.filter(status__in=(MergeRecord.Status.PENDING, MergeRecord.Status.RUNNING))
        .filter(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, requested_at__lt=stale_before))
        .order_by("requested_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    queued = 0
    for merge_id in stuck:
        if not merge_publish(merge_id=merge_id):
            break  # the broker is still down: the next sweep tries again
        # Queued now: give the worker a full stale period before queuing it again.
        MergeRecord.objects.filter(
            pk=merge_id, status__in=(MergeRecord.Status.PENDING, MergeRecord.Status.RUNNING)
        ).update(heartbeat_at=now)
        queued += 1
    _repair_reverted(now - REVERT_REPAIR_WINDOW)
    return queued
