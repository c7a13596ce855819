"""Events partitioned by month (PostgreSQL, events_app/partitions.py): the migration's shape and its reverse, the
partitions beat makes ahead, rows of DEFAULT moved into their month's new partition, ingest of an event in a month
without a partition, idempotency keys claimed once by concurrent calls, and retention dropping a whole month with
the same numbers as its batched DELETE and as a full scan."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.utils import timezone

from events_app.defined_events.backfill import defined_event_backfill
from events_app.defined_events.services import defined_event_create
from events_app.models import DefinedEventMatch, Event, EventIdempotencyKey
from events_app.partitions import default_partition_name, event_partitions_ensure, partition_months
from events_app.rollups.catch_up import rollups_catch_up
from events_app.services.event_rows import COPY_MIN_ROWS, events_insert
from events_app.services.ingest import track_ingest
from events_app.tasks import event_partitions_ensure_task
from tests.builders import locked_or_done, profile_build, track
from tests.reports_app.conftest import accounts, world  # noqa: F401 (fixtures)
from tests.reports_app.test_rollup_reports import every_report_agrees
from users_app.deletion.retention import event_retention_sweep

pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="events are partitioned on PostgreSQL")

TABLE = Event._meta.db_table
MIGRATION = ("events_app", "0010_events_partitioned_by_month")


def fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def partition_of(event_pk: int) -> str:
    """The partition that holds the event's row."""
    return fetch(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [event_pk])[0][0]


def month_partition(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}_{month.month:02d}"


def indexes_of(table: str) -> dict[str, tuple[str, bool]]:
    """{index name: (its columns as pg_get_indexdef says them, is it the primary key)}."""
    rows = fetch(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisprimary FROM pg_index "
        "WHERE indrelid = %s::regclass",
        [table],
    )
    return {name: (definition.split(" USING ", 1)[1], primary) for name, definition, primary in rows}


