"""Merging an anonymous profile into an identified one (admins' actions are in merge_actions.py).

Lifecycle (SPEC 4 and 5; the rules are written down in docs/identity.md, "Held merges, undo, outages"):

    merge_request --(over the 24 h threshold)--> held --approve--> pending      held --reject--> rejected
    merge_request --> pending -> running -> done --undo--> reverted
                                       \\-> failed --retry--> pending

`merge_request` runs inside identify's transaction: it makes the source a tombstone pointing at the
destination and resolves properties and first/last seen, so every read is right from the moment identify
returns. `merge_apply` (a Celery task) then moves events and sessions in bounded set-based batches; reads
count a pending source's rows as the destination's, so they stay right while it runs. `merge_sweep` (beat)
re-queues merges whose task was lost (broker down at identify time, worker killed mid-way).
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from events_app.models import Event, Session
from users_app.models import INITIAL_PROPERTY_PREFIX, MergeAction, MergeRecord, Profile, UserProperty
from users_app.services.locks import profiles_lock

logger = logging.getLogger(__name__)

# Default rows per batch; settings.CAIRN_MERGE_BATCH_SIZE overrides it.
MOVE_BATCH_SIZE = 5000
# Merges that count toward the 24-hour hold threshold of an identity.
COUNTED_STATUSES = (
    MergeRecord.Status.PENDING,
    MergeRecord.Status.RUNNING,
    MergeRecord.Status.DONE,
    MergeRecord.Status.FAILED,
)
OPEN_STATUSES = (*COUNTED_STATUSES, MergeRecord.Status.HELD)
# The sweep queues at most this many merges per run; the rest wait for the next run.
SWEEP_LIMIT = 500
# After an undo, the sweep keeps re-homing rows that a concurrent ingest call wrote for the old tombstone.
REVERT_REPAIR_WINDOW = timedelta(hours=1)


def property_snapshot(rows) -> dict:
    return {row.key: {"value": row.value, "is_number": row.is_number, "set_at": row.set_at.isoformat()} for row in rows}


def _earlier(first, second) -> bool:
    return first is not None and (second is None or first < second)


def _merge_properties(source: Profile, destination: Profile) -> tuple[dict, dict]:
    """Apply SPEC 2's merge rules to the destination's properties; return (source snapshot, replaced)."""
    source_rows = list(source.properties.all())
    destination_rows = {row.key: row for row in destination.properties.all()}
    source_is_earlier = _earlier(source.first_seen, destination.first_seen)
    replaced: dict[str, dict | None] = {}
    winners = []
    for row in source_rows:
        current = destination_rows.get(row.key)
        if row.key.startswith(INITIAL_PROPERTY_PREFIX):
            source_wins = current is None or source_is_earlier  # the earliest session's initial values
        else:
            source_wins = current is None or row.set_at > current.set_at  # most recently set wins
        if source_wins:
            replaced[row.key] = property_snapshot([current])[row.key] if current else None
            winners.append(
                UserProperty.build(
                    profile=destination,
                    key=row.key,
                    value=row.value,
                    is_number=row.is_number,
                    set_at=row.set_at,
                )
            )
    UserProperty.objects.bulk_create(
        winners,
        update_conflicts=True,
        unique_fields=["profile", "key_hash"],
        update_fields=["value", "is_number", "set_at"],
    )
    return property_snapshot(source_rows), replaced


def _over_hold_threshold(destination: Profile) -> bool:
    """True when the identity already absorbed its environment's threshold of profiles in 24 hours, so one
    more would be "more than the threshold" (SPEC 4). Held, rejected and reverted merges do not count.
    The caller holds the destination's row lock, so concurrent identifies cannot both slip under it."""
    threshold = destination.environment.merge_hold_threshold
    recent = MergeRecord.objects.filter(
        destination=destination,
        status__in=COUNTED_STATUSES,
        requested_at__gte=timezone.now() - timedelta(hours=24),
    ).count()
    return recent >= threshold


