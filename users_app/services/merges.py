"""Merging an anonymous profile into an identified one.

`merge_request` runs inside identify's transaction: it makes the source a tombstone pointing at the
destination and resolves properties and first/last seen, so every read is right from the moment identify
returns. `merge_apply` (a Celery task) then moves events and sessions in bounded set-based batches; reads
count a pending source's rows as the destination's, so they stay right while it runs.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from events_app.models import Event, Session
from users_app.models import MergeRecord, Profile, UserProperty

logger = logging.getLogger(__name__)

MOVE_BATCH_SIZE = 5000
INITIAL_PROPERTY_PREFIX = "Initial "
# Merges that count toward the 24-hour hold threshold of an identity.
COUNTED_STATUSES = (
    MergeRecord.Status.PENDING,
    MergeRecord.Status.RUNNING,
    MergeRecord.Status.DONE,
    MergeRecord.Status.FAILED,
)
OPEN_STATUSES = (*COUNTED_STATUSES, MergeRecord.Status.HELD)


def property_snapshot(rows) -> dict:
    return {
        row.key: {"value": row.value, "is_number": row.is_number, "set_at": row.set_at.isoformat()} for row in rows
    }


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
            winners.append(UserProperty.build(profile=destination, key=row.key, value=row.value,
                                              is_number=row.is_number, set_at=row.set_at))
    UserProperty.objects.bulk_create(
        winners, update_conflicts=True, unique_fields=["profile", "key_hash"], update_fields=["value", "is_number", "set_at"]
    )
    return property_snapshot(source_rows), replaced


def _over_hold_threshold(destination: Profile) -> bool:
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
    open_merge = MergeRecord.objects.filter(source=source, status__in=OPEN_STATUSES).first()
    if open_merge is not None:
        return open_merge
    record = MergeRecord(
        environment_id=source.environment_id, source=source, destination=destination,
        identity=destination.identity, trigger=trigger, requested_by=requested_by,
        source_first_seen=source.first_seen, source_last_seen=source.last_seen,
        destination_first_seen=destination.first_seen, destination_last_seen=destination.last_seen,
    )
    if _over_hold_threshold(destination):
        # Held: the source stays its own user everywhere until an admin approves.
        record.status = MergeRecord.Status.HELD
        record.source_properties = property_snapshot(source.properties.all())
        record.save()
        return record
    record.save()
    merge_redirect(record=record)
    return record


def merge_redirect(*, record: MergeRecord) -> None:
    """The part of a merge that happens at once: tombstone, properties, first/last seen; then enqueue."""
    source = Profile.objects.select_for_update().get(pk=record.source_id)
    destination = Profile.objects.select_for_update().get(pk=record.destination_id)
    record.source_properties, record.replaced_destination_properties = _merge_properties(source, destination)
    record.properties_moved = len(record.replaced_destination_properties)
    record.status = MergeRecord.Status.PENDING
    record.save()
    source.merged_into = destination
    source.save(update_fields=["merged_into"])
    destination.first_seen = min((t for t in (source.first_seen, destination.first_seen) if t), default=None)
    destination.last_seen = max((t for t in (source.last_seen, destination.last_seen) if t), default=None)
    destination.save(update_fields=["first_seen", "last_seen"])
    merge_enqueue(merge_id=record.pk)


def merge_enqueue(*, merge_id: int) -> None:
    """Queue the merge task once the transaction commits. If the broker is down, identify still succeeds:
    the merge stays pending and the periodic sweep queues it again."""

    def send() -> None:
        from users_app.tasks import merge_apply_task

        try:
            merge_apply_task.delay(merge_id)
        except Exception:  # kombu raises several types for an unreachable broker; none may fail identify
            logger.warning("Could not queue merge %s; the sweep will retry it.", merge_id, exc_info=True)

    transaction.on_commit(send)


def _move_in_batches(model, *, source_id: int, destination_id: int) -> None:
    """UPDATE ... SET profile = destination in bounded batches, each its own short transaction, so a large
    history never holds long locks. Safe to repeat: rows already moved no longer match."""
    while True:
        with transaction.atomic():
            batch = model.objects.filter(profile_id=source_id).values("pk")[:MOVE_BATCH_SIZE]
            moved = model.objects.filter(pk__in=Subquery(batch)).update(profile_id=destination_id)
        if moved < MOVE_BATCH_SIZE:
            return


def merge_apply(*, merge_id: int) -> MergeRecord:
    """Move the source's history into the destination. Idempotent: finished or inapplicable merges are left
    as they are, and a run that died half-way is simply continued."""
    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=merge_id)
        if record.status not in (MergeRecord.Status.PENDING, MergeRecord.Status.RUNNING, MergeRecord.Status.FAILED):
            return record
        record.status = MergeRecord.Status.RUNNING
        record.started_at = record.started_at or timezone.now()
        record.attempts += 1
        record.save(update_fields=["status", "started_at", "attempts"])
    _move_in_batches(Session, source_id=record.source_id, destination_id=record.destination_id)
    _move_in_batches(Event, source_id=record.source_id, destination_id=record.destination_id)
    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=merge_id)
        if record.status != MergeRecord.Status.RUNNING:
            return record
        record.events_moved = Event.objects.filter(
            original_profile_id=record.source_id, profile_id=record.destination_id
        ).count()
        record.sessions_moved = Session.objects.filter(
            original_profile_id=record.source_id, profile_id=record.destination_id
        ).count()
        record.status = MergeRecord.Status.DONE
        record.finished_at = timezone.now()
        record.last_error = ""
        record.save()
    return record


def merge_mark_failed(*, merge_id: int, error: str) -> None:
    MergeRecord.objects.filter(pk=merge_id, status=MergeRecord.Status.RUNNING).update(
        status=MergeRecord.Status.FAILED, last_error=error[:4000]
    )
