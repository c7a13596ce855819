"""Event rows as ingest stores them: plain tuples in EVENT_COLUMNS order, no model instances (building 1,000
of them costs more than storing them), the match rows of the defined events they match, the probe of the
idempotency keys already stored and the claim of new ones (EventIdempotencyKey)."""

import json
from collections.abc import Sequence
from functools import cache

import orjson
from django.db import connection
from django.utils import timezone

from config.kernel.sql import InsertRows, rows_insert
from events_app.defined_events.matching import CompiledDefinitions
from events_app.models import DefinedEventMatch, Event, EventIdempotencyKey
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
) -> int:
    """Store new events given as EVENT_COLUMNS tuples. On PostgreSQL a batch goes by COPY, several times
    faster than a bulk INSERT (docs/benchmarks.md). The idempotency keys are claimed first, in the same
    transaction (_keys_claim): an event whose key a concurrent call stored first is skipped, the rest of the batch
    kept. `insert`: how the INSERT of a few events is sent; ingest holds it back for its call's
    last writes (IngestUnitOfWork.insert_later). `definitions`: the environment's defined events
    (defined_events/cache.py); the events matching one are stored with their match rows (_matched_insert).
    Answers how many were stored (those skipped for their key are not)."""
    if not rows:
        return 0
    received_at = timezone.now()
    matched = [() for _ in rows]
    if definitions is not None:
        matched = [definitions.matching(row[4], row[6]) for row in rows]
    if connection.vendor != "postgresql":
        # SQLite (the embedded default): an event with a key or a match goes alone, as it needs its id answered.
        alone = [(row, pks) for row, pks in zip(rows, matched, strict=True) if pks or row[7] is not None]
        rows = [row for row, pks in zip(rows, matched, strict=True) if not pks and row[7] is None]
        insert(Event, (*EVENT_COLUMNS, "received_at"), [(*row, received_at) for row in rows])
        return _one_by_one_insert(alone) + len(rows)
    ids = _keys_claim(rows)
    if ids is not None:  # the rows whose key was claimed (or without one), each with the id it will have
        kept = [index for index, event_id in enumerate(ids) if event_id is not None]
        rows, matched, ids = [rows[i] for i in kept], [matched[i] for i in kept], [ids[i] for i in kept]
    stored = len(rows)
    if any(matched):
        _matched_insert(
            [(row, pks, ids and ids[i]) for i, (row, pks) in enumerate(zip(rows, matched, strict=True)) if pks],
            received_at,
        )
        unmatched = [i for i, pks in enumerate(matched) if not pks]
        rows, ids = [rows[i] for i in unmatched], ids and [ids[i] for i in unmatched]
    if not rows:
        return stored
    id_column = ("id",) if ids else ()
    if len(rows) >= COPY_MIN_ROWS:
        copy_sql = f"COPY {Event._meta.db_table} ({', '.join((*id_column, *EVENT_COLUMNS))}, received_at) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
            copy.write(_copy_text(rows, received_at, ids))
        return stored
    insert(
        Event,
        (*id_column, *EVENT_COLUMNS, "received_at"),
        [(*id_values, *row, received_at) for id_values, row in zip(_id_values(ids, len(rows)), rows, strict=True)],
    )
    return stored


def _id_values(ids: list[int] | None, count: int) -> list[tuple]:
    """Each row's leading id value: its claimed id, or nothing when the rows take theirs from the sequence."""
    return [()] * count if ids is None else [(event_id,) for event_id in ids]


