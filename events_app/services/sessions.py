"""Grouping events into sessions: by the tracker's session id, or by 30 minutes of inactivity for server
calls that send none. Set-based: a constant number of queries per batch, whatever its size."""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db.models.functions import Coalesce

from config.kernel.sql import Writes, insert_now_or_with, mark_stored, rows_insert
from events_app.models import PAGEVIEW_EVENT, Session
from events_app.services.time_bounds import time_bounds_extend
from users_app.models import Environment, Profile
from users_app.services.initial_properties import initial_properties_update
from users_app.services.locks import owners_lock


@dataclass
class RequestContext:
    """What the HTTP request tells about the device: used for a new session's browser, device and place."""

    user_agent: str = ""
    ip: str = ""
    country: str = ""
    city: str = ""


@dataclass
class SessionNeed:
    """One event that needs a session."""

    profile: Profile  # owner
    named: Profile  # original profile
    timestamp: datetime
    session_key: str | None
    name: str
    properties: dict
    session: Session | None = field(default=None)
    # The profile was inserted by this transaction (ResolvedProfile.created): it has no stored sessions yet.
    profile_created: bool = False
    # A session id reserved for the created profile's first session (ResolvedProfile.reserved_id).
    reserved_session_id: int | None = None


def session_timeout() -> timedelta:
    return timedelta(minutes=settings.CAIRN_SESSION_TIMEOUT_MINUTES)


def _truncate(value, limit: int) -> str:
    return str(value or "")[:limit]


def session_attributes(name: str, properties: dict, context: RequestContext | None) -> dict:
    """A new session's landing page, referrer and UTM values from its first event, plus the device."""
    attributes: dict[str, str] = {}
    url = properties.get("url") or properties.get("path") or ""
    if name == PAGEVIEW_EVENT or url:
        attributes["landing_page"] = _truncate(properties.get("path") or urlsplit(str(url)).path or url, 2048)
        attributes["referrer"] = _truncate(properties.get("referrer"), 2048)
        query = parse_qs(urlsplit(str(url)).query) if url else {}
        for utm in ("utm_source", "utm_medium", "utm_campaign"):
            value = properties.get(utm) or (query.get(utm) or [""])[0]
            attributes[utm] = _truncate(value, 1024)
    if context is not None:
        from events_app.services.devices import device_describe

        attributes.update(device_describe(context))
    return attributes


def _sessions_by_key(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], Session]:
    """Sessions by (original profile, session key): one query for a superset, narrowed here (an OR of a
    thousand pairs is too deep an expression for SQLite)."""
    if not pairs:
        return {}
    candidates = Session.objects.filter(
        original_profile_id__in={pk for pk, _ in pairs}, session_key__in={key for _, key in pairs}
    )
    return {
        (s.original_profile_id, s.session_key): s for s in candidates if (s.original_profile_id, s.session_key) in pairs
    }


def _person_sessions(owner_pks: set[int]):
    """Sessions that are these people's: their own, and those of profiles merged into them, whose rows a
    pending merge has not moved yet (SPEC 2: from identify on, the source's activity is the owner's). Each
    row is annotated with `owner_pk`.

    The merged-in profiles are looked up first: an OR across the join to profiles cannot use an index
    and made PostgreSQL scan every session of every environment on each call."""
    members = set(Profile.objects.filter(merged_into_id__in=owner_pks).values_list("pk", flat=True))
    return Session.objects.filter(profile_id__in=set(owner_pks) | members).annotate(
        owner_pk=Coalesce("profile__merged_into_id", "profile_id")
    )


