"""Deleting a whole person (SPEC 12): the person's profile and every profile merged into it, their events,
sessions and user properties, the merge records that name any of them (with their identity and property
snapshots) and the audit trail of those: MergeAction rows go with their record; the admin's LogEntry rows go by
the object they are about (the person's profiles, merge records and properties) and, for objects
already gone, by a text Cairn wrote that is exactly the identity, never by substring (_audit_lines_naming).
Nothing personal remains; the caller keeps the counts.

The rows go in short transactions of at most `CAIRN_DELETION_BATCH_SIZE` rows each, so a person with a long
history never holds long locks nor blocks ingest. Every step is idempotent: a run that dies half-way is simply
run again (the rows already deleted no longer match), and the counts of each batch are added in that batch's own
transaction (`on_batch`), so they survive a crash exactly.

The last step (_last_step) runs under the row locks of the person and every member (_person_locked says in which
order, and why), and deletes what arrived during the batches and the profiles. Calls that race it land on one
side (docs/identity.md, "Calls that race a deletion"): an ingest call that holds the person's lock first is
waited for and its rows go too; one that gets the lock after finds its owner gone under it (owners_lock) and
starts again on a new profile. So no row is ever written for a deleted profile.

Merges of the person (docs/identity.md, "Deleting a person"):
- a merge in flight into the person (pending, running, failed): its record is deleted first; the merge task then
  finds no record (a running one stops at its next batch, whose heartbeat update no longer matches) and
  finishes without error (users_app/tasks.py); the rows it was moving belong to members, which go anyway;
- a held merge into the person: the record goes (it holds the person's identity); its source was never part of
  the person (held: it stays its own user until approved), so that anonymous profile and its history stay;
- done, rejected and reverted merges: the records go; a reverted merge's source is its own person again and
  stays.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q

from events_app.models import Event, Session, event_side_rows_delete, rollups_forget_profiles
from users_app.models import MergeRecord, Profile, UserProperty
from users_app.people import person_member_pks, person_of
from users_app.services.locks import profiles_lock, profiles_try_lock

DELETION_BATCH_SIZE = 2000
# The last step starts again when a member's row is held by another transaction (_person_locked), after a pause
# that doubles each time: about 4 s over all attempts, then the task tries again later.
LAST_STEP_ATTEMPTS = 10
LAST_STEP_BACKOFF_SECONDS = 0.02

# Called inside each batch's transaction with what the batch deleted: {"events": n} and the like.
OnBatch = Callable[[dict[str, int]], None]


@dataclass(frozen=True)
class PersonDeletionPreview:
    """What deleting the person would remove (the admin's confirmation page)."""

    profiles: int
    events: int
    sessions: int
    properties: int
    merges: int


def _batch_size() -> int:
    return max(1, int(getattr(settings, "CAIRN_DELETION_BATCH_SIZE", DELETION_BATCH_SIZE)))


def _merges_of(member_pks: set[int]):
    return MergeRecord.objects.filter(Q(source_id__in=member_pks) | Q(destination_id__in=member_pks))


def _merges_try_lock(merge_pks: set[int]) -> list[int]:
    """The merge records of these that no other transaction holds, locked without waiting (SKIP LOCKED)."""
    return list(
        MergeRecord.objects.select_for_update(skip_locked=True).filter(pk__in=merge_pks).values_list("pk", flat=True)
    )


def person_deletion_preview(profile: Profile) -> PersonDeletionPreview:
    person = person_of(profile)
    members = person_member_pks([person.pk])
    return PersonDeletionPreview(
        profiles=len(members),
        events=Event.objects.filter(profile_id__in=members).count(),
        sessions=Session.objects.filter(profile_id__in=members).count(),
        properties=UserProperty.objects.filter(profile_id__in=members).count(),
        merges=_merges_of(members).count(),
    )


# The rows besides profiles and merge records the admin's log can be about. Events and sessions are left out: their
# admin pages are read-only and nothing else logs them, and a look per batch of them would cost every deletion.
_LOGGED_ROWS = (UserProperty,)


def _audit_trail_delete(model, pks) -> None:
    """The admin's log lines about these rows of `model`, by content type and object id (LogEntry keeps an
    object's text, `object_repr`, and the change message after the object is gone)."""
    object_ids = [str(pk) for pk in pks]
    if object_ids:
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model), object_id__in=object_ids
        ).delete()


