"""Reads of reports_app. `report_series` is the one computation behind the page, the CSV export and
GET /api/v1/reports/query, so they can never disagree.

Who an event belongs to is its person (users_app/people.py): a tombstone's events count as its destination's
from the moment identify returns, before the merge task moves them, so merged people count once. A user
property is read from that person's row (Heap-style: the current value applies to all of the person's events).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Cast, Coalesce, TruncDay, TruncHour, TruncMonth, TruncWeek
from django.utils import timezone

from events_app.models import DefinedEvent
from reports_app.json_text import PropertyText
from reports_app.query import ReportQuery
from reports_app.selectors.buckets import bucket_floor, bucket_label, bucket_next, report_buckets
from reports_app.selectors.groups import ALL_GROUP, NONE_GROUP, OTHER_GROUP, TOP_GROUPS
from reports_app.selectors.rollup_rows import rollup_part_sql, rollup_parts, rollups_answer
from reports_app.selectors.rows import report_rows
from reports_app.selectors.series_sql import counted_rows, event_rows_sql
from users_app.models import AccountProperty, Environment, property_key_hash
from users_app.people import person_expression, person_property
from users_app.selectors.accounts import person_account

TRUNC = {"hour": TruncHour, "day": TruncDay, "week": TruncWeek, "month": TruncMonth}
# The ways report_series computes the same numbers (ReportResult.path names the one taken): PostgreSQL's
# hand-written pass over the rollups and the events above their watermark (when they hold what the report needs,
# selectors/rollup_rows.py), the same pass over the events themselves, or the ORM's GROUP BY alone (SQLite; the
# reference on both).
ROLLUP_PATH = "rollup"
POSTGRESQL_PATH = "postgresql"
ORM_PATH = "orm"


@dataclass
class Series:
    group: str
    values: list[int]
    total: int

    def as_dict(self) -> dict:
        return {"group": self.group, "values": self.values, "total": self.total}


@dataclass
class ReportResult:
    query: ReportQuery
    buckets: list[datetime]
    series: list[Series]
    computed_at: datetime = field(default_factory=timezone.now)
    path: str = ORM_PATH  # not in as_dict: how the numbers were computed is no part of the answer
    # What the path read besides, for the API's `explain=1` (the rollups: the watermark they read).
    details: dict = field(default_factory=dict)
    # The report's event is a defined event whose past events are still being matched (its backfill runs).
    backfilling: bool = False

    @property
    def explain(self) -> dict:
        """How the numbers were computed, for the API's `explain=1`: the path and what it read."""
        return {"path": self.path, **self.details}

    @property
    def bucket_labels(self) -> list[str]:
        return [bucket_label(bucket, self.query.interval) for bucket in self.buckets]

    @property
    def partial_positions(self) -> list[int]:
        """The buckets not over when the report was computed (this week, today, or later): their counts can
        still grow, so the chart draws them apart rather than as a sudden drop."""
        return [
            position
            for position, bucket in enumerate(self.buckets)
            if bucket_next(bucket, self.query.interval) > self.computed_at
        ]

    def as_dict(self) -> dict:
        labels = self.bucket_labels
        answer = {
            "buckets": labels,
            "series": [item.as_dict() for item in self.series],
            "partial_buckets": [labels[position] for position in self.partial_positions],
        }
        if self.backfilling:
            answer["backfilling"] = True
        return answer


class _Expressions:
    """Builds the queryset's joins and the SQL expressions of the person, properties and groups."""

    def __init__(self, queryset: QuerySet, environment: Environment, *, matches: bool = False):
        self.queryset = queryset
        self.environment = environment
        self.aliases = 0
        self.account_alias: str | None = None
        self.account_value = None
        # Events, or a defined event's match rows (selectors/rows.py): their person is their original profile's.
        self.relation = "original_profile__" if matches else "profile__"
        self.profile_column = "original_profile_id" if matches else "profile_id"
        self.count_column = "event_id" if matches else "id"

    def person(self):
        return person_expression(self.relation)

    def user_property(self, key: str):
        """The person's current value of `key` (two LEFT JOINs, each its own alias in this queryset)."""
        self.aliases += 1
        self.queryset, value = person_property(
            self.queryset, property_key_hash(key), alias=f"prop_{self.aliases}", relation=self.relation
        )
        return value

    def event_property(self, key: str):
        # Cast so numbers group and compare as text on both databases (SQLite's ->> keeps the JSON type).
        return Cast(PropertyText(key, "properties"), output_field=TextField())

    def account(self):
        """The person's account (users_app/selectors/accounts.py), joined once."""
        if self.account_alias is None:
            self.queryset, self.account_value = person_account(
                self.queryset, self.environment, alias="account", relation=self.relation
            )
            self.account_alias = "report_account"
            self.queryset = self.queryset.alias(**{self.account_alias: self.account_value})
        return F(self.account_alias)

    def account_property(self, key: str):
        """The current value of `key` of the person's account: one indexed lookup per row on (environment,
        account id, key)."""
        self.account()
        rows = AccountProperty.objects.filter(
            environment_id=self.environment.pk, account_id=OuterRef(self.account_alias), key_hash=property_key_hash(key)
        )
        return Subquery(rows.values("value")[:1], output_field=TextField())

    def property(self, prop):
        if prop.scope == "account":
            return self.account_property(prop.key)
        return self.user_property(prop.key) if prop.scope == "user" else self.event_property(prop.key)


