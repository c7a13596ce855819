"""The rollups' side of a graph report (issue #16, docs/architecture.md "Rollups"): rows per person and UTC day from
events_app's rollups, plus the events stored since the last catch-up, which the rollups do not count yet.

Both come from one statement, so the watermark, the rollup rows and the newer events are read from one snapshot:
an event is counted once, whether the catch-up commits before, during or after the report. The watermark is also
read just before and given as a literal lower bound, so the planner reads the newer events on the primary key's
index (the statement's own subquery would hide its value from the planner).

A rollup row carries its original profile: the person of an event is the person of its original profile
(events_app/rollups/models.py), so the person, user properties and accounts are joined as for events, through
`original_profile`."""

from datetime import UTC

from django.db.models import BigIntegerField, DateField, F, Func, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate

from events_app.models import DefinedEvent, Event, PersonDayNameRollup, PersonDayRollup, RollupWatermark
from events_app.rollups.models import WATERMARK_PK, rollups_supported
from reports_app.query import ReportQuery
from reports_app.selectors.buckets import time_range
from users_app.models import Environment

DATE_INTERVALS = ("day", "week", "month")


class _DateBucket(Func):
    """The week or month of a UTC date, as a date: truncated as a timestamp without time zone, where Trunc* on a
    date would make a timestamptz of it (a time zone conversion per row, and a bucket the planner has no
    statistics for)."""

    output_field = DateField()

    def __init__(self, day, interval: str):
        if interval not in ("week", "month"):
            raise ValueError(f"not a date bucket: {interval!r}")
        super().__init__(day, template=f"DATE_TRUNC('{interval}', %(expressions)s::timestamp)::date")


def date_bucket(day, interval: str):
    """The report bucket of a UTC date (an expression), a date: the day itself, or its week (Monday) or month."""
    return day if interval == "day" else _DateBucket(day, interval)


def rollups_answer(query: ReportQuery, *, defined_event: DefinedEvent | None) -> bool:
    """Whether the rollups hold what this report needs: buckets of a day or more; events, people or accounts
    counted (not sessions: a session may span days, and undo splits sessions); no event property; all events or a
    raw event name (a defined event has its own match rows, selectors/rows.py). A distinct count of accounts
    grouped by a user property is left to the events: its `Other` is counted again from the rows, which a union
    cannot be regrouped for. `defined_event`: the environment's defined event of the report's event name, or None
    (report_series reads it once)."""
    if not rollups_supported() or query.interval not in DATE_INTERVALS:
        return False
    if query.measure not in ("events", "unique_users", "unique_accounts"):
        return False
    props = [item.prop for item in query.filters] + ([query.group_by] if query.group_by else [])
    if any(prop.scope == "event" for prop in props):
        return False
    if query.measure == "unique_accounts" and query.group_by is not None and query.group_by.scope == "user":
        return False
    return query.event is None or defined_event is None


def rollup_parts(environment: Environment, query: ReportQuery) -> tuple[QuerySet, QuerySet, int]:
    """The two sources of the rows, unfiltered: rollup rows of the range's days, and the range's events above the
    watermark; and the watermark as read just before (the statement reads it again, at least as large)."""
    start, end = time_range(query)
    if query.event is None:
        counted = PersonDayRollup.objects.filter(environment=environment)
    else:
        counted = PersonDayNameRollup.objects.filter(environment=environment, name=query.event)
    counted = counted.filter(day__gte=start.date(), day__lt=end.date())
    read_before = RollupWatermark.objects.filter(pk=WATERMARK_PK).values_list("through_event_id", flat=True).first()
    read_before = read_before or 0
    current = Coalesce(Subquery(RollupWatermark.objects.filter(pk=WATERMARK_PK).values("through_event_id")), Value(0))
    newer = Event.objects.filter(environment=environment, timestamp__gte=start, timestamp__lt=end)
    newer = newer.filter(pk__gt=read_before).filter(pk__gt=current)
    if query.event is not None:
        newer = newer.filter(name=query.event)
    return counted, newer, read_before


def rollup_part_sql(part: QuerySet, query: ReportQuery, *, counted: bool) -> QuerySet:
    """A filtered part as rows of (report_bucket, report_profile_id, report_weight), ready for the union."""
    day = F("day") if counted else TruncDate("timestamp", tzinfo=UTC)
    weight = F("events") if counted else Value(1, output_field=BigIntegerField())
    columns = {
        "report_bucket": date_bucket(day, query.interval),
        "report_profile_id": F("original_profile_id"),
        "report_weight": weight,
    }
    return part.annotate(**columns).values(*columns).order_by()
