"""Merging an anonymous profile into an identified one: the part that happens inside identify. The task that
then moves the history, and the beat sweep, are in merge_history.py; admins' actions are in merge_actions.py.

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
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from users_app.models import INITIAL_PROPERTY_PREFIX, MergeRecord, Profile, UserProperty
from users_app.services.locks import profiles_lock

logger = logging.getLogger(__name__)

# Merges that count toward the 24-hour hold threshold of an identity.
COUNTED_STATUSES = (
    MergeRecord.Status.PENDING,
    MergeRecord.Status.RUNNING,
    MergeRecord.Status.DONE,
    MergeRecord.Status.FAILED,
)
OPEN_STATUSES = (*COUNTED_STATUSES, MergeRecord.Status.HELD)


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


def publish(merge_id: int) -> bool:
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
    transaction.on_commit(lambda: publish(merge_id))
