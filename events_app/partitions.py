"""The events table partitioned by month (PostgreSQL): one partition per UTC month of `timestamp`, plus a DEFAULT
partition that takes an event of any month without one, so ingest never fails on an event's time (an event may be
years old, or ahead). SQLite keeps one plain table: everything here answers "nothing to do" there.

- The migration (0010) turns the table into a partitioned one (table_partition_by_month) and back
  (table_unpartition), keeping the id sequence's values and every index.
- Beat (`cairn.event_partitions_ensure`, every CAIRN_EVENT_PARTITIONS_SECONDS) makes the partitions of the current
  month and CAIRN_EVENT_PARTITIONS_AHEAD months after it, and one for each month that has rows in DEFAULT, moving
  those rows into it (event_partitions_ensure).
- Retention drops a month's partition whole when every environment with rows in it has expired all of that month
  (expired_partitions_drop), instead of deleting its rows in batches (users_app/deletion/retention.py).

Partitions are named `<table>_pYYYY_MM` (and `<table>_default`): the name says the month, so nothing here parses
partition bounds. Operators: docs/operations.md, "Event partitions"."""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

EVENTS_TABLE = "events_app_event"
# Serializes the partition changes of concurrent runs (beat's, retention's, a test's): pg_advisory_xact_lock's key.
PARTITIONS_LOCK_KEY = 16_0010
# How long a partition change waits for the locks it needs before it gives up until the next run: while it waits,
# the writers queued behind its request wait too.
PARTITION_LOCK_TIMEOUT_MS = 2000


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def month_after(month: date, months: int = 1) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def _partition_ddl(table: str, month: date) -> str:
    quote = connection.ops.quote_name
    return (
        f"CREATE TABLE {quote(partition_name(table, month))} PARTITION OF {quote(table)} "
        f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(month_after(month))})"
    )


def is_partitioned(table: str = EVENTS_TABLE) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))", [table])
        return cursor.fetchone()[0]


def partition_months(table: str = EVENTS_TABLE) -> list[date]:
    """The months that have a partition, in order (from the partitions' names)."""
    pattern = re.compile(rf"{re.escape(table)}_p(\d{{4}})_(\d{{2}})")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            [connection.ops.quote_name(table)],
        )
        names = [name.strip('"') for (name,) in cursor.fetchall()]
    matches = [pattern.fullmatch(name) for name in names]
    return sorted(date(int(found[1]), int(found[2]), 1) for found in matches if found)


def _months_in(cursor, relation: str) -> list[date]:
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC')::date FROM {relation} ORDER BY 1"
    )
    return [month for (month,) in cursor.fetchall()]


def _months_ahead(now: datetime) -> list[date]:
    current = month_start(now.astimezone(UTC))
    return [month_after(current, step) for step in range(int(settings.CAIRN_EVENT_PARTITIONS_AHEAD) + 1)]


def _index_definitions(cursor, table: str) -> list[str]:
    """The CREATE INDEX statements of the table's indexes but its primary key, as the catalog has them: what the
    table has now, whichever migrations made it. A unique index other than the primary key cannot carry over (a
    partitioned table's unique keys must hold the partition key): the migration fails rather than drop it."""
    cursor.execute(
        "SELECT pg_get_indexdef(indexrelid), indisunique FROM pg_index "
        "WHERE indrelid = %s::regclass AND NOT indisprimary ORDER BY indexrelid::regclass::text",
        [connection.ops.quote_name(table)],
    )
    rows = cursor.fetchall()
    unique = [definition for definition, is_unique in rows if is_unique]
    if unique:
        raise RuntimeError(f"{table} has unique indexes without its partition key: {unique}")
    # A partitioned table's indexes read "ON ONLY <table>": on a plain table the ONLY has no meaning.
    return [definition.replace(" ON ONLY ", " ON ") for definition, _ in rows]


