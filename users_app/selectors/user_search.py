"""The Users view and its JSON twin: filtered, keyset-paginated lists of users and their count."""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Q, QuerySet
from django.utils.dateparse import parse_datetime

from config.kernel.errors import InvalidInput
from config.kernel.property_filters import ACCOUNT_SCOPE, PropertyFilter, PropertyRef
from config.kernel.validation import ascii_decimal, user_id_term
from events_app.models import Event, Session
from users_app.models import (
    AccountProperty,
    Environment,
    Profile,
    UserProperty,
    property_key_hash,
)
from users_app.people import is_person, person_pk, person_pks_by_member, person_rows_exist
from users_app.selectors.accounts import account_property_values, accounts_of
from users_app.selectors.user_filters import property_conditions

# ---- The Users view and its JSON twin (GET /api/v1/users/search) ----------------------------------------
# One selector serves the HTML list and the read API, so the two can never disagree. Pagination is keyset
# on the (environment, -last_seen, -id) index: no COUNT and no OFFSET per page, whatever the table size.

USER_PAGE_SIZE = 50
# The count of matching users stops at this many ("more than 100,000") so it stays cheap at any size.
USER_COUNT_CAP = 100_000


@dataclass(frozen=True)
class UserFilters:
    since: datetime | None = None  # active at or after (None: any time, including never-seen profiles)
    until: datetime | None = None  # active before (None: up to now)
    properties: tuple[PropertyFilter, ...] = ()
    kind: str = ""  # "", "identified" or "anonymous"
    search: str = ""
    # Did this event (a raw or a defined event's name, SPEC 13) in the period: "" for any user.
    event: str = ""