def merge_request(*, source: Profile, destination: Profile, trigger: str, requested_by=None) -> MergeRecord:
    """Record a merge of anonymous `source` into identified `destination`. Call inside a transaction that
    holds the source's row lock. Past the identity's 24-hour threshold the merge is held, not applied."""
    # The same source asking again returns its open merge (a held one only for the same destination: a
    # device held for one identity may still log in as another).
    open_merge = (
        MergeRecord.objects.filter(source=source, status__in=OPEN_STATUSES)
        .exclude(Q(status=MergeRecord.Status.HELD) & ~Q(destination=destination))
        .first()
    )
    if open_merge is not None:
        return open_merge
    # Fresh under its lock (first/last seen change with every event), with its environment in the same query.
    destination = Profile.objects.select_for_update(of=("self",)).select_related("environment").get(pk=destination.pk)
    record = MergeRecord(
        environment_id=source.environment_id,
        source=source,
        destination=destination,
        identity=destination.identity,
        trigger=trigger,
        requested_by=requested_by,
        source_first_seen=source.first_seen,
        source_last_seen=source.last_seen,
        destination_first_seen=destination.first_seen,
        destination_last_seen=destination.last_seen,
    )
    if _over_hold_threshold(destination):
        # Held: the source stays its own user everywhere until an admin approves.
        record.status = MergeRecord.Status.HELD
        record.source_properties = property_snapshot(source.properties.all())
        record.save()
        return record
    merge_redirect(record=record, source=source, destination=destination)
    return record


def merge_redirect(*, record: MergeRecord, source: Profile | None = None, destination: Profile | None = None) -> None:
    """The part of a merge that happens at once: tombstone, properties, first/last seen; then enqueue. Pass
    `source` and `destination` only when the caller already holds their row locks and read them under it."""
    if source is None or destination is None:
        locked = profiles_lock([record.source_id, record.destination_id])
        source, destination = locked[record.source_id], locked[record.destination_id]
    record.source_first_seen, record.source_last_seen = source.first_seen, source.last_seen
    record.destination_first_seen, record.destination_last_seen = (
        destination.first_seen,
        destination.last_seen,
    )
    record.source_properties, record.replaced_destination_properties = _merge_properties(source, destination)
    record.properties_moved = len(record.replaced_destination_properties)
    record.status = MergeRecord.Status.PENDING
    record.heartbeat_at = None
    record.save()
    source.merged_into = destination
    source.save(update_fields=["merged_into"])
    destination.first_seen = min((t for t in (source.first_seen, destination.first_seen) if t), default=None)
    destination.last_seen = max((t for t in (source.last_seen, destination.last_seen) if t), default=None)
    destination.save(update_fields=["first_seen", "last_seen"])
    merge_enqueue(merge_id=record.pk)


def _publish(merge_id: int) -> bool:
    from users_app.tasks import merge_apply_task

    try:
        merge_apply_task.delay(merge_id)
    except Exception:  # kombu raises several types for an unreachable broker; none may fail identify
        logger.warning("Could not queue merge %s; the sweep will retry it.", merge_id, exc_info=True)
        return False
    return True


def merge_enqueue(*, merge_id: int) -> None:
    """Queue the merge task once the transaction commits. If the broker is down, identify still succeeds
    (publishing gives up after ~0.1 s, see CELERY_BROKER_TRANSPORT_OPTIONS): the merge stays pending and the
    periodic sweep queues it again."""
    transaction.on_commit(lambda: _publish(merge_id))


# ---- the task's work -------------------------------------------------------------------------------------


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
        if not _publish(merge_id):
            break  # the broker is still down: the next sweep tries again
        # Queued now: give the worker a full stale period before queuing it again.
        MergeRecord.objects.filter(
            pk=merge_id, status__in=(MergeRecord.Status.PENDING, MergeRecord.Status.RUNNING)
        ).update(heartbeat_at=now)
        queued += 1
    _repair_reverted(now - REVERT_REPAIR_WINDOW)
    return queued