def _table_rebuild(cursor, table: str, *, partitioned_months: list[date] | None) -> None:
    """Replace the table by a new one with the same columns, rows, indexes and id sequence value: partitioned by
    month (these months and DEFAULT), or plain when `partitioned_months` is None. Indexes are built after the rows
    are in (faster than maintaining them row by row); the old table goes last."""
    quote = connection.ops.quote_name
    old = f"{table}_previous"
    indexes = _index_definitions(cursor, table)
    cursor.execute(f"SELECT pg_get_serial_sequence('{quote(table)}', 'id')")
    (sequence,) = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
    last_value, is_called = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
    # The new table's identity sequence takes the old one's name.
    cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {quote(old + '_id_seq')}")
    cursor.execute(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass AND NOT indisprimary",
        [quote(old)],
    )
    for (index,) in cursor.fetchall():
        cursor.execute(f"DROP INDEX {index}")
    cursor.execute(f"ALTER TABLE {quote(old)} DROP CONSTRAINT {quote(table + '_pkey')}")
    like = f"LIKE {quote(old)} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION"
    if partitioned_months is None:
        cursor.execute(f"CREATE TABLE {quote(table)} ({like})")
        primary_key = "id"
    else:
        cursor.execute(f'CREATE TABLE {quote(table)} ({like}) PARTITION BY RANGE ("timestamp")')
        for month in sorted(set(partitioned_months)):
            cursor.execute(_partition_ddl(table, month))
        cursor.execute(f"CREATE TABLE {quote(default_partition_name(table))} PARTITION OF {quote(table)} DEFAULT")
        # A partitioned table's primary key must hold the partition key; ids stay one sequence's, so unique.
        primary_key = 'id, "timestamp"'
    cursor.execute(f"INSERT INTO {quote(table)} SELECT * FROM {quote(old)}")
    cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(table + '_pkey')} PRIMARY KEY ({primary_key})")
    for definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"SELECT pg_get_serial_sequence('{quote(table)}', 'id')")
    (new_sequence,) = cursor.fetchone()
    cursor.execute("SELECT setval(%s, %s, %s)", [new_sequence, last_value, is_called])
    cursor.execute(f"DROP TABLE {quote(old)}")
    cursor.execute(f"ANALYZE {quote(table)}")


def table_partition_by_month(table: str = EVENTS_TABLE, *, now: datetime | None = None) -> None:
    """The migration's step: the plain table becomes partitioned, one partition for each month it has rows in and
    for the months ahead (_months_ahead), and DEFAULT."""
    with connection.cursor() as cursor:
        months = _months_in(cursor, connection.ops.quote_name(table)) + _months_ahead(now or timezone.now())
        _table_rebuild(cursor, table, partitioned_months=months)


def table_unpartition(table: str = EVENTS_TABLE) -> None:
    """The migration's reverse: one plain table again, primary key (id)."""
    with connection.cursor() as cursor:
        _table_rebuild(cursor, table, partitioned_months=None)


@dataclass
class EnsureResult:
    created: list[date] = field(default_factory=list)
    rows_moved: int = 0
    # Why it stopped early, if it did ("busy": the locks were not had within PARTITION_LOCK_TIMEOUT_MS).
    stopped: str | None = None