@dataclass
class UserRow:
    profile: Profile
    session_count: int
    columns: list[UserProperty | AccountProperty | None]
    account_id: str | None = None  # the person's account, looked up when an account column is shown

    @property
    def display_name(self) -> str:
        return self.profile.display_name

    def as_dict(self, column_names: list[str]) -> dict:
        profile = self.profile
        return {
            "user_id": str(profile.user_id),
            "identity": profile.identity,
            "display_name": profile.display_name,
            "first_seen": profile.first_seen.isoformat() if profile.first_seen else None,
            "last_seen": profile.last_seen.isoformat() if profile.last_seen else None,
            "session_count": self.session_count,
            "properties": {
                name: (row.typed_value if row is not None else None)
                for name, row in zip(column_names, self.columns, strict=True)
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


def _member_sessions_exist(since: datetime | None, until: datetime) -> Q:
    """Some session of the profile or of a profile merged into it overlaps [since, until)."""
    bounds = {"started_at__lt": until}
    if since is not None:
        bounds["ended_at__gte"] = since
    return person_rows_exist(Session.objects.filter(**bounds), OuterRef("pk"))


def _search_condition(environment: Environment, term: str) -> Q:
    """Identity equal to or starting with `term`, or the profile whose user_id is `term` (a merged-away
    user_id finds the person it was merged into). The identity range lets PostgreSQL use the unique
    (environment, identity) index whatever the collation; `startswith` keeps the match exact."""
    condition = Q(identity__gte=term, identity__lt=term + "\U0010ffff", identity__startswith=term)
    user_id = user_id_term(term)
    if user_id is not None:
        named = Profile.objects.filter(environment=environment, user_id=user_id).only("merged_into_id").first()
        if named is not None:
            condition |= Q(pk=person_pk(named))
    return condition


def users_matching(*, environment: Environment, filters: UserFilters) -> QuerySet:
    """Live profiles (not tombstones) of the environment that match the filters, unordered."""
    return _matching(environment, filters)[0]


def _matching(environment: Environment, filters: UserFilters) -> tuple[QuerySet, bool]:
    """(users_matching's queryset, whether PostgreSQL can estimate all its property filters)."""
    profiles = Profile.objects.filter(is_person(), environment=environment)
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
    if filters.event:
        # The person (own or merged-in profiles) has an event of that name in the period: Event.objects.named is
        # the one place a name becomes events, raw or defined.
        events = Event.objects.named(environment, filters.event, start=filters.since, end=filters.until)
        profiles = profiles.filter(person_rows_exist(events, OuterRef("pk")))
    conditions = property_conditions(environment, filters.properties)
    return profiles.filter(*(item.condition for item in conditions)), all(item.estimated for item in conditions)


def _encode_user_cursor(profile: Profile) -> str:
    moment = profile.last_seen.isoformat() if profile.last_seen else "-"
    return base64.urlsafe_b64encode(f"{moment}|{profile.pk}".encode()).decode()


def _decode_user_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        moment_text, _, pk_text = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        moment = None if moment_text == "-" else parse_datetime(moment_text)
        if moment_text != "-" and (moment is None or moment.tzinfo is None):
            raise ValueError(moment_text)
        pk = ascii_decimal(pk_text, 2**63)  # a primary key, written as this module writes it
        if pk is None:
            raise ValueError(pk_text)
        return moment, pk
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput("invalid_cursor", "`cursor` is not a cursor this page gave out.", "cursor") from error


def session_counts(profile_ids: list[int]) -> dict[int, int]:
    """Sessions per live profile, including those of profiles merged into it whose merge task has not moved
    them yet (the same rule as `profile_sessions`). Two queries for a whole page."""
    owner_of = person_pks_by_member(profile_ids)
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


def _column_values(
    environment: Environment, profile_ids: list[int], columns: Sequence[PropertyRef]
) -> tuple[dict[int, list], dict[int, str]]:
    """({profile pk: its cells, in column order}, {profile pk: its account} when an account column is shown):
    one query for the user columns, and for account columns one for the people's accounts and one for the
    accounts' values."""
    user_values = property_values(profile_ids, [column.key for column in columns if column.scope != ACCOUNT_SCOPE])
    account_keys = [column.key for column in columns if column.scope == ACCOUNT_SCOPE]
    accounts = accounts_of(environment, profile_ids) if account_keys else {}
    account_values = account_property_values(environment, set(accounts.values()), account_keys)
    cells = {
        pk: [
            account_values.get((accounts.get(pk), column.key))
            if column.scope == ACCOUNT_SCOPE
            else user_values.get((pk, column.key))
            for column in columns
        ]
        for pk in profile_ids
    }
    return cells, accounts


# A filter PostgreSQL cannot estimate (`is not set`, most account filters: user_filters.py) may match almost
# nobody; then "walk the recency index until 50 match" would walk the whole period. Such pages scan at most
# this many profiles, in windows, and may come back short with a cursor to continue ("searched down to
# <last seen>").
SCAN_WINDOW = 2_500
SCAN_WINDOWS_PER_PAGE = 2


def _after(queryset: QuerySet, moment: datetime | None, pk: int | None) -> QuerySet:
    if moment is None:
        return queryset
    return queryset.filter(Q(last_seen__lt=moment) | Q(last_seen=moment, pk__lt=pk))


def _seen_page(
    *,
    environment: Environment,
    filters: UserFilters,
    seen: QuerySet,
    estimated: bool,
    after_moment,
    after_pk,
    limit: int,
) -> tuple[list[Profile], Profile | None]:
    """(up to limit + 1 seen profiles, the profile to resume after when the scan budget ran out)."""
    newest_first = ("-last_seen", "-pk")
    if estimated:
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
            _after(in_period, after_moment, after_pk)
            .order_by(*newest_first)
            .values_list("pk", "last_seen")[:SCAN_WINDOW]
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
    columns: Sequence[PropertyRef] = (),
    cursor: str | None = None,
    limit: int = USER_PAGE_SIZE,
) -> UserPage:
    """One page of users, newest activity first. Profiles never seen (created by a server call with no
    events) only appear when the period is unbounded, after all the others."""
    matching, estimated = _matching(environment, filters)
    after_moment, after_pk = _decode_user_cursor(cursor) if cursor else (None, None)
    profiles: list[Profile] = []
    resume_after = None
    if after_pk is None or after_moment is not None:
        profiles, resume_after = _seen_page(
            environment=environment,
            filters=filters,
            seen=matching.filter(last_seen__isnull=False),
            estimated=estimated,
            after_moment=after_moment,
            after_pk=after_pk,
            limit=limit,
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
    cells, accounts = _column_values(environment, ids, columns)
    rows = [
        UserRow(
            profile=profile,
            session_count=counts[profile.pk],
            columns=cells[profile.pk],
            account_id=accounts.get(profile.pk),
        )
        for profile in profiles
    ]
    if resume_after is not None:
        return UserPage(rows=rows, next_cursor=_encode_user_cursor(resume_after), searched_until=resume_after.last_seen)
    return UserPage(rows=rows, next_cursor=_encode_user_cursor(profiles[-1]) if more else None)


def user_count(*, environment: Environment, filters: UserFilters, cap: int = USER_COUNT_CAP) -> UserCount:
    """How many users match, counting at most `cap + 1` rows (one query, never a full-table COUNT)."""
    found = users_matching(environment=environment, filters=filters).values("pk")[: cap + 1].count()
    return UserCount(value=min(found, cap), capped=found > cap)


def property_keys_of(profile_ids: list[int], limit: int = 200) -> list[str]:
    """Property keys present on these profiles, for the column picker and filter suggestions."""
    keys = (
        UserProperty.objects.filter(profile_id__in=profile_ids)
        .order_by("key")
        .values_list("key", flat=True)
        .distinct()[:limit]
    )
    return list(keys)
