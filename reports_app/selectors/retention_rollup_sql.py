"""Retention's rows from events_app's PersonActivityRollup (issue #15's speed): a profile's days of one event name
as the bits of one bigint per 63-day chunk (bit `day_number % 63` of chunk `day_number // 63`, days counted from
0001-01-01), plus the events above the rollups' watermark, read in the same statement (selectors/rollup_rows.py's
newer part, one snapshot: an event is counted once, whether or not the catch-up ran).

Two kinds of rows, for reports_app/selectors/retention_sql.py, which finds each row's person and reduces them
per person (about one row per profile and chunk: no per-profile step first):
- `rollup_start_days`: (profile, day), one per activity row: the first day of the row's chunk in [start, end)
  with a bit set (the lowest set bit of the days masked to the range), and one per newer event;
- `rollup_return_masks`: (profile, mask), bit k set when the row has a day in the k-th bucket from the first
  cohort's (the bit tests of one CASE per chunk, masks computed here), and `1 << k` per newer event.

Chunks cut by the range's edges are masked to it: a chunk holds 63 days whichever the report's. The masks and
chunk numbers are integers computed here, written into the SQL as literals (never input)."""

from datetime import UTC, date, datetime, timedelta

from events_app.models import PersonActivityRollup
from events_app.rollups.models import ALL_DAYS, CHUNK_DAYS, day_number
from reports_app.query import ReportQuery
from reports_app.selectors.rollup_rows import rollup_part_sql, rollup_parts
from reports_app.selectors.series import events_filtered
from users_app.models import Environment

# The lowest set bit's position of a positive bigint `x` (its trailing zeros), as an integer.
LOWEST_BIT = "bit_count(((({x}) & -({x})) - 1)::bit(64))::int"


def chunk_masks(first: date, end: date) -> dict[int, int]:
    """{chunk: the bits of its days in [first, end)} for every chunk the range touches (none if it is empty)."""
    masks: dict[int, int] = {}
    for number in range(day_number(first), day_number(end)):
        chunk, bit = divmod(number, CHUNK_DAYS)
        masks[chunk] = masks.get(chunk, 0) | 1 << bit
    return masks


def _query_masks(event_query: ReportQuery) -> dict[int, int]:
    """chunk_masks of the query's days (date_from to date_to inclusive)."""
    return chunk_masks(event_query.date_from, event_query.date_to + timedelta(days=1))


def _masked_days(masks: dict[int, int]) -> str:
    """`days` masked to the range: a CASE on the chunks that the range cuts (a whole chunk keeps every bit)."""
    cut = {chunk: mask for chunk, mask in masks.items() if mask != ALL_DAYS}
    if not cut:
        return "days"
    arms = " ".join(f"WHEN {int(chunk)} THEN days & {int(mask)}::bigint" for chunk, mask in cut.items())
    return f"CASE chunk {arms} ELSE days END"


def _sources(environment: Environment, event_query: ReportQuery, explain: dict) -> tuple[str, list, str, list]:
    """(SQL, params) of the activity rows of the event's chunks in the query's days, (original_profile_id, chunk,
    days), and of the newer events, (report_bucket: the UTC day, report_profile_id, report_weight); both with the
    report's filters (user and account properties: the rollups answer no event property)."""
    _, newer, read_before = rollup_parts(environment, event_query)
    explain.setdefault("rollups_through_event_id", read_before)
    masks = _query_masks(event_query)
    activity = PersonActivityRollup.objects.filter(
        environment=environment,
        name=event_query.event,
        chunk__gte=min(masks, default=0),
        chunk__lte=max(masks, default=-1),
    )
    activity, _ = events_filtered(activity, environment, event_query.filters, matches=True)
    activity_sql, activity_params = (
        activity.values("original_profile_id", "chunk", "days").order_by().query.sql_with_params()
    )
    newer, _ = events_filtered(newer, environment, event_query.filters, matches=True)
    newer_sql, newer_params = rollup_part_sql(newer, event_query, counted=False).query.sql_with_params()
    return activity_sql, list(activity_params), newer_sql, list(newer_params)


def rollup_start_days(environment: Environment, event_query: ReportQuery, explain: dict) -> tuple[str, list]:
    """Rows (profile, day): per activity row its first day in the query's days, per newer event its day."""
    activity_sql, activity_params, newer_sql, newer_params = _sources(environment, event_query, explain)
    first_bit, masked = LOWEST_BIT.format(x="masked"), _masked_days(_query_masks(event_query))
    sql = f"""
        SELECT original_profile_id AS profile, DATE '0001-01-01' + (chunk * {CHUNK_DAYS} + {first_bit}) AS day
        FROM (SELECT original_profile_id, chunk, {masked} AS masked FROM ({activity_sql}) AS a) AS m
        WHERE masked <> 0
        UNION ALL
        SELECT report_profile_id, report_bucket FROM ({newer_sql}) AS newer_rows"""
    return sql, [*activity_params, *newer_params]


def bucket_chunk_masks(buckets: list[datetime], end: datetime) -> dict[int, list[tuple[int, int]]]:
    """{chunk: [(k, the bits of its days in bucket k)]} for the buckets k >= 1 (the return buckets; bucket k from
    buckets[k] to the next one, the last to `end`)."""
    per_chunk: dict[int, list[tuple[int, int]]] = {}
    bounds = [*buckets, end]
    for k in range(1, len(buckets)):
        for chunk, mask in chunk_masks(bounds[k].date(), bounds[k + 1].date()).items():
            per_chunk.setdefault(chunk, []).append((k, mask))
    return per_chunk


def rollup_return_masks(
    environment: Environment, event_query: ReportQuery, buckets: list[datetime], number: tuple[str, object], explain
) -> tuple[str, list]:
    """Rows (profile, mask): bit k of an activity row's mask is set when it has a day in bucket k >= 1 of
    `buckets` (the return buckets, to the end of the query's days); a newer event's is 1 << its bucket's number
    (`number`: SQL on `{day}` with one parameter, and its value: retention_sql.BUCKET_NUMBER's)."""
    activity_sql, activity_params, newer_sql, newer_params = _sources(environment, event_query, explain)
    number_sql, number_param = number
    end = datetime.combine(event_query.date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    arms = []
    for chunk, tests in bucket_chunk_masks(buckets, end).items():
        bits = " | ".join(
            f"CASE WHEN days & {int(mask)}::bigint <> 0 THEN {1 << k}::bigint ELSE 0 END" for k, mask in tests
        )
        arms.append(f"WHEN {int(chunk)} THEN {bits}")
    # No arm when no return bucket begins by `to` (a single month): no row has a return.
    mask = f"CASE chunk {' '.join(arms)} ELSE 0::bigint END" if arms else "0::bigint"
    sql = f"""
        SELECT original_profile_id AS profile, {mask} AS mask FROM ({activity_sql}) AS a
        UNION ALL
        SELECT report_profile_id, 1::bigint << {number_sql.format(day="report_bucket")}
        FROM ({newer_sql}) AS newer_rows"""
    return sql, [*activity_params, number_param, *newer_params]
