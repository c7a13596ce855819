"""Retention's PostgreSQL statement (reports_app/selectors/retention.py) over one of two sources of the same rows,
(person, bucket) per event of the start or the return event:

- `ROLLUP_PATH`: events_app's PersonDayNameRollup rows of the event's name, plus the events above the rollups'
  watermark, read in one statement as the graph report reads them (selectors/rollup_rows.py, whose helpers this
  calls): a cohort and a return are whole buckets of days (day, week, month in UTC), so a per-day count answers
  them exactly. Taken when rollups_answer says the rollups hold the rows (raw names, no event property);
- `POSTGRESQL_PATH`: the events themselves (defined events, event-property filters).

Either way the person of a row is the person of its original profile (the merged-away profiles' hash only,
people.person_sql_through_tombstones), and the statement is the same: each person's first bucket is the cohort,
their group is joined once per person, and the return rows are kept only where they fall in the `periods` buckets
after the person's cohort before being made distinct per (person, bucket)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.db import connections

from events_app.models import Event
from reports_app.query import ReportQuery
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors.person_steps import group_join_sql, person_rows_sql, step_events
from reports_app.selectors.rollup_rows import rollup_part_sql, rollup_parts, rollups_answer
from reports_app.selectors.series import POSTGRESQL_PATH, ROLLUP_PATH, events_filtered
from users_app.models import Environment
from users_app.people import person_sql_through_tombstones


def _event_query(query: RetentionQuery, event: str, start: datetime, end: datetime) -> ReportQuery:
    """The graph report's query of one event's rows in [start, end) (whole days), with the retention's filters."""
    return replace(query.base, event=event, date_from=start.date(), date_to=(end - timedelta(days=1)).date())


def retention_path(environment: Environment, query: RetentionQuery, ranges) -> str:
    """ROLLUP_PATH when the rollups answer both the start and the return event's rows, else POSTGRESQL_PATH."""
    for event, (start, end) in zip((query.start_event, query.return_event), ranges, strict=True):
        if not rollups_answer(environment, _event_query(query, event, start, end)):
            return POSTGRESQL_PATH
    return ROLLUP_PATH


def _event_rows(environment: Environment, query: RetentionQuery, event: str, start, end) -> tuple[str, list]:
    """(person, bucket) per event of `event` in [start, end) that passes the filters, from the events."""
    rows_sql, params = person_rows_sql(step_events(environment, query.base, [event], start, end), "timestamp")
    sql = f"SELECT person, date_trunc(%s, timestamp AT TIME ZONE 'UTC') AS bucket FROM ({rows_sql}) AS event_rows"
    return sql, [query.interval, *params]


def _rollup_rows(environment: Environment, query: RetentionQuery, event: str, start, end, explain: dict):
    """The same rows (one per person and day, which gives the same buckets) from the rollups and the events above
    their watermark."""
    event_query = _event_query(query, event, start, end)
    counted, newer, read_before = rollup_parts(environment, event_query)
    explain.setdefault("rollups_through_event_id", read_before)
    parts = []
    for part, is_counted in ((counted, True), (newer, False)):
        filtered, _ = events_filtered(part, environment, query.base.filters, matches=True)
        parts.append(rollup_part_sql(filtered, event_query, counted=is_counted))
    union_sql, params = parts[0].union(parts[1], all=True).query.sql_with_params()
    join, person = person_sql_through_tombstones("rolled.report_profile_id", "rolled_tombstone")
    sql = f"SELECT {person} AS person, rolled.report_bucket::timestamp AS bucket FROM ({union_sql}) AS rolled {join}"
    return sql, list(params)


def postgresql_counts(environment: Environment, query: RetentionQuery, path: str, ranges) -> tuple[dict, dict, dict]:
    """({(cohort, group): size}, {(cohort, group): {bucket: people}}, explain) in one statement. `ranges`: the
    start events' [start, end) and the return events'."""
    explain = {"path": path}
    sources = []
    for event, (start, end) in zip((query.start_event, query.return_event), ranges, strict=True):
        if path == ROLLUP_PATH:
            sources.append(_rollup_rows(environment, query, event, start, end, explain))
        else:
            sources.append(_event_rows(environment, query, event, start, end))
    (starts_sql, starts_params), (returns_sql, returns_params) = sources
    group_sql, group_join, group_params = group_join_sql(environment, query.base.group_by, "starts.person")
    sql = f"""
        WITH starts AS (SELECT person, min(bucket) AS cohort FROM ({starts_sql}) AS start_rows GROUP BY person),
        grouped AS (SELECT starts.person, starts.cohort, {group_sql} AS grp FROM starts {group_join}),
        returns AS (
            SELECT DISTINCT grouped.person, grouped.cohort, grouped.grp, return_rows.bucket
            FROM ({returns_sql}) AS return_rows
            JOIN grouped ON grouped.person = return_rows.person AND return_rows.bucket > grouped.cohort
                        AND return_rows.bucket <= grouped.cohort + CAST(%s AS interval))
        SELECT cohort, grp, NULL::timestamp, count(*) FROM grouped GROUP BY 1, 2
        UNION ALL
        SELECT cohort, grp, bucket, count(*) FROM returns GROUP BY 1, 2, 3"""
    params = [*starts_params, *group_params, *returns_params, f"{query.periods} {query.interval}"]
    with connections[Event.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    sizes, returns = {}, {}
    for cohort, group, bucket, count in fetched:
        key = (cohort.replace(tzinfo=UTC), group)
        if bucket is None:
            sizes[key] = count
        else:
            returns.setdefault(key, {})[bucket.replace(tzinfo=UTC)] = count
    return sizes, returns, explain
