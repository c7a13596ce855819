"""Multi-row INSERT without model instances, for the ingest hot path.

`Model.objects.bulk_create` builds and compiles an instance per row and cannot say which rows it inserted
when conflicts are ignored; ingest needs both cheaply (RETURNING tells which profiles and sessions this call
created, so it can skip the lookups a brand-new visitor does not need). Table and column names come from
the model; every value is a parameter.
"""

from collections.abc import Callable, Sequence

from django.db import connection, models

# SQLite's default limit of host parameters per statement (older builds): chunk the VALUES lists below it.
SQLITE_MAX_PARAMS = 999


def _adapter(field: models.Field) -> Callable | None:
    """How a Python value of this column is passed to the driver, or None when it is passed as is."""
    if isinstance(field, models.JSONField):
        return lambda value: field.get_db_prep_save(value, connection)
    if isinstance(field, models.DateTimeField) and connection.vendor != "postgresql":
        return connection.ops.adapt_datetimefield_value
    return None


def rows_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    on_conflict: str = "",
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert `rows` (tuples in `columns` order, column names as in the table) and return the RETURNING
    values of the rows actually inserted (with ON CONFLICT DO NOTHING, a conflicting row returns nothing).

    `on_conflict` is a fixed clause written by the caller (never built from values), e.g.
    "ON CONFLICT DO NOTHING". On PostgreSQL, rows without JSON columns go as one array per column through
    unnest(): a statement of a few parameters whatever the row count. Elsewhere, VALUES lists in chunks."""
    if not rows:
        return []
    if returning and not connection.features.can_return_rows_from_bulk_insert:
        # SQLite before 3.35 has no RETURNING: insert, and let the caller look the rows up (its fallback for
        # rows that conflicted).
        returning = ()
    quote = connection.ops.quote_name
    fields = {field.column: field for field in model._meta.concrete_fields}
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(column) for column in columns)
    returning_sql = f" RETURNING {', '.join(quote(column) for column in returning)}" if returning else ""
    adapters = [_adapter(fields[column]) for column in columns]
    if any(adapter is not None for adapter in adapters):
        rows = [
            tuple(value if adapter is None else adapter(value) for value, adapter in zip(row, adapters, strict=True))
            for row in rows
        ]
    postgres = connection.vendor == "postgresql"
    results: list[tuple] = []
    with connection.cursor() as cursor:
        if postgres and not any(isinstance(fields[column], models.JSONField) for column in columns):
            casts = ", ".join(f"%s::{fields[column].db_type(connection)}[]" for column in columns)
            sql = f"INSERT INTO {table} ({column_list}) SELECT * FROM unnest({casts}) {on_conflict}{returning_sql}"
            cursor.execute(sql, [list(values) for values in zip(*rows, strict=True)])
            return list(cursor.fetchall()) if returning else []
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        chunk = len(rows) if postgres else max(1, SQLITE_MAX_PARAMS // len(columns))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql = (
                f"INSERT INTO {table} ({column_list}) VALUES {', '.join([placeholders] * len(part))} "
                f"{on_conflict}{returning_sql}"
            )
            cursor.execute(sql, [value for row in part for value in row])
            if returning:
                results.extend(cursor.fetchall())
    return results
