"""The ingest write path, top to bottom: parse -> validate -> rate limits -> resolve profile -> write.

Each call takes a list of raw items (a single call is a list of one) and returns which were accepted and
which were rejected with their index and reason. Valid items are never lost because of invalid ones; items
over a rate limit are rejected the same way (code `rate_limited`), never dropped silently.
Writes are set-based: a constant number of queries per call, not one per event. Each transaction's steps
share one IngestUnitOfWork (unit_of_work.py), which also holds back the call's last writes until its flush.
These calls queue no task (identify queues its merges on commit, users_app.services.merges).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from config.kernel.errors import InvalidInput
from config.kernel.validation import (
    PropertyValue,
    check_text,
    json_type_name,
    parse_properties,
    parse_short_string,
    parse_timestamp,
    parse_user_id,
    require_object,
    require_present,
)
from events_app.defined_events.cache import definitions_for_ingest
from events_app.models import EVENT_NAME_MAX_BYTES, EVENT_NAME_MAX_LENGTH
from events_app.services.event_rows import events_insert, stored_idempotency_keys
from events_app.services.sessions import SessionNeed, sessions_assign
from events_app.services.time_bounds import time_bounds_statement
from events_app.services.unit_of_work import IngestUnitOfWork
from users_app.models import Environment, Profile
from users_app.rate_limits import ingest_admit, writes_buckets
from users_app.services.identity_guard import identity_check
from users_app.services.locks import owner_transaction
from users_app.services.profiles import ResolvedProfile, SeenBounds, profiles_for_identities, profiles_for_user_ids
from users_app.services.properties import properties_add

MAX_BULK_ITEMS = 1000


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    # The profile of the last accepted item, for single calls that answer a user_id.
    profile: Profile | None = None
    # Seconds after which the items rejected as `rate_limited` may be sent again (None: none was).
    retry_after: int | None = None

    def as_dict(self) -> dict:
        answer = {"accepted": self.accepted, "rejected": self.rejected}
        if self.duplicates:
            answer["duplicates"] = self.duplicates
        return answer


@dataclass
class Target:
    """Who an item is about: a user_id (client) or an identity (server)."""

    user_id: int | None = None
    identity: str | None = None
    resolved: ResolvedProfile | None = None


@dataclass
class TrackItem:
    target: Target
    event: str
    properties: dict[str, PropertyValue]
    timestamp: datetime
    idempotency_key: str | None
    session_key: str | None


@dataclass
class PropertiesItem:
    target: Target
    properties: dict[str, PropertyValue | None]


# ---- parse and validate -------------------------------------------------------------------------------


def parse_target(environment: Environment, raw: dict) -> Target:
    # Heap's Track and Add User Properties references: "either the identity or user_id param, but not both".
    # (null is the same as leaving a field out, as everywhere in this API.)
    if raw.get("identity") is not None and raw.get("user_id") is not None:
        raise InvalidInput("identity_and_user_id", "Send `identity` or `user_id`, not both.", "user_id")
    if raw.get("identity") is not None:
        return Target(identity=identity_check(environment, raw["identity"]))
    if raw.get("user_id") is not None:
        return Target(user_id=parse_user_id(raw["user_id"]))
    raise InvalidInput("missing_field", "Send `identity` or `user_id`.", "identity")


def parse_event_name(name, max_length: int) -> str:
    require_present(name, "event")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("missing_field", "`event` must be a non-empty string.", "event")
    if len(name) > max_length:
        raise InvalidInput("invalid_field", f"`event` is longer than {max_length} characters.", "event")
    check_text(name, "event")
    # ASCII is one byte a character: only other names can pass the byte bound (models.EVENT_NAME_MAX_BYTES).
    if not name.isascii() and len(name.encode()) > EVENT_NAME_MAX_BYTES:
        raise InvalidInput("invalid_field", f"`event` is longer than {EVENT_NAME_MAX_BYTES} bytes in UTF-8.", "event")
    return name


def parse_track_item(environment: Environment, raw, *, name_max_length: int = EVENT_NAME_MAX_LENGTH) -> TrackItem:
    """A server call's event (`name_max_length`: the browser endpoint passes its own, shorter bound)."""
    raw = require_object(raw, "event")
    name = parse_event_name(raw.get("event"), name_max_length)
    return TrackItem(
        target=parse_target(environment, raw),
        event=name,
        properties=parse_properties(raw.get("properties"), allow_null=False),
        timestamp=parse_timestamp(raw.get("timestamp")),
        idempotency_key=parse_short_string(raw.get("idempotency_key"), "idempotency_key", 255),
        session_key=parse_short_string(raw.get("session_id"), "session_id", 64),
    )


def parse_properties_item(environment: Environment, raw) -> PropertiesItem:
    raw = require_object(raw, "user")
    if "properties" not in raw:
        raise InvalidInput("missing_field", "`properties` is required.", "properties")
    return PropertiesItem(
        target=parse_target(environment, raw),
        properties=parse_properties(raw.get("properties"), allow_null=True),
    )


