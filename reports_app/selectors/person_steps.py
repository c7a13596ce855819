"""What funnels and retention (SPEC 14) share: the events of a step, the person behind each event, the person's
group, and the ranking of groups into the top ones plus `Other`.

Both reports count people. The person of an event and the person's current property values come from
users_app/people.py (a merged-away profile's events are its destination's from the moment identify returns,
whether or not the merge task has moved them), so merged people count once, pending merge or done.

Each report has two paths that give the same numbers (tests/reports_app run both on the same cases): on
PostgreSQL one statement of set-based SQL written around the ORM's query of the events, elsewhere (SQLite,
the embedded default) the ORM fetches the events and Python walks them.
"""

import operator
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import reduce

from django.db import connections
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, TextField

from events_app.models import DefinedEvent, Event
from reports_app.query import PropertyRef, ReportQuery
from reports_app.selectors.series import ALL_GROUP, NONE_GROUP, TOP_GROUPS, events_filtered
from users_app.models import AccountProperty, Environment, UserProperty, property_key_hash
from users_app.people import person_expression, person_sql_through_tombstones

# The Python walk's name in a report's `explain` (the PostgreSQL paths' are selectors/series.py's).
PYTHON_PATH = "python"
# Python path: people's groups are read this many at a time (a bounded IN list).
GROUP_LOOKUP_CHUNK = 2000


def defined_events_named(environment: Environment, names: Iterable[str]) -> dict[str, DefinedEvent]:
    """The environment's defined events among `names`, by name: one query for all of a report's names."""
    return {item.name: item for item in DefinedEvent.objects.filter(environment=environment, name__in=list(names))}


def event_name_condition(
    environment: Environment, name: str, start: datetime, end: datetime, defined_event: DefinedEvent | None
) -> Q:
    """The condition on an event for it to count as `name` in a funnel step or a retention event: the one
    place that says it. A raw name is a plain condition on the name (the (name, timestamp) index serves it);
    the name of a defined event (SPEC 13) takes Event.objects.named's events (its matches and any raw events of
    that name) in [start, end). `defined_event`: the environment's defined event of `name`, or None
    (defined_events_named)."""
    if defined_event is None:
        return Q(name=name)
    named = Event.objects.named(environment, name, start=start, end=end, defined_event=defined_event)
    return Q(pk__in=named.values("pk"))


def step_events(environment: Environment, base: ReportQuery, names: list[str], start: datetime, end: datetime):
    """The events in [start, end) that count as any of `names`, for which every `where` filter of the report holds
    (read as the graph report reads them: a user property is the person's current value), annotated `step_<i>`:
    whether the event counts as names[i] (an event may count as several). One scan of the events for all the
    names: a scan per name read the same table pages once per name."""
    defined = defined_events_named(environment, names)
    conditions = [event_name_condition(environment, name, start, end, defined.get(name)) for name in names]
    queryset = Event.objects.filter(environment=environment, timestamp__gte=start, timestamp__lt=end)
    # The raw names as one `name IN (...)`: an OR of `name = ...` conditions is read by a bitmap of each and then
    # the table's pages, where the IN list lets an index-only scan of event_by_name_time_cover read the steps.
    raw = [name for name in names if name not in defined]
    others = [condition for name, condition in zip(names, conditions, strict=True) if name in defined]
    queryset = queryset.filter(reduce(operator.or_, [*([Q(name__in=raw)] if raw else []), *others]))
    queryset, _ = events_filtered(queryset, environment, base.filters)
    return queryset.annotate(
        **{
            step_column(index): ExpressionWrapper(condition, output_field=BooleanField())
            for index, condition in enumerate(conditions)
        }
    )


def step_column(index: int) -> str:
    return f"step_{index}"


def uses_postgresql(environment: Environment) -> bool:
    return connections[Event.objects.db].vendor == "postgresql"


# ---- PostgreSQL: fixed SQL around the ORM's queries; every value a parameter -------------------------------