def _value_condition(alias: str, item) -> Q:
    """The filter's positive condition on the value `alias` ("is set": not NULL)."""
    positive = item.positive_operator
    if positive == "set":
        return Q(**{f"{alias}__isnull": False})
    if positive == "in":
        return Q(**{f"{alias}__in": list(item.values)})
    if positive == "contains":
        return Q(**{f"{alias}__icontains": item.values[0]})
    return Q(**{alias: item.values[0]})


def _negatable(alias: str, condition: Q, item) -> Q:
    # "is not Startup" includes people with no plan at all (a NULL would otherwise drop out of NOT).
    return ~condition | Q(**{f"{alias}__isnull": True}) if item.is_negated else condition


def _filter_condition(alias: str, item) -> Q:
    if item.positive_operator == "set" and item.is_negated:
        return Q(**{f"{alias}__isnull": True})
    return _negatable(alias, _value_condition(alias, item), item)


def _account_filter_condition(expressions: _Expressions, item) -> Q:
    """A filter on an account property, as "the person's account is one of the accounts whose property matches":
    a semi-join with the (few) matching account property rows, where reading each event's account property
    would be a lookup per event. Negated, people without an account or without the property match, as in
    _filter_condition."""
    expressions.account()
    rows = AccountProperty.objects.filter(
        environment_id=expressions.environment.pk, key_hash=property_key_hash(item.prop.key)
    ).filter(_value_condition("value", item))
    alias = expressions.account_alias
    return _negatable(alias, Q(**{f"{alias}__in": rows.values("account_id")}), item)


def _measure(query: ReportQuery, expressions: _Expressions):
    if query.measure == "unique_users":
        return Count(expressions.person(), distinct=True)
    if query.measure == "sessions":
        return Count("session_id", distinct=True)
    if query.measure == "unique_accounts":
        expressions.account()
        # The expression, not its alias: aggregate() (the total of `Other`) cannot count an alias. People without an
        # account count for none.
        return Count(expressions.account_value, distinct=True)
    return Count(expressions.count_column)


def _base_queryset(
    environment: Environment, query: ReportQuery, defined_event: DefinedEvent | None
) -> tuple[QuerySet, _Expressions]:
    queryset, matches = report_rows(environment, query, defined_event)
    return events_filtered(queryset, environment, query.filters, matches=matches)


def events_filtered(
    queryset: QuerySet, environment: Environment, filters, *, matches: bool = False
) -> tuple[QuerySet, _Expressions]:
    """The events of `queryset` for which every `where` filter holds (funnels and retention filter alike);
    `matches`: the rows are a defined event's match rows (selectors/rows.py)."""
    expressions = _Expressions(queryset, environment, matches=matches)
    conditions = []
    for index, item in enumerate(filters):
        if item.prop.scope == "account":
            conditions.append(_account_filter_condition(expressions, item))
            continue
        alias = f"filter_{index}"
        value = expressions.property(item.prop)
        expressions.queryset = expressions.queryset.alias(**{alias: value})
        conditions.append(_filter_condition(alias, item))
    queryset = expressions.queryset.filter(*conditions)
    expressions.queryset = queryset
    return queryset, expressions


def _as_utc(moment) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.combine(moment, time.min, tzinfo=UTC)  # a date


def report_series(*, environment: Environment, query: ReportQuery, path: str | None = None) -> ReportResult:
    """The numbers of a graph report (SPEC 7), aggregated in the database: one GROUP BY (bucket, group)
    (on PostgreSQL with the range totals of distinct measures in the same pass; elsewhere a second GROUP BY
    group computes them, since a person active in two weeks counts once in the total), plus, beyond the
    top 10 groups of an event property, the distinct counts of `Other`.

    `path`: None takes the fastest the database has (the rollups where they answer, on PostgreSQL); a path
    given forces it: ORM_PATH is the reference that the tests and the benchmarks compare the others with."""
    buckets = report_buckets(query)
    # The report's defined event, read once for every step that asks. Read first: a backfill ending meanwhile
    # leaves the flag on complete numbers, never off on partial ones.
    defined_event = None
    if query.event is not None:
        defined_event = DefinedEvent.objects.filter(environment=environment, name=query.event).first()
    result = _report_numbers(environment, query, buckets, path, defined_event)
    result.backfilling = defined_event is not None and defined_event.is_partial
    return result