# A merge record's text as the admin log keeps it (MergeRecord.__str__): the identity is the part after "->".
_MERGE_TEXT = re.compile(r"Merge #\d+: User \d+ -> (?P<identity>.*) \((?P<status>\w+)\)", re.DOTALL)


def _audit_lines_naming(identity: str | None) -> None:
    """Log lines about no object of ours that still exists but whose text names the person: only texts Cairn
    wrote, compared whole, never a substring (a short identity such as "a" or "1" is part of half the log's
    text): an object's text or change message that is exactly the identity (a profile's text is its identity),
    and a merge record's text whose identity is exactly it."""
    if not identity:
        return
    as_kept = identity[: LogEntry._meta.get_field("object_repr").max_length]  # the log cuts the text there
    merge_type = ContentType.objects.get_for_model(MergeRecord)
    candidates = LogEntry.objects.filter(
        Q(object_repr=as_kept)
        | Q(change_message=identity)
        | Q(content_type=merge_type, object_repr__contains=f" -> {identity} (")
    ).values_list("pk", "content_type_id", "object_repr", "change_message")
    naming = []
    for pk, content_type_id, text, message in candidates:
        merge_text = _MERGE_TEXT.fullmatch(text) if content_type_id == merge_type.pk else None
        if text == as_kept or message == identity or (merge_text and merge_text["identity"] == identity):
            naming.append(pk)
    LogEntry.objects.filter(pk__in=naming).delete()


def _merges_delete(member_pks: set[int], identity: str | None) -> int:
    """The merge records naming the person's profiles (their actions cascade), and the audit trail of the
    person: the log lines about its profiles and these merge records, and those naming its identity. First of
    all, so that a merge in flight stops at its next batch."""
    merge_pks = list(_merges_of(member_pks).values_list("pk", flat=True))
    _audit_trail_delete(Profile, member_pks)
    _audit_trail_delete(MergeRecord, merge_pks)
    _audit_lines_naming(identity)
    MergeRecord.objects.filter(pk__in=merge_pks).delete()
    return len(merge_pks)


def _rows_delete(model, condition: Q) -> int:
    """Delete the rows and answer how many of `model` went (not the events a session's delete unlinks). An event's
    defined-event matches and idempotency key go with it: they are keyed by the event's id, with no foreign key to
    cascade."""
    if model is Event:
        event_side_rows_delete(Event.objects.filter(condition).values("pk"))
    return model.objects.filter(condition).delete()[1].get(model._meta.label, 0)


def _delete_in_batches(model, member_pks: set[int], counter: str, on_batch: OnBatch | None) -> int:
    """Delete `model`'s rows of these profiles and the admin's log lines about them, `batch_size` at a time,
    each batch its own transaction."""
    total, batch_size = 0, _batch_size()
    while True:
        with transaction.atomic():
            pks = list(model.objects.filter(profile_id__in=member_pks).values_list("pk", flat=True)[:batch_size])
            if not pks:
                return total
            if model in _LOGGED_ROWS:
                _audit_trail_delete(model, pks)
            deleted = _rows_delete(model, Q(pk__in=pks))
            total += deleted
            if on_batch is not None:
                on_batch({counter: deleted})


class PersonBusy(Exception):
    """Another transaction kept holding a profile or a merge record of the person during every attempt of the
    last step (an identify or an undo of a device of the person, an admin's approve of a held merge into it: each
    waiting for the person's own row). Transient: the deletion task tries again later (users_app/tasks.py)."""