def person_rows_sql(queryset: QuerySet, *columns: str) -> tuple[str, list]:
    """SQL of rows (person, <columns of the events>) for the events of `queryset`, the person found through the
    event's original profile (people.person_sql_through_tombstones: a join against merged-away profiles only, so
    that a large scan does not hash every profile). The original profile, not the owner: its person is the event's
    (events_app/rollups/models.py), and event_by_name_time_cover holds it, so a step's events are read from the
    index alone. `columns` are the events' column names (fixed by the caller)."""
    inner_sql, params = queryset.values("original_profile_id", *columns).order_by().query.sql_with_params()
    join, person = person_sql_through_tombstones("step_rows.original_profile_id", "step_tombstone")
    selected = ", ".join(f"step_rows.{column}" for column in columns)
    return f"SELECT {person} AS person, {selected} FROM ({inner_sql}) AS step_rows {join}", list(params)


def group_join_sql(environment: Environment, group_by: PropertyRef | None, person_column: str) -> tuple[str, str, list]:
    """(the group's SQL expression, the LEFT JOIN it needs, their parameters in that order) for rows with a person
    column (a fixed name chosen by the caller)."""
    if group_by is None:
        return "%s", "", [ALL_GROUP]
    groups_sql, params = person_groups(environment, group_by).query.sql_with_params()
    join = f"LEFT JOIN ({groups_sql}) AS person_group ON person_group.profile_id = {person_column}"
    return "COALESCE(person_group.report_group, %s)", join, [NONE_GROUP, *params]


# ---- the person's group -----------------------------------------------------------------------------------


def person_groups(environment: Environment, group_by: PropertyRef) -> QuerySet:
    """Rows (`profile_id`, `report_group`): for a person (a live profile: its own rows are the person's, SPEC 2),
    their current value of `user.<key>`, or of their account's `account.<key>` (the account being the person's
    value of the environment's account id property; an environment that names none has no accounts). A person
    without a row, or with a NULL group, has none. Read through the (profile, key) unique index, person by person
    or all at once, as the planner prefers."""
    if group_by.scope == "user":
        rows = UserProperty.objects.filter(key_hash=property_key_hash(group_by.key))
        return rows.annotate(report_group=F("value")).values("profile_id", "report_group")
    accounts = UserProperty.objects.filter(key_hash=property_key_hash(environment.account_id_property))
    properties = AccountProperty.objects.filter(
        environment_id=environment.pk, account_id=OuterRef("value"), key_hash=property_key_hash(group_by.key)
    )
    group = Subquery(properties.values("value")[:1], output_field=TextField())
    return accounts.annotate(report_group=group).values("profile_id", "report_group")


def person_group_map(environment: Environment, group_by: PropertyRef | None, people: Iterable[int]) -> dict[int, str]:
    """{person pk: group name} for these people (Python path), `(none)` where there is no value."""
    people = list(people)
    groups = dict.fromkeys(people, ALL_GROUP if group_by is None else NONE_GROUP)
    if group_by is None:
        return groups
    rows = person_groups(environment, group_by).filter(report_group__isnull=False)
    for offset in range(0, len(people), GROUP_LOOKUP_CHUNK):
        chunk = people[offset : offset + GROUP_LOOKUP_CHUNK]
        groups.update(rows.filter(profile_id__in=chunk).values_list("profile_id", "report_group"))
    return groups


def person_events(queryset: QuerySet, *columns: str) -> Iterator[tuple]:
    """Python path: (person pk, <columns>) for each event of `queryset`, timestamps in UTC."""
    rows = queryset.annotate(report_person=person_expression("profile__")).values_list("report_person", *columns)
    for row in rows.order_by().iterator(chunk_size=5000):
        yield tuple(as_utc(value) if isinstance(value, datetime) else value for value in row)


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---- top groups plus Other --------------------------------------------------------------------------------


def ranked_groups(sizes: dict[str, int]) -> tuple[list[str], list[str]]:
    """(the top groups, the rest) by people, largest first, then by name, as the graph report orders its
    groups; the rest are shown together as `Other`."""
    ranked = sorted(sizes, key=lambda name: (-sizes[name], name))
    return ranked[:TOP_GROUPS], ranked[TOP_GROUPS:]
