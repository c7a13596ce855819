"""The rollups kept at ingest or by the periodic catch-up, measured both ways (issue #16), and what the catch-up's
high-water mark costs the ingest calls it waits for. One command:

    .venv/bin/python bench/rollup_maintenance.py [--events 200000] [--clients 4]

1. **Cost per 1,000 events**, in this process, one call at a time, on bench/ingest_http.py's realistic data
   (bulk calls of 1,000 events, about 13 people each):
   - *at ingest*: after each call, its own events (the ids it added) go into the rollups by the catch-up's own
     statement (rollup_aggregate_sql), as an ingest that kept them in its transaction would; timed per call;
   - *periodic*: all the calls first, then one `rollups_catch_up()` over them; timed as a whole.
   Both give the same rollup rows (checked). The statement time is the database's work (no concurrency here).
2. **The high-water mark under load**: gunicorn (`-w 4`, DEBUG off) takes the calls from `--clients` concurrent
   clients, twice: without catch-up, then with `rollups_catch_up()` run every second from this process (beat runs
   it every CAIRN_ROLLUP_SECONDS). Prints each call's latency (p50, p95, p99, max) both times, and how long the
   catch-up waited for its lock (the instant it holds the events table against writers) and ran.

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cairn_bench_rollup_maintenance),
recreated for each part.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_rollup_maintenance")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest_http  # noqa: E402  (after BENCH_DATABASE_URL: it reads it at import)
from lean_servers import Servers  # noqa: E402

API_KEY = "bench-api-key-0123456789"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rollup_rows() -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT environment_id, day, original_profile_id, events FROM events_app_persondayrollup")
        by_day = sorted(cursor.fetchall())
        cursor.execute(
            "SELECT environment_id, name, day, original_profile_id, events FROM events_app_persondaynamerollup"
        )
        return by_day + sorted(cursor.fetchall())


def largest_event_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM events_app_event")
        return cursor.fetchone()[0]


def fresh_environment():
    from django.db import connection

    connection.close()  # the database is dropped and made again
    ingest_http.recreate_database()
    from users_app.services.environments import environment_create

    return environment_create(name="bench", api_key=API_KEY).environment


def cost_per_thousand(events: int) -> None:
    from django.db import connection, transaction
    from django.test import Client

    from events_app.rollups.catch_up import rollups_catch_up
    from events_app.rollups.models import rollup_aggregate_sql

    results = {}
    for mode in ("at ingest", "periodic"):
        environment = fresh_environment()
        bodies = ingest_http.bulk_bodies(environment.app_id, events, False)
        client, spent = Client(), 0.0
        for body in bodies:
            low = largest_event_id()
            assert client.post("/api/track", body, content_type="application/json").status_code == 200
            if mode == "at ingest":
                started = time.perf_counter()
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(rollup_aggregate_sql("e.id > %s AND e.id <= %s"), [low, largest_event_id()])
                spent += time.perf_counter() - started
        if mode == "periodic":
            started = time.perf_counter()
            rollups_catch_up()
            spent = time.perf_counter() - started
        results[mode] = (spent, rollup_rows())
        print(
            f"  {mode:9}: {spent * 1000 / (events / 1000):6.2f} ms of rollup statements per 1,000 events "
            f"({len(results[mode][1]):,} rollup rows); load average {ingest_http.load_average()}"
        )
    assert results["at ingest"][1] == results["periodic"][1], "the two ways disagree"


def catch_up_every_second(stop: threading.Event, waits: list[float], runs: list[float]) -> None:
    from django.db import connection

    from events_app.rollups.catch_up import rollups_catch_up, safe_high_water_mark

    while not stop.wait(1.0):
        started = time.perf_counter()
        safe_high_water_mark()  # the wait alone, as the run below takes it again
        waits.append(time.perf_counter() - started)
        started = time.perf_counter()
        rollups_catch_up()
        runs.append(time.perf_counter() - started)
    connection.close()


def mark_under_load(events: int, clients: int) -> None:
    def milliseconds(values: list[float]) -> str:
        shares = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
        figures = [f"{name} {percentile(values, share) * 1000:.0f}" for name, share in shares.items()]
        return ", ".join([*figures, f"max {max(values) * 1000:.0f} ms"])

    for with_catch_up in (False, True):
        environment = fresh_environment()
        bodies = ingest_http.bulk_bodies(environment.app_id, events, False)
        waits, runs, stop = [], [], threading.Event()
        catcher = threading.Thread(target=catch_up_every_second, args=(stop, waits, runs))
        with Servers(ingest_http.SERVER_ENV, workers=4, timeout=300, background=False) as servers:
            if with_catch_up:
                catcher.start()
            started = time.perf_counter()
            latencies = []
            ingest_http.send_all(servers.port, bodies, clients, latencies)
            elapsed = time.perf_counter() - started
            stop.set()
            if with_catch_up:
                catcher.join()
        label = "with catch-up every second" if with_catch_up else "without catch-up"
        print(
            f"  {label}: {events / elapsed:,.0f} events/s; call latency {milliseconds(latencies)}; "
            f"load average {ingest_http.load_average()}"
        )
        if with_catch_up and waits:
            print(f"    the mark's lock wait ({len(waits)} rounds): {milliseconds(waits)}")
            print(f"    a catch-up run: {milliseconds(runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--only", choices=["cost", "mark"])
    args = parser.parse_args()
    os.environ["ALLOWED_HOSTS"] += ",testserver"  # Django's test client's host, beside the server's own
    import django

    django.setup()
    print(f"command: {' '.join(sys.argv)}; {os.cpu_count()} cores; load average {ingest_http.load_average()}")
    if args.only != "mark":
        print(f"1. rollup statements per 1,000 events, {args.events:,} events, one call at a time:")
        cost_per_thousand(args.events)
    if args.only != "cost":
        print(f"2. ingest calls from {args.clients} clients, {args.events:,} events:")
        mark_under_load(args.events, args.clients)


if __name__ == "__main__":
    main()
