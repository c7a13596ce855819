"""The catch-up: counts new events into the rollups, in ranges of event ids up to a safe high-water mark.

Event ids come from one sequence, but transactions commit out of order: an ingest call may hold id 100
uncommitted while id 101 is already visible. Counting up to the largest visible id would skip 100 for good. So the
mark is taken as Citus documents for incremental rollups: wait, for an instant, until no transaction is writing
events (a lock that conflicts with writers, taken and at once let go), and read the sequence then. Every id up to
that value belongs to a transaction that has committed or rolled back, and every later writer takes a larger one.
The wait is bounded (CAIRN_ROLLUP_LOCK_TIMEOUT_MS): a busy moment skips the round, the next one (beat) tries again.
While a VACUUM (autovacuum included) or an index build holds the events table, the round is skipped without
queueing at all: writers queue behind a waiting lock request, and a vacuum can last minutes. Reports stay exact
meanwhile: they read the events above the watermark themselves.

Idempotent and safe to run concurrently: the range and the watermark move in one transaction, under the watermark
row's lock, so a range is never counted twice; a run that dies counts nothing."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events_app.models import Event
from events_app.rollups.models import (
    ROLLUP_MODELS,
    WATERMARK_PK,
    RollupWatermark,
    rollup_aggregate_sql,
    rollups_supported,
)

# Locks that VACUUM, ANALYZE, CREATE INDEX and the like hold for long, and that the EXCLUSIVE lock would wait for.
MAINTENANCE_LOCKS = (
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


@dataclass
class CatchUpResult:
    batches: int = 0
    through_event_id: int | None = None
    # Why the run stopped short of the mark, if it did ("busy": writers held the events table past the timeout).
    stopped: str | None = None


def safe_high_water_mark() -> int | None:
    """The largest event id such that every smaller one is committed or abandoned; None if writers kept the events
    table busy longer than the lock timeout. Must run outside a transaction that holds other locks: it waits for
    writers, and a writer waiting on such a lock would deadlock with it."""
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        # The events table and its partitions, if it has any.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE granted AND mode = ANY(%s) AND relation IN "
            "(SELECT %s::regclass UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass))",
            [list(MAINTENANCE_LOCKS), table, table],
        )
        if cursor.fetchone()[0]:
            return None
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{int(settings.CAIRN_ROLLUP_LOCK_TIMEOUT_MS)}ms"]
        )
        try:
            with transaction.atomic():  # a savepoint: its rollback lets the lock go at once
                cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                cursor.execute(f"SELECT pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id'))")
                (last_value,) = cursor.fetchone()
                raise _LetGo(last_value or 0)
        except _LetGo as let_go:
            return let_go.value
        except DatabaseError:  # lock_timeout: writers were busy
            return None


class _LetGo(Exception):
    def __init__(self, value: int):
        super().__init__(value)
        self.value = value


def rollups_catch_up(*, time_budget_seconds: float | None = None) -> CatchUpResult:
    """Count the events stored since the last run into the rollups, CAIRN_ROLLUP_BATCH_IDS event ids per
    transaction, until the mark taken at the start or the time budget is reached."""
    result = CatchUpResult()
    if not rollups_supported():
        result.stopped = "not postgresql"
        return result
    mark = safe_high_water_mark()
    if mark is None:
        result.stopped = "busy"
        return result
    started = time.monotonic()
    batch_ids = max(1, int(settings.CAIRN_ROLLUP_BATCH_IDS))
    first_low = None
    while True:
        with transaction.atomic():
            watermark, _ = RollupWatermark.objects.select_for_update().get_or_create(pk=WATERMARK_PK)
            low = watermark.through_event_id
            first_low = low if first_low is None else first_low
            result.through_event_id = low
            if low >= mark:
                _analyze_after_growth(low - first_low)
                return result
            high = min(mark, low + batch_ids)
            with connection.cursor() as cursor:
                cursor.execute(rollup_aggregate_sql("e.id > %s AND e.id <= %s"), [low, high])
            watermark.through_event_id, watermark.updated_at = high, timezone.now()
            watermark.save(update_fields=["through_event_id", "updated_at"])
        result.batches += 1
        result.through_event_id = high
        if time_budget_seconds is not None and time.monotonic() - started > time_budget_seconds:
            result.stopped = "time budget"
            _analyze_after_growth(high - first_low)
            return result


def _analyze_after_growth(event_ids: int) -> None:
    """Fresh planner statistics once a run counted many events: rollup tables fill in bursts (after an upgrade, a
    backfill, an import), and until autovacuum's next ANALYZE the planner takes a 45,000-row rollup range for one
    row and joins it to profiles by nested loops (3.5x slower, docs/benchmarks.md "Against a lean table")."""
    if event_ids < settings.CAIRN_ROLLUP_ANALYZE_EVENTS:
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in ROLLUP_MODELS:
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)}")
