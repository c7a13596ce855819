"""`identify` (SPEC 2): the six cases, each a few lines below."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from users_app.models import Environment, MergeRecord, Profile
from users_app.services.identity_guard import identity_check
from users_app.services.merges import merge_request
from users_app.services.profiles import new_user_id

# A lost race for a new identity (below) starts the call again; the second attempt sees the winner.
ATTEMPTS = 3


@dataclass(frozen=True)
class IdentifyResult:
    profile: Profile  # the profile whose user_id the client must use from now on
    merge: MergeRecord | None


class _IdentityTaken(Exception):
    """Another call gave the identity to a profile after this one looked under its locks. On PostgreSQL the
    unique violation has aborted the transaction, so the whole call is rolled back and starts again (cheaper
    than wrapping every claim in a savepoint: two round trips on each call to save one on a rare race)."""


def _lock_device_and_owner(environment: Environment, user_id: int, identity: str) -> tuple[Profile, Profile | None]:
    """The profile that owns the device's activity (P: the device's own, or its tombstone's destination) and
    the identity's owner (Q, if any), both locked and read fresh under the lock, in two statements.

    The device's profile is inserted first if it is new, as profiles_for_user_ids does and for the same reason:
    when a concurrent identify is merging it, the insert waits for that merge's uncommitted row version, so the
    read that follows sees the tombstone. The read then locks P and Q in one statement, in primary-key order
    (profiles_lock's rule, before any other write of the transaction).

    Raw SQL (parameterised) because this runs on every identify: the ORM spends more CPU building these
    statements than the database spends answering them. Profile.objects.raw still applies each backend's
    converters."""
    table = Profile._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (environment_id, user_id, created_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [environment.pk, user_id, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = list(
        Profile.objects.raw(
            f"SELECT * FROM {table} WHERE id = (SELECT COALESCE(merged_into_id, id) FROM {table} "
            f"WHERE environment_id = %s AND user_id = %s) OR (environment_id = %s AND identity = %s) ORDER BY id{lock}",
            [environment.pk, user_id, environment.pk, identity],
        )
    )
    owner = next((row for row in rows if row.identity == identity), None)
    # The device's own row comes back unless it is a tombstone; then its destination is the row that is not
    # the owner, or the owner itself.
    device = next((row for row in rows if row.user_id == user_id), None)
    if device is None:
        device = next((row for row in rows if row.identity != identity), owner)
    return device, owner


def _claim_identity(profile: Profile, identity: str) -> None:
    """Give the (locked, anonymous) profile the identity, or _IdentityTaken if another profile took it first."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Profile._meta.db_table} SET identity = %s WHERE id = %s AND identity IS NULL",
                [identity, profile.pk],
            )
            claimed = cursor.rowcount == 1
    except IntegrityError as error:
        raise _IdentityTaken from error
    if not claimed:  # cannot happen under the row lock; start again rather than guess
        raise _IdentityTaken
    profile.identity = identity


def _create_identified(environment: Environment, identity: str, seen_at: datetime | None) -> Profile:
    try:
        return Profile.objects.create(
            environment=environment,
            user_id=new_user_id(),
            identity=identity,
            first_seen=seen_at,
            last_seen=seen_at,
        )
    except IntegrityError as error:  # someone created it concurrently (or, astronomically rarely, the user_id)
        raise _IdentityTaken from error


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
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                return _identify(environment, user_id, identity, trigger, seen_at)
        except _IdentityTaken:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _identify(
    environment: Environment, user_id: int, identity: str, trigger: str, seen_at: datetime | None
) -> IdentifyResult:
    current, owner = _lock_device_and_owner(environment, user_id, identity)
    if current.merged_into_id is not None:
        # Merged by a concurrent identify of the same device while we waited for its lock: the device is its
        # destination now (never a tombstone itself). Never give a tombstone an identity.
        current = Profile.objects.select_for_update().get(pk=current.merged_into_id)
        if owner is not None and owner.pk == current.pk:
            owner = current
    # Rule 2: already this identity.
    if current.identity == identity:
        return IdentifyResult(profile=current, merge=None)
    # An identity never leaves its profile, so an owner found under the lock is still the owner. One created
    # since then makes the claim or the creation below fail with a unique violation: the call starts again.
    if current.identity is None:
        if owner is None:
            # Rule 3: anonymous and nobody has it -> it becomes this profile's identity. Two devices racing for
            # one new identity: the unique constraint lets exactly one claim it; the other starts again and
            # merges (rule 4).
            _claim_identity(current, identity)
            return IdentifyResult(profile=current, merge=None)
        # Rule 4: anonymous and Q has it -> merge P into Q.
        merge = merge_request(source=current, destination=owner, environment=environment, trigger=trigger)
        return IdentifyResult(profile=owner, merge=merge)
    # Rule 5: identified elsewhere, Q has it -> switch to Q, no merge.
    if owner is not None:
        return IdentifyResult(profile=owner, merge=None)
    # Rule 6: identified elsewhere, nobody has it -> a new profile R takes it, no merge (a concurrent creation
    # starts the call again: rule 5 after all).
    return IdentifyResult(profile=_create_identified(environment, identity, seen_at), merge=None)
