"""Finding profiles by user_id or identity, creating the ones that are new (identify itself is in identify.py)."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from users_app.models import MAX_USER_ID, Environment, Profile


@dataclass(frozen=True)
class ResolvedProfile:
    """`profile` owns the activity (a tombstone is followed to its destination); `named` is the profile
    whose user_id or identity the caller sent, recorded as each event's original profile."""

    profile: Profile
    named: Profile


def new_user_id() -> int:
    return secrets.randbelow(MAX_USER_ID)


def _resolve(named: Profile) -> ResolvedProfile:
    return ResolvedProfile(profile=named.merged_into if named.merged_into_id else named, named=named)


def profiles_for_user_ids(*, environment: Environment, user_ids: Iterable[int]) -> dict[int, ResolvedProfile]:
    """Profiles for these user_ids, creating anonymous ones for the new ids (set-based: two queries).

    The insert comes first on purpose: when an identify is merging one of these profiles right now, the
    insert waits on the merge's uncommitted row version and the read that follows sees the tombstone, so
    the call lands on the destination (tests/users_app/test_concurrency.py). Reading first would not wait."""
    user_ids = set(user_ids)
    if not user_ids:
        return {}
    Profile.objects.bulk_create(
        [Profile(environment=environment, user_id=user_id) for user_id in sorted(user_ids)],
        ignore_conflicts=True,
    )
    named_profiles = Profile.objects.filter(environment=environment, user_id__in=user_ids).select_related(
        "merged_into"
    )
    return {named.user_id: _resolve(named) for named in named_profiles}


def profiles_for_identities(*, environment: Environment, identities: Iterable[str]) -> dict[str, ResolvedProfile]:
    """Profiles owning these identities, creating identified profiles (no events yet) for new ones."""
    identities = set(identities)
    found: dict[str, Profile] = {}
    for _attempt in range(3):  # a random user_id collision is astronomically rare; retry covers it
        missing = identities - found.keys()
        if not missing:
            break
        found.update(
            (profile.identity, profile)
            for profile in Profile.objects.filter(environment=environment, identity__in=missing)
        )
        missing = identities - found.keys()
        if missing:
            Profile.objects.bulk_create(
                [Profile(environment=environment, user_id=new_user_id(), identity=i) for i in sorted(missing)],
                ignore_conflicts=True,
            )
    # Identified profiles are never merged away, so they are their own owners.
    return {identity: ResolvedProfile(profile=p, named=p) for identity, p in found.items()}


def profile_for_user_id(*, environment: Environment, user_id: int) -> ResolvedProfile:
    return profiles_for_user_ids(environment=environment, user_ids=[user_id])[user_id]


def profile_for_identity(*, environment: Environment, identity: str) -> ResolvedProfile:
    return profiles_for_identities(environment=environment, identities=[identity])[identity]
