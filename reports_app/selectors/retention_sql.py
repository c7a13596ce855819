"""Retention's PostgreSQL statement (reports_app/selectors/retention.py) over one of two sources of the same rows
per original profile of the start event (profile, UTC day) and of the return event (profile, the bits of its
buckets, or (profile, day) rows when the range has too many buckets for one bigint):

- `ROLLUP_PATH`: events_app's PersonActivityRollup, a profile's days of the name as bits per 63-day chunk, plus
  the events above the rollups' watermark, read in one statement as the graph report reads them
  (selectors/retention_rollup_sql.py): a cohort and a return are whole buckets of days (day, week, month in UTC),
  so whether the profile had the event on a day answers them exactly. Taken when rollups_answer says the rollups
  hold the rows (raw names, no event property). A daily report of more than MASK_BUCKETS days reads its returns
  as (profile, day) rows of PersonDayNameRollup (selectors/rollup_rows.py);
- `POSTGRESQL_PATH`: the events themselves (defined events, event-property filters), read from the covering index
  event_by_name_time_cover.

The rows are reduced per original profile first (its first day; its return buckets), and only then joined to
the merged-away profiles (one hashed CTE, people.tombstones_sql) to find the person and reduced again per person:
a profile has many rows, so the join sees a row per profile, not per event. A person's cohort is the bucket of
their first day; their group is joined once per person. A person's return buckets are the bits of one bigint when the
range has few enough buckets (then one pass counts, per cohort and period, the people with that bit set), else
(person, bucket) pairs made distinct within the `periods` buckets after the cohort."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from events_app.models import Event
from reports_app.query import ReportQuery
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors.buckets import bucket_floor, bucket_next
from reports_app.selectors.person_steps import defined_events_named, group_join_sql, step_events
from reports_app.selectors.report_cursor import report_cursor
from reports_app.selectors.retention_rollup_sql import rollup_return_masks, rollup_start_days
from reports_app.selectors.rollup_rows import rollup_part_sql, rollup_parts, rollups_answer
from reports_app.selectors.series import POSTGRESQL_PATH, ROLLUP_PATH, events_filtered
from users_app.models import Environment
from users_app.people import person_sql_through_tombstones, tombstones_sql


def _event_query(query: RetentionQuery, event: str, start: datetime, end: datetime) -> ReportQuery:
    """The graph report's query of one event's rows in [start, end) (whole days), with the retention's filters."""
    return replace(query.base, event=event, date_from=start.date(), date_to=(end - timedelta(days=1)).date())


def retention_path(environment: Environment, query: RetentionQuery, ranges) -> str:
    """ROLLUP_PATH when the rollups answer both the start and the return event's rows, else POSTGRESQL_PATH."""
    events = (query.start_event, query.return_event)
    defined = defined_events_named(environment, events)
    for event, (start, end) in zip(events, ranges, strict=True):
        if not rollups_answer(_event_query(query, event, start, end), defined_event=defined.get(event)):
            return POSTGRESQL_PATH
    return ROLLUP_PATH


def _event_rows(environment: Environment, query: RetentionQuery, event: str, start, end) -> tuple[str, list]:
    """(profile, day) per event of `event` in [start, end) that passes the filters, from the events (UTC days)."""
    events = step_events(environment, query.base, [event], start, end)
    rows_sql, params = events.values("original_profile_id", "timestamp").order_by().query.sql_with_params()
    sql = (
        "SELECT event_rows.original_profile_id AS profile, "
        f"(event_rows.timestamp AT TIME ZONE 'UTC')::date AS day FROM ({rows_sql}) AS event_rows"
    )
    return sql, list(params)


def _rollup_rows(environment: Environment, query: RetentionQuery, event: str, start, end, explain: dict):
    """The same rows (one per profile and day) from the rollups and the events above their watermark."""
    event_query = replace(_event_query(query, event, start, end), interval="day")
    counted, newer, read_before = rollup_parts(environment, event_query)
    explain.setdefault("rollups_through_event_id", read_before)
    parts = []
    for part, is_counted in ((counted, True), (newer, False)):
        filtered, _ = events_filtered(part, environment, query.base.filters, matches=True)
        parts.append(rollup_part_sql(filtered, event_query, counted=is_counted))
    union_sql, params = parts[0].union(parts[1], all=True).query.sql_with_params()
    sql = f"SELECT report_profile_id AS profile, report_bucket::date AS day FROM ({union_sql}) AS rolled"
    return sql, list(params)