def test_the_table_is_partitioned_by_month_with_its_indexes_and_a_default(db):
    assert fetch("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE]) == [("r",)]
    children = {
        name
        for (name,) in fetch("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass", [TABLE])
    }
    # The test database was migrated this month: its partition and the two after it (CAIRN_EVENT_PARTITIONS_AHEAD).
    this_month = timezone.now().astimezone(UTC).date().replace(day=1)
    ahead = [
        this_month,
        (this_month + timedelta(days=32)).replace(day=1),
        (this_month + timedelta(days=63)).replace(day=1),
    ]
    assert {default_partition_name(TABLE), *(month_partition(month) for month in ahead)} <= children
    indexes = indexes_of(TABLE)
    assert indexes[f"{TABLE}_pkey"] == ('btree (id, "timestamp")', True)
    # Every index of the model's Meta, as a partitioned index of the table, and no unique key but the primary key.
    assert {index.name for index in Event._meta.indexes} == set(indexes) - {f"{TABLE}_pkey"}
    assert indexes["event_by_time"] == ('btree (environment_id, "timestamp")', False)
    assert (
        indexes["event_by_name_time_cover"][0]
        == 'btree (environment_id, name, "timestamp") INCLUDE (original_profile_id, id)'
    )
    kinds = dict(fetch("SELECT relname, relkind FROM pg_class WHERE relname = ANY(%s)", [list(indexes)]))
    assert set(kinds.values()) == {"I"}  # partitioned indexes: each partition has its own
    # Each partition has the same indexes (its own names).
    assert len(indexes_of(default_partition_name(TABLE))) == len(indexes)


def test_partitions_are_made_ahead_and_a_second_run_makes_none(db):
    made = event_partitions_ensure(now=datetime(2031, 5, 20, tzinfo=UTC))
    assert made.created == [date(2031, 5, 1), date(2031, 6, 1), date(2031, 7, 1)] and made.rows_moved == 0
    assert {date(2031, 5, 1), date(2031, 6, 1), date(2031, 7, 1)} <= set(partition_months())
    assert event_partitions_ensure(now=datetime(2031, 5, 20, tzinfo=UTC)).created == []


def test_the_beat_task_is_scheduled_and_makes_the_partitions_of_default_rows(environment):
    track(environment, user_id=2, event="Old", timestamp="2006-07-07T07:00:00Z")
    assert "cairn.event_partitions_ensure" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert event_partitions_ensure_task.apply().get() == 1
    assert date(2006, 7, 1) in partition_months()


def test_an_event_of_a_month_without_partition_lands_in_default_and_moves_into_its_new_partition(environment):
    defined_event_create(environment=environment, name="Old ones", rules=[{"event": "Old"}])
    environment.refresh_from_db()  # its defined events' version, which ingest reads
    track(environment, user_id=7, event="Old", timestamp="2003-02-10T12:00:00Z", properties={"a": 1})
    result = track_ingest(
        environment=environment,
        items=[{"user_id": 7, "event": "Old", "timestamp": "2003-02-11T08:00:00Z", "idempotency_key": "old-2"}],
    )
    assert result.accepted == 1
    old = list(Event.objects.filter(name="Old").order_by("timestamp"))
    assert [partition_of(event.pk) for event in old] == [default_partition_name(TABLE)] * 2
    track(environment, user_id=7, event="New")  # this month: its partition, made by the migration
    assert partition_of(Event.objects.get(name="New").pk) == month_partition(timezone.now().date().replace(day=1))

    made = event_partitions_ensure()

    assert made.created == [date(2003, 2, 1)] and made.rows_moved == 2
    assert [partition_of(event.pk) for event in old] == [month_partition(date(2003, 2, 1))] * 2
    assert not fetch(f"SELECT 1 FROM {default_partition_name(TABLE)}")
    # The rows as they were, with their matches and key.
    assert [(e.pk, e.timestamp, e.properties) for e in Event.objects.filter(name="Old").order_by("timestamp")] == [
        (e.pk, e.timestamp, e.properties) for e in old
    ]
    assert DefinedEventMatch.objects.filter(event_id__in=[e.pk for e in old]).count() == 2
    assert EventIdempotencyKey.objects.get(key="old-2").event_id == old[1].pk
    # Ingest goes on into the new partition.
    track(environment, user_id=7, event="Old", timestamp="2003-02-12T00:00:00Z")
    assert partition_of(Event.objects.latest("id").pk) == month_partition(date(2003, 2, 1))


def keyed_rows(environment, profile, keys, name="Signed up") -> list[tuple]:
    now = timezone.now()
    return [(environment.pk, profile.pk, profile.pk, None, name, now, {}, key) for key in keys]


@pytest.mark.parametrize("first_call", ["commits", "rolls back"])
@pytest.mark.parametrize("size", [3, COPY_MIN_ROWS + 5], ids=["insert", "copy"])
def test_a_key_claimed_by_a_concurrent_call_is_waited_for(transactional_db, environment, first_call, size):
    """The second call waits on the first's claim of "race": if the first commits, the second skips that event and
    keeps the rest of its batch; if it rolls back, the second stores it."""
    profile = profile_build(environment, 5)
    claimed, finish = threading.Event(), threading.Event()

    def first():
        try:
            with transaction.atomic():
                events_insert(keyed_rows(environment, profile, ["race"], name="First"))
                claimed.set()
                finish.wait(10)
                if first_call == "rolls back":
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        finally:
            connections.close_all()

    def second():
        try:
            with transaction.atomic():
                events_insert(keyed_rows(environment, profile, ["other", "race"] + [None] * (size - 2)))
        finally:
            connections.close_all()

    one, two = threading.Thread(target=first), threading.Thread(target=second)
    one.start()
    assert claimed.wait(10)
    two.start()
    for _ in range(100):
        if locked_or_done(two):
            break
        threading.Event().wait(0.05)
    assert two.is_alive()  # waiting on the first call's claim
    finish.set()
    one.join(10), two.join(10)
    assert Event.objects.filter(idempotency_key="race").count() == 1
    assert Event.objects.count() == size  # the first call's event and the rest of the batch, or the whole batch
    race = Event.objects.get(idempotency_key="race")
    assert race.name == ("First" if first_call == "commits" else "Signed up")
    assert EventIdempotencyKey.objects.get(environment=environment, key="race").event_id == race.pk
    assert EventIdempotencyKey.objects.count() == 2


def test_concurrent_bulk_calls_with_overlapping_keys_store_each_once_without_deadlock(transactional_db, environment):
    """Two bulk calls at once, their shared keys in opposite orders: each key is stored once, the two answers'
    duplicates add up to the overlap, and neither call fails (the claims go in one sorted order)."""
    shared = [f"shared-{n}" for n in range(150)]
    bodies = [
        [{"user_id": 1 + n % 20, "event": "Buy", "idempotency_key": key} for n, key in enumerate(keys)]
        for keys in (shared + [f"a-{n}" for n in range(50)], list(reversed(shared)) + [f"b-{n}" for n in range(50)])
    ]
    for round_number in range(3):
        for body in bodies:
            for item in body:
                item["idempotency_key"] = f"{round_number}:{item['idempotency_key'].split(':')[-1]}"
        barrier, results, errors = threading.Barrier(2), [], []

        def send(body, barrier=barrier, results=results, errors=errors):
            try:
                barrier.wait()
                results.append(track_ingest(environment=environment, items=body))
            except Exception as error:  # noqa: BLE001 (the test reports any failure of a call)
                errors.append(error)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        assert sorted(result.accepted for result in results) == [200, 200]
        assert sum(result.duplicates for result in results) == 150
    assert Event.objects.count() == 3 * 250
    assert EventIdempotencyKey.objects.count() == 3 * 250
    assert not Event.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)


