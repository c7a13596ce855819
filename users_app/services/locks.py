from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import transaction

from users_app.models import Profile

T = TypeVar("T")
# A call whose owner was merged meanwhile starts again at most this many times (each merge of one device
# happens once, so the second attempt normally sees the tombstone and succeeds).
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


class OwnerMergedMeanwhile(Exception):
    """A profile resolved (before its lock) as the owner of new activity was merged into another while this
    transaction waited for the lock: an identify merging it committed first. The activity belongs to the
    destination now; the call rolls back and starts again (owner_transaction), and the next attempt resolves
    the tombstone to its destination."""


def owners_lock(profile_pks: Iterable[int | None]) -> dict[int, Profile]:
    """profiles_lock for the owners of new activity (events, sessions, properties): raises
    OwnerMergedMeanwhile if one of them turned out to be a tombstone under the lock."""
    locked = profiles_lock(profile_pks)
    if any(profile.is_tombstone for profile in locked.values()):
        raise OwnerMergedMeanwhile
    return locked


def owner_transaction(work: Callable[[], T]) -> T:
    """Run `work` (which resolves the profiles it writes for, then takes owners_lock) in a transaction, starting
    again when an owner was merged meanwhile."""
    for attempt in range(OWNER_ATTEMPTS):
        try:
            with transaction.atomic():
                return work()
        except OwnerMergedMeanwhile:
            if attempt == OWNER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
