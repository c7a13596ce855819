from datetime import datetime

from django.db import connection, models


def time_bounds_extend(
    model: type[models.Model],
    *,
    lower_field: str,
    upper_field: str,
    bounds: dict[int, tuple[datetime, datetime]],
    locked: bool = False,
    writes=None,
) -> None:
    """Widen each row's [lower, upper] to include the given times, never narrowing it (so concurrent requests
    and late events cannot move last_seen backwards). One UPDATE ... FROM (the bounds) for all rows, in
    primary-key order so two concurrent requests touching the same rows cannot deadlock. Table and column
    names come from the model; every value is a parameter. `locked`: the caller already holds these rows'
    locks (taken in key order), so the extra locking round trip is skipped. `writes` (rows.Writes, with
    `locked` only): the UPDATE is sent with the call's other last writes."""
    if not bounds:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    lower = connection.ops.quote_name(model._meta.get_field(lower_field).column)
    upper = connection.ops.quote_name(model._meta.get_field(upper_field).column)
    postgres = connection.vendor == "postgresql"
    least, greatest = ("LEAST", "GREATEST") if postgres else ("MIN", "MAX")
    rows = sorted(bounds.items())
    if postgres:
        # Three array parameters whatever the row count (a VALUES list costs the driver three per row).
        bounds_sql = "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])"
        params = [[pk for pk, _ in rows], [low for _, (low, _) in rows], [high for _, (_, high) in rows]]
    else:
        adapt = connection.ops.adapt_datetimefield_value
        bounds_sql = "VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows))
        params = [item for pk, (low, high) in rows for item in (pk, adapt(low), adapt(high))]
    if postgres and len(rows) > 1 and not locked:
        # Lock in key order first: UPDATE ... FROM alone may lock rows in any order. (One row cannot be
        # locked out of order, so a single call skips the extra round trip.)
        lock_sql = f"SELECT 1 FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(lock_sql, [[pk for pk, _ in rows]])
    sql = (
        f"WITH bounds (id, low, high) AS ({bounds_sql}) "
        f"UPDATE {table} SET {lower} = {least}(COALESCE({table}.{lower}, bounds.low), bounds.low), "
        f"{upper} = {greatest}(COALESCE({table}.{upper}, bounds.high), bounds.high) "
        f"FROM bounds WHERE {table}.id = bounds.id"
    )
    if writes is not None and locked:
        writes.add(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
