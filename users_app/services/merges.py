"""Merging an anonymous profile into an identified one, and what admins can do with a merge.

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
from django.db.models import Max, Min, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events_app.models import Event, Session
from users_app.errors import InvalidInput, NotFound
from users_app.models import MergeAction, MergeRecord, Profile, UserProperty, property_key_hash

logger = logging.getLogger(__name__)

# Default rows per batch; settings.CAIRN_MERGE_BATCH_SIZE overrides it.
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


def _lock_profiles(*profile_ids: int) -> dict[int, Profile]:
    """Row locks in primary-key order (the order ingest uses too), so two writers cannot deadlock."""
    return {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=profile_ids).order_by("pk")}


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
        locked = _lock_profiles(record.source_id, record.destination_id)
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


# ---- admin actions ---------------------------------------------------------------------------------------


def _locked_record(merge_id: int) -> MergeRecord:
    record = MergeRecord.objects.select_for_update().filter(pk=merge_id).first()
    if record is None:
        raise NotFound(f"There is no merge #{merge_id}.", field="merge_id")
    return record


def _audit(record: MergeRecord, action: str, actor, note: str = "") -> None:
    MergeAction.objects.create(merge=record, action=action, actor=actor, note=note)


def _refuse(code: str, record: MergeRecord, reason: str):
    return InvalidInput(code=code, message=f"Merge #{record.pk}: {reason}", field=None)


def merge_approve(*, merge_id: int, actor) -> MergeRecord:
    """Held -> applied: the source becomes a tombstone of the destination at once (reads follow), its
    properties are merged, and the task is queued to move its history."""
    with transaction.atomic():
        record = _locked_record(merge_id)
        if record.status != MergeRecord.Status.HELD:
            raise _refuse("not_held", record, f"it is {record.status}; only a held merge can be approved.")
        locked = _lock_profiles(record.source_id, record.destination_id)
        source, destination = locked[record.source_id], locked[record.destination_id]
        if source.merged_into_id is not None or source.identity is not None:
            raise _refuse(
                "source_changed",
                record,
                f"User {source.user_id} has since been merged or identified; it can no longer be merged "
                "here. Reject this merge instead.",
            )
        if destination.identity != record.identity:
            raise _refuse("destination_changed", record, "the destination no longer owns this identity.")
        merge_redirect(record=record)
        _audit(record, "approve", actor)
    return record


def merge_reject(*, merge_id: int, actor, note: str = "") -> MergeRecord:
    """Held -> rejected: nothing moves; the source stays a separate user."""
    with transaction.atomic():
        record = _locked_record(merge_id)
        if record.status != MergeRecord.Status.HELD:
            raise _refuse("not_held", record, f"it is {record.status}; only a held merge can be rejected.")
        record.status = MergeRecord.Status.REJECTED
        record.finished_at = timezone.now()
        record.save(update_fields=["status", "finished_at"])
        _audit(record, "reject", actor, note)
    return record


def merge_retry(*, merge_id: int, actor) -> MergeRecord:
    """Failed -> pending, queued again. The last error stays on the record until a run succeeds."""
    with transaction.atomic():
        record = _locked_record(merge_id)
        if record.status != MergeRecord.Status.FAILED:
            raise _refuse("not_failed", record, f"it is {record.status}; only a failed merge can be retried.")
        record.status = MergeRecord.Status.PENDING
        record.heartbeat_at = timezone.now()
        record.save(update_fields=["status", "heartbeat_at"])
        _audit(record, "retry", actor)
        merge_enqueue(merge_id=record.pk)
    return record


def _same_value(row: UserProperty | None, snapshot: dict | None) -> bool:
    if row is None or snapshot is None:
        return row is None and snapshot is None
    return (row.value, row.is_number, row.set_at.isoformat()) == (
        snapshot["value"],
        snapshot["is_number"],
        snapshot["set_at"],
    )


def _undo_refusals(record: MergeRecord, source: Profile, destination: Profile) -> list[str]:
    """What later activity depends on this merge, so that undoing it would corrupt data. Empty: safe."""
    reasons = []
    # 1. The source is part of another merge (it cannot be while it is a tombstone, unless data was edited).
    others = MergeRecord.objects.filter(Q(source=source) | Q(destination=source), status__in=OPEN_STATUSES)
    for other in others.exclude(pk=record.pk).order_by("pk"):
        reasons.append(f"user {source.user_id} is part of merge #{other.pk} ({other.status}).")
    # 2. A later merge into the destination replaced a property value this merge had written: undoing this
    #    one first would leave that merge's undo restoring a value that came from this source.
    written = {key: record.source_properties.get(key) for key in record.replaced_destination_properties}
    later = MergeRecord.objects.filter(destination=destination, status__in=COUNTED_STATUSES).exclude(pk=record.pk)
    for other in later.order_by("pk"):
        keys = sorted(
            key
            for key, previous in other.replaced_destination_properties.items()
            if key in written
            and previous is not None
            and written[key] is not None
            and (previous["value"], previous["is_number"], previous["set_at"])
            == (written[key]["value"], written[key]["is_number"], written[key]["set_at"])
        )
        if keys:
            reasons.append(
                f"merge #{other.pk} later replaced {', '.join(repr(k[:80]) for k in keys[:5])} that this "
                f"merge set; undo merge #{other.pk} first."
            )
    # 3. Properties set (or removed) through the source's user_id after the merge: they were applied to the
    #    destination too, which would keep values that belong to the source, and its own earlier values are
    #    not recorded anywhere.
    source_now = {row.key: row for row in source.properties.all()}
    changed = {key for key, row in source_now.items() if not _same_value(row, record.source_properties.get(key))}
    changed |= record.source_properties.keys() - source_now.keys()
    if changed:
        destination_now = {
            row.key: row for row in destination.properties.filter(key_hash__in=[property_key_hash(k) for k in changed])
        }
        in_effect = sorted(
            key
            for key in changed
            if (source_now.get(key) is None and destination_now.get(key) is None)
            or (
                source_now.get(key) is not None
                and destination_now.get(key) is not None
                and _same_value(destination_now[key], property_snapshot([source_now[key]])[key])
            )
        )
        if in_effect:
            reasons.append(
                f"properties {', '.join(repr(k[:80]) for k in in_effect[:5])} were set or removed through "
                f"user {source.user_id} after the merge and hold on the destination too; set them on the "
                "destination by hand first (its earlier values are not recorded)."
            )
    return reasons


def _restore_destination_properties(record: MergeRecord, destination: Profile) -> None:
    """Give the destination back the values this merge replaced, and remove the keys it added, except where
    the destination set the key again after the merge (its row no longer holds what the merge wrote)."""
    replaced = record.replaced_destination_properties
    if not replaced:
        return
    current = {
        row.key: row for row in destination.properties.filter(key_hash__in=[property_key_hash(key) for key in replaced])
    }
    restore, remove = [], []
    for key, previous in replaced.items():
        row = current.get(key)
        if row is None or not _same_value(row, record.source_properties.get(key)):
            continue
        if previous is None:
            remove.append(row.pk)
        else:
            restore.append(
                UserProperty.build(
                    profile=destination,
                    key=key,
                    value=previous["value"],
                    is_number=previous["is_number"],
                    set_at=parse_datetime(previous["set_at"]),
                )
            )
    UserProperty.objects.bulk_create(
        restore,
        update_conflicts=True,
        unique_fields=["profile", "key_hash"],
        update_fields=["value", "is_number", "set_at"],
    )
    UserProperty.objects.filter(pk__in=remove).delete()


SESSION_COPY_FIELDS = (
    "environment_id",
    "landing_page",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "browser",
    "device_type",
    "country",
    "city",
)


def _split_mixed_sessions(source_id: int) -> int:
    """After the rows went back, a session may hold events of both people: a visit that logged in goes on in
    one session, and a server call without a session id continues the person's recent session. Give each
    such group of events its own session (same key, same device attributes), so each person's sessions hold
    only their own events. Returns how many groups were split off (usually 0). Only rows reachable from the
    source are read (two index lookups), never the destination's whole history."""

    def groups_of(events: QuerySet) -> list[dict]:
        return list(
            events.values("session_id", "profile_id", "original_profile_id").annotate(
                first=Min("timestamp"), last=Max("timestamp")
            )
        )

    # Other people's events in the source's sessions, and the source's events in other people's sessions.
    groups = groups_of(Event.objects.filter(session__original_profile_id=source_id).exclude(profile_id=source_id))
    groups += groups_of(
        Event.objects.filter(original_profile_id=source_id, session__isnull=False).exclude(
            session__profile_id=source_id
        )
    )
    for group in groups:
        old = Session.objects.get(pk=group["session_id"])
        new, created = Session.objects.get_or_create(
            original_profile_id=group["original_profile_id"],
            session_key=old.session_key,
            defaults={
                "profile_id": group["profile_id"],
                "started_at": group["first"],
                "ended_at": group["last"],
                **{name: getattr(old, name) for name in SESSION_COPY_FIELDS},
            },
        )
        if not created:
            new.started_at, new.ended_at = min(new.started_at, group["first"]), max(new.ended_at, group["last"])
            new.save(update_fields=["started_at", "ended_at"])
        Event.objects.filter(
            session_id=old.pk, profile_id=group["profile_id"], original_profile_id=group["original_profile_id"]
        ).update(session=new)
        remaining = Event.objects.filter(session_id=old.pk).aggregate(first=Min("timestamp"), last=Max("timestamp"))
        if remaining["first"] is not None:
            Session.objects.filter(pk=old.pk).update(started_at=remaining["first"], ended_at=remaining["last"])
    return len(groups)


