"""Requesting a merge of an anonymous profile into an identified one: the part that happens inside identify's
transaction (and again when an admin approves a held merge: merge_redirect).

`merge_request` makes the source a tombstone pointing at the destination and resolves properties and
first/last seen, so every read is right from the moment identify returns; then it queues the task
(users_app/merges/queue.py) that moves the history (apply.py). The lifecycle is in users_app/merges/__init__.py.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from users_app.merges.queue import merge_queue_on_commit
from users_app.models import INITIAL_PROPERTY_PREFIX, Environment, MergeRecord, Profile, UserProperty
from users_app.services.locks import profiles_lock

# Merges that count toward the 24-hour hold threshold of an identity.
COUNTED_STATUSES = MergeRecord.APPLIED_STATUSES
OPEN_STATUSES = (*COUNTED_STATUSES, MergeRecord.Status.HELD)


def property_snapshot(rows) -> dict:
    return {row.key: {"value": row.value, "is_number": row.is_number, "set_at": row.set_at.isoformat()} for row in rows}


def _earlier(first, second) -> bool:
    return first is not None and (second is None or first < second)


@dataclass
class _MergeState:
    open_merge_id: int | None  # the source's open merge (or its rejected one into this destination), if any
    recent: int  # merges into the destination that count toward its 24-hour hold threshold
    properties: list[UserProperty]  # both profiles' properties


def _merge_state(*, source: Profile, destination: Profile, threshold_since: datetime) -> _MergeState:
    """In one round trip, under both row locks: the source's open merge, or its rejected one (held and
    rejected ones only for the same destination: a device held or rejected for one identity may still log
    in as another; a rejected device stays separate from that identity for good), how many merges into the
    destination count toward its 24-hour hold threshold (held, rejected and reverted ones do not), and both
    profiles' properties. The aggregate row is left-joined to the properties, so it comes back even when
    there are none (then as one row whose property columns are NULL).

    Raw SQL (parameterised; portable CASE rather than FILTER) because it runs on every merging identify and
    the ORM's conditional aggregates cost more CPU than the query itself (docs/benchmarks.md, "Ingest and
    merges"). UserProperty.objects.raw applies each backend's converters."""
    open_statuses = [str(status) for status in (*OPEN_STATUSES, MergeRecord.Status.REJECTED)]
    for_this_destination = [str(MergeRecord.Status.HELD), str(MergeRecord.Status.REJECTED)]
    counted_statuses = [str(status) for status in COUNTED_STATUSES]
    rows = list(
        UserProperty.objects.raw(
            "SELECT merges.open_merge_id, merges.recent, properties.* FROM ("
            f"SELECT MAX(CASE WHEN source_id = %s AND status IN ({_placeholders(open_statuses)}) "
            f"AND (status NOT IN ({_placeholders(for_this_destination)}) OR destination_id = %s) "
            "THEN id END) AS open_merge_id, "
            f"COUNT(CASE WHEN destination_id = %s AND status IN ({_placeholders(counted_statuses)}) "
            "AND requested_at >= %s THEN 1 END) AS recent "
            f"FROM {MergeRecord._meta.db_table} WHERE source_id = %s OR destination_id = %s"
            f") merges LEFT JOIN {UserProperty._meta.db_table} properties ON properties.profile_id IN (%s, %s) "
            "ORDER BY properties.id",
            [
                source.pk,
                *open_statuses,
                *for_this_destination,
                destination.pk,
                destination.pk,
                *counted_statuses,
                connection.ops.adapt_datetimefield_value(threshold_since),
                source.pk,
                destination.pk,
                source.pk,
                destination.pk,
            ],
        )
    )
    return _MergeState(
        open_merge_id=rows[0].open_merge_id,
        recent=rows[0].recent,
        properties=[row for row in rows if row.pk is not None],
    )


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _merge_properties(source: Profile, destination: Profile, properties: list[UserProperty]) -> tuple[dict, dict]:
    """Apply SPEC 2's merge rules to the destination's properties (`properties`: both profiles'); return
    (source snapshot, replaced: {key: the destination's value before, or None if the merge added the key}).

    Custom properties: per key, the most recently set value wins. `Initial *` properties: the earliest
    session's, as one set, never mixed key by key (a later visit's referrer must not fill the gap of an
    earlier direct visit): the source's set replaces the destination's when the source was seen first (keys
    only the destination had are removed), or when the destination has none; otherwise the destination's
    set stays as it is."""
    source_rows = [row for row in properties if row.profile_id == source.pk]
    destination_rows = {row.key: row for row in properties if row.profile_id == destination.pk}
    source_initial = {row.key for row in source_rows if row.key.startswith(INITIAL_PROPERTY_PREFIX)}
    destination_initial = {key for key in destination_rows if key.startswith(INITIAL_PROPERTY_PREFIX)}
    source_initial_wins = bool(source_initial) and (
        not destination_initial or _earlier(source.first_seen, destination.first_seen)
    )
    replaced: dict[str, dict | None] = {}
    winners = []
    for row in source_rows:
        current = destination_rows.get(row.key)
        if row.key in source_initial:
            source_wins = source_initial_wins
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
    # The source's initial set won: the destination's initial keys it does not have go (undo puts them back).
    removed = [destination_rows[key] for key in destination_initial - source_initial] if source_initial_wins else []
    for row in removed:
        replaced[row.key] = property_snapshot([row])[row.key]
    if removed:
        UserProperty.objects.filter(pk__in=[row.pk for row in removed]).delete()
    if winners:
        UserProperty.objects.bulk_create(
            winners,
            update_conflicts=True,
            unique_fields=["profile", "key_hash"],
            update_fields=["value", "is_number", "set_at"],
        )
    return property_snapshot(source_rows), replaced


