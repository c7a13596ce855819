"""Applying a merge, the task's work (SPEC 5): move a merged source's events and sessions to its destination.
The identify-time side (tombstone, properties, queuing) is in request.py; users_app/tasks.py is the Celery
adapter that calls `merge_apply` and owns the retry policy."""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Subquery
from django.utils import timezone

from events_app.models import Event, Session
from users_app.models import MergeRecord

# Default rows per batch; settings.CAIRN_MERGE_BATCH_SIZE overrides it.
MOVE_BATCH_SIZE = 5000
# Rows (per table) the task's first transaction moves itself: a history up to this size is done in it.
FIRST_SLICE = 1000


class _NoLongerRunning(Exception):
    """Raised inside a batch's transaction to roll it back: the merge was finished or failed meanwhile."""


def _settings_int(name: str, default: int, minimum: int) -> int:
    return max(minimum, int(getattr(settings, name, default)))


# A batch of rows to move: the source's rows of one table between two keys of the walk, newest first. `above`
# is the previous batch's last key (exclusive; None for the first batch), `down_to` this batch's last key
# (inclusive; None for the last batch, which takes everything below `above`). On PostgreSQL a key is
# (time, id): events are walked on their (profile, -timestamp, -id) index; sessions on (profile, -ended_at),
# ties sorted by id (a person has about 100 times fewer sessions than events). On SQLite a key is the id,
# walked upwards.
KeyRange = tuple[tuple | None, tuple | None]


@dataclass(frozen=True)
class _Walk:
    """The order the merge walks a table's rows of one profile in, as SQL: its key columns, its ORDER BY, the
    condition "past this key" (exclusive) and "not past this key" (inclusive)."""

    key: str
    order: str
    past: str
    not_past: str


def _walk_of(model) -> _Walk:
    if connection.vendor == "postgresql":
        at = connection.ops.quote_name("timestamp" if model is Event else "ended_at")
        return _Walk(f"{at}, id", f"{at} DESC, id DESC", f"({at}, id) < (%s, %s)", f"({at}, id) >= (%s, %s)")
    return _Walk("id", "id", "id > %s", "id <= %s")


def _key_ranges(model, *, source_id: int, batch_size: int) -> Iterator[KeyRange]:
    """Cut the source's rows of `model` into ranges of `batch_size` rows. The walk reads one key per batch
    (the batch's last, found by skipping `batch_size - 1` index entries), so the batches can move while it
    goes on: each batch's UPDATE then scans just its own range of the index, as one plain UPDATE would."""
    walk = _walk_of(model)
    table = connection.ops.quote_name(model._meta.db_table)
    above = None
    while True:
        past, parameters = _range_condition(walk, (above, None))
        with connection.cursor() as db:
            db.execute(
                f"SELECT {walk.key} FROM {table} WHERE profile_id = %s{past} ORDER BY {walk.order} LIMIT 1 OFFSET %s",
                [source_id, *parameters, batch_size - 1],
            )
            down_to = db.fetchone()
        yield above, down_to
        if down_to is None:
            return
        above = down_to


def _range_condition(walk: _Walk, key_range: KeyRange) -> tuple[str, list]:
    """The SQL (" AND ..." clauses) and parameters that keep a walk's rows to this range."""
    above, down_to = key_range
    sql, parameters = "", []
    if above:
        sql, parameters = f"{sql} AND {walk.past}", [*parameters, *above]
    if down_to:
        sql, parameters = f"{sql} AND {walk.not_past}", [*parameters, *down_to]
    return sql, parameters


def _move_range(model, key_range: KeyRange, *, merge_id: int, source_id: int, destination_id: int) -> bool:
    """Move the rows of this range still on the source to the destination, in one short transaction that also
    adds what it moved to the record's counters and heartbeat, so counts survive a crash exactly. The record's
    row lock is taken last, held only for the commit. A batch whose merge is no longer running (another
    worker finished it, or it failed) is rolled back: returns False."""
    in_range, parameters = _range_condition(_walk_of(model), key_range)
    try:
        with transaction.atomic():
            with connection.cursor() as db:
                if connection.vendor == "postgresql":
                    # A commit lost in a crash is redone by the next run: the move is idempotent.
                    db.execute("SET LOCAL synchronous_commit TO OFF")
                db.execute(
                    f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET profile_id = %s "
                    f"WHERE profile_id = %s{in_range}",
                    [destination_id, source_id, *parameters],
                )
                moved = db.rowcount
            counter = "events_moved" if model is Event else "sessions_moved"
            still_running = MergeRecord.objects.filter(pk=merge_id, status=MergeRecord.Status.RUNNING).update(
                **{counter: F(counter) + moved}, heartbeat_at=timezone.now()
            )
            if not still_running:
                raise _NoLongerRunning
    except _NoLongerRunning:
        return False
    return True