def _activity_bounds(events: QuerySet, sessions: QuerySet, fallback: tuple) -> tuple:
    """First and last seen from the rows themselves; `fallback` when there are none."""
    event_bounds = events.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    session_bounds = sessions.aggregate(first=Min("started_at"), last=Max("ended_at"))
    firsts = [t for t in (event_bounds["first"], session_bounds["first"]) if t]
    lasts = [t for t in (event_bounds["last"], session_bounds["last"]) if t]
    if not firsts:
        return fallback
    return min(firsts), max(lasts)


def merge_undo(*, merge_id: int, actor) -> MergeRecord:
    """Done -> reverted. The source comes back as its own user with exactly the events and sessions first
    recorded on it (before the merge and since), and its own properties; the destination loses exactly
    those, gets back the property values the merge replaced, and has its first/last seen recomputed.
    Refused (InvalidInput "undo_refused") when later activity depends on the merge; see _undo_refusals."""
    with transaction.atomic():
        record = _locked_record(merge_id)
        if record.status != MergeRecord.Status.DONE:
            hint = {
                MergeRecord.Status.PENDING: " Wait until it is done.",
                MergeRecord.Status.RUNNING: " Wait until it is done.",
                MergeRecord.Status.FAILED: " Retry it first.",
                MergeRecord.Status.HELD: " Reject it instead.",
            }.get(record.status, "")
            raise _refuse("undo_refused", record, f"it is {record.status}; only a done merge can be undone.{hint}")
        locked = _lock_profiles(record.source_id, record.destination_id)
        source, destination = locked[record.source_id], locked[record.destination_id]
        if source.merged_into_id != destination.pk:
            raise _refuse("undo_refused", record, f"user {source.user_id} is no longer merged into this identity.")
        reasons = _undo_refusals(record, source, destination)
        if reasons:
            raise _refuse("undo_refused", record, "cannot be undone: " + " ".join(reasons))
        # Set-based: one UPDATE per table through the original-profile index, whatever the history's size.
        events_back = (
            Event.objects.filter(original_profile_id=source.pk)
            .exclude(profile_id=source.pk)
            .update(profile_id=source.pk)
        )
        sessions_back = (
            Session.objects.filter(original_profile_id=source.pk)
            .exclude(profile_id=source.pk)
            .update(profile_id=source.pk)
        )
        split = _split_mixed_sessions(source.pk)
        _restore_destination_properties(record, destination)
        source.merged_into = None
        source.first_seen, source.last_seen = _activity_bounds(
            Event.objects.filter(profile_id=source.pk),
            Session.objects.filter(profile_id=source.pk),
            (record.source_first_seen, record.source_last_seen),
        )
        source.save(update_fields=["merged_into", "first_seen", "last_seen"])
        members = Profile.objects.filter(Q(pk=destination.pk) | Q(merged_into_id=destination.pk)).values("pk")
        destination.first_seen, destination.last_seen = _activity_bounds(
            Event.objects.filter(profile_id__in=members),
            Session.objects.filter(profile_id__in=members),
            (record.destination_first_seen, record.destination_last_seen),
        )
        destination.save(update_fields=["first_seen", "last_seen"])
        record.status = MergeRecord.Status.REVERTED  # when: the "undo" MergeAction
        record.save(update_fields=["status"])
        note = f"{events_back} events and {sessions_back} sessions moved back."
        if split:
            note += f" {split} shared session(s) split between the two users."
        _audit(record, "undo", actor, note)
    return record