def _person_locked(person_pk: int) -> set[int] | None:
    """Inside a transaction: the row locks of the person and of every profile merged into it, and the members as
    they are under them; None if the person is gone; PersonBusy if a member is held by another transaction.

    The person's row first, waiting for it: every ingest call and identify of the person holds it only for its
    own short transaction, and the last step holds nothing else while it waits. Then the members' rows without
    waiting (profiles_try_lock). No single order suits every other writer: identify and undo lock a device's
    tombstone and then its person (primary-key order), while an ingest call locks the person and then, at
    commit, takes a key-share lock on the tombstone (its new session's original_profile foreign key). Waiting
    for a member while holding the person could deadlock with the first, locking in primary-key order with the
    second (PostgreSQL would then abort one of them: a 500 for the client). So a member held by someone else
    makes the last step let go of everything and start again. Under the person's lock no profile can be merged
    into it, so the members read here stay the members."""
    if not profiles_lock([person_pk]):
        return None
    members = person_member_pks([person_pk])
    others = members - {person_pk}
    if len(profiles_try_lock(others)) != len(others):
        raise PersonBusy(f"a profile of person {person_pk} is held by another transaction")
    return members


def _last_step(person: Profile, forgotten: set[int]) -> dict[str, int] | None:
    """Under the row locks of the person and its members: what arrived during the batches (an event, a property,
    a merge of a new device) and the profiles themselves. Every ingest call takes its owners' row locks before
    writing and starts again when an owner is gone under them (users_app/services/locks.py, owners_lock), so
    nothing can be written for these profiles once this commits. None if the person was already gone."""
    members = _person_locked(person.pk)
    if members is None:
        return None
    # An admin's approve or undo holds its merge record's lock and then waits for the profiles' locks, which this
    # step holds: a record held by someone else is let go of and waited for as a busy member is.
    merge_pks = set(_merges_of(members).values_list("pk", flat=True))
    if merge_pks and len(_merges_try_lock(merge_pks)) != len(merge_pks):
        raise PersonBusy(f"a merge record of person {person.pk} is held by another transaction")
    stragglers = {"merges": _merges_delete(members, person.identity)}
    for model, counter in ((Event, "events"), (Session, "sessions"), (UserProperty, "properties")):
        if model in _LOGGED_ROWS:
            _audit_trail_delete(model, model.objects.filter(profile_id__in=members).values_list("pk", flat=True))
        stragglers[counter] = _rows_delete(model, Q(profile_id__in=members))
    # Their rollup rows as they are now; person_delete removes them again once this commits (a catch-up may have read
    # their events before the batches deleted them).
    rollups_forget_profiles(members, lock=False)
    forgotten.update(members)
    # Tombstones first: each protects the person it points at.
    Profile.objects.filter(pk__in=members - {person.pk}).delete()
    Profile.objects.filter(pk=person.pk).delete()
    stragglers["profiles"] = len(members)
    return stragglers


def person_delete(*, person_pk: int, on_batch: OnBatch | None = None) -> dict[str, int]:
    """Delete the person whose profile (or a tombstone of it) has this primary key. Returns what this run
    deleted: {"profiles", "events", "sessions", "properties", "merges"} (zeros if it was already gone)."""
    profile = Profile.objects.select_related("merged_into").filter(pk=person_pk).first()
    deleted = {"profiles": 0, "events": 0, "sessions": 0, "properties": 0, "merges": 0}
    if profile is None:
        return deleted
    person = person_of(profile)
    with transaction.atomic():
        members = person_member_pks([person.pk])
        deleted["merges"] += _merges_delete(members, person.identity)
        if on_batch is not None:
            on_batch({"merges": deleted["merges"]})
    deleted["events"] += _delete_in_batches(Event, members, "events", on_batch)
    deleted["sessions"] += _delete_in_batches(Session, members, "sessions", on_batch)
    deleted["properties"] += _delete_in_batches(UserProperty, members, "properties", on_batch)
    forgotten: set[int] = set()
    for attempt in range(LAST_STEP_ATTEMPTS):
        try:
            with transaction.atomic():
                stragglers = _last_step(person, forgotten)
                if stragglers is not None and on_batch is not None:
                    on_batch(stragglers)
            break
        except PersonBusy:
            if attempt == LAST_STEP_ATTEMPTS - 1:
                raise
            time.sleep(min(LAST_STEP_BACKOFF_SECONDS * 2**attempt, 1.0))  # the holder is waiting for the person
    # Under the rollups' watermark lock, so that a catch-up which counted their events before the batches deleted
    # them has committed, and its rows go too. Nothing can count them later: their events are gone.
    rollups_forget_profiles(forgotten, lock=True)
    for key, count in (stragglers or {}).items():
        deleted[key] += count
    return deleted
