"""Deleting a whole person (SPEC 12): the person's profile and every profile merged into it, their events,
sessions and user properties, the merge records that name any of them (with their identity and property
snapshots) and the audit trail of those (MergeAction rows go with their record; the admin's LogEntry rows on
these objects or naming the identity). Nothing personal remains; the caller keeps the counts.

The rows go in short transactions of at most `CAIRN_DELETION_BATCH_SIZE` rows each, so a person with a long
history never holds long locks nor blocks ingest. Every step is idempotent: a run that dies half-way is simply
run again (the rows already deleted no longer match), and the counts of each batch are added in that batch's own
transaction (`on_batch`), so they survive a crash exactly.

Merges of the person (docs/identity.md, "Deleting a person"):
- a merge in flight into the person (pending, running, failed): its record is deleted first; the merge task then
  finds no record (a running one stops at its next batch, whose heartbeat update no longer matches) and
  finishes without error (users_app/tasks.py); the rows it was moving belong to members, which go anyway;
- a held merge into the person: the record goes (it holds the person's identity); its source was never part of
  the person (held: it stays its own user until approved), so that anonymous profile and its history stay;
- done, rejected and reverted merges: the records go; a reverted merge's source is its own person again and
  stays.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q

from events_app.models import Event, Session
from users_app.models import MergeRecord, Profile, UserProperty
from users_app.people import person_member_pks, person_of
from users_app.services.locks import profiles_lock

DELETION_BATCH_SIZE = 2000

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


def _audit_trail_delete(*, member_pks: set[int], merge_pks: list[int], identity: str | None) -> None:
    """The admin's log lines about these profiles and merge records, and any naming the identity (LogEntry keeps
    an object's text, `object_repr`, and the change message, after the object is gone)."""
    by_object = Q(content_type=ContentType.objects.get_for_model(Profile), object_id__in=[str(pk) for pk in member_pks])
    by_object |= Q(
        content_type=ContentType.objects.get_for_model(MergeRecord), object_id__in=[str(pk) for pk in merge_pks]
    )
    if identity:
        by_object |= Q(object_repr__contains=identity) | Q(change_message__contains=identity)
    LogEntry.objects.filter(by_object).delete()


def _merges_delete(member_pks: set[int], identity: str | None) -> int:
    """The merge records naming the person's profiles (their actions cascade), and their audit trail. First of
    all, so that a merge in flight stops at its next batch."""
    merge_pks = list(_merges_of(member_pks).values_list("pk", flat=True))
    _audit_trail_delete(member_pks=member_pks, merge_pks=merge_pks, identity=identity)
    MergeRecord.objects.filter(pk__in=merge_pks).delete()
    return len(merge_pks)


def _rows_delete(model, condition: Q) -> int:
    """Delete the rows and answer how many of `model` went (not the events a session's delete unlinks)."""
    return model.objects.filter(condition).delete()[1].get(model._meta.label, 0)


def _delete_in_batches(model, member_pks: set[int], counter: str, on_batch: OnBatch | None) -> int:
    """Delete `model`'s rows of these profiles, `batch_size` at a time, each batch its own transaction."""
    total, batch_size = 0, _batch_size()
    while True:
        with transaction.atomic():
            pks = list(model.objects.filter(profile_id__in=member_pks).values_list("pk", flat=True)[:batch_size])
            if not pks:
                return total
            deleted = _rows_delete(model, Q(pk__in=pks))
            total += deleted
            if on_batch is not None:
                on_batch({counter: deleted})


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
    # The last step, under the profiles' row locks (every writer of a person's rows takes them first,
    # users_app/services/locks.py): what arrived meanwhile (an event, a merge of a new device) goes too.
    with transaction.atomic():
        locked = profiles_lock([person.pk])
        if not locked:
            return deleted
        members = person_member_pks([person.pk])
        profiles_lock(members)
        stragglers = {
            "merges": _merges_delete(members, person.identity),
            "events": _rows_delete(Event, Q(profile_id__in=members)),
            "sessions": _rows_delete(Session, Q(profile_id__in=members)),
            "properties": _rows_delete(UserProperty, Q(profile_id__in=members)),
        }
        # Tombstones first: each protects the person it points at.
        Profile.objects.filter(pk__in=members - {person.pk}).delete()
        Profile.objects.filter(pk=person.pk).delete()
        stragglers["profiles"] = len(members)
        for key, count in stragglers.items():
            deleted[key] += count
        if on_batch is not None:
            on_batch(stragglers)
    # An ingest call that resolved the profile before the lock and committed after it (events carry no foreign
    # key) may have left events behind: one indexed look once the profiles are gone.
    with transaction.atomic():
        late = _rows_delete(Event, Q(profile_id__in=members))
        if late and on_batch is not None:
            on_batch({"events": late})
    deleted["events"] += late
    return deleted
