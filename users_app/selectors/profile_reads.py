"""Reads of one person: the read API's user answer and timeline, the profile page, merge history."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Max, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils.dateparse import parse_datetime

from config.kernel.errors import InvalidInput, NotFound
from config.kernel.validation import ascii_decimal
from events_app.models import DefinedEventMatch, Event, Session
from users_app.models import (
    INITIAL_PROPERTY_PREFIX,
    Environment,
    MergeRecord,
    Profile,
    UserProperty,
)
from users_app.people import person_members


def profile_events(profile: Profile) -> QuerySet:
    """The person's events (users_app/people.py); a tombstone read on its own: the events first recorded on it."""
    if profile.is_tombstone:
        return Event.objects.filter(original_profile_id=profile.pk)
    return Event.objects.filter(profile_id__in=person_members(profile))


def profile_sessions(profile: Profile) -> QuerySet:
    """The person's sessions; a tombstone read on its own: the sessions first recorded on it."""
    if profile.is_tombstone:
        return Session.objects.filter(original_profile_id=profile.pk)
    return Session.objects.filter(profile_id__in=person_members(profile))


def profile_get(*, environment: Environment, user_id: int | None = None, identity: str | None = None) -> Profile:
    lookup = {"user_id": user_id} if user_id is not None else {"identity": identity}
    profile = Profile.objects.filter(environment=environment, **lookup).select_related("merged_into").first()
    if profile is None:
        field = "user_id" if user_id is not None else "identity"
        raise NotFound("No such user in this environment.", field=field)
    return profile


def profile_properties(profile: Profile) -> dict[str, dict]:
    return {
        row.key: {"value": row.typed_value, "set_at": row.set_at.isoformat()}
        for row in profile.properties.order_by("key")
    }


def user_detail(profile: Profile) -> dict:
    """SPEC 3's user answer. Counts include history a pending merge has not moved yet."""
    return {
        "user_id": str(profile.user_id),
        "identity": profile.identity,
        "properties": profile_properties(profile),
        "first_seen": profile.first_seen.isoformat() if profile.first_seen else None,
        "last_seen": profile.last_seen.isoformat() if profile.last_seen else None,
        "session_count": profile_sessions(profile).count(),
        "event_count": profile_events(profile).count(),
        "merged_into": str(profile.merged_into.user_id) if profile.merged_into_id else None,
    }