def _per_person(per_profile_sql: str, value: str, alias: str, group_by: str = "1") -> str:
    """Rows (person, `value`) from rows (profile, <columns>) of `per_profile_sql`, grouped by `group_by` (the
    person; fixed text, as `value` is: an aggregate over those columns, or one of them grouped by too)."""
    join, person = person_sql_through_tombstones(f"{alias}.profile", f"{alias}_tombstone", table="tombstones")
    return f"SELECT {person} AS person, {value} FROM ({per_profile_sql}) AS {alias} {join} GROUP BY {group_by}"


# A person's return buckets fit in one bigint's bits when the range has at most this many buckets (weekly or
# monthly reports, daily ones of two months); longer ranges make their (person, bucket) pairs distinct instead.
MASK_BUCKETS = 63
# The number of a day's bucket from the range's first bucket, in SQL on a date (never before that bucket), from a
# parameter: the first bucket's date, or its year * 12 + month.
BUCKET_NUMBER = {
    "day": "({day} - %s::date)",
    "week": "(({day} - %s::date) / 7)",
    "month": "((date_part('year', {day}) * 12 + date_part('month', {day}))::int - %s)",
}


def _buckets_of(query: RetentionQuery, ranges) -> list[datetime]:
    """The buckets from the first cohort's to the last the returns reach (the one holding `to`)."""
    (start, _), (_, returns_end) = ranges
    buckets = [bucket_floor(start, query.interval)]
    while bucket_next(buckets[-1], query.interval) < returns_end:
        buckets.append(bucket_next(buckets[-1], query.interval))
    return buckets


def postgresql_counts(environment: Environment, query: RetentionQuery, path: str, ranges) -> tuple[dict, dict, dict]:
    """({(cohort, group): size}, {(cohort, group): {bucket: people}}, explain) in one statement. `ranges`: the
    start events' [start, end) and the return events'."""
    explain = {"path": path}
    (start, end), (returns_from, returns_to) = ranges
    buckets = _buckets_of(query, ranges)
    masked = len(buckets) <= MASK_BUCKETS
    origin = buckets[0]
    number = (
        BUCKET_NUMBER[query.interval],
        origin.year * 12 + origin.month if query.interval == "month" else origin.date(),
    )
    if path == ROLLUP_PATH:
        starts = rollup_start_days(environment, _event_query(query, query.start_event, start, end), explain)
        returns_query = _event_query(query, query.return_event, returns_from, returns_to)
        if masked:
            returns = rollup_return_masks(environment, returns_query, buckets, number, explain)
        else:  # many buckets: (profile, day) rows of the per-day rollup, made distinct (person, bucket) pairs
            returns = _rollup_rows(environment, query, query.return_event, returns_from, returns_to, explain)
    else:
        starts = _event_rows(environment, query, query.start_event, start, end)
        returns = _event_rows(environment, query, query.return_event, returns_from, returns_to)
        if masked:
            returns = _day_masks(returns, number)
    counts = _mask_counts if masked else _pair_counts
    # The activity rollup has about one row per profile and chunk: reducing them per profile before the join to
    # the tombstones would be a second hash aggregate of every row for nothing; the events have many per profile.
    reduce = path != ROLLUP_PATH
    with report_cursor(Event.objects.db) as cursor:
        sizes, returns = counts(cursor, environment, query, (starts, returns), buckets, number, reduce)
    return sizes, returns, explain


def _day_masks(day_rows: tuple[str, list], number: tuple[str, object]) -> tuple[str, list]:
    """Rows (profile, 1 << the bucket number of the day) from rows (profile, day)."""
    (rows_sql, params), (number_sql, number_param) = day_rows, number
    sql = f"SELECT profile, 1::bigint << {number_sql.format(day='day')} AS mask FROM ({rows_sql}) AS day_rows"
    return sql, [number_param, *params]


def _per_profile(rows_sql: str, column: str, aggregate: str, alias: str, reduce: bool) -> str:
    """Rows (profile, `alias`) of rows (profile, `column`): `aggregate` of them per profile when `reduce`, else
    each as it is (fixed texts)."""
    if reduce:
        return f"SELECT profile, {aggregate}({column}) AS {alias} FROM ({rows_sql}) AS per_profile GROUP BY profile"
    return f"SELECT profile, {column} AS {alias} FROM ({rows_sql}) AS per_profile"


