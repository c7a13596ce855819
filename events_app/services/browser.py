"""The browser endpoint's write path (SPEC 3): one ordered batch of calls from one device.

parse -> validate (each call on its own: a bad call is rejected with its index, the others are kept) ->
process IN ORDER: runs of consecutive pageview/track calls go through ingest's `events_write`, each run in one
transaction (its IngestUnitOfWork carries the request's device), `identify` through `profile_identify`,
`add_user_properties` through `properties_add`, `add_account_properties` (heap.addAccountProperties) through
`account_properties_set` for the account of the batch's current user (rejected when they have none). After an
identify, the later calls of the batch belong to the user_id the identify answered, exactly as the tracker would
send them once it has read the answer.

Every call is safe to receive twice (the tracker re-sends what it could not confirm, e.g. after a
`sendBeacon`): events carry an idempotency key, identify is idempotent by SPEC 2's rules, and setting the
same property again changes nothing but its time.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from django.utils import timezone

from config.kernel.errors import InvalidInput, RateLimited
from config.kernel.validation import (
    is_number,
    json_type_name,
    parse_properties,
    parse_short_string,
    parse_timestamp,
    parse_user_id,
    require_present,
)
from events_app.models import BROWSER_EVENT_NAME_MAX_LENGTH, PAGEVIEW_EVENT
from events_app.services.ingest import (
    Target,
    TrackItem,
    drop_duplicates,
    events_write,
    parse_track_item,
    resolve_targets,
)
from events_app.services.unit_of_work import IngestUnitOfWork, RequestContext
from users_app.models import Environment, MergeRecord, Profile
from users_app.people import person_of
from users_app.rate_limits import identify_buckets, ingest_admit, writes_buckets
from users_app.selectors.accounts import account_of
from users_app.services.accounts import account_buckets, account_properties_set
from users_app.services.identify import profile_identify
from users_app.services.identity_guard import identity_check
from users_app.services.locks import owner_transaction
from users_app.services.profiles import profile_for_user_id
from users_app.services.properties import properties_add

MAX_BROWSER_CALLS = 200
CALL_TYPES = ("pageview", "track", "identify", "add_user_properties", "add_account_properties")
# A device clock further off than this is not corrected (its timestamps are then checked as they are).
MAX_CORRECTABLE_SKEW = timedelta(days=365)
# A device clock nearer the server's than this is kept as it is. What `sent_at` measures is the clock's offset
# plus the batch's own transit (and, for a batch the tracker kept while offline, nothing of the wait); that
# transit differs from batch to batch, so correcting by it would reorder a device's events across batches.
CLOCK_SKEW_TOLERANCE = timedelta(seconds=10)


@dataclass
class IdentifyCall:
    identity: str
    timestamp: datetime


@dataclass
class PropertiesCall:
    properties: dict


@dataclass
class AccountPropertiesCall:
    """heap.addAccountProperties: properties of the account of the user the call is made for."""

    properties: dict


@dataclass
class BrowserBatch:
    user_id: int
    calls: list[tuple[int, object]]  # (index in the request, TrackItem | IdentifyCall | [Account]PropertiesCall)
    rejected: list[dict] = field(default_factory=list)


@dataclass
class BrowserBatchResult:
    user_id: int
    identity: str | None
    accepted: int
    rejected: list[dict]
    merges: list[MergeRecord] = field(default_factory=list)
    retry_after: int | None = None  # seconds, when some call was rejected as over its rate limit

    def as_dict(self) -> dict:
        return {
            "user_id": str(self.user_id),
            "identity": self.identity,
            "accepted": self.accepted,
            "rejected": self.rejected,
        }


# ---- parse and validate -------------------------------------------------------------------------------


def encodable(text):
    """Error messages and fields can quote the input; an unpaired surrogate in it could not be encoded
    as UTF-8 when the answer is rendered (a 500). Such characters are written as escapes instead."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(text, str) else text


def rejection(index: int, error: InvalidInput) -> dict:
    return {"index": index, "error": {key: encodable(value) for key, value in error.as_dict().items()}}


