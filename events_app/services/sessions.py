"""Grouping events into sessions: by the tracker's session id, or by 30 minutes of inactivity for server
calls that send none. Set-based: a constant number of queries per batch, whatever its size."""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from config.kernel.sql import mark_stored, rows_insert
from events_app.models import PAGEVIEW_EVENT, Session
from events_app.services.time_bounds import time_bounds_extend
from events_app.services.unit_of_work import IngestUnitOfWork, RequestContext
from users_app.models import Environment, Profile
from users_app.people import people_members, person_expression
from users_app.services.initial_properties import initial_properties_update
from users_app.services.locks import owners_lock


@dataclass
class SessionNeed:
    """One event that needs a session."""

    profile: Profile  # the owner of the activity
    original_profile: Profile  # the profile the event is recorded on (Event.original_profile)
    timestamp: datetime
    session_key: str | None
    event_name: str
    properties: dict
    session: Session | None = field(default=None)


def session_timeout() -> timedelta:
    return timedelta(minutes=settings.CAIRN_SESSION_TIMEOUT_MINUTES)


def _truncate(value, limit: int) -> str:
    return str(value or "")[:limit]


def session_attributes(event_name: str, properties: dict, context: RequestContext | None) -> dict:
    """A new session's landing page, referrer and UTM values from its first event, plus the device."""
    attributes: dict[str, str] = {}
    url = properties.get("url") or properties.get("path") or ""
    if event_name == PAGEVIEW_EVENT or url:
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
    row is annotated with `owner_pk`."""
    # The members as a subquery: one round trip for the sessions, not one more for the members first.
    return Session.objects.filter(profile_id__in=people_members(owner_pks)).annotate(
        owner_pk=person_expression("profile__")
    )


# ---- assign: the steps of sessions_assign, in the order it takes them ------------------------------------


def sessions_assign(*, unit: IngestUnitOfWork, needs: list[SessionNeed]) -> None:
    """Set `need.session` for every need: continue the person's session or start one, store the new sessions,
    widen the stored ones, and set initial properties where a new session is its profile's first."""
    _owners_lock(unit, needs)
    new_sessions: list[Session] = []
    _assign_tracker_sessions(unit, [need for need in needs if need.session_key], new_sessions)
    _assign_server_sessions(unit, [need for need in needs if not need.session_key], new_sessions)
    _continue_device_sessions(unit.environment, [s for s in new_sessions if s.session_key and not s.landing_page])
    inserted = _sessions_insert(unit, new_sessions)
    concurrent = _take_concurrent_sessions(needs, new_sessions)
    _widen_stored_sessions(needs, inserted)
    if inserted or concurrent:
        initial_properties_update(
            # The re-read ones too: without RETURNING (SQLite before 3.35) every new session is re-read.
            new_sessions=[*inserted.values(), *concurrent.values()],
            created_profile_ids=unit.created_profile_pks,
            insert=unit.insert_later,
        )


def _owners_lock(unit: IngestUnitOfWork, needs: list[SessionNeed]) -> None:
    """Owners' row locks before any insert of this transaction (whose foreign keys would take weaker locks in
    no particular order): concurrent calls for one person take turns here, see each other's new session, and
    cannot deadlock with an identify (see profiles_lock). An owner merged or deleted while we waited for its lock
    starts the call again (owners_lock). A profile this transaction created is invisible to every other call until
    commit: it needs no lock, and has no stored session to look up."""
    owners_lock({need.profile.id for need in needs} - unit.created_profile_pks)


def _session_start(unit: IngestUnitOfWork, need: SessionNeed, session_key: str, new_sessions: list[Session]) -> Session:
    session = Session(
        environment=unit.environment,
        profile=need.profile,
        original_profile=need.original_profile,
        session_key=session_key,
        started_at=need.timestamp,
        ended_at=need.timestamp,
        **session_attributes(need.event_name, need.properties, unit.context),
    )
    # A created profile's first session takes the id reserved for it (used once).
    session.pk = unit.take_reserved_session_id(need.profile.pk)
    new_sessions.append(session)
    return session


def _widen(session: Session, moment: datetime) -> None:
    if moment < session.started_at:
        session.started_at = moment
    elif moment > session.ended_at:
        session.ended_at = moment


