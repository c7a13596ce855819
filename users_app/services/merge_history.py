"""The merge task's work (SPEC 5): move a merged source's events and sessions to its destination, and the
beat sweep that re-queues merges whose task was lost. The identify-time side (tombstone, properties,
enqueue) is in merges.py; admins' actions are in merge_actions.py."""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from events_app.models import Event, Session
from users_app.models import MergeAction, MergeRecord, Profile
from users_app.services.merges import publish

logger = logging.getLogger(__name__)

# Default rows per batch; settings.CAIRN_MERGE_BATCH_SIZE overrides it.
MOVE_BATCH_SIZE = 5000
# The sweep queues at most this many merges per run; the rest wait for the next run.
SWEEP_LIMIT = 500
# After an undo, the sweep keeps re-homing rows that a concurrent ingest call wrote for the old tombstone.
REVERT_REPAIR_WINDOW = timedelta(hours=1)

def _move_round(record: MergeRecord, batch_size: int) -> bool:
    """Move one bounded batch of the source's sessions and one of its events to the destination (UPDATE ...
    WHERE pk IN (SELECT ... LIMIT n)). Safe to repeat: rows already moved no longer match. True when nothing
    is left to move."""
    done = True
    for model in (Session, Event):
        batch = model.objects.filter(profile_id=record.source_id).values("pk")[:batch_size]
        moved = model.objects.filter(pk__in=Subquery(batch)).update(profile_id=record.destination_id)
        done = done and moved < batch_size
    return done


def _finish(record: MergeRecord) -> MergeRecord:
    # Counted from the rows, not added up per batch, so a run repeated after a crash counts nothing twice.
    record.events_moved = Event.objects.filter(
        original_profile_id=record.source_id, profile_id=record.destination_id
    ).count()
    record.sessions_moved = Session.objects.filter(
        original_profile_id=record.source_id, profile_id=record.destination_id
    ).count()
    record.status = MergeRecord.Status.DONE
    record.finished_at = timezone.now()
    record.heartbeat_at = record.finished_at
    record.last_error = ""
    record.save()
    return record


def merge_apply(*, merge_id: int) -> MergeRecord:
    """Move the source's history into the destination. Idempotent: finished or inapplicable merges are left
    as they are, and a run that died half-way is simply continued.

    A small history (under CAIRN_MERGE_BATCH_SIZE rows) moves and finishes in one transaction. A large one
    moves one bounded batch per short transaction, so it never holds long locks; each batch first touches the
    record's heartbeat, which also checks (under the record's row lock) that the merge is still running, so
    a duplicate task left behind by the sweep stops as soon as another worker finished it or an admin undid
    it."""
    batch_size = max(1, int(getattr(settings, "CAIRN_MERGE_BATCH_SIZE", MOVE_BATCH_SIZE)))
    pause = max(0, int(getattr(settings, "CAIRN_MERGE_BATCH_PAUSE_MS", 0))) / 1000
    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=merge_id)
        if record.status not in (
            MergeRecord.Status.PENDING,
            MergeRecord.Status.RUNNING,
            MergeRecord.Status.FAILED,
        ):
            return record
        record.status = MergeRecord.Status.RUNNING
        record.started_at = record.started_at or timezone.now()
        record.heartbeat_at = timezone.now()
        record.attempts += 1
        if _move_round(record, batch_size):
            return _finish(record)  # saves everything above too, in one UPDATE
        record.save(update_fields=["status", "started_at", "heartbeat_at", "attempts"])
    while True:
        if pause:
            time.sleep(pause)
        with transaction.atomic():
            still_running = MergeRecord.objects.filter(pk=merge_id, status=MergeRecord.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )
            if not still_running:
                return MergeRecord.objects.get(pk=merge_id)
            if _move_round(record, batch_size):
                return _finish(MergeRecord.objects.select_for_update().get(pk=merge_id))


def merge_mark_failed(*, merge_id: int, error: str) -> None:
    MergeRecord.objects.filter(pk=merge_id, status=MergeRecord.Status.RUNNING).update(
        status=MergeRecord.Status.FAILED, last_error=error[:4000]
    )


def _repair_reverted(since: datetime) -> None:
    """An ingest call that resolved a user_id just before its merge was undone may still write a row for the
    tombstone's old destination; move such rows back (set-based, by the original profile's index)."""
    for source_id in MergeAction.objects.filter(
        action="undo", created_at__gte=since, merge__status=MergeRecord.Status.REVERTED
    ).values_list("merge__source_id", flat=True):
        if Profile.objects.filter(pk=source_id, merged_into__isnull=True).exists():
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
        if not publish(merge_id):
            break  # the broker is still down: the next sweep tries again
        # Queued now: give the worker a full stale period before queuing it again.
        MergeRecord.objects.filter(
            pk=merge_id, status__in=(MergeRecord.Status.PENDING, MergeRecord.Status.RUNNING)
        ).update(heartbeat_at=now)
        queued += 1
    _repair_reverted(now - REVERT_REPAIR_WINDOW)
    return queued