def _keys_claim(rows: list[tuple]) -> list[int | None] | None:
    """PostgreSQL: claim the rows' idempotency keys in EventIdempotencyKey, each with the id its event will have.
    Every row gets an id from the events' sequence, in the rows' order, in the same statement (so a batch is still
    one COPY). Answers, for each row, that id, or None for a row to skip: its key was stored already, by an earlier
    call or by a concurrent one (whose claim this INSERT waits for; had that call rolled back, this one claims the
    key), or by an earlier row of the batch. None when no row has a key (the events take their ids themselves).
    The keys go in one sorted order, so two calls claiming overlapping keys wait for one another in that order
    and never deadlock."""
    first_of_key: dict[tuple[int, str], int] = {}
    for position, row in enumerate(rows):
        if row[7] is not None:
            first_of_key.setdefault((row[0], row[7]), position)
    if not first_of_key:
        return None
    quote = connection.ops.quote_name
    table, keys = quote(Event._meta.db_table), quote(EventIdempotencyKey._meta.db_table)
    sql = (
        f"WITH numbered AS MATERIALIZED (SELECT position, nextval(pg_get_serial_sequence('{table}', 'id')) AS id "
        f"FROM generate_series(0, %s) AS position), "
        f"claimed AS (INSERT INTO {keys} (environment_id, key, event_id) "
        f"SELECT sent.environment_id, sent.key, numbered.id "
        f"FROM unnest(%s::bigint[], %s::text[], %s::int[]) AS sent (environment_id, key, position) "
        f"JOIN numbered USING (position) ORDER BY sent.environment_id, sent.key "
        f"ON CONFLICT DO NOTHING RETURNING event_id) "
        f"SELECT numbered.id, claimed.event_id IS NOT NULL FROM numbered "
        f"LEFT JOIN claimed ON claimed.event_id = numbered.id ORDER BY numbered.position"
    )
    sent = list(first_of_key.items())
    params = [len(rows) - 1, [pair[0] for pair, _ in sent], [pair[1] for pair, _ in sent], [p for _, p in sent]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        answered = cursor.fetchall()
    return [
        event_id if row[7] is None or (claimed and first_of_key[(row[0], row[7])] == position) else None
        for position, (row, (event_id, claimed)) in enumerate(zip(rows, answered, strict=True))
    ]


def _copy_text(rows: list[tuple], received_at, ids: list[int] | None = None) -> bytes:
    """The rows (EVENT_COLUMNS) and received_at as COPY text, built in one go: one write, not one Python call of
    psycopg's per row (docs/benchmarks.md, "Ingest profile"). The ids are ints, the times aware datetimes
    (ISO 8601, which timestamptz reads), the properties JSON text for the jsonb column (_properties_json), whose
    control characters are escaped already, so only its backslashes need escaping again."""
    dumps, escapes = _properties_json, _COPY_ESCAPES
    tail = f"\t{received_at.isoformat()}\n"
    lines = []
    heads = [""] * len(rows) if ids is None else [f"{event_id}\t" for event_id in ids]
    for head, (environment_id, profile_id, original_profile_id, session_id, name, moment, properties, key) in zip(
        heads, rows, strict=True
    ):
        key_text = "\\N" if key is None else key.translate(escapes)
        session_text = "\\N" if session_id is None else session_id
        properties_text = dumps(properties).replace("\\", "\\\\")
        lines.append(
            f"{head}{environment_id}\t{profile_id}\t{original_profile_id}\t{session_text}\t{name.translate(escapes)}\t"
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
    """PostgreSQL: events and their match rows in one statement. Each event takes the id its key was claimed with
    (_keys_claim), else one from the sequence in the first clause, so the match rows know it without a round trip.
    Table and column names and types from the models; the rows are one JSON parameter, as config/kernel/sql.py
    sends them."""
    quote = connection.ops.quote_name
    fields = {field.column: field for field in Event._meta.concrete_fields}
    columns = (*EVENT_COLUMNS, "received_at")
    column_list = ", ".join(quote(column) for column in columns)
    record = ", ".join(f"{quote(column)} {fields[column].db_type(connection)}" for column in columns)
    table, match_table = quote(Event._meta.db_table), quote(DefinedEventMatch._meta.db_table)
    return (
        f"WITH new_event AS (SELECT COALESCE(new_row.claimed_id, nextval(pg_get_serial_sequence('{table}', 'id'))) "
        f"AS id, new_row.* "
        f"FROM json_to_recordset(%s::json) AS new_row ({record}, claimed_id bigint, defined_event_ids bigint[])), "
        f"stored AS (INSERT INTO {table} (id, {column_list}) SELECT id, {column_list} FROM new_event RETURNING id) "
        f'INSERT INTO {match_table} (defined_event_id, event_id, "timestamp", original_profile_id) '
        f'SELECT matched.defined_event_id, new_event.id, new_event."timestamp", new_event.original_profile_id '
        f"FROM stored "
        f"JOIN new_event ON new_event.id = stored.id "
        f"CROSS JOIN unnest(new_event.defined_event_ids) AS matched (defined_event_id) ON CONFLICT DO NOTHING"
    )


def _matched_insert(triples: Sequence[tuple[tuple, tuple[int, ...], int | None]], received_at) -> None:
    """PostgreSQL: events (EVENT_COLUMNS tuples) with the pks of the defined events each matches and the id its
    key was claimed with (or None): stored at once, not held back, since their match rows need their ids."""
    columns = (*EVENT_COLUMNS, "received_at")
    document = [
        {**dict(zip(columns, (*row, received_at), strict=True)), "claimed_id": event_id, "defined_event_ids": pks}
        for row, pks, event_id in triples
    ]
    with connection.cursor() as cursor:
        cursor.execute(_matched_sql(), [json.dumps(document, default=_iso)])


def _one_by_one_insert(pairs: Sequence[tuple[tuple, tuple[int, ...]]]) -> int:
    """SQLite (the embedded default, where writers take turns): events with an idempotency key or matches, one at a
    time. The key is claimed first (a key stored already skips its event), then the event answers its id for the
    key and the match rows."""
    received_at, stored = timezone.now(), 0
    for row, pks in pairs:
        environment_id, key = row[0], row[7]
        if key is not None:
            # event_id 0 until the event has its id, a few statements later in this transaction.
            claim = [(environment_id, key, 0)]
            columns = ("environment_id", "key", "event_id")
            if not rows_insert(
                EventIdempotencyKey, columns, claim, on_conflict="ON CONFLICT DO NOTHING", returning=("key",)
            ):
                continue
        ((event_id,),) = rows_insert(Event, (*EVENT_COLUMNS, "received_at"), [(*row, received_at)], returning=("id",))
        stored += 1
        if key is not None:
            EventIdempotencyKey.objects.filter(environment_id=environment_id, key=key).update(event_id=event_id)
        if pks:
            rows_insert(
                DefinedEventMatch,
                MATCH_COLUMNS,
                [(pk, event_id, row[5], row[2]) for pk in pks],
                on_conflict="ON CONFLICT DO NOTHING",
            )
    return stored


def _iso(value):
    return value.isoformat()


def stored_idempotency_keys(environment: Environment, keys: set[str]) -> set[str]:
    """Which of these idempotency keys the environment's events have already (one probe each of
    EventIdempotencyKey's primary key). Ingest drops those events before their sessions are assigned; a key stored
    by a concurrent call meanwhile is caught by the claim (_keys_claim)."""
    if connection.vendor != "postgresql":
        return set(
            EventIdempotencyKey.objects.filter(environment=environment, key__in=keys).values_list("key", flat=True)
        )
    # One probe of the primary key per key: the LATERAL ... LIMIT 1 keeps PostgreSQL from choosing a scan of the
    # whole table for `IN (...)`, which it does while the table's statistics still say it is small (a new install
    # taking its first bulk calls: measured 3 to 4 times slower, docs/benchmarks.md "Partitions (session 11)").
    sql = (
        f"SELECT sent.key FROM unnest(%s::text[]) AS sent (key) CROSS JOIN LATERAL ("
        f"SELECT 1 FROM {connection.ops.quote_name(EventIdempotencyKey._meta.db_table)} AS stored "
        f"WHERE stored.environment_id = %s AND stored.key = sent.key LIMIT 1) AS found"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(keys), environment.pk])
        return {key for (key,) in cursor.fetchall()}