def merge_request(
    *, source: Profile, destination: Profile, environment: Environment, trigger: str, requested_by=None
) -> MergeRecord:
    """Record a merge of anonymous `source` into identified `destination`. Call inside a transaction that
    holds both row locks, with both rows as read under them (first/last seen change with every event).
    Past the identity's 24-hour threshold (SPEC 4) the merge is held, not applied: counted under the
    destination's lock, so concurrent identifies cannot both slip under it."""
    state = _merge_state(source=source, destination=destination, threshold_since=timezone.now() - timedelta(hours=24))
    # The same source asking again gets its open (or rejected) merge. The deletion of the destination's person
    # deletes merge records without these row locks (users_app/deletion/person.py, its first step), so the record
    # read a moment ago may be gone: then this is a merge like any other (the deletion's last step, which takes
    # the destination's lock, deletes the new record too).
    open_merge = MergeRecord.objects.filter(pk=state.open_merge_id).first() if state.open_merge_id else None
    if open_merge is not None:
        return open_merge
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
    # "More than the threshold": one more would exceed it.
    if state.recent >= environment.merge_hold_threshold:
        # Held: the source stays its own user everywhere until an admin approves.
        record.status = MergeRecord.Status.HELD
        record.source_properties = property_snapshot(row for row in state.properties if row.profile_id == source.pk)
        record.save()
        return record
    merge_redirect(record=record, source=source, destination=destination, properties=state.properties)
    return record


def merge_redirect(
    *,
    record: MergeRecord,
    source: Profile | None = None,
    destination: Profile | None = None,
    properties: list[UserProperty] | None = None,
) -> None:
    """The part of a merge that happens at once: tombstone, properties, first/last seen; then enqueue. Pass
    `source` and `destination` (and both their `properties`) only when the caller already holds their row
    locks and read them under it."""
    if source is None or destination is None:
        locked = profiles_lock([record.source_id, record.destination_id])
        source, destination = locked[record.source_id], locked[record.destination_id]
        properties = None
    if properties is None:
        properties = list(UserProperty.objects.filter(profile_id__in=[source.pk, destination.pk]).order_by("pk"))
    record.source_first_seen, record.source_last_seen = source.first_seen, source.last_seen
    record.destination_first_seen, record.destination_last_seen = (
        destination.first_seen,
        destination.last_seen,
    )
    record.source_properties, record.replaced_destination_properties = _merge_properties(
        source, destination, properties
    )
    record.properties_moved = len(record.replaced_destination_properties)
    record.status = MergeRecord.Status.PENDING
    record.heartbeat_at = None
    record.save()
    source.merged_into = destination
    destination.first_seen = min((t for t in (source.first_seen, destination.first_seen) if t), default=None)
    destination.last_seen = max((t for t in (source.last_seen, destination.last_seen) if t), default=None)
    # The tombstone and the destination's first/last seen in one UPDATE (one round trip instead of two; raw SQL,
    # parameterised: the ORM's Case/When costs more CPU than the statement).
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Profile._meta.db_table} SET "
            "merged_into_id = CASE WHEN id = %s THEN %s ELSE merged_into_id END, "
            "first_seen = CASE WHEN id = %s THEN %s ELSE first_seen END, "
            "last_seen = CASE WHEN id = %s THEN %s ELSE last_seen END "
            "WHERE id IN (%s, %s)",
            [
                source.pk,
                destination.pk,
                destination.pk,
                adapt(destination.first_seen),
                destination.pk,
                adapt(destination.last_seen),
                source.pk,
                destination.pk,
            ],
        )
    merge_queue_on_commit(merge_id=record.pk)