def bulk_items(body: dict, list_field: str) -> tuple[list, bool]:
    """The raw items of a call: the `list_field` array of a bulk call, or the body itself."""
    if list_field not in body:
        return [body], False
    items = body[list_field]
    if not isinstance(items, list):
        raise InvalidInput("invalid_type", f"`{list_field}` must be an array, not {json_type_name(items)}.", list_field)
    if not items:
        raise InvalidInput("empty_batch", f"`{list_field}` is empty.", list_field)
    if len(items) > MAX_BULK_ITEMS:
        raise InvalidInput("too_many_items", f"At most {MAX_BULK_ITEMS} items per call.", list_field)
    return items, True


def parse_each(environment: Environment, items: list, parse: Callable) -> tuple[list[tuple[int, Any]], list[dict]]:
    """-> ([(index, parsed item)], rejected)."""
    parsed, rejected = [], []
    for index, raw in enumerate(items):
        try:
            parsed.append((index, parse(environment, raw)))
        except InvalidInput as error:
            rejected.append({"index": index, "error": error.as_dict()})
    return parsed, rejected


def within_rate_limits(
    environment: Environment, parsed: list[tuple[int, Any]], result: IngestResult, *, enforce: bool
) -> list:
    """The items of `parsed` within the rate limits, in order; the others go to `result.rejected` with their
    index (first come, first served: in a bulk call the earlier items of a person are the ones kept)."""
    if not enforce:
        return [item for _, item in parsed]
    buckets = writes_buckets(environment, [(item.target.user_id, item.target.identity) for _, item in parsed])
    return admitted_by_buckets(environment, parsed, buckets, result)


def admitted_by_buckets(
    environment: Environment, parsed: list[tuple[int, Any]], buckets: list, result: IngestResult
) -> list:
    """The items of `parsed` their bucket (one per item, in order) admits; the others go to `result.rejected`
    as `rate_limited`, with their index, and `result.retry_after` says when to send them again."""
    admission = ingest_admit(environment=environment, items=[(bucket,) for bucket in buckets])
    if admission.all_admitted:
        return [item for _, item in parsed]
    admitted = []
    for position, (index, item) in enumerate(parsed):
        error = admission.error(position)
        if error is None:
            admitted.append(item)
        else:
            result.rejected.append({"index": index, "error": error.as_dict()})
    result.rejected.sort(key=lambda rejection: rejection["index"])
    result.retry_after = admission.retry_after
    return admitted


# ---- resolve profiles ---------------------------------------------------------------------------------


def resolve_targets(unit: IngestUnitOfWork, targets: list[Target], seen: SeenBounds | None = None) -> None:
    """Set each target's profile, and record in `unit` the ones this transaction created. `seen`: {user_id or
    identity: (first, last)} of the events about to be stored, so profiles created here start with their
    first/last seen (saving an UPDATE of each new row)."""
    by_user_id = profiles_for_user_ids(
        environment=unit.environment,
        user_ids={t.user_id for t in targets if t.user_id is not None},
        seen=seen,
        reserve_session_ids=unit.reserve_session_ids,
    )
    by_identity = profiles_for_identities(
        environment=unit.environment,
        identities={t.identity for t in targets if t.identity is not None},
        seen=seen,
        reserve_session_ids=unit.reserve_session_ids,
    )
    for target in targets:
        target.resolved = by_user_id[target.user_id] if target.user_id is not None else by_identity[target.identity]
    unit.profiles_resolved([*by_user_id.values(), *by_identity.values()])


# ---- write --------------------------------------------------------------------------------------------


def drop_duplicates(environment: Environment, items: list[TrackItem]) -> list[TrackItem]:
    """An idempotency_key is stored once: skip keys already stored or repeated earlier in this call.
    (A key a concurrent call stores meanwhile is caught by events_insert's claim of the keys.)"""
    keys = {item.idempotency_key for item in items if item.idempotency_key}
    seen = stored_idempotency_keys(environment, keys) if keys else set()
    fresh = []
    for item in items:
        if item.idempotency_key:
            if item.idempotency_key in seen:
                continue
            seen.add(item.idempotency_key)
        fresh.append(item)
    return fresh


def seen_bounds(items: Iterable[TrackItem], key: Callable[[TrackItem], Any]) -> dict:
    """(earliest, latest) timestamp of the items, by `key(item)`."""
    bounds: dict = {}
    for item in items:
        group, moment = key(item), item.timestamp
        bound = bounds.get(group)
        if bound is None:
            bounds[group] = [moment, moment]
        elif moment < bound[0]:
            bound[0] = moment
        elif moment > bound[1]:
            bound[1] = moment
    return {group: (low, high) for group, (low, high) in bounds.items()}


