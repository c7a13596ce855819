"""Event rows as ingest stores them: plain tuples in EVENT_COLUMNS order, no model instances (building 1,000
of them costs more than storing them), and the probe of the idempotency keys already stored."""

import json

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.kernel.sql import InsertRows, rows_insert
from events_app.models import Event
from users_app.models import Environment

# One new event: the values of these columns, in this order (received_at is added on insert).
EVENT_COLUMNS = (
    "environment_id",
    "profile_id",
    "original_profile_id",
    "session_id",
    "name",
    "timestamp",
    "properties",
    "idempotency_key",
)

# A few rows: one INSERT is one round trip, where COPY in a savepoint is three.
COPY_MIN_ROWS = 20
# EVENT_COLUMNS + received_at as COPY receives them (properties as JSON text, which the jsonb column parses).
COPY_TYPES = ("int8", "int8", "int8", "int8", "text", "timestamptz", "text", "text", "timestamptz")


def events_insert(rows: list[tuple], insert: InsertRows = rows_insert) -> None:
    """Store new events given as EVENT_COLUMNS tuples. On PostgreSQL a batch goes by COPY, several times
    faster than a bulk INSERT (docs/benchmarks.md). COPY cannot skip conflicts: if a concurrent call stored the
    same idempotency_key first, the COPY fails inside its savepoint and the batch is inserted skipping them.
    `insert`: how the INSERT of a few events (or the fallback) is sent; ingest holds it back for its call's
    last writes (IngestUnitOfWork.insert_later)."""
    if not rows:
        return
    received_at = timezone.now()
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        import psycopg

        copy_sql = f"COPY {Event._meta.db_table} ({', '.join(EVENT_COLUMNS)}, received_at) FROM STDIN"
        dumps = json.dumps
        try:
            with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                # Declared types and the properties as JSON text: psycopg then picks each column's dumper
                # once, not per value (less Python time than wrapping each value in Jsonb, docs/benchmarks.md).
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row((*row[:6], dumps(row[6]), row[7], received_at))
            return
        except (IntegrityError, psycopg.IntegrityError):  # the raw cursor's errors are not Django's
            pass
    insert(
        Event,
        (*EVENT_COLUMNS, "received_at"),
        [(*row, received_at) for row in rows],
        on_conflict="ON CONFLICT DO NOTHING",
    )


def stored_idempotency_keys(environment: Environment, keys: set[str]) -> set[str]:
    """Which of these idempotency keys the environment's events have already."""
    if connection.vendor != "postgresql":
        return set(
            Event.objects.filter(environment=environment, idempotency_key__in=keys).values_list(
                "idempotency_key", flat=True
            )
        )
    # One probe of the unique (environment, idempotency_key) index per key: the LATERAL ... LIMIT 1 keeps
    # PostgreSQL from choosing a scan of all the environment's events, which it did for `IN (...)` with fresh
    # statistics too, and which grows with the table (docs/benchmarks.md).
    sql = (
        f"SELECT sent.key FROM unnest(%s::text[]) AS sent (key) CROSS JOIN LATERAL ("
        f"SELECT 1 FROM {Event._meta.db_table} AS stored "
        f"WHERE stored.environment_id = %s AND stored.idempotency_key = sent.key LIMIT 1) AS found"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(keys), environment.pk])
        return {key for (key,) in cursor.fetchall()}
