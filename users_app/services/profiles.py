"""Finding profiles by user_id or identity, creating the ones that are new (identify itself is in identify.py)."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from config.kernel.limits import MAX_USER_ID
from config.kernel.sql import mark_stored, rows_insert
from users_app.models import Environment, Profile


@dataclass(frozen=True)
class ResolvedProfile:
    """`profile` owns the activity (a tombstone is followed to its destination); `named` is the profile
    whose user_id or identity the caller sent, recorded as each event's original profile."""

    profile: Profile
    named: Profile
    # Inserted by this call's (uncommitted) transaction: no other call can see it yet, so it has no sessions,
    # properties or merged-in profiles and needs no row lock. Lets ingest skip those lookups for a new visitor.
    created: bool = False
    # For a created profile, when asked (`reserve_id_of`): a primary key reserved for its first new row of
    # that model (ingest: its first session), taken by the insert that created the profile.
    reserved_id: int | None = None


def new_user_id() -> int:
    return secrets.randbelow(MAX_USER_ID)


def _resolve(named: Profile) -> ResolvedProfile:
    return ResolvedProfile(profile=named.merged_into if named.merged_into_id else named, named=named)


# {user_id or identity: (first seen, last seen)} for the profiles a call may create.
SeenBounds = dict[int | str, tuple[datetime, datetime]]


def _created(
    environment: Environment, inserted_row: tuple, created_at: datetime, seen: SeenBounds, identity: str | None = None
) -> ResolvedProfile:
    """A profile this call just inserted (a RETURNING row: id, user_id[, identity][, reserved id]), as if read
    back (no query: every other column is empty or was set by the insert)."""
    pk, user_id = inserted_row[:2]
    after_columns = inserted_row[3:] if identity is not None else inserted_row[2:]  # the reserved id, if asked
    reserved = after_columns[0] if after_columns else None
    first_seen, last_seen = seen.get(identity if identity is not None else user_id, (None, None))
    profile = mark_stored(
        Profile(
            pk=pk,
            environment=environment,
            user_id=user_id,
            identity=identity,
            created_at=created_at,
            first_seen=first_seen,
            last_seen=last_seen,
        )
    )
    return ResolvedProfile(profile=profile, named=profile, created=True, reserved_id=reserved)


def profiles_for_user_ids(
    *, environment: Environment, user_ids: Iterable[int], seen: SeenBounds | None = None, reserve_id_of=None
) -> dict[int, ResolvedProfile]:
    """Profiles for these user_ids, creating anonymous ones for the new ids (set-based: one or two queries).

    The insert comes first on purpose: when an identify is merging one of these profiles right now, the
    insert waits on the merge's uncommitted row version and the read that follows sees the tombstone, so
    the call lands on the destination (tests/users_app/test_concurrency.py). Reading first would not wait.
    The insert returns the rows it created; only the others are read. A created profile's first/last seen
    are `seen[user_id]` when given (else empty); `reserve_id_of`: see ResolvedProfile.reserved_id."""
    user_ids = set(user_ids)
    if not user_ids:
        return {}
    seen = seen or {}
    created_at = timezone.now()
    inserted = rows_insert(
        Profile,
        ("environment_id", "user_id", "created_at", "first_seen", "last_seen"),
        [(environment.pk, user_id, created_at, *seen.get(user_id, (None, None))) for user_id in sorted(user_ids)],
        on_conflict="ON CONFLICT DO NOTHING",
        returning=("id", "user_id"),
        reserve_id_of=reserve_id_of,
    )
    resolved = {row[1]: _created(environment, row, created_at, seen) for row in inserted}
    existing = user_ids - resolved.keys()
    if existing:
        named_profiles = Profile.objects.filter(environment=environment, user_id__in=existing).select_related(
            "merged_into"
        )
        resolved.update((named.user_id, _resolve(named)) for named in named_profiles)
    return resolved


def profiles_for_identities(
    *, environment: Environment, identities: Iterable[str], seen: SeenBounds | None = None, reserve_id_of=None
) -> dict[str, ResolvedProfile]:
    """Profiles owning these identities, creating identified profiles for new ones (first/last seen from
    `seen[identity]`, else empty). Identified profiles are never merged away, so they are their own owners."""
    seen = seen or {}
    identities = set(identities)
    resolved: dict[str, ResolvedProfile] = {}
    missing = identities
    for _attempt in range(3):  # a random user_id collision is astronomically rare; retry covers it
        if not missing:
            break
        resolved.update(
            (profile.identity, ResolvedProfile(profile=profile, named=profile))
            for profile in Profile.objects.filter(environment=environment, identity__in=missing)
        )
        missing = identities - resolved.keys()
        if missing:
            created_at = timezone.now()
            inserted = rows_insert(
                Profile,
                ("environment_id", "user_id", "identity", "created_at", "first_seen", "last_seen"),
                [
                    (environment.pk, new_user_id(), identity, created_at, *seen.get(identity, (None, None)))
                    for identity in sorted(missing)
                ],
                on_conflict="ON CONFLICT DO NOTHING",
                returning=("id", "user_id", "identity"),
                reserve_id_of=reserve_id_of,
            )
            resolved.update((row[2], _created(environment, row, created_at, seen, identity=row[2])) for row in inserted)
            # Left: taken by a concurrent call meanwhile (read on the next turn), or a user_id collision.
            missing = identities - resolved.keys()
    return resolved


def profile_for_user_id(*, environment: Environment, user_id: int) -> ResolvedProfile:
    return profiles_for_user_ids(environment=environment, user_ids=[user_id])[user_id]