def sessions_assign(
    *, environment: Environment, needs: list[SessionNeed], context: RequestContext | None, writes: Writes | None = None
) -> None:
    """Set `need.session` for every need, creating and widening sessions as required. With `writes`, the
    initial properties of the new sessions' profiles are written with the caller's other last writes."""
    timeout = session_timeout()
    new_sessions: list[Session] = []

    def widen(session: Session, moment: datetime) -> None:
        session.started_at = min(session.started_at, moment)
        session.ended_at = max(session.ended_at, moment)

    reserved_ids = {need.profile.pk: need.reserved_session_id for need in needs if need.reserved_session_id}

    def start(need: SessionNeed, key: str) -> Session:
        session = Session(
            environment=environment,
            profile=need.profile,
            original_profile=need.named,
            session_key=key,
            started_at=need.timestamp,
            ended_at=need.timestamp,
            **session_attributes(need.name, need.properties, context),
        )
        # The created profile's first session takes the id reserved for it (used once).
        session.pk = reserved_ids.pop(need.profile.pk, None)
        new_sessions.append(session)
        return session

    # Owners' row locks before any insert of this transaction (whose foreign keys would take weaker locks in
    # no particular order): concurrent calls for one person take turns here, see each other's new session,
    # and cannot deadlock with an identify (see profiles_lock). An owner merged while we waited for its lock
    # starts the call again (owners_lock). A profile this transaction created is invisible to every other
    # call until commit: it needs no lock, and has no stored session to look up.
    owners_lock(need.profile.pk for need in needs if not need.profile_created)
    keyed = [need for need in needs if need.session_key]
    unkeyed = sorted((need for need in needs if not need.session_key), key=lambda need: need.timestamp)

    # Tracker sessions: look up by (original profile, key), then among the person's sessions: a visit that
    # logs in (identify case 4) goes on under the owner's user_id and stays one session.
    if keyed:
        stored_keyed = [need for need in keyed if not need.profile_created]
        known = _sessions_by_key({(need.named.pk, need.session_key) for need in stored_keyed})
        persons: dict[tuple[int, str], Session] = {}
        if stored_keyed:
            for session in (
                _person_sessions({need.profile.pk for need in stored_keyed})
                .filter(session_key__in={need.session_key for need in stored_keyed})
                .order_by("started_at", "pk")
            ):
                persons.setdefault((session.owner_pk, session.session_key), session)
        for need in sorted(keyed, key=lambda need: need.timestamp):
            identity_key, person_key = (need.named.pk, need.session_key), (need.profile.pk, need.session_key)
            session = known.get(identity_key) or persons.get(person_key)
            if session is None:
                session = start(need, need.session_key)
            known[identity_key] = persons[person_key] = session
            widen(session, need.timestamp)
            need.session = session

    # Server calls: continue the owner's session if it was active within the timeout, else start one.
    if unkeyed:
        stored_owner_pks = {need.profile.pk for need in unkeyed if not need.profile_created}
        earliest = unkeyed[0].timestamp - timeout
        latest = unkeyed[-1].timestamp + timeout
        candidates: dict[int, list[Session]] = defaultdict(list)
        if stored_owner_pks:
            for session in _person_sessions(stored_owner_pks).filter(ended_at__gte=earliest, started_at__lte=latest):
                candidates[session.owner_pk].append(session)
        for need in unkeyed:
            session = next(
                (
                    s
                    for s in candidates[need.profile.pk]
                    if s.started_at - timeout <= need.timestamp <= s.ended_at + timeout
                ),
                None,
            )
            if session is None:
                session = start(need, uuid.uuid4().hex)
                candidates[need.profile.pk].append(session)
            widen(session, need.timestamp)
            need.session = session

    _continue_device_sessions(environment, [s for s in new_sessions if s.session_key and not s.landing_page])
    inserted = _sessions_insert(new_sessions, writes)
    # A concurrent request may have created the same tracker session: keep theirs (read back here).
    lost = [s for s in new_sessions if s.pk is None]
    stored: dict[tuple[int, str], Session] = {}
    if lost:
        stored = _sessions_by_key({(s.original_profile_id, s.session_key) for s in lost})
        for need in needs:
            if need.session.pk is None:
                need.session = stored[(need.session.original_profile_id, need.session.session_key)]
    # Sessions inserted above already span their events; the others (stored before, or a concurrent call's)
    # are widened in the database, where a concurrent widening cannot be lost.
    bounds: dict[int, tuple[datetime, datetime]] = {}
    for need in needs:
        if need.session.pk in inserted:
            continue
        low, high = bounds.get(need.session.pk, (need.timestamp, need.timestamp))
        bounds[need.session.pk] = (min(low, need.timestamp), max(high, need.timestamp))
    time_bounds_extend(Session, lower_field="started_at", upper_field="ended_at", bounds=bounds)
    if inserted or stored:
        initial_properties_update(
            # The re-read ones too: without RETURNING (SQLite before 3.35) every new session is re-read.
            new_sessions=[*inserted.values(), *stored.values()],
            created_profile_ids={need.profile.pk for need in needs if need.profile_created},
            writes=writes,
        )


# A new session's columns, in insert order.
SESSION_COLUMNS = (
    "environment_id",
    "profile_id",
    "original_profile_id",
    "session_key",
    "started_at",
    "ended_at",
    "landing_page",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "browser",
    "device_type",
    "country",
    "city",
)


def _sessions_insert(sessions: list[Session], writes: Writes | None) -> dict[int, Session]:
    """Store new sessions, returned by pk. Those with a reserved pk belong to profiles this transaction created:
    no other call can store a session for them, so they go with the call's last `writes`, in the same
    transaction as the events that point at them (events have no foreign-key constraints). The others are
    inserted now, skipping any that a concurrent call stored first (the unique (original profile, key)), and
    get the pk the database gave them."""

    def rows(of: list[Session], columns: tuple) -> list[tuple]:
        return [tuple(getattr(session, column) for column in columns) for session in of]

    reserved = [session for session in sessions if session.pk is not None]
    if reserved:
        insert_now_or_with(writes, Session, ("id", *SESSION_COLUMNS), rows(reserved, ("id", *SESSION_COLUMNS)))
    inserted = {session.pk: mark_stored(session) for session in reserved}
    unreserved = [session for session in sessions if session.pk is None]
    returned = rows_insert(
        Session,
        SESSION_COLUMNS,
        rows(unreserved, SESSION_COLUMNS),
        on_conflict="ON CONFLICT DO NOTHING",
        returning=("id", "original_profile_id", "session_key"),
    )
    by_key = {(session.original_profile_id, session.session_key): session for session in unreserved}
    for pk, original_profile_id, session_key in returned:
        session = by_key[(original_profile_id, session_key)]
        session.pk = pk
        inserted[pk] = mark_stored(session)
    return inserted


# What a browser visit is about; the device fields come from the request itself.
VISIT_FIELDS = ("landing_page", "referrer", "utm_source", "utm_medium", "utm_campaign")


def _continue_device_sessions(environment: Environment, sessions: list[Session]) -> None:
    """A tracker session that starts on a new profile without a page view is the same browser visit going
    on under another user (identify switched to a new or existing identity): it keeps the visit's landing
    page, referrer and UTM values, taken from the visit's first session row."""
    if not sessions:
        return
    earliest: dict[str, Session] = {}
    for row in Session.objects.filter(
        environment=environment, session_key__in={s.session_key for s in sessions}
    ).order_by("started_at", "pk"):
        earliest.setdefault(row.session_key, row)
    for session in sessions:
        visit = earliest.get(session.session_key)
        if visit is not None:
            for name in VISIT_FIELDS:
                setattr(session, name, getattr(visit, name))
