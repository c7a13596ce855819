"""`identify` (SPEC 2): the six cases, each a few lines below."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from users_app.models import Environment, MergeRecord, Profile
from users_app.services.identity_guard import identity_check
from users_app.services.locks import profiles_lock
from users_app.services.merges import merge_request
from users_app.services.profiles import new_user_id, profile_for_user_id


@dataclass(frozen=True)
class IdentifyResult:
    profile: Profile  # the profile whose user_id the client must use from now on
    merge: MergeRecord | None


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
                environment=environment,
                user_id=new_user_id(),
                identity=identity,
                first_seen=seen_at,
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