def _move_in_threads(chunks: Iterator[tuple], move: Callable[..., bool], streams: int, pause: float) -> bool:
    """Hand the chunks to `streams` threads, each moving one chunk at a time on its own connection."""
    pending: queue.Queue = queue.Queue(maxsize=streams)
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            while (chunk := pending.get()) is not None:
                if stop.is_set():
                    continue  # drain: the merge stopped or failed
                try:
                    if not move(*chunk):
                        stop.set()
                except BaseException as error:  # re-raised in the task's thread, which owns the retry policy;
                    errors.append(error)  # the thread keeps draining, so the feeding loop never blocks on it
                    stop.set()
                if pause:
                    time.sleep(pause)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=consume, name=f"merge-move-{index}") for index in range(streams)]
    for thread in threads:
        thread.start()
    try:
        for chunk in chunks:
            if stop.is_set():
                break
            pending.put(chunk)
    except BaseException:
        stop.set()
        raise
    finally:
        for _thread in threads:
            pending.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return not stop.is_set()


def _move_all(record: MergeRecord, batch_size: int, pause: float) -> bool:
    """Move the rest of a large history in bounded batches, each its own short transaction. Returns False if
    the merge stopped running meanwhile.

    On PostgreSQL, when the caller holds no transaction (the Celery task; a caller's uncommitted rows would
    be invisible to other connections), CAIRN_MERGE_STREAMS threads move batches at once on their own
    connections: rewriting every index entry of the moved rows is CPU-bound and one UPDATE uses one core."""
    streams = _settings_int("CAIRN_MERGE_STREAMS", 2, 1)
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        streams = 1
    move = partial(_move_range, merge_id=record.pk, source_id=record.source_id, destination_id=record.destination_id)
    chunks = (
        (model, key_range)
        for model in (Session, Event)
        for key_range in _key_ranges(model, source_id=record.source_id, batch_size=batch_size)
    )
    if streams > 1:
        return _move_in_threads(chunks, move, streams, pause)
    for chunk in chunks:
        if not move(*chunk):
            return False
        if pause:
            time.sleep(pause)
    return True


def _finish(record: MergeRecord) -> MergeRecord:
    record.status = MergeRecord.Status.DONE
    record.finished_at = timezone.now()
    record.heartbeat_at = record.finished_at
    record.last_error = ""
    record.save()
    return record


def _move_first_rows(model, record: MergeRecord, limit: int) -> int:
    batch = model.objects.filter(profile_id=record.source_id).values("pk")[:limit]
    return model.objects.filter(pk__in=Subquery(batch)).update(profile_id=record.destination_id)


def merge_apply(*, merge_id: int) -> MergeRecord:
    """Move the source's history into the destination. Idempotent: finished or inapplicable merges are left
    as they are, and a run that died half-way is simply continued (rows already moved no longer match, and
    `events_moved` / `sessions_moved` were counted in the transactions that moved them).

    A small history (under FIRST_SLICE rows of each kind) moves and finishes in one transaction.
    A large one moves in bounded batches, each its own short transaction, so it never holds long locks."""
    batch_size = _settings_int("CAIRN_MERGE_BATCH_SIZE", MOVE_BATCH_SIZE, 1)
    pause = _settings_int("CAIRN_MERGE_BATCH_PAUSE_MS", 0, 0) / 1000
    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=merge_id)
        if record.status not in (
            MergeRecord.Status.PENDING,
            MergeRecord.Status.RUNNING,
            MergeRecord.Status.FAILED,
        ):
            return record
        record.status = MergeRecord.Status.RUNNING
        record.started_at = record.started_at or timezone.now()
        record.heartbeat_at = timezone.now()
        record.attempts += 1
        # A small history (or what is left of one after a crash) moves and finishes in this transaction, in
        # one UPDATE per table. A large one moves only a first slice here (the rest goes on parallel streams),
        # so the record's row lock is never held for long.
        first_slice = min(batch_size, FIRST_SLICE)
        sessions_moved = _move_first_rows(Session, record, first_slice)
        events_moved = _move_first_rows(Event, record, first_slice)
        record.sessions_moved += sessions_moved
        record.events_moved += events_moved
        if sessions_moved < first_slice and events_moved < first_slice:
            return _finish(record)  # saves everything above too, in one UPDATE
        record.save(
            update_fields=["status", "started_at", "heartbeat_at", "attempts", "events_moved", "sessions_moved"]
        )
    if not _move_all(record, batch_size, pause):
        return MergeRecord.objects.get(pk=merge_id)
    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=merge_id)
        if record.status != MergeRecord.Status.RUNNING:
            return record
        # Rows the walk passed by: a session still on the source whose ended_at grew past the walk's cursor
        # (a concurrent call for the tombstone continued it). Usually none; an index probe when so.
        record.sessions_moved += Session.objects.filter(profile_id=record.source_id).update(
            profile_id=record.destination_id
        )
        record.events_moved += Event.objects.filter(profile_id=record.source_id).update(
            profile_id=record.destination_id
        )
        return _finish(record)


def merge_mark_failed(*, merge_id: int, error: str) -> None:
    MergeRecord.objects.filter(pk=merge_id, status=MergeRecord.Status.RUNNING).update(
        status=MergeRecord.Status.FAILED, last_error=error[:4000]
    )
