"""Finding and creating profiles, and `identify` (SPEC 2)."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from users_app.models import MAX_USER_ID, Environment, MergeRecord, Profile
from users_app.services.identity_guard import identity_check
from users_app.services.locks import profiles_lock
from users_app.services.merges import merge_request


@dataclass(frozen=True)
class ResolvedProfile:
    """`profile` owns the activity (a tombstone is followed to its destination); `named` is the profile
    whose user_id or identity the caller sent, recorded as each event's original profile."""

    profile: Profile
    named: Profile


@dataclass(frozen=True)
class IdentifyResult:
    profile: Profile  # the profile whose user_id the client must use from now on
    merge: MergeRecord | None


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


def _lock(profile: Profile) -> Profile:
    return Profile.objects.select_for_update().get(pk=profile.pk)


def _claim_identity(profile: Profile, identity: str) -> bool:
    """Give an anonymous profile the identity; False if another profile took it first."""
    try:
        with transaction.atomic():
            updated = Profile.objects.filter(pk=profile.pk, identity__isnull=True).update(identity=identity)
    except IntegrityError:
        return False
    if updated:
        profile.identity = identity
    return bool(updated)


def _create_identified(environment: Environment, identity: str, seen_at: datetime | None) -> Profile | None:
    try:
        with transaction.atomic():
            return Profile.objects.create(
                environment=environment, user_id=new_user_id(), identity=identity, first_seen=seen_at,
                last_seen=seen_at,
            )
    except IntegrityError:
        return None


def profile_identify(
    *,
    environment: Environment,
    user_id: int,
    identity,
    trigger: str = MergeRecord.Trigger.IDENTIFY,
    seen_at: datetime | None = None,
) -> IdentifyResult:
    """SPEC 2's six cases. Raises InvalidInput (rule 1) before anything changes."""
    identity = identity_check(environment, identity)
    with transaction.atomic():
        resolved = profile_for_user_id(environment=environment, user_id=user_id).profile
        known_owners = list(
            Profile.objects.filter(environment=environment, identity=identity).values_list("pk", flat=True)
        )
        locked = profiles_lock([resolved.pk, *known_owners])  # fresh reads, under lock
        current = locked[resolved.pk]
        if current.merged_into_id is not None:
            # Merged by a concurrent identify of the same device while we waited for its lock: the device is
            # its destination now (never a tombstone itself). Never give a tombstone an identity.
            current = _lock(current.merged_into)
        # Rule 2: already this identity.
        if current.identity == identity:
            return IdentifyResult(profile=current, merge=None)
        # An identity never leaves its profile, so an owner found before locking is still the owner; without
        # one, look again: it may have been created while we waited for the lock.
        owner = (
            locked[known_owners[0]]
            if known_owners
            else Profile.objects.filter(environment=environment, identity=identity).first()
        )
        if current.identity is None:
            # Rule 3: anonymous and nobody has it -> it becomes this profile's identity. Two devices racing
            # for one new identity: the unique constraint lets exactly one claim it; the other merges (rule 4).
            if owner is None and _claim_identity(current, identity):
                return IdentifyResult(profile=current, merge=None)
            owner = owner or Profile.objects.get(environment=environment, identity=identity)
            # Rule 4: anonymous and Q has it -> merge P into Q.
            merge = merge_request(source=current, destination=owner, trigger=trigger)
            return IdentifyResult(profile=owner, merge=merge)
        # Rule 5: identified elsewhere, Q has it -> switch to Q, no merge.
        if owner is not None:
            return IdentifyResult(profile=owner, merge=None)
        # Rule 6: identified elsewhere, nobody has it -> a new profile R takes it, no merge.
        created = _create_identified(environment, identity, seen_at)
        if created is None:  # someone created it concurrently: rule 5 after all
            created = Profile.objects.get(environment=environment, identity=identity)
        return IdentifyResult(profile=created, merge=None)
