"""Undoing a finished merge (SPEC 5): the source comes back as its own user with its own history and
properties, the destination gets back what the merge replaced. Refused, clearly, when later activity depends
on the merge (`_undo_refusals`); like the other admin actions (actions.py) it runs in one transaction and
leaves a MergeAction row."""

from django.db import transaction
from django.db.models import Max, Min, Q, QuerySet
from django.utils.dateparse import parse_datetime

from events_app.models import Event, Session
from users_app.merges.actions import action_record, action_refusal, merge_locked
from users_app.merges.request import COUNTED_STATUSES, OPEN_STATUSES, property_snapshot
from users_app.models import (
    INITIAL_PROPERTY_PREFIX,
    MergeRecord,
    Profile,
    UserProperty,
    property_key_hash,
)
from users_app.people import person_members, person_pk
from users_app.services.initial_properties import initial_properties_recompute
from users_app.services.locks import profiles_lock


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


def _holds_what_the_merge_left(row: UserProperty | None, written: dict | None) -> bool:
    """Whether the destination's row of a key is as the merge left it (`written` None: the merge removed it)."""
    return row is None if written is None else row is not None and _same_value(row, written)


def _restore_destination_properties(record: MergeRecord, destination: Profile) -> None:
    """Give the destination back the values this merge replaced or removed, and remove the keys it added,
    except where the destination set the key again after the merge (its row no longer holds what the merge
    left there). `Initial *` properties are one set (the first session's): they are put back only if the set
    the merge left holds whole; if a first session arrived since, they are recomputed from it instead, never
    mixed key by key."""
    replaced = record.replaced_destination_properties
    if not replaced:
        return
    written = record.source_properties
    initial_keys = {key for key in replaced if key.startswith(INITIAL_PROPERTY_PREFIX)}
    current = {
        row.key: row
        for row in destination.properties.filter(
            Q(key_hash__in=[property_key_hash(key) for key in replaced]) | Q(key__startswith=INITIAL_PROPERTY_PREFIX)
        )
    }
    initial_intact = {key for key in current if key.startswith(INITIAL_PROPERTY_PREFIX)} == {
        key for key in initial_keys if key in written
    } and all(_holds_what_the_merge_left(current.get(key), written.get(key)) for key in initial_keys)
    restore, remove = [], []
    for key, previous in replaced.items():
        row = current.get(key)
        if (key in initial_keys and not initial_intact) or not _holds_what_the_merge_left(row, written.get(key)):
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
    if initial_keys and not initial_intact:
        initial_properties_recompute(profile_id=destination.pk)


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
        record = merge_locked(merge_id)
        if record.status != MergeRecord.Status.DONE:
            hint = {
                MergeRecord.Status.PENDING: " Wait until it is done.",
                MergeRecord.Status.RUNNING: " Wait until it is done.",
                MergeRecord.Status.FAILED: " Retry it first.",
                MergeRecord.Status.HELD: " Reject it instead.",
            }.get(record.status, "")
            raise action_refusal(
                "undo_refused", record, f"it is {record.status}; only a done merge can be undone.{hint}"
            )
        locked = profiles_lock([record.source_id, record.destination_id])
        source, destination = locked[record.source_id], locked[record.destination_id]
        if person_pk(source) != destination.pk:
            raise action_refusal(
                "undo_refused", record, f"user {source.user_id} is no longer merged into this identity."
            )
        reasons = _undo_refusals(record, source, destination)
        if reasons:
            raise action_refusal("undo_refused", record, "cannot be undone: " + " ".join(reasons))
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
        members = person_members(destination)
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
        action_record(record, "undo", actor, note)
    return record
