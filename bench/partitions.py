"""Partitions benchmark (issue #16, docs/benchmarks.md "Partitions (session 11)"). One command, prints its figures:

    .venv/bin/python bench/partitions.py [--events 1000000]

In a database of its own (cairn_bench_partitions_<events>, recreated each run, on BENCH_PG):
1. bench/common.py's data (`--events` events over 90 days, 2026-08-01 to 2026-10-29) loaded into the plain table
   (events_app at 0008), then migration 0010 timed: the table rebuilt partitioned by month, its indexes rebuilt;
   and its reverse, timed the same way, then forward again;
2. one month's retention pass (August expired whole: an environment retention whose cutoff is 2026-09-01), both
   ways on the same rows: the batched DELETE (environment_retention_apply, the path without partitions) and the
   sweep's two steps (expired_partitions_drop, then environment_retention_apply for the rest), timed apart;
   August's rows are put back in between. Each pass includes what both do after removing the events (the rollups
   rebuilt up to the cutoff, empty sessions).
"""

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_create, generate_people_and_events, load_average, setup_django  # noqa: E402

BEFORE, MIGRATION = "0008_funnelspeed_covering_name_index", "0010_events_partitioned_by_month"
CUTOFF = datetime(2026, 9, 1, tzinfo=UTC)
RETENTION_DAYS = 30


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def vacuum(cursor) -> None:
    cursor.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    database = f"cairn_bench_partitions_{args.events}"
    database_create(database, rebuild=True)
    setup_django(database)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("migrate", "events_app", BEFORE, verbosity=0)
    print(f"Generating {args.events:,} events into {database} (plain table) ...", flush=True)
    environment, started = generate_people_and_events(args.events, api_key=f"bench-partitions-{args.events}")
    print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        vacuum(cursor)

    print(f"load before the migration: {load_average()}", flush=True)
    forward = timed(lambda: call_command("migrate", "events_app", MIGRATION, verbosity=0))
    reverse = timed(lambda: call_command("migrate", "events_app", BEFORE, verbosity=0))
    again = timed(lambda: call_command("migrate", "events_app", MIGRATION, verbosity=0))
    print(
        f"migration 0010 at {args.events:,} events: forward {forward:.1f} s, reverse {reverse:.1f} s, "
        f"forward again {again:.1f} s (load {load_average()})",
        flush=True,
    )

    from events_app.partitions import partition_months
    from events_app.rollups.catch_up import rollups_catch_up
    from users_app.deletion.retention import environment_retention_apply

    with connection.cursor() as cursor:
        vacuum(cursor)
    rollups_catch_up()
    environment.event_retention_days = RETENTION_DAYS
    environment.save(update_fields=["event_retention_days"])
    now = CUTOFF + timedelta(days=RETENTION_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_august AS SELECT * FROM events_app_event_p2026_08")
        cursor.execute("SELECT count(*) FROM bench_august")
        (august,) = cursor.fetchone()
    print(f"partitions: {', '.join(month.isoformat()[:7] for month in partition_months())}; August {august:,} rows")

    print(f"load before the DELETE pass: {load_average()}", flush=True)
    delete = timed(lambda: environment_retention_apply(environment=environment, now=now))
    print(f"  batched DELETE pass: {delete:.2f} s (load {load_average()})", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_app_event WHERE timestamp < %s", [CUTOFF])
        assert cursor.fetchone()[0] == 0
        cursor.execute("INSERT INTO events_app_event SELECT * FROM bench_august")  # into August's (empty) partition
        vacuum(cursor)
    from events_app.models import expired_partitions_drop, rollups_rebuild_until

    # The rollups of the rows put back (and a figure for the rebuild that both passes end with).
    rebuild = timed(lambda: rollups_rebuild_until(environment_id=environment.pk, last_day=date(2026, 10, 31)))
    print(f"  rollups rebuilt up to 2026-10-31 alone: {rebuild:.2f} s", flush=True)
    with connection.cursor() as cursor:
        vacuum(cursor)
    print(f"load before the DROP pass: {load_average()}", flush=True)
    # event_retention_sweep's two steps, timed apart: the drop (its lock is what ingest waits for), then the rest
    # of the environment's pass (a DELETE that finds nothing, the rollups rebuilt, empty sessions).
    dropping = timed(lambda: expired_partitions_drop({environment.pk: now - timedelta(days=RETENTION_DAYS)}))
    rest = timed(lambda: environment_retention_apply(environment=environment, now=now))
    assert date(2026, 8, 1) not in partition_months()
    print(
        f"retention of one month ({august:,} of {args.events:,} events): batched DELETE pass {delete:.2f} s; "
        f"partition DROP pass {dropping + rest:.2f} s (the drop {dropping:.2f} s, then the rest of the pass "
        f"{rest:.2f} s): {delete / (dropping + rest):.0f}x (load {load_average()})",
        flush=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_august")


if __name__ == "__main__":
    main()
