from datetime import datetime

from django.db import connection, models


def time_bounds_statement(
    model: type[models.Model], *, lower_field: str, upper_field: str, bounds: dict[int, tuple[datetime, datetime]]
) -> tuple[str, list]:
    """The UPDATE that widens each row's [lower, upper] to include the given times, never narrowing it (so
    concurrent requests and late events cannot move last_seen backwards): one UPDATE ... FROM (the bounds)
    for all rows (`bounds` not empty). Table and column names come from the model; every value is a
    parameter. Run it with the rows' locks held (time_bounds_extend takes them)."""
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
    sql = (
        f"WITH bounds (id, low, high) AS ({bounds_sql}) "
        f"UPDATE {table} SET {lower} = {least}(COALESCE({table}.{lower}, bounds.low), bounds.low), "
        f"{upper} = {greatest}(COALESCE({table}.{upper}, bounds.high), bounds.high) "
        f"FROM bounds WHERE {table}.id = bounds.id"
    )
    return sql, params


def time_bounds_extend(
    model: type[models.Model], *, lower_field: str, upper_field: str, bounds: dict[int, tuple[datetime, datetime]]
) -> None:
    """Run time_bounds_statement now, locking the rows in primary-key order first so two concurrent requests
    touching the same rows cannot deadlock. (A caller that holds the rows' locks already, taken in key order,
    can send the statement itself, e.g. with its other last writes.)"""
    if not bounds:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    if connection.vendor == "postgresql" and len(bounds) > 1:
        # Lock in key order first: UPDATE ... FROM alone may lock rows in any order. (One row cannot be
        # locked out of order, so a single call skips the extra round trip.)
        lock_sql = f"SELECT 1 FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(lock_sql, [sorted(bounds)])
    sql, params = time_bounds_statement(model, lower_field=lower_field, upper_field=upper_field, bounds=bounds)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