@pytest.mark.parametrize("path", ["drop", "delete"])
def test_retention_by_dropping_a_month_gives_the_numbers_of_the_batched_delete(accounts, path):  # noqa: F811
    """The world's events run from 2026-10-26 to 2026-11-22, in DEFAULT. "drop": partitions are made for October and
    November first (their rows moved), and the pass drops October's whole; "delete": they stay in DEFAULT and the
    pass deletes them in batches. Either way the same events remain (those from the cutoff, 11-09 12:00, on), their
    matches and keys go with the others, and every report equals its full scan."""
    track_ingest(
        environment=accounts,
        items=[
            {"identity": "bob", "event": "Upgrade", "timestamp": "2026-10-28T10:00:00Z", "idempotency_key": "k-old"}
        ],
    )
    views = defined_event_create(environment=accounts, name="Any view", rules=[{"event": "pageview"}])
    defined_event_backfill(defined_event_id=views.pk)  # its queued task would run after commit
    if path == "drop":
        assert {date(2026, 10, 1), date(2026, 11, 1)} <= set(
            event_partitions_ensure(now=datetime(2026, 11, 1, tzinfo=UTC)).created
        )
    rollups_catch_up()
    cutoff = datetime(2026, 11, 9, 12, tzinfo=UTC)  # October expires whole, November in part
    kept = set(Event.objects.filter(timestamp__gte=cutoff).values_list("pk", flat=True))
    gone = set(Event.objects.filter(timestamp__lt=cutoff).values_list("pk", flat=True))
    assert kept and len(gone) > 5 and Event.objects.filter(timestamp__lt=datetime(2026, 11, 1, tzinfo=UTC)).exists()
    assert DefinedEventMatch.objects.filter(event_id__in=gone).exists()
    accounts.event_retention_days = 30

    accounts.save()
    result = event_retention_sweep(now=cutoff + timedelta(days=30))

    assert result.events_deleted == len(gone)
    assert set(Event.objects.values_list("pk", flat=True)) == kept
    # The drop path dropped October's partition (the DELETE would have left it empty); November's stays.
    months = set(partition_months())
    assert date(2026, 10, 1) not in months and (date(2026, 11, 1) in months) == (path == "drop")
    assert not DefinedEventMatch.objects.filter(event_id__in=gone).exists()
    assert not EventIdempotencyKey.objects.filter(key="k-old").exists()
    assert every_report_agrees(accounts) > 20
    # A key of an expired event may be sent again (its event is stored anew, then expires with the next pass).
    again = [{"identity": "bob", "event": "Upgrade", "timestamp": "2026-11-10T10:00:00Z", "idempotency_key": "k-old"}]
    assert track_ingest(environment=accounts, items=again).duplicates == 0


def test_a_month_with_rows_of_an_environment_keeping_them_is_not_dropped(environment, other_environment):
    track(environment, user_id=1, event="Old", timestamp="2004-03-03T00:00:00Z")
    track(other_environment, user_id=1, event="Old", timestamp="2004-03-04T00:00:00Z")
    event_partitions_ensure()
    environment.event_retention_days = 30
    environment.save()

    result = event_retention_sweep()

    assert result.events_deleted == 1  # by the batched DELETE
    assert date(2004, 3, 1) in partition_months()
    assert list(Event.objects.values_list("environment_id", flat=True)) == [other_environment.pk]


def test_the_migration_reverses_to_a_plain_table_and_back_keeping_rows_ids_and_keys(transactional_db, environment):
    track(environment, user_id=3, event="Older", timestamp="2005-01-01T00:00:00Z")
    track_ingest(environment=environment, items=[{"user_id": 3, "event": "Keyed", "idempotency_key": "kk"}])
    before = list(Event.objects.order_by("pk").values_list("pk", "name", "timestamp", "idempotency_key"))
    executor = MigrationExecutor(connection)
    previous = [parent for parent in executor.loader.graph.node_map[MIGRATION].parents if parent.key[0] == "events_app"]
    try:
        executor.migrate([previous[0].key])
        assert not fetch("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE])
        assert fetch("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE]) == [("r",)]
        assert indexes_of(TABLE)[f"{TABLE}_pkey"] == ("btree (id)", True)
        assert "event_unique_idempotency_key" in indexes_of(TABLE)
        assert fetch(f"SELECT id, name, timestamp, idempotency_key FROM {TABLE} ORDER BY id") == before
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([executor.loader.graph.leaf_nodes("events_app")[0]])
    assert fetch("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE]) == [("r",)]
    assert list(Event.objects.order_by("pk").values_list("pk", "name", "timestamp", "idempotency_key")) == before
    assert EventIdempotencyKey.objects.get(key="kk").event_id == before[-1][0]
    # The sequence goes on after the ids it had given.
    track(environment, user_id=3, event="Next")
    assert Event.objects.get(name="Next").pk > before[-1][0]