def _clock_skew(sent_at) -> timedelta:
    """How far the device's clock is behind the server's, from the batch's `sent_at` (epoch ms). Call
    timestamps are shifted by it, so a phone set to the wrong day still records events at the right time."""
    if sent_at is None or not is_number(sent_at):
        return timedelta(0)
    try:
        skew = timezone.now() - datetime.fromtimestamp(sent_at / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return timedelta(0)
    return skew if CLOCK_SKEW_TOLERANCE < abs(skew) <= MAX_CORRECTABLE_SKEW else timedelta(0)


def _call_timestamp(raw: dict, skew: timedelta):
    value = raw.get("timestamp")
    if is_number(value) and skew:
        value = value + skew.total_seconds() * 1000
    return parse_timestamp(value)


def parse_call(environment: Environment, raw, *, index: int, user_id: int, session_id: str | None, skew: timedelta):
    if not isinstance(raw, dict):
        # The item itself is wrong, not a field in it: name it as `calls[index]`.
        raise InvalidInput(
            "invalid_type", f"Each call must be a JSON object, not {json_type_name(raw)}.", f"calls[{index}]"
        )
    kind = raw.get("type")
    require_present(kind, "type")
    if kind not in CALL_TYPES:
        raise InvalidInput("invalid_call_type", f"`type` must be one of {', '.join(CALL_TYPES)}.", "type")
    if kind == "identify":
        return IdentifyCall(
            identity=identity_check(environment, raw.get("identity")), timestamp=_call_timestamp(raw, skew)
        )
    if kind in ("add_user_properties", "add_account_properties"):
        properties = raw.get("properties")
        require_present(properties, "properties")
        if not isinstance(properties, dict):
            # Still missing_field, as before absent and present were told apart: clients may match on codes.
            raise InvalidInput(
                "missing_field",
                f"`properties` must be a JSON object, not {json_type_name(properties)}.",
                "properties",
            )
        parsed = parse_properties(properties, allow_null=True)  # one value rule for users and accounts
        return PropertiesCall(parsed) if kind == "add_user_properties" else AccountPropertiesCall(parsed)
    item = {
        "event": PAGEVIEW_EVENT if kind == "pageview" else raw.get("event"),
        "properties": raw.get("properties"),
        "timestamp": None,  # set below, corrected for the device's clock
        "idempotency_key": raw.get("idempotency_key"),
        "session_id": raw.get("session_id", session_id),
        "user_id": user_id,
    }
    track_item = parse_track_item(environment, item, name_max_length=BROWSER_EVENT_NAME_MAX_LENGTH)
    track_item.timestamp = _call_timestamp(raw, skew)
    return track_item


def browser_batch_parse(environment: Environment, body: dict) -> BrowserBatch:
    """The whole-request fields (400 if wrong) and each call (rejected with its index if wrong)."""
    user_id = parse_user_id(body.get("user_id"))
    session_id = parse_short_string(body.get("session_id"), "session_id", 64)
    calls = body.get("calls")
    require_present(calls, "calls")
    if not isinstance(calls, list):
        raise InvalidInput("invalid_type", f"`calls` must be an array, not {json_type_name(calls)}.", "calls")
    if len(calls) > MAX_BROWSER_CALLS:
        raise InvalidInput("too_many_items", f"At most {MAX_BROWSER_CALLS} calls per request.", "calls")
    skew = _clock_skew(body.get("sent_at"))
    batch = BrowserBatch(user_id=user_id, calls=[])
    for index, raw in enumerate(calls):
        try:
            batch.calls.append(
                (index, parse_call(environment, raw, index=index, user_id=user_id, session_id=session_id, skew=skew))
            )
        except InvalidInput as error:
            batch.rejected.append(rejection(index, error))
    return batch


# ---- process in order ---------------------------------------------------------------------------------


def _write_events(
    environment: Environment, items: list[TrackItem], user_id: int, context: RequestContext | None
) -> None:
    for item in items:
        item.target = Target(user_id=user_id)

    def write() -> None:
        # One unit per attempt: owner_transaction starts again when the owner is merged or deleted meanwhile.
        unit = IngestUnitOfWork(environment=environment, context=context)
        resolve_targets(unit, [item.target for item in items])
        events_write(unit=unit, items=drop_duplicates(environment, items))
        unit.flush()

    owner_transaction(write)


def _add_properties(environment: Environment, user_id: int, properties: dict) -> None:
    owner = profile_for_user_id(environment=environment, user_id=user_id).profile
    properties_add(updates=[(owner, properties)])


def _add_account_properties(
    environment: Environment, user_id: int, properties: dict, *, enforce_rate_limits: bool
) -> None:
    """The account is the person's value of the environment's account id property (SPEC 11), as it stands when
    the call is processed: an addUserProperties earlier in the batch counts. No account: rejected (Heap has
    nowhere to put them either), the batch's other calls kept. Over the account's rate limit: rejected as
    `rate_limited` (RateLimited), the others kept."""
    owner = _owner_of(environment, user_id)
    account_id = account_of(owner) if owner is not None else None
    if account_id is None:
        name = environment.account_id_property
        raise InvalidInput(
            "no_account",
            f"This user has no account yet: set their `{name}` user property first (addUserProperties)."
            if name
            else "This environment names no account id property (its admin page), so no user has an account.",
            "properties",
        )
    if enforce_rate_limits:
        # The account's bucket, the one /api/add_account_properties charges: the browsers of all its people share
        # it, and the person's own events are not charged for it. Known only now (see above), hence its own check.
        ingest_admit(
            environment=environment, items=[tuple(account_buckets(environment, [account_id]))]
        ).raise_if_refused()
    account_properties_set(environment=environment, updates=[(account_id, properties)])


def _batch_within_rate_limits(environment: Environment, batch: BrowserBatch) -> None:
    """The whole batch, or RateLimited: its calls must run in order (an identify decides whose the later calls
    are), and the tracker re-sends a refused batch as it is. Its calls count against the device's user_id, the one
    that sent them (and identifies against their identity too), but for heap.addAccountProperties: those count
    against their account, which is known only when the call is processed (`_add_account_properties`)."""
    writes = writes_buckets(environment, [(batch.user_id, None)])[0]
    ingest_admit(
        environment=environment,
        whole=True,
        items=[
            identify_buckets(environment, user_id=batch.user_id, identity=call.identity)
            if isinstance(call, IdentifyCall)
            else (writes,)
            for _, call in batch.calls
            if not isinstance(call, AccountPropertiesCall)
        ],
    ).raise_if_refused()


def browser_batch_process(
    *,
    environment: Environment,
    batch: BrowserBatch,
    context: RequestContext | None = None,
    enforce_rate_limits: bool = False,
) -> BrowserBatchResult:
    if enforce_rate_limits:
        _batch_within_rate_limits(environment, batch)
    current_user_id = batch.user_id
    rejected = list(batch.rejected)
    retry_after = None
    accepted = 0
    merges: list[MergeRecord] = []
    pending_events: list[TrackItem] = []

    def flush_events() -> None:
        nonlocal accepted
        if pending_events:
            _write_events(environment, pending_events, current_user_id, context)
            accepted += len(pending_events)
            pending_events.clear()

    for index, call in batch.calls:
        if isinstance(call, TrackItem):
            pending_events.append(call)
            continue
        flush_events()
        if isinstance(call, IdentifyCall):
            try:
                result = profile_identify(
                    environment=environment,
                    user_id=current_user_id,
                    identity=call.identity,
                    seen_at=call.timestamp,
                    trigger=MergeRecord.Trigger.TRACKER,
                )
            except InvalidInput as error:
                rejected.append(rejection(index, error))
                continue
            current_user_id = result.profile.user_id
            if result.merge is not None:
                merges.append(result.merge)
        elif isinstance(call, AccountPropertiesCall):
            try:
                _add_account_properties(
                    environment, current_user_id, call.properties, enforce_rate_limits=enforce_rate_limits
                )
            except InvalidInput as error:
                rejected.append(rejection(index, error))
                if isinstance(error, RateLimited):
                    retry_after = max(retry_after or 0, error.retry_after)
                continue
        else:
            owner_transaction(partial(_add_properties, environment, current_user_id, call.properties))
        accepted += 1
    flush_events()

    owner = _owner_of(environment, current_user_id)
    rejected.sort(key=lambda item: item["index"])
    return BrowserBatchResult(
        user_id=current_user_id,
        identity=owner.identity if owner else None,
        accepted=accepted,
        rejected=rejected,
        merges=merges,
        retry_after=retry_after,
    )


def _owner_of(environment: Environment, user_id: int) -> Profile | None:
    profile = Profile.objects.filter(environment=environment, user_id=user_id).select_related("merged_into").first()
    return None if profile is None else person_of(profile)
