"""Finding profiles by user_id or identity, creating the ones that are new (identify itself is in identify.py)."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from config.kernel.limits import MAX_USER_ID
from config.kernel.sql import mark_stored, rows_insert
from events_app.models import Session
from users_app.models import Environment, Profile
from users_app.people import person_of


@dataclass(frozen=True)
class ResolvedProfile:
    """`profile` owns the activity (a tombstone is followed to its destination); `original_profile` is the
    profile whose user_id or identity the caller sent, recorded as each event's and session's
    `original_profile`."""

    profile: Profile
    original_profile: Profile
    # Inserted by this call's (uncommitted) transaction: no other call can see it yet, so it has no sessions,
    # properties or merged-in profiles and needs no row lock. Lets ingest skip those lookups for a new visitor.
    created: bool = False
    # For a created profile, when asked (`reserve_session_ids`): a primary key reserved for its first session,
    # taken by the insert that created the profile.
    reserved_session_id: int | None = None


def new_user_id() -> int:
    return secrets.randbelow(MAX_USER_ID)


def _resolve(original_profile: Profile) -> ResolvedProfile:
    return ResolvedProfile(profile=person_of(original_profile), original_profile=original_profile)


# {user_id or identity: (first seen, last seen)} for the profiles a call may create.
SeenBounds = dict[int | str, tuple[datetime, datetime]]


def _created(
    environment: Environment, inserted_row: tuple, created_at: datetime, seen: SeenBounds, identity: str | None = None
) -> ResolvedProfile:
    """A profile this call just inserted (a RETURNING row: id, user_id[, identity][, reserved session id]), as
    if read back (no query: every other column is empty or was set by the insert)."""
    pk, user_id = inserted_row[:2]
    after_columns = inserted_row[3:] if identity is not None else inserted_row[2:]  # the reserved id, if asked
    reserved_session_id = after_columns[0] if after_columns else None
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
    return ResolvedProfile(
        profile=profile, original_profile=profile, created=True, reserved_session_id=reserved_session_id
    )


def profiles_for_user_ids(
    *,
    environment: Environment,
    user_ids: Iterable[int],
    seen: SeenBounds | None = None,
    reserve_session_ids: bool = False,
) -> dict[int, ResolvedProfile]:
    """Profiles for these user_ids, creating anonymous ones for the new ids (set-based: one or two queries).

    The insert comes first on purpose: when an identify is merging one of these profiles right now, the
    insert waits on the merge's uncommitted row version and the read that follows sees the tombstone, so
    the call lands on the destination (tests/users_app/test_concurrency.py). Reading first would not wait.
    The insert returns the rows it created; only the others are read. A created profile's first/last seen
    are `seen[user_id]` when given (else empty); `reserve_session_ids`: see ResolvedProfile.reserved_session_id."""
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
        reserve_id_of=Session if reserve_session_ids else None,
    )
    resolved = {row[1]: _created(environment, row, created_at, seen) for row in inserted}
    existing = user_ids - resolved.keys()
    if existing:
        original_profiles = Profile.objects.filter(environment=environment, user_id__in=existing).select_related(
            "merged_into"
        )
        resolved.update((original.user_id, _resolve(original)) for original in original_profiles)
    return resolved


def profiles_for_identities(
    *,
    environment: Environment,
    identities: Iterable[str],
    seen: SeenBounds | None = None,
    reserve_session_ids: bool = False,
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
            (profile.identity, ResolvedProfile(profile=profile, original_profile=profile))
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
                reserve_id_of=Session if reserve_session_ids else None,
            )
            resolved.update((row[2], _created(environment, row, created_at, seen, identity=row[2])) for row in inserted)
            # Left: taken by a concurrent call meanwhile (read on the next turn), or a user_id collision.
            missing = identities - resolved.keys()
    return resolved


def profile_for_user_id(*, environment: Environment, user_id: int) -> ResolvedProfile:
    return profiles_for_user_ids(environment=environment, user_ids=[user_id])[user_id]