def _target_key(item: TrackItem) -> int | str:
    """The identity or user_id the item names: the keys of SeenBounds."""
    return item.target.identity or item.target.user_id


def _touch_profiles(unit: IngestUnitOfWork, items: list[TrackItem]) -> None:
    """Widen each owner profile's first/last seen to its new events."""
    # Model.pk is a property call: `.id` (the primary key's column) is read per item instead.
    bounds = seen_bounds(items, lambda item: item.target.resolved.profile.id)
    # A profile this transaction inserted with its first/last seen already set (resolve_targets' `seen`) is
    # exactly as its instance says: no other call can have written it.
    owners = {id(item.target.resolved): item.target.resolved for item in items}
    for resolved in owners.values():
        if resolved.created and resolved.profile.id in bounds:
            low, high = bounds[resolved.profile.id]
            first, last = resolved.profile.first_seen, resolved.profile.last_seen
            if first is not None and last is not None and first <= low and high <= last:
                del bounds[resolved.profile.id]
    if bounds:
        # sessions_assign locked the owners already (those created by this transaction need no lock), so the
        # UPDATE needs no locking of its own and can go with the call's last writes.
        unit.execute_later(
            *time_bounds_statement(Profile, lower_field="first_seen", upper_field="last_seen", bounds=bounds)
        )


def events_write(*, unit: IngestUnitOfWork, items: list[TrackItem]) -> int:
    """Store the items (targets resolved, duplicates dropped) with their sessions, and widen their profiles'
    first/last seen; returns how many were stored. The inserts and updates nobody reads back are held in
    `unit` for its flush."""
    needs = [
        SessionNeed(
            profile=item.target.resolved.profile,
            original_profile=item.target.resolved.original_profile,
            timestamp=item.timestamp,
            session_key=item.session_key,
            event_name=item.event,
            properties=item.properties,
        )
        for item in items
    ]
    sessions_assign(unit=unit, needs=needs)
    environment_pk = unit.environment.pk
    # Fewer than the items when a concurrent call stored one of their idempotency keys first.
    stored = events_insert(
        [
            (
                environment_pk,
                need.profile.id,
                need.original_profile.id,
                need.session.id,
                item.event,
                item.timestamp,
                item.properties,
                item.idempotency_key,
            )
            for item, need in zip(items, needs, strict=True)
        ],
        unit.insert_later,
        definitions_for_ingest(unit.environment),  # None (nothing to match) unless the environment defined events
    )
    _touch_profiles(unit, items)
    return stored


# ---- the calls ----------------------------------------------------------------------------------------


def track_ingest(*, environment: Environment, items: list, enforce_rate_limits: bool = False) -> IngestResult:
    """POST /api/track, single or bulk. No request context: a server call's request describes the backend that
    sent it, not the person (events_app/api.py), so its sessions get no browser, device or location.
    `enforce_rate_limits`: the public endpoint's calls (seed_demo and other internal callers are not limited)."""
    parsed_items, rejected = parse_each(environment, items, parse_track_item)  # parse and validate
    result = IngestResult(rejected=rejected)
    admitted = within_rate_limits(environment, parsed_items, result, enforce=enforce_rate_limits)
    if not admitted:
        return result

    def write() -> int:
        # One unit per attempt: owner_transaction starts again when an owner is merged or deleted meanwhile.
        unit = IngestUnitOfWork(environment=environment, reserve_session_ids=True)
        fresh = drop_duplicates(environment, admitted)
        # Every admitted item's profile (a duplicate's too: the answer names the last item's); those created
        # here start with the first/last seen of their new events.
        resolve_targets(unit, [item.target for item in admitted], seen=seen_bounds(fresh, _target_key))
        stored = events_write(unit=unit, items=fresh)
        unit.flush()
        return stored

    stored = owner_transaction(write)
    result.accepted = len(admitted)
    result.duplicates = len(admitted) - stored
    result.profile = admitted[-1].target.resolved.profile
    return result


def user_properties_ingest(*, environment: Environment, items: list, enforce_rate_limits: bool = False) -> IngestResult:
    """POST /api/add_user_properties (and Heap's legacy /api/identify), single or bulk."""
    parsed_items, rejected = parse_each(environment, items, parse_properties_item)  # parse and validate
    result = IngestResult(rejected=rejected)
    admitted = within_rate_limits(environment, parsed_items, result, enforce=enforce_rate_limits)
    if not admitted:
        return result
    set_at = timezone.now()

    def write() -> None:
        unit = IngestUnitOfWork(environment=environment)  # one per attempt, as in track_ingest
        resolve_targets(unit, [item.target for item in admitted])
        # properties_add writes at once, in its own savepoint: nothing is held back in the unit to flush.
        properties_add(updates=[(item.target.resolved.profile, item.properties) for item in admitted], set_at=set_at)

    owner_transaction(write)
    result.accepted = len(admitted)
    result.profile = admitted[-1].target.resolved.profile
    return result