def _fastest_path(query: ReportQuery, defined_event: DefinedEvent | None) -> str:
    if connection.vendor != "postgresql":
        return ORM_PATH
    return ROLLUP_PATH if rollups_answer(query, defined_event=defined_event) else POSTGRESQL_PATH


def _rollup_rows(environment: Environment, query: ReportQuery, details: dict) -> tuple[list[tuple], dict | None]:
    """The rollups and the events above their watermark, filtered alike, counted by PostgreSQL's pass."""
    counted, newer, details["rollups_through_event_id"] = rollup_parts(environment, query)
    parts = []
    for part, is_counted in ((counted, True), (newer, False)):
        filtered, _ = events_filtered(part, environment, query.filters, matches=True)
        parts.append(rollup_part_sql(filtered, query, counted=is_counted))
    sql, params = parts[0].union(parts[1], all=True).query.sql_with_params()
    return counted_rows(sql, list(params), query, environment, weighted=True)


def _report_numbers(
    environment: Environment, query: ReportQuery, buckets: list, path: str | None, defined_event: DefinedEvent | None
) -> ReportResult:
    bucket_index = {bucket: position for position, bucket in enumerate(buckets)}
    path = path or _fastest_path(query, defined_event)
    bucket = TRUNC[query.interval]("timestamp", tzinfo=UTC)
    # The rollup path needs neither (rollups_answer leaves every report that would recount `Other` to the events).
    base, expressions = _base_queryset(environment, query, defined_event) if path != ROLLUP_PATH else (None, None)
    measure = _measure(query, expressions) if path != ROLLUP_PATH else None

    def grouped() -> QuerySet:
        """The filtered events annotated with their group (built lazily: the PostgreSQL path needs it only
        for `Other` of an event property)."""
        if query.group_by is not None:
            group = Coalesce(expressions.property(query.group_by), Value(NONE_GROUP), output_field=TextField())
        else:
            group = Value(ALL_GROUP, output_field=TextField())
        return expressions.queryset.annotate(report_group=group)

    totals = None
    details = {}
    if path == ROLLUP_PATH:
        rows, totals = _rollup_rows(environment, query, details)
    elif path == POSTGRESQL_PATH:
        inner_sql, inner_params = event_rows_sql(base, query, expressions, bucket)
        rows, totals = counted_rows(inner_sql, inner_params, query, environment)
    else:
        rows = (
            grouped()
            .annotate(report_bucket=bucket)
            .values("report_bucket", "report_group")
            .annotate(report_value=measure)
            .order_by()
            .values_list("report_bucket", "report_group", "report_value")
        )
    values: dict[str, list[int]] = {}
    for moment, group_name, value in rows:
        series_values = values.setdefault(group_name, [0] * len(buckets))
        series_values[bucket_index[bucket_floor(_as_utc(moment), query.interval)]] += value
    if not values:
        return ReportResult(query, buckets, [], path=path, details=details)

    if query.measure == "events":
        totals = {name: sum(series_values) for name, series_values in values.items()}
    elif totals is None:
        totals = dict(
            grouped()
            .values("report_group")
            .annotate(report_value=measure)
            .order_by()
            .values_list("report_group", "report_value")
        )
    ranked = sorted(values, key=lambda name: (-totals[name], name))
    top, rest = ranked[:TOP_GROUPS], ranked[TOP_GROUPS:]
    series = [Series(name, values[name], totals[name]) for name in top]
    if rest:
        series.append(
            _other_series(grouped, query, top, rest, values, totals, measure, bucket, bucket_index, len(buckets))
        )
    return ReportResult(query, buckets, series, path=path, details=details)


def _other_series(grouped, query, top, rest, values, totals, measure, bucket, bucket_index, size) -> Series:
    """Every group beyond the top ones, as one series. Sums are exact for event counts, and for distinct
    measures grouped by a user property (a person has one value, so groups never share a person); an
    event property can put one person or session in several groups, so those are counted again."""
    # A person has one account, so account groups never share a person, a session or an account; user groups
    # never share a person, but two people of one account may sit in two of them.
    scope = query.group_by.scope
    disjoint = (
        query.measure == "events" or scope == "account" or (scope == "user" and query.measure != "unique_accounts")
    )
    if disjoint:
        other_values = [sum(values[name][position] for name in rest) for position in range(size)]
        return Series(OTHER_GROUP, other_values, sum(totals[name] for name in rest))
    others = grouped().exclude(report_group__in=top)
    other_values = [0] * size
    by_bucket = (
        others.annotate(report_bucket=bucket)
        .values("report_bucket")
        .annotate(report_value=measure)
        .order_by()
        .values_list("report_bucket", "report_value")
    )
    for moment, value in by_bucket:
        other_values[bucket_index[bucket_floor(_as_utc(moment), query.interval)]] += value
    total = others.aggregate(report_value=measure)["report_value"]
    return Series(OTHER_GROUP, other_values, total)