def _assign_tracker_sessions(unit: IngestUnitOfWork, keyed: list[SessionNeed], new_sessions: list[Session]) -> None:
    """Tracker sessions: look up by (original profile, key), then among the person's sessions: a visit that
    logs in (identify case 4) goes on under the owner's user_id and stays one session."""
    if not keyed:
        return
    stored_keyed = [need for need in keyed if need.profile.pk not in unit.created_profile_pks]
    known = _sessions_by_key({(need.original_profile.pk, need.session_key) for need in stored_keyed})
    persons: dict[tuple[int, str], Session] = {}
    if stored_keyed:
        for session in (
            _person_sessions({need.profile.pk for need in stored_keyed})
            .filter(session_key__in={need.session_key for need in stored_keyed})
            .order_by("started_at", "pk")
        ):
            persons.setdefault((session.owner_pk, session.session_key), session)
    for need in sorted(keyed, key=lambda need: need.timestamp):
        original_key, person_key = (need.original_profile.pk, need.session_key), (need.profile.pk, need.session_key)
        session = known.get(original_key) or persons.get(person_key)
        if session is None:
            session = _session_start(unit, need, need.session_key, new_sessions)
        known[original_key] = persons[person_key] = session
        _widen(session, need.timestamp)
        need.session = session


def _assign_server_sessions(unit: IngestUnitOfWork, unkeyed: list[SessionNeed], new_sessions: list[Session]) -> None:
    """Server calls: continue the owner's session if it was active within the timeout, else start one."""
    if not unkeyed:
        return
    timeout = session_timeout()
    unkeyed = sorted(unkeyed, key=lambda need: need.timestamp)
    # Model.pk is a property call: the primary key's column, `.id`, is read per need instead.
    stored_owner_pks = {need.profile.id for need in unkeyed} - unit.created_profile_pks
    earliest = unkeyed[0].timestamp - timeout
    latest = unkeyed[-1].timestamp + timeout
    candidates: dict[int, list[Session]] = defaultdict(list)
    if stored_owner_pks:
        for session in _person_sessions(stored_owner_pks).filter(ended_at__gte=earliest, started_at__lte=latest):
            candidates[session.owner_pk].append(session)
    for need in unkeyed:
        moment, owner_sessions = need.timestamp, candidates[need.profile.id]
        for session in owner_sessions:
            if session.started_at - timeout <= moment <= session.ended_at + timeout:
                break
        else:
            session = _session_start(unit, need, uuid.uuid4().hex, new_sessions)
            owner_sessions.append(session)
        _widen(session, moment)
        need.session = session


def _take_concurrent_sessions(needs: list[SessionNeed], new_sessions: list[Session]) -> dict[tuple[int, str], Session]:
    """A concurrent request may have created the same tracker session first (the insert skipped ours): keep
    theirs, read back here. Returns them by (original profile, key)."""
    lost = [s for s in new_sessions if s.pk is None]
    if not lost:
        return {}
    stored = _sessions_by_key({(s.original_profile_id, s.session_key) for s in lost})
    for need in needs:
        if need.session.id is None:
            need.session = stored[(need.session.original_profile_id, need.session.session_key)]
    return stored


def _widen_stored_sessions(needs: list[SessionNeed], inserted: dict[int, Session]) -> None:
    """Sessions inserted by this call already span their events; the others (stored before, or a concurrent
    call's) are widened in the database, where a concurrent widening cannot be lost."""
    bounds: dict[int, tuple[datetime, datetime]] = {}
    for need in needs:
        pk = need.session.id  # not Model.pk, a property call per need
        if pk in inserted:
            continue
        low, high = bounds.get(pk, (need.timestamp, need.timestamp))
        bounds[pk] = (min(low, need.timestamp), max(high, need.timestamp))
    time_bounds_extend(Session, lower_field="started_at", upper_field="ended_at", bounds=bounds)


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


def _sessions_insert(unit: IngestUnitOfWork, sessions: list[Session]) -> dict[int, Session]:
    """Store new sessions, returned by pk. Those with a reserved pk belong to profiles this transaction created:
    no other call can store a session for them, so they go with the call's last writes (unit.insert_later), in
    the same transaction as the events that point at them (events have no foreign-key constraints). The others are
    inserted now, skipping any that a concurrent call stored first (the unique (original profile, key)), and
    get the pk the database gave them."""

    def rows(of: list[Session], columns: tuple) -> list[tuple]:
        return [tuple(getattr(session, column) for column in columns) for session in of]

    reserved = [session for session in sessions if session.pk is not None]
    if reserved:
        unit.insert_later(Session, ("id", *SESSION_COLUMNS), rows(reserved, ("id", *SESSION_COLUMNS)))
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
