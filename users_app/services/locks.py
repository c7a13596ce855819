from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import transaction

from users_app.models import Profile

T = TypeVar("T")
# A call whose owner was merged or deleted meanwhile starts again at most this many times (each merge of one
# device happens once, and a deleted profile stays deleted, so the second attempt normally succeeds).
OWNER_ATTEMPTS = 3


def profiles_lock(profile_pks: Iterable[int | None]) -> dict[int, Profile]:
    """Row locks in primary-key order, taken before any other write of the transaction. Every writer of
    profile rows (identify, merges, track, add_user_properties, first/last seen) locks in this order, so a
    call that touches two people cannot deadlock with an identify that merges one into the other.
    Returns the locked rows, fresh."""
    pks = sorted({pk for pk in profile_pks if pk is not None})
    if not pks:
        return {}
    return {profile.pk: profile for profile in Profile.objects.select_for_update().filter(pk__in=pks).order_by("pk")}


def profiles_try_lock(profile_pks: Iterable[int | None]) -> dict[int, Profile]:
    """profiles_lock without waiting: the rows of these that no other transaction holds, locked (SKIP LOCKED).
    For a caller that already holds a lock others may be waiting for while they hold these rows
    (users_app/deletion/person.py): it lets go and starts again rather than wait, so it can never deadlock."""
    pks = sorted({pk for pk in profile_pks if pk is not None})
    if not pks:
        return {}
    rows = Profile.objects.select_for_update(skip_locked=True).filter(pk__in=pks).order_by("pk")
    return {profile.pk: profile for profile in rows}


class OwnerChangedMeanwhile(Exception):
    """A profile resolved (before its lock) as the owner of new activity changed while this transaction waited
    for the lock: an identify merging it into another committed first, or the deletion of its person did
    (users_app/deletion/person.py deletes every profile of the person under these locks). The activity belongs
    to the destination now, or to a new profile; the call rolls back and starts again (owner_transaction), and
    the next attempt resolves the tombstone to its destination, or finds no profile and creates one, as for a
    user_id or identity never seen (docs/identity.md, "Calls that race a deletion")."""


def owners_lock(profile_pks: Iterable[int | None]) -> dict[int, Profile]:
    """profiles_lock for the owners of new activity (events, sessions, properties): raises
    OwnerChangedMeanwhile if one of them turned out to be a tombstone under the lock, or was deleted. Costs
    nothing on top of the lock: a deleted row is simply not returned by it."""
    wanted = {pk for pk in profile_pks if pk is not None}
    locked = profiles_lock(wanted)
    if len(locked) != len(wanted) or any(profile.is_tombstone for profile in locked.values()):
        raise OwnerChangedMeanwhile
    return locked


def owner_transaction(work: Callable[[], T]) -> T:
    """Run `work` (which resolves the profiles it writes for, then takes owners_lock) in a transaction, starting
    again when an owner was merged or deleted meanwhile."""
    for attempt in range(OWNER_ATTEMPTS):
        try:
            with transaction.atomic():
                return work()
        except OwnerChangedMeanwhile:
            if attempt == OWNER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