def _cohorts_sql(environment: Environment, query: RetentionQuery, starts_sql: str, reduce: bool) -> tuple[str, list]:
    """The CTEs `tombstones`, `starts` (each person's first day) and `grouped` (with the bucket of that day, the
    cohort, and the person's group)."""
    group_sql, group_join, group_params = group_join_sql(environment, query.base.group_by, "starts.person")
    first_days = _per_profile(starts_sql, "day", "min", "first_day", reduce)
    sql = f"""
        tombstones AS MATERIALIZED ({tombstones_sql()}),
        starts AS ({_per_person(first_days, "min(first_day) AS first_day", "start_profiles")}),
        grouped AS (
            SELECT starts.person, starts.first_day, date_trunc(%s, starts.first_day::timestamp) AS cohort,
                   {group_sql} AS grp
            FROM starts {group_join})"""
    return sql, [query.interval, *group_params]


def _mask_counts(cursor, environment, query, sources, buckets, number, reduce) -> tuple[dict, dict]:
    """Each person's return buckets as the bits of one bigint (a hash of people, not of (person, bucket) pairs),
    then per cohort and group the people with bit `cohort + k` set, for each period k. The return rows are
    (profile, mask): the bits of their buckets."""
    (starts_sql, starts_params), (returns_sql, returns_params) = sources
    cohorts_sql, cohorts_params = _cohorts_sql(environment, query, starts_sql, reduce)
    number_sql, origin_param = number
    profile_masks = _per_profile(returns_sql, "mask", "bit_or", "profile_mask", reduce)
    periods = range(1, min(query.periods, len(buckets) - 1) + 1)
    # A period past the last bucket is left out by the caller; the CASE keeps its shift within the bigint.
    returned = "".join(
        f", count(*) FILTER (WHERE CASE WHEN position + {k} < {len(buckets)} "
        f"THEN (mask >> (position + {k})) & 1 = 1 END)"
        for k in periods
    )
    sql = f"""
        WITH {cohorts_sql},
        masks AS ({_per_person(profile_masks, "bit_or(profile_mask) AS mask", "return_profiles")}),
        placed AS (
            SELECT grouped.cohort, grouped.grp, {number_sql.format(day="grouped.first_day")} AS position, masks.mask
            FROM grouped LEFT JOIN masks ON masks.person = grouped.person)
        SELECT cohort, grp, count(*){returned} FROM placed GROUP BY 1, 2"""
    cursor.execute(sql, [*starts_params, *cohorts_params, *returns_params, origin_param])
    sizes, returns = {}, {}
    for cohort, group, size, *counts in cursor.fetchall():
        key = (cohort.replace(tzinfo=UTC), group)
        sizes[key], bucket = size, key[0]
        for count in counts:
            bucket = bucket_next(bucket, query.interval)
            if count:
                returns.setdefault(key, {})[bucket] = count
    return sizes, returns


def _pair_counts(cursor, environment, query, sources, buckets, number, reduce) -> tuple[dict, dict]:
    """The distinct (person, bucket) of the return rows within `periods` buckets after the person's cohort."""
    (starts_sql, starts_params), (returns_sql, returns_params) = sources
    cohorts_sql, cohorts_params = _cohorts_sql(environment, query, starts_sql, reduce)
    profile_buckets = (  # pairs per profile first
        f"SELECT DISTINCT profile, date_trunc(%s, day::timestamp) AS bucket FROM ({returns_sql}) AS return_rows"
    )
    sql = f"""
        WITH {cohorts_sql},
        returns AS (
            SELECT DISTINCT grouped.person, grouped.cohort, grouped.grp, return_rows.bucket
            FROM ({_per_person(profile_buckets, "bucket", "return_profiles", "1, 2")}) AS return_rows
            JOIN grouped ON grouped.person = return_rows.person AND return_rows.bucket > grouped.cohort
                        AND return_rows.bucket <= grouped.cohort + CAST(%s AS interval))
        SELECT cohort, grp, NULL::timestamp, count(*) FROM grouped GROUP BY 1, 2
        UNION ALL
        SELECT cohort, grp, bucket, count(*) FROM returns GROUP BY 1, 2, 3"""
    periods = f"{query.periods} {query.interval}"
    cursor.execute(sql, [*starts_params, *cohorts_params, query.interval, *returns_params, periods])
    sizes, returns = {}, {}
    for cohort, group, bucket, count in cursor.fetchall():
        key = (cohort.replace(tzinfo=UTC), group)
        if bucket is None:
            sizes[key] = count
        else:
            returns.setdefault(key, {})[bucket.replace(tzinfo=UTC)] = count
    return sizes, returns