def _changes_locked(cursor) -> None:
    """In a transaction: wait for the other partition changes, and give up on locks held too long."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK_KEY])
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{PARTITION_LOCK_TIMEOUT_MS}ms"])


def _month_partition_add(table: str, month: date) -> int:
    """Make the month's partition, with the month's rows that DEFAULT holds; answers how many moved. Locks the table
    first (SHARE UPDATE EXCLUSIVE, which ingest's and reports' locks do not conflict with), then DEFAULT
    (ACCESS EXCLUSIVE: no row lands there meanwhile), in the order every statement on the table takes them."""
    quote = connection.ops.quote_name
    new, default = quote(partition_name(table, month)), quote(default_partition_name(table))
    low, high = _bound(month), _bound(month_after(month))
    with transaction.atomic(), connection.cursor() as cursor:
        _changes_locked(cursor)
        if month in partition_months(table):
            return 0
        cursor.execute(f"LOCK TABLE {quote(table)} IN SHARE UPDATE EXCLUSIVE MODE")
        cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            f"CREATE TABLE {new} (LIKE {quote(table)} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)"
        )
        cursor.execute(
            f'WITH moved AS (DELETE FROM {default} WHERE "timestamp" >= {low} AND "timestamp" < {high} RETURNING *) '
            f"INSERT INTO {new} SELECT * FROM moved"
        )
        moved = cursor.rowcount
        # The check lets ATTACH skip its own scan of the new partition; ATTACH builds the table's indexes on it.
        cursor.execute(
            f"ALTER TABLE {new} ADD CONSTRAINT {quote('month_' + month.strftime('%Y_%m'))} "
            f'CHECK ("timestamp" >= {low} AND "timestamp" < {high})'
        )
        cursor.execute(f"ALTER TABLE {quote(table)} ATTACH PARTITION {new} FOR VALUES FROM ({low}) TO ({high})")
        cursor.execute(f"ALTER TABLE {new} DROP CONSTRAINT {quote('month_' + month.strftime('%Y_%m'))}")
        return moved


def event_partitions_ensure(*, now: datetime | None = None, table: str = EVENTS_TABLE) -> EnsureResult:
    """Beat's work: the partitions of this month and the CAIRN_EVENT_PARTITIONS_AHEAD months after it, and of every
    month with rows in DEFAULT (those rows moved into it). Idempotent; a run that meets busy locks stops, and the
    next one goes on."""
    result = EnsureResult()
    if not is_partitioned(table):
        result.stopped = "not partitioned"
        return result
    with connection.cursor() as cursor:
        in_default = _months_in(cursor, connection.ops.quote_name(default_partition_name(table)))
    existing = set(partition_months(table))
    for month in sorted(set(_months_ahead(now or timezone.now()) + in_default) - existing):
        try:
            result.rows_moved += _month_partition_add(table, month)
        except DatabaseError:  # lock_timeout
            result.stopped = "busy"
            return result
        result.created.append(month)
    return result


def event_partitions_cover(first: date, last: date, *, table: str = EVENTS_TABLE) -> list[date]:
    """Make the partitions of every month from `first`'s to `last`'s that has none (a bulk load of history, before
    its rows go in: bench/common.py); answers those made."""
    if not is_partitioned(table):
        return []
    existing, made, month = set(partition_months(table)), [], month_start(first)
    while month <= last:
        if month not in existing:
            _month_partition_add(table, month)
            made.append(month)
        month = month_after(month)
    return made


# ---- retention ----------------------------------------------------------------------------------------------


def _environments_in(cursor, partition: str) -> list[int]:
    """The environments with rows in the partition: a walk of its (environment, timestamp) index, one probe per
    environment (a loose index scan), not a read of every row."""
    cursor.execute(
        f"WITH RECURSIVE found AS ((SELECT environment_id FROM {partition} ORDER BY environment_id LIMIT 1) "
        f"UNION ALL SELECT (SELECT environment_id FROM {partition} WHERE environment_id > found.environment_id "
        f"ORDER BY environment_id LIMIT 1) FROM found WHERE found.environment_id IS NOT NULL) "
        f"SELECT environment_id FROM found WHERE environment_id IS NOT NULL"
    )
    return [environment_id for (environment_id,) in cursor.fetchall()]


@dataclass
class DroppedPartition:
    month: date
    environments: list[int]
    events: int


def expired_partitions_drop(cutoffs: dict[int, datetime], *, table: str = EVENTS_TABLE) -> list[DroppedPartition]:
    """Drop (detach, then drop) each month's partition whose rows all belong to environments whose retention
    cutoff (`cutoffs`: {environment pk: events before this time expire}) is at or after the month's end. The rows
    keyed by its events' ids go in the same transaction (defined-event matches, idempotency keys), so a report
    sees the month's events and their matches whole or gone. Answers the partitions dropped: the caller rebuilds
    their environments' rollups and removes the sessions left empty, as after the batched DELETE. Partitions without
    rows stay (cheap; late events of their month still land in them)."""
    dropped: list[DroppedPartition] = []
    if not cutoffs or not is_partitioned(table):
        return dropped
    quote = connection.ops.quote_name
    for month in partition_months(table):
        end = datetime.combine(month_after(month), datetime.min.time(), tzinfo=UTC)
        expired = {pk for pk, cutoff in cutoffs.items() if cutoff >= end}
        if not expired:
            continue
        partition = quote(partition_name(table, month))
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _changes_locked(cursor)
                # ACCESS EXCLUSIVE (which DETACH takes anyway) before reading who has rows there: no ingest call can
                # add a row of another environment between the check and the drop.
                cursor.execute(f"LOCK TABLE {quote(table)} IN ACCESS EXCLUSIVE MODE")
                environments = _environments_in(cursor, partition)
                if not environments or not set(environments) <= expired:
                    continue
                cursor.execute(f"SELECT count(*) FROM {partition}")
                (events,) = cursor.fetchone()
                _side_rows_of_partition_delete(cursor, partition)
                cursor.execute(f"ALTER TABLE {quote(table)} DETACH PARTITION {partition}")
                cursor.execute(f"DROP TABLE {partition}")
                dropped.append(DroppedPartition(month=month, environments=environments, events=events))
        except DatabaseError:  # lock_timeout: retention's batched DELETE takes the month this time
            continue
    return dropped


def _side_rows_of_partition_delete(cursor, partition: str) -> None:
    """The defined-event matches and idempotency keys of the partition's events (events_app.models.
    event_side_rows_delete's rows, for a whole partition at once)."""
    quote = connection.ops.quote_name
    for model_name in ("DefinedEventMatch", "EventIdempotencyKey"):
        side = quote(apps.get_model("events_app", model_name)._meta.db_table)
        cursor.execute(f"DELETE FROM {side} WHERE event_id IN (SELECT id FROM {partition})")
