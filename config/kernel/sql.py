"""Multi-row INSERT without model instances, for the ingest hot path.

`Model.objects.bulk_create` builds and compiles an instance per row and cannot say which rows it inserted
when conflicts are ignored; ingest needs both cheaply (RETURNING tells which profiles and sessions this call
created, so it can skip the lookups a brand-new visitor does not need). Table and column names come from
the model; every value is a parameter.
"""

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from django.db import DEFAULT_DB_ALIAS, connection, models

# SQLite's limit of host parameters per statement in builds before 3.32 (newer ones say theirs, 32766 by
# default: a 1,000-event call then fits one statement per table).
SQLITE_MAX_PARAMS = 999


def _sqlite_max_params() -> int:
    try:
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python before 3.11
        return SQLITE_MAX_PARAMS


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


def _adapter(field: models.Field) -> Callable | None:
    """How a Python value of this column is passed to SQLite, or None when it is passed as is."""
    if isinstance(field, models.JSONField):
        return lambda value: field.get_db_prep_save(value, connection)
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    return None


@lru_cache(maxsize=64)
def _postgresql_sql(
    model: type[models.Model], columns: tuple, on_conflict: str, returning: tuple, reserve_id_of=None
) -> str:
    """The statement for these columns (cached: working out the column types costs a measurable part of a
    single call, docs/benchmarks.md). The rows go as one JSON document unpacked by json_to_recordset: a single
    parameter whatever the row count, serialized by one json.dumps (C) where the driver would quote each
    array element in Python."""
    quote = connection.ops.quote_name
    fields = {field.column: field for field in model._meta.concrete_fields}
    column_list = ", ".join(quote(column) for column in columns)
    record = ", ".join(f"{quote(column)} {fields[column].db_type(connection)}" for column in columns)
    returned = [quote(column) for column in returning]
    if reserve_id_of is not None:
        # Table and column names from the model, not values.
        sequence = f"pg_get_serial_sequence('{quote(reserve_id_of._meta.db_table)}', '{reserve_id_of._meta.pk.column}')"
        returned.append(f"nextval({sequence})")
    returning_sql = f" RETURNING {', '.join(returned)}" if returned else ""
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({column_list}) SELECT {column_list} "
        f"FROM json_to_recordset(%s::json) AS new_row ({record}) {on_conflict}{returning_sql}"
    )


def _json_rows(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=_json_value)


def rows_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    on_conflict: str = "",
    returning: Sequence[str] = (),
    reserve_id_of: type[models.Model] | None = None,
) -> list[tuple]:
    """Insert `rows` (tuples in `columns` order, column names as in the table) and return the RETURNING
    values of the rows actually inserted (with ON CONFLICT DO NOTHING, a conflicting row returns nothing).

    `reserve_id_of` (PostgreSQL, with `returning`): each returned row ends with a new primary key of that
    model, reserved for a row the caller inserts later in the transaction without a round trip of its own
    to learn its key. Elsewhere the rows come back without it.

    `on_conflict` is a fixed clause written by the caller (never built from values), e.g.
    "ON CONFLICT DO NOTHING". On PostgreSQL, one JSON parameter (_postgresql_sql); elsewhere, VALUES lists in chunks."""
    if not rows:
        return []
    if returning and not connection.features.can_return_rows_from_bulk_insert:
        # SQLite before 3.35 has no RETURNING: insert, and let the caller look the rows up (its fallback for
        # rows that conflicted).
        returning = ()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _postgresql_sql(
                    model, tuple(columns), on_conflict, tuple(returning), reserve_id_of if returning else None
                ),
                [_json_rows(columns, rows)],
            )
            return list(cursor.fetchall()) if returning else []
    quote = connection.ops.quote_name
    fields = {field.column: field for field in model._meta.concrete_fields}
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(column) for column in columns)
    returning_sql = f" RETURNING {', '.join(quote(column) for column in returning)}" if returning else ""
    with connection.cursor() as cursor:
        adapters = [_adapter(fields[column]) for column in columns]
        if any(adapter is not None for adapter in adapters):
            rows = [
                tuple(value if adapt is None else adapt(value) for value, adapt in zip(row, adapters, strict=True))
                for row in rows
            ]
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        chunk = max(1, _sqlite_max_params() // len(columns))
        results: list[tuple] = []
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


def mark_stored(instance: models.Model) -> models.Model:
    """A model instance built for a row this code just inserted, marked as if read from the database."""
    instance._state.adding, instance._state.db = False, DEFAULT_DB_ALIAS
    return instance


def rows_insert_sql(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple], *, on_conflict: str = ""
) -> tuple[str, list]:
    """PostgreSQL: the statement and parameters rows_insert runs for these rows (without RETURNING), for a
    caller that sends it later together with other statements."""
    return _postgresql_sql(model, tuple(columns), on_conflict, ()), [_json_rows(columns, rows)]


class InsertRows(Protocol):
    """How a caller wants rows inserted: `rows_insert` (at once) or an ingest call's unit of work's
    `insert_later` (with the call's last writes)."""

    def __call__(
        self, model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple], *, on_conflict: str = ""
    ) -> object: ...
