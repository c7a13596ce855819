"""`identify` (SPEC 2): check the identity (and, for the public endpoint, the rate limits), then the six cases,
each a few lines below."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.kernel.sql import rows_insert
from users_app.merges.request import merge_request
from users_app.models import Environment, MergeRecord, Profile
from users_app.people import person_pk, person_sql
from users_app.rate_limits import identify_buckets, ingest_admit
from users_app.services.identity_guard import identity_check
from users_app.services.profiles import new_user_id

# A lost race (see _StartAgain) starts the call again; the next attempt sees the winner.
ATTEMPTS = 5


@dataclass(frozen=True)
class IdentifyResult:
    profile: Profile  # the profile whose user_id the client must use from now on
    merge: MergeRecord | None


class _StartAgain(Exception):
    """Something this call decided on changed under it: another call took the identity after this one looked
    (a unique violation), or merged the device's profile while this one waited for its lock. The call is
    rolled back and starts again (on PostgreSQL the unique violation has aborted the transaction anyway); the
    next attempt sees what the other call did. Cheaper than a savepoint around every claim (two round trips on
    each call to save one on a rare race), and no lock is ever taken out of primary-key order."""


class _NewDevice(_StartAgain):
    """The device has no profile yet. The call starts again and inserts it first, before any lock: inserting it
    with the owner's lock held could wait for a concurrent call that created the same device and is itself
    about to lock the owner (a deadlock)."""


def _insert_device(environment: Environment, user_id: int) -> None:
    """The device's anonymous profile, if it is new. Run before any lock: it waits only for a concurrent call
    that created the same device, and then holds nothing the other needs."""
    rows_insert(
        Profile,
        ("environment_id", "user_id", "created_at"),
        [(environment.pk, user_id, timezone.now())],
        on_conflict="ON CONFLICT DO NOTHING",
    )


def _lock_device_and_owner(
    environment: Environment, user_id: int, identity: str, *, insert_device: bool
) -> tuple[Profile, Profile | None]:
    """The profile that owns the device's activity (P: the device's own, or its tombstone's destination) and
    the identity's owner (Q, if any), locked in one statement in primary-key order (profiles_lock's rule,
    before any other write of the transaction) and read fresh under the lock.

    A device seen before (the usual case: it tracked before it identified) takes that one statement. A new
    one (_NewDevice) starts the call again with `insert_device`: the profile is inserted first, then locked.

    A concurrent identify merging the device: the statement resolved the device before that merge committed,
    waits for the row lock, and gets the row back as a tombstone. Then the call starts again (_StartAgain)
    rather than lock the destination out of order; the next statement resolves the tombstone itself.

    A concurrent undo of the device's merge: the statement resolved the device through its tombstone before
    the undo committed, so it locks the device's own row too (in the same order as the undo does) and, under
    the lock, checks that the device still resolves to the profile it locked; if not, the call starts again
    and sees the device as its own user.

    Raw SQL (parameterised) because this runs on every identify: the ORM spends more CPU building these
    statements than the database spends answering them. Profile.objects.raw still applies each backend's
    converters."""
    if insert_device:
        _insert_device(environment, user_id)
    table = Profile._meta.db_table
    # The device's profile, through its tombstone: the same subquery twice (WHERE, and named in each row).
    device_profile = (
        f"(SELECT {person_sql('device')} FROM {table} device WHERE device.environment_id = %s AND device.user_id = %s)"
    )
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT *, {device_profile} AS device_profile_id FROM {table} "
        f"WHERE (environment_id = %s AND user_id = %s) OR id = {device_profile} "
        f"OR (environment_id = %s AND identity = %s) ORDER BY id{lock}"
    )
    params = [environment.pk, user_id, environment.pk, user_id, environment.pk, user_id, environment.pk, identity]
    rows = list(Profile.objects.raw(sql, params))
    own = next((row for row in rows if row.user_id == user_id), None)
    device = next((row for row in rows if row.pk == row.device_profile_id), None)
    if own is None or device is None:
        raise _NewDevice
    if person_pk(own) != device.pk:
        raise _StartAgain  # its merge was undone (or it was merged) while we waited for the lock
    if device.is_tombstone:
        raise _StartAgain  # merged by a concurrent identify while we waited for its lock
    owner = next((row for row in rows if row.identity == identity), None)
    return device, owner


def _claim_identity(profile: Profile, identity: str) -> None:
    """Give the (locked, anonymous) profile the identity; _StartAgain if another profile took it first."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Profile._meta.db_table} SET identity = %s WHERE id = %s AND identity IS NULL",
                [identity, profile.pk],
            )
            claimed = cursor.rowcount == 1
    except IntegrityError as error:
        raise _StartAgain from error
    if not claimed:  # cannot happen under the row lock; start again rather than guess
        raise _StartAgain
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
        raise _StartAgain from error


def profile_identify(
    *,
    environment: Environment,
    user_id: int,
    identity,
    trigger: str = MergeRecord.Trigger.IDENTIFY,
    seen_at: datetime | None = None,
    enforce_rate_limits: bool = False,
) -> IdentifyResult:
    """SPEC 2's six cases. Raises InvalidInput (rule 1) before anything changes.

    `enforce_rate_limits`: the identify endpoint's calls, of which an identify storm (one user_id, or one
    identity) gets RateLimited (429), also before anything changes. The browser endpoint admits its whole batch
    at once (events_app/services/browser.py); seed_demo and other internal callers are not limited."""
    identity = identity_check(environment, identity)
    if enforce_rate_limits:
        ingest_admit(
            environment=environment, items=[identify_buckets(environment, user_id=user_id, identity=identity)]
        ).raise_if_refused()
    insert_device = False
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                return _identify(environment, user_id, identity, trigger, seen_at, insert_device=insert_device)
        except _StartAgain as again:
            insert_device = insert_device or isinstance(again, _NewDevice)
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _identify(
    environment: Environment,
    user_id: int,
    identity: str,
    trigger: str,
    seen_at: datetime | None,
    *,
    insert_device: bool,
) -> IdentifyResult:
    current, owner = _lock_device_and_owner(environment, user_id, identity, insert_device=insert_device)
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
