"""Event rows as ingest stores them: plain tuples in EVENT_COLUMNS order, no model instances (building 1,000
of them costs more than storing them), the match rows of the defined events they match, and the probe of the
idempotency keys already stored."""

import json
from collections.abc import Sequence
from contextlib import nullcontext
from functools import cache

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.kernel.sql import InsertRows, rows_insert
from events_app.defined_events.matching import CompiledDefinitions
from events_app.models import DefinedEventMatch, Event
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

# One match row (defined_events/backfill.py writes the same): the defined event, the event, its time and original
# profile.
MATCH_COLUMNS = ("defined_event_id", "event_id", "timestamp", "original_profile_id")

# A few rows: one INSERT is one round trip, where COPY is two (its start, its end; two more in a savepoint).
COPY_MIN_ROWS = 20
# COPY's text format: a backslash starts an escape, tab ends a column, newline a row.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def events_insert(
    rows: list[tuple], insert: InsertRows = rows_insert, definitions: CompiledDefinitions | None = None
) -> None:
    """Store new events given as EVENT_COLUMNS tuples. On PostgreSQL a batch goes by COPY, several times
    faster than a bulk INSERT (docs/benchmarks.md). COPY cannot skip conflicts: if a concurrent call stored the
    same idempotency_key first, the COPY fails inside its savepoint and the batch is inserted skipping them.
    `insert`: how the INSERT of a few events (or the fallback) is sent; ingest holds it back for its call's
    last writes (IngestUnitOfWork.insert_later). `definitions`: the environment's defined events
    (defined_events/cache.py); the events matching one are stored with their match rows (_matched_insert)."""
    if not rows:
        return
    received_at = timezone.now()
    if definitions is not None:
        matched = [definitions.matching(row[4], row[6]) for row in rows]
        if any(matched):
            _matched_insert([(row, pks) for row, pks in zip(rows, matched, strict=True) if pks], received_at)
            rows = [row for row, pks in zip(rows, matched, strict=True) if not pks]
            if not rows:
                return
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        import psycopg

        copy_sql = f"COPY {Event._meta.db_table} ({', '.join(EVENT_COLUMNS)}, received_at) FROM STDIN"
        data = _copy_text(rows, received_at)
        # Only an idempotency key can make the COPY fail (a concurrent call stored it first): without one, no
        # savepoint, whose SAVEPOINT and RELEASE are two more round trips.
        savepoint = transaction.atomic() if any(row[7] is not None for row in rows) else nullcontext()
        try:
            with savepoint, connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                copy.write(data)
            return
        except (IntegrityError, psycopg.IntegrityError):  # the raw cursor's errors are not Django's
            pass
    insert(
        Event,
        (*EVENT_COLUMNS, "received_at"),
        [(*row, received_at) for row in rows],
        on_conflict="ON CONFLICT DO NOTHING",
    )


def _copy_text(rows: list[tuple], received_at) -> bytes:
    """The rows (EVENT_COLUMNS) and received_at as COPY text, built in one go: one write, not one Python call of
    psycopg's per row (docs/benchmarks.md, "Ingest profile"). The ids are ints, the times aware datetimes
    (ISO 8601, which timestamptz reads), the properties JSON text for the jsonb column (_properties_json), whose
    control characters are escaped already, so only its backslashes need escaping again."""
    dumps, escapes = _properties_json, _COPY_ESCAPES
    tail = f"\t{received_at.isoformat()}\n"
    lines = []
    for environment_id, profile_id, original_profile_id, session_id, name, moment, properties, key in rows:
        key_text = "\\N" if key is None else key.translate(escapes)
        session_text = "\\N" if session_id is None else session_id
        properties_text = dumps(properties).replace("\\", "\\\\")
        lines.append(
            f"{environment_id}\t{profile_id}\t{original_profile_id}\t{session_text}\t{name.translate(escapes)}\t"
            f"{moment.isoformat()}\t{properties_text}\t{key_text}{tail}"
        )
    return "".join(lines).encode()


def _properties_json(properties: dict) -> str:
    """JSON text of an event's properties: by orjson, several times faster than json.dumps on the bulk path; by
    json.dumps for what orjson refuses (an integer beyond 64 bits, which JSON and jsonb allow)."""
    try:
        return orjson.dumps(properties).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(properties)


@cache
def _matched_sql() -> str:
    """PostgreSQL: events and their match rows in one statement. Each event takes its id from the sequence in the
    first clause, so the match rows know it without a round trip; an event skipped as a duplicate (a concurrent
    call stored its idempotency key first) is not in `stored`, and gets no match row. Table and column names and
    types from the models; the rows are one JSON parameter, as config/kernel/sql.py sends them."""
    quote = connection.ops.quote_name
    fields = {field.column: field for field in Event._meta.concrete_fields}
    columns = (*EVENT_COLUMNS, "received_at")
    column_list = ", ".join(quote(column) for column in columns)
    record = ", ".join(f"{quote(column)} {fields[column].db_type(connection)}" for column in columns)
    table, match_table = quote(Event._meta.db_table), quote(DefinedEventMatch._meta.db_table)
    return (
        f"WITH new_event AS (SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id, new_row.* "
        f"FROM json_to_recordset(%s::json) AS new_row ({record}, defined_event_ids bigint[])), "
        f"stored AS (INSERT INTO {table} (id, {column_list}) SELECT id, {column_list} FROM new_event "
        f"ON CONFLICT DO NOTHING RETURNING id) "
        f'INSERT INTO {match_table} (defined_event_id, event_id, "timestamp", original_profile_id) '
        f'SELECT matched.defined_event_id, new_event.id, new_event."timestamp", new_event.original_profile_id '
        f"FROM stored "
        f"JOIN new_event ON new_event.id = stored.id "
        f"CROSS JOIN unnest(new_event.defined_event_ids) AS matched (defined_event_id) ON CONFLICT DO NOTHING"
    )


def _matched_insert(pairs: Sequence[tuple[tuple, tuple[int, ...]]], received_at) -> None:
    """Events (EVENT_COLUMNS tuples) with the pks of the defined events each matches: stored at once, not held
    back, since their match rows need their ids."""
    columns = (*EVENT_COLUMNS, "received_at")
    if connection.vendor == "postgresql":
        document = [
            {**dict(zip(columns, (*row, received_at), strict=True)), "defined_event_ids": list(pks)}
            for row, pks in pairs
        ]
        with connection.cursor() as cursor:
            cursor.execute(_matched_sql(), [json.dumps(document, default=_iso)])
        return
    # SQLite (the embedded default): one event at a time, each answering its id.
    for row, pks in pairs:
        stored = rows_insert(
            Event, columns, [(*row, received_at)], on_conflict="ON CONFLICT DO NOTHING", returning=("id",)
        )
        if stored:
            rows_insert(
                DefinedEventMatch,
                MATCH_COLUMNS,
                [(pk, stored[0][0], row[5], row[2]) for pk in pks],
                on_conflict="ON CONFLICT DO NOTHING",
            )


def _iso(value):
    return value.isoformat()


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
