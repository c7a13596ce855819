"""Reads of users_app shared by the read API, the Users view and the admin."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Window
from django.db.models.functions import Left, RowNumber
from django.utils.dateparse import parse_datetime

from events_app.models import Event, Session
from users_app.errors import InvalidInput, NotFound
from users_app.models import (
    MAX_USER_ID,
    VALUE_INDEX_PREFIX,
    Environment,
    MergeRecord,
    Profile,
    UserProperty,
    property_key_hash,
)


def profile_members(profile: Profile) -> QuerySet:
    """Ids of the profiles whose rows count as this person's: itself plus every profile merged into it,
    including merges whose task has not moved the rows yet. A tombstone counts only what it recorded."""
    if profile.merged_into_id:
        return Profile.objects.filter(pk=profile.pk).values("pk")
    return Profile.objects.filter(Q(pk=profile.pk) | Q(merged_into_id=profile.pk)).values("pk")


def profile_events(profile: Profile) -> QuerySet:
    if profile.merged_into_id:
        return Event.objects.filter(original_profile_id=profile.pk)
    return Event.objects.filter(profile_id__in=profile_members(profile))


def profile_sessions(profile: Profile) -> QuerySet:
    if profile.merged_into_id:
        return Session.objects.filter(original_profile_id=profile.pk)
    return Session.objects.filter(profile_id__in=profile_members(profile))


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
        return moment, int(pk_text)
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
    page = page[:limit]
    return {
        "results": [
            {
                "event": event.name,
                "timestamp": event.timestamp.isoformat(),
                "properties": event.properties,
                "session_id": event.session.session_key if event.session_id else None,
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


# ---- The Users view and its JSON twin (GET /api/v1/users/search) ----------------------------------------
# One selector serves the HTML list and the read API, so the two can never disagree. Pagination is keyset
# on the (environment, -last_seen, -id) index: no COUNT and no OFFSET per page, whatever the table size.

USER_PAGE_SIZE = 50
# The count of matching users stops at this many ("more than 100,000") so it stays cheap at any size.
USER_COUNT_CAP = 100_000
INITIAL_PROPERTY_PREFIX = "Initial "
SESSION_EVENTS_SHOWN = 30


@dataclass(frozen=True)
class PropertyFilter:
    """`eq` and `in` compare whole values (numbers as stored text); `set` / `notset` test presence."""

    EQUALS = "eq"
    ONE_OF = "in"
    IS_SET = "set"
    NOT_SET = "notset"
    OPERATORS = (EQUALS, ONE_OF, IS_SET, NOT_SET)

    key: str
    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class UserFilters:
    since: datetime | None = None  # active at or after (None: any time, including never-seen profiles)
    until: datetime | None = None  # active before (None: up to now)
    properties: tuple[PropertyFilter, ...] = ()
    kind: str = ""  # "", "identified" or "anonymous"
    search: str = ""


@dataclass
class UserRow:
    profile: Profile
    session_count: int
    columns: list[UserProperty | None]

    @property
    def display_name(self) -> str:
        return self.profile.display_name

    def as_dict(self, column_keys: list[str]) -> dict:
        profile = self.profile
        return {
            "user_id": str(profile.user_id),
            "identity": profile.identity,
            "display_name": profile.display_name,
            "first_seen": profile.first_seen.isoformat() if profile.first_seen else None,
            "last_seen": profile.last_seen.isoformat() if profile.last_seen else None,
            "session_count": self.session_count,
            "properties": {
                key: (row.typed_value if row is not None else None)
                for key, row in zip(column_keys, self.columns, strict=True)
            },
        }


@dataclass
class UserPage:
    rows: list[UserRow]
    next_cursor: str | None
    # Set when the page stopped at its scan budget: users last seen before this were not searched yet.
    searched_until: datetime | None = None


@dataclass(frozen=True)
class UserCount:
    value: int
    capped: bool  # True: at least `value` users match

    def as_dict(self) -> dict:
        return {"value": self.value, "capped": self.capped}


def _property_exists(prop_filter: PropertyFilter) -> Exists:
    rows = UserProperty.objects.filter(profile_id=OuterRef("pk"), key_hash=property_key_hash(prop_filter.key))
    if prop_filter.op in (PropertyFilter.EQUALS, PropertyFilter.ONE_OF):
        # The prefix comparison lets PostgreSQL use the (key_hash, Left(value, 100)) index when it drives
        # the join from the property side; the full comparison makes it exact.
        rows = rows.annotate(value_prefix=Left("value", VALUE_INDEX_PREFIX)).filter(
            value_prefix__in={value[:VALUE_INDEX_PREFIX] for value in prop_filter.values},
            value__in=set(prop_filter.values),
        )
    return Exists(rows)


def _member_sessions_exist(since: datetime | None, until: datetime) -> Q:
    """Some session of the profile or of a profile merged into it overlaps [since, until)."""
    bounds = {"started_at__lt": until}
    if since is not None:
        bounds["ended_at__gte"] = since
    own = Session.objects.filter(profile_id=OuterRef("pk"), **bounds)
    merged_in = Session.objects.filter(profile__merged_into_id=OuterRef("pk"), **bounds)
    return Q(Exists(own)) | Q(Exists(merged_in))


def _search_condition(environment: Environment, term: str) -> Q:
    """Identity equal to or starting with `term`, or the profile whose user_id is `term` (a merged-away
    user_id finds the person it was merged into). The identity range lets PostgreSQL use the unique
    (environment, identity) index whatever the collation; `startswith` keeps the match exact."""
    condition = Q(identity__gte=term, identity__lt=term + "\U0010ffff", identity__startswith=term)
    if term.isdigit() and len(term) <= 16 and int(term) < MAX_USER_ID:
        named = (
            Profile.objects.filter(environment=environment, user_id=int(term))
            .values_list("pk", "merged_into_id").first()
        )
        if named is not None:
            condition |= Q(pk=named[1] or named[0])
    return condition


def users_matching(*, environment: Environment, filters: UserFilters) -> QuerySet:
    """Live profiles (not tombstones) of the environment that match the filters, unordered."""
    profiles = Profile.objects.filter(environment=environment, merged_into__isnull=True)
    if filters.since is not None:
        profiles = profiles.filter(last_seen__gte=filters.since)
    if filters.until is not None:
        # last_seen >= since alone is exact for a period ending now; a period ending in the past also needs
        # a session inside it (the profile may have been active before and after, but not during).
        profiles = profiles.filter(first_seen__lt=filters.until).filter(
            _member_sessions_exist(filters.since, filters.until)
        )
    if filters.kind == "identified":
        profiles = profiles.filter(identity__isnull=False)
    elif filters.kind == "anonymous":
        profiles = profiles.filter(identity__isnull=True)
    if filters.search:
        profiles = profiles.filter(_search_condition(environment, filters.search))
    for prop_filter in filters.properties:
        exists = _property_exists(prop_filter)
        profiles = profiles.filter(~exists if prop_filter.op == PropertyFilter.NOT_SET else exists)
    return profiles


def _encode_user_cursor(profile: Profile) -> str:
    moment = profile.last_seen.isoformat() if profile.last_seen else "-"
    return base64.urlsafe_b64encode(f"{moment}|{profile.pk}".encode()).decode()


def _decode_user_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        moment_text, _, pk_text = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        moment = None if moment_text == "-" else parse_datetime(moment_text)
        if moment_text != "-" and (moment is None or moment.tzinfo is None):
            raise ValueError(moment_text)
        return moment, int(pk_text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput("invalid_cursor", "`cursor` is not a cursor this page gave out.",
                           "cursor") from error


def session_counts(profile_ids: list[int]) -> dict[int, int]:
    """Sessions per live profile, including those of profiles merged into it whose merge task has not moved
    them yet (the same rule as `profile_sessions`). Two queries for a whole page."""
    owner_of = {pk: pk for pk in profile_ids}
    owner_of.update(
        Profile.objects.filter(merged_into_id__in=profile_ids).values_list("pk", "merged_into_id")
    )
    counts = dict.fromkeys(profile_ids, 0)
    per_profile = (
        Session.objects.filter(profile_id__in=list(owner_of)).values("profile_id").annotate(sessions=Count("pk"))
    )
    for row in per_profile.order_by():
        counts[owner_of[row["profile_id"]]] += row["sessions"]
    return counts


def property_values(profile_ids: list[int], keys: list[str]) -> dict[tuple[int, str], UserProperty]:
    if not profile_ids or not keys:
        return {}
    rows = UserProperty.objects.filter(
        profile_id__in=profile_ids, key_hash__in=[property_key_hash(key) for key in keys]
    )
    return {(row.profile_id, row.key): row for row in rows}


# A filter PostgreSQL cannot estimate (`is not set`) may match almost nobody; then "walk the recency index
# until 50 match" would walk the whole period. Such pages scan at most this many profiles, in windows, and
# may come back short with a cursor to continue ("searched down to <last seen>").
SCAN_WINDOW = 2_500
SCAN_WINDOWS_PER_PAGE = 2


def _after(queryset: QuerySet, moment: datetime | None, pk: int | None) -> QuerySet:
    if moment is None:
        return queryset
    return queryset.filter(Q(last_seen__lt=moment) | Q(last_seen=moment, pk__lt=pk))


def _seen_page(
    *, environment: Environment, filters: UserFilters, seen: QuerySet, after_moment, after_pk, limit: int
) -> tuple[list[Profile], Profile | None]:
    """(up to limit + 1 seen profiles, the profile to resume after when the scan budget ran out)."""
    newest_first = ("-last_seen", "-pk")
    if not any(f.op == PropertyFilter.NOT_SET for f in filters.properties):
        return list(_after(seen, after_moment, after_pk).order_by(*newest_first)[: limit + 1]), None
    # Only indexed columns, so the window is an index-only scan (tombstones in it are dropped by `seen`).
    in_period = Profile.objects.filter(environment=environment, last_seen__isnull=False)
    if filters.since is not None:
        in_period = in_period.filter(last_seen__gte=filters.since)
    found: list[Profile] = []
    boundary = None
    for _window in range(SCAN_WINDOWS_PER_PAGE):
        # The window's ids are read first so the filtered query is driven by them (primary-key lookups);
        # as a subquery PostgreSQL would rather hash the whole period.
        window = list(
            _after(in_period, after_moment, after_pk).order_by(*newest_first).values_list("pk", "last_seen")
            [:SCAN_WINDOW]
        )
        if window:
            found += list(
                seen.filter(pk__in=[pk for pk, _ in window]).order_by(*newest_first)[: limit + 1 - len(found)]
            )
        if len(found) > limit or len(window) < SCAN_WINDOW:
            return found, None  # a full page, or the period is exhausted
        after_pk, after_moment = window[-1]
        boundary = Profile(pk=after_pk, last_seen=after_moment)
    return found, boundary


def user_list(
    *,
    environment: Environment,
    filters: UserFilters,
    columns: list[str] = ("plan",),
    cursor: str | None = None,
    limit: int = USER_PAGE_SIZE,
) -> UserPage:
    """One page of users, newest activity first. Profiles never seen (created by a server call with no
    events) only appear when the period is unbounded, after all the others."""
    matching = users_matching(environment=environment, filters=filters)
    after_moment, after_pk = _decode_user_cursor(cursor) if cursor else (None, None)
    profiles: list[Profile] = []
    resume_after = None
    if after_pk is None or after_moment is not None:
        profiles, resume_after = _seen_page(
            environment=environment, filters=filters, seen=matching.filter(last_seen__isnull=False),
            after_moment=after_moment, after_pk=after_pk, limit=limit,
        )
    if resume_after is None and len(profiles) <= limit and filters.since is None and filters.until is None:
        never_seen = matching.filter(last_seen__isnull=True)
        if after_pk is not None and after_moment is None:
            never_seen = never_seen.filter(pk__lt=after_pk)
        profiles += list(never_seen.order_by("-pk")[: limit + 1 - len(profiles)])
    more = len(profiles) > limit
    profiles = profiles[:limit]
    ids = [profile.pk for profile in profiles]
    counts = session_counts(ids)
    values = property_values(ids, list(columns))
    rows = [
        UserRow(profile=profile, session_count=counts[profile.pk],
                columns=[values.get((profile.pk, key)) for key in columns])
        for profile in profiles
    ]
    if resume_after is not None:
        return UserPage(rows=rows, next_cursor=_encode_user_cursor(resume_after),
                        searched_until=resume_after.last_seen)
    return UserPage(rows=rows, next_cursor=_encode_user_cursor(profiles[-1]) if more else None)


def user_count(*, environment: Environment, filters: UserFilters, cap: int = USER_COUNT_CAP) -> UserCount:
    """How many users match, counting at most `cap + 1` rows (one query, never a full-table COUNT)."""
    found = users_matching(environment=environment, filters=filters).values("pk")[: cap + 1].count()
    return UserCount(value=min(found, cap), capped=found > cap)


def property_keys_of(profile_ids: list[int], limit: int = 200) -> list[str]:
    """Property keys present on these profiles, for the column picker and filter suggestions."""
    keys = (
        UserProperty.objects.filter(profile_id__in=profile_ids).order_by("key").values_list("key", flat=True)
        .distinct()[:limit]
    )
    return list(keys)


# ---- The profile page -----------------------------------------------------------------------------------


@dataclass
class SessionRow:
    session: Session
    event_count: int
    events: list[Event]


def profile_property_rows(
    profile: Profile, *, search: str = ""
) -> tuple[list[UserProperty], list[UserProperty]]:
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
    counts = dict(
        Event.objects.filter(session_id__in=ids).values("session_id").annotate(events=Count("pk"))
        .order_by().values_list("session_id", "events")
    )
    first_events = (
        Event.objects.filter(session_id__in=ids)
        .annotate(position=Window(RowNumber(), partition_by=[F("session_id")],
                                  order_by=[F("timestamp"), F("pk")]))
        .filter(position__lte=events_per_session)
        .order_by("session_id", "timestamp", "pk")
    )
    events_of: dict[int, list[Event]] = {}
    for event in first_events:
        events_of.setdefault(event.session_id, []).append(event)
    rows = [
        SessionRow(session=session, event_count=counts.get(session.pk, 0),
                   events=events_of.get(session.pk, []))
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
    return session, list(Event.objects.filter(session=session).order_by("timestamp", "pk")[:limit])


def profile_merge_history(profile: Profile) -> list[MergeRecord]:
    """Merges into this profile (newest first) and, for a profile merged away, the merge that did it."""
    return list(
        MergeRecord.objects.filter(Q(destination=profile) | Q(source=profile))
        .select_related("source", "destination")
        .order_by("-requested_at", "-pk")[:500]
    )


def identities_absorbing(*, since: datetime, limit: int = 50) -> list[dict]:
    """Identities that absorbed the most profiles since `since`: a bad identity (a company name, `guest`
    with a typo) stands out at the top."""
    return list(
        MergeRecord.objects.filter(requested_at__gte=since)
        .values("environment_id", "environment__name", "identity", "destination_id", "destination__user_id")
        .annotate(
            merges=Count("pk"),
            held=Count("pk", filter=Q(status=MergeRecord.Status.HELD)),
            last_requested_at=Max("requested_at"),
        )
        .order_by("-merges", "identity")[:limit]
    )