def _encode_cursor(event: Event) -> str:
    return base64.urlsafe_b64encode(f"{event.timestamp.isoformat()}|{event.pk}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        moment_text, _, pk_text = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        moment = parse_datetime(moment_text)
        if moment is None:
            raise ValueError(moment_text)
        pk = ascii_decimal(pk_text, 2**63)  # a primary key, written as this module writes it
        if pk is None:
            raise ValueError(pk_text)
        return moment, pk
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput("invalid_cursor", "`cursor` is not a cursor this API gave out.", "cursor") from error


def user_timeline(profile: Profile, *, cursor: str | None = None, limit: int = 100) -> dict:
    """A person's events, newest first, keyset-paginated."""
    events = profile_events(profile).select_related("session").order_by("-timestamp", "-pk")
    if cursor:
        moment, pk = _decode_cursor(cursor)
        events = events.filter(Q(timestamp__lt=moment) | Q(timestamp=moment, pk__lt=pk))
    page = list(events[: limit + 1])
    more = len(page) > limit
    page = _with_defined_events(page[:limit])
    return {
        "results": [
            {
                "event": event.name,
                "timestamp": event.timestamp.isoformat(),
                "properties": event.properties,
                "session_id": event.session.session_key if event.session_id else None,
                "defined_events": event.defined_events,
            }
            for event in page
        ],
        "next": _encode_cursor(page[-1]) if more else None,
    }


def merge_as_dict(record: MergeRecord) -> dict:
    return {
        "id": record.pk,
        "source_user_id": str(record.source.user_id),
        "destination_user_id": str(record.destination.user_id),
        "identity": record.identity,
        "status": record.status,
        "trigger": record.trigger,
        "events_moved": record.events_moved,
        "requested_at": record.requested_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
    }


def merge_list(
    *, environment: Environment, identity: str | None = None, user_id: int | None = None, limit: int = 500
) -> list[MergeRecord]:
    merges = MergeRecord.objects.filter(environment=environment).select_related("source", "destination")
    if identity is not None:
        merges = merges.filter(identity=identity)
    if user_id is not None:
        merges = merges.filter(Q(source__user_id=user_id) | Q(destination__user_id=user_id))
    return list(merges.order_by("-requested_at", "-pk")[:limit])


# The profile page shows this many events of each session inline; the session page shows them all.
SESSION_EVENTS_SHOWN = 30


# ---- The profile page -----------------------------------------------------------------------------------


@dataclass
class SessionRow:
    session: Session
    event_count: int
    events: list[Event]


def profile_property_rows(profile: Profile, *, search: str = "") -> tuple[list[UserProperty], list[UserProperty]]:
    """(custom properties, `Initial *` properties), by key; `search` matches keys and values."""
    rows = profile.properties.order_by("key")
    if search:
        rows = rows.filter(Q(key__icontains=search) | Q(value__icontains=search))
    custom, initial = [], []
    for row in rows:
        (initial if row.key.startswith(INITIAL_PROPERTY_PREFIX) else custom).append(row)
    return custom, initial


def profile_session_page(
    profile: Profile,
    *,
    cursor: str | None = None,
    limit: int = 20,
    events_per_session: int = SESSION_EVENTS_SHOWN,
) -> tuple[list[SessionRow], str | None]:
    """A person's sessions, newest first (keyset), each with its event count and first events."""
    sessions = profile_sessions(profile).order_by("-started_at", "-pk")
    if cursor:
        moment, pk = _decode_cursor(cursor)
        sessions = sessions.filter(Q(started_at__lt=moment) | Q(started_at=moment, pk__lt=pk))
    page = list(sessions[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    ids = [session.pk for session in page]
    # The profile's own events of these sessions: a visit that logged in goes on in one session, whose later
    # events belong to the identity, not to the anonymous profile (a tombstone) it started as.
    events = profile_events(profile).filter(session_id__in=ids)
    counts = dict(
        events.values("session_id").annotate(events=Count("pk")).order_by().values_list("session_id", "events")
    )
    first_events = (
        events.annotate(
            position=Window(RowNumber(), partition_by=[F("session_id")], order_by=[F("timestamp"), F("pk")])
        )
        .filter(position__lte=events_per_session)
        .order_by("session_id", "timestamp", "pk")
    )
    events_of: dict[int, list[Event]] = {}
    for event in _with_defined_events(list(first_events)):
        events_of.setdefault(event.session_id, []).append(event)
    rows = [
        SessionRow(session=session, event_count=counts.get(session.pk, 0), events=events_of.get(session.pk, []))
        for session in page
    ]
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last.started_at.isoformat()}|{last.pk}".encode()).decode()
    return rows, next_cursor


def session_events(profile: Profile, *, session_pk: int, limit: int = 1000) -> tuple[Session, list[Event]]:
    session = profile_sessions(profile).filter(pk=session_pk).first()
    if session is None:
        raise NotFound("No such session for this user.", field="session")
    events = list(profile_events(profile).filter(session=session).order_by("timestamp", "pk")[:limit])
    return session, _with_defined_events(events)


def _with_defined_events(events: list[Event]) -> list[Event]:
    """Each event with `defined_events`: the names of the defined events (SPEC 13) it matches, one query."""
    names = DefinedEventMatch.objects.names_by_event(event.pk for event in events)
    for event in events:
        event.defined_events = names.get(event.pk, [])
    return events


def profile_merge_history(profile: Profile) -> list[MergeRecord]:
    """Merges into this profile (newest first) and, for a profile merged away, the merge that did it."""
    return list(
        MergeRecord.objects.filter(Q(destination=profile) | Q(source=profile))
        .select_related("source", "destination")
        .order_by("-requested_at", "-pk")[:500]
    )


def identities_absorbing(*, since: datetime, limit: int = 50) -> list[dict]:
    """Identities that absorbed, or tried to absorb, the most profiles since `since`: a bad identity (a
    company name, `guest` with a typo) stands out at the top. Ranked by merges asked for; `merged` counts
    those applied or on their way (not held, rejected or undone ones)."""
    status = MergeRecord.Status
    return list(
        MergeRecord.objects.filter(requested_at__gte=since)
        .values("environment_id", "environment__name", "identity", "destination_id", "destination__user_id")
        .annotate(
            merges=Count("pk"),
            merged=Count("pk", filter=Q(status__in=MergeRecord.APPLIED_STATUSES)),
            held=Count("pk", filter=Q(status=status.HELD)),
            rejected=Count("pk", filter=Q(status=status.REJECTED)),
            last_requested_at=Max("requested_at"),
        )
        .order_by("-merges", "identity")[:limit]
    )
