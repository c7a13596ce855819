"""Bulk ingest over HTTP against a plain COPY of the same rows into a lean table (issue #16). One command:

    .venv/bin/python bench/ingest_http.py [--events 1000000] [--clients 4] [--workers 4]
        [--idempotency-keys]      # every event carries an idempotency_key (as Heap's clients may send)
        [--index-costs]           # also: COPY of the wide rows into a copy of the events table, minus each index
        [--spy FILE]              # py-spy (PYSPY, default `py-spy`) samples the gunicorn workers while timed

Realistic data, generated deterministically: 13 people per 1,000 events, each active on 1 to 6 of the last 90
days with one session of 5 to 40 events a day (the server API's sessions: 30 minutes of inactivity), a
`Sign Up` first, mostly page views, a few properties per event. People are sent one after another in bulk
calls of 1,000 events (so a call holds about 13 people's events, as a server-side export sends them), by
`--clients` clients at once, to gunicorn run as in production (DEBUG=0, persistent connections).

Then the same rows (the profile's user_id, the name, the timestamp) are copied with one plain COPY into
`lean_event(user_id bigint, name text, ts timestamptz)` with indexes on (ts) and (name, ts), best of three:
the reference the issue compares with. Prints both rates and their ratio (target >= 0.25, stretch 0.5).

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cairn_bench_ingest_http), recreated
each run; Redis: BENCH_REDIS_URL (default db 5).
"""

import argparse
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.common import database_create  # noqa: E402  (after the repository is on sys.path)
from bench.lean_servers import Servers, manage, production_variables  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_ingest_http")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
# The server's variables as docs/operations.md runs production (DEBUG unset), also this process's own.
SERVER_ENV = {**production_variables(DATABASE_URL, REDIS_URL), "LOG_LEVEL": "ERROR"}
os.environ.update(SERVER_ENV)
BATCH = 1000
EVENT_NAMES = ["pageview"] * 70 + ["Click"] * 12 + ["Search"] * 8 + ["Add to cart"] * 5 + ["Activate"] * 3
EVENT_NAMES += ["Upgrade"] * 2
PATHS = ["/", "/pricing", "/docs", "/blog", "/app", "/app/reports", "/app/users", "/settings", "/signup"]


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def recreate_database() -> None:
    database_create(urlsplit(DATABASE_URL).path.lstrip("/"), rebuild=True)
    manage(SERVER_ENV, "migrate", "-v", "0")


# ---- the data -------------------------------------------------------------------------------------------


def person_events(rng: random.Random, person: int, start: datetime) -> list[dict]:
    """One person's events, in time order: 1 to 6 active days, one session of 5 to 40 events on each."""
    identity = f"person-{person}@example.com"
    events = []
    for day in sorted(rng.sample(range(90), rng.randint(1, 6))):
        moment = start + timedelta(days=day, seconds=rng.randrange(6 * 3600, 22 * 3600))
        for position in range(rng.randint(5, 40)):
            name = "Sign Up" if not events else rng.choice(EVENT_NAMES)
            properties = {"path": rng.choice(PATHS)}
            if position == 0:
                properties["referrer"] = "https://www.google.com/"
            if name == "Click":
                properties["target_text"] = rng.choice(["Buy", "Next", "Export", "Invite"])
            elif name == "Search":
                properties["query"] = f"term {rng.randrange(200)}"
            elif name == "Add to cart":
                properties["price"] = rng.randrange(5, 500)
            events.append(
                {"identity": identity, "event": name, "timestamp": moment.isoformat(), "properties": properties}
            )
            moment += timedelta(seconds=rng.randrange(10, 90))
    return events


def bulk_bodies(
    app_id: str, total: int, idempotency_keys: bool, seed: int = 16, whole_people: bool = False
) -> list[bytes]:
    """`total` events in bulk calls of 1,000, people one after another (`whole_people`: a call ends before a
    person who would not fit, so no person spans two calls)."""
    rng = random.Random(seed)
    start = (datetime.now(UTC) - timedelta(days=91)).replace(hour=0, minute=0, second=0, microsecond=0)
    bodies, batch, person, sent = [], [], 0, 0
    while sent < total:
        events = person_events(rng, person, start)[: total - sent]
        if whole_people and batch and len(batch) + len(events) > BATCH:
            bodies.append(json.dumps({"app_id": app_id, "events": batch}).encode())
            batch = []
        for event in events:
            if idempotency_keys:
                event["idempotency_key"] = f"bench-{sent}"
            batch.append(event)
            sent += 1
            if len(batch) == BATCH:
                bodies.append(json.dumps({"app_id": app_id, "events": batch}).encode())
                batch = []
        person += 1
    if batch:
        bodies.append(json.dumps({"app_id": app_id, "events": batch}).encode())
    return bodies


# ---- the server ------------------------------------------------------------------------------------------


def post(connection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def send_all(port: int, bodies: list[bytes], clients: int, latencies: list[float] | None = None) -> float:
    """Send the bodies, `clients` at a time (each on one keep-alive connection); returns the seconds taken.
    `latencies`: each call's seconds are appended to it."""
    import http.client

    failures, lock, queue = [], threading.Lock(), list(reversed(bodies))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            call_started = time.perf_counter()
            status, content = post(connection, "/api/track", body)
            if latencies is not None:
                with lock:
                    latencies.append(time.perf_counter() - call_started)
            answer = json.loads(content) if status == 200 else {}
            if status != 200 or answer.get("rejected"):
                failures.append((status, content[:300]))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} bulk calls failed or rejected items: {failures[:3]}")
    return elapsed


# ---- the references ----------------------------------------------------------------------------------------


def copy_out(sql: str) -> bytes:
    from django.db import connection

    connection.ensure_connection()
    buffer = io.BytesIO()
    with connection.connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
        for data in copy:
            buffer.write(data)
    return buffer.getvalue()


def best_copy(table: str, columns: str, payload: bytes, attempts: int = 3) -> float:
    """The fastest of `attempts` plain COPYs of `payload` into `table` (emptied before each), in one transaction."""
    from django.db import connection

    raw = connection.connection
    timings = []
    for _attempt in range(attempts):
        with raw.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table}")
        raw.commit()
        started = time.perf_counter()
        with raw.transaction(), raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for offset in range(0, len(payload), 1 << 20):
                copy.write(payload[offset : offset + (1 << 20)])
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure_lean_copy(environment_id: int) -> tuple[int, float]:
    """The issue's reference: the ingested rows as (user_id, name, ts), COPY into a lean two-index table."""
    from django.db import connection

    payload = copy_out(
        "SELECT profile.user_id, event.name, event.timestamp FROM events_app_event AS event "
        "JOIN users_app_profile AS profile ON profile.id = event.profile_id "
        f"WHERE event.environment_id = {environment_id}"
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS lean_event")
        cursor.execute("CREATE TABLE lean_event (user_id bigint, name text, ts timestamptz)")
        cursor.execute("CREATE INDEX lean_event_ts ON lean_event (ts)")
        cursor.execute("CREATE INDEX lean_event_name_ts ON lean_event (name, ts)")
    seconds = best_copy("lean_event", "user_id, name, ts", payload)
    return payload.count(b"\n"), seconds


WIDE_COLUMNS = (
    "environment_id, profile_id, original_profile_id, session_id, name, timestamp, properties, idempotency_key, "
    "received_at"
)


def measure_index_costs(environment_id: int) -> list[tuple[str, float]]:
    """COPY of the wide rows into a copy of the events table with all its indexes, then minus each one in turn:
    [(what is missing, rows/s)]."""
    from django.db import connection

    payload = copy_out(f"SELECT {WIDE_COLUMNS} FROM events_app_event WHERE environment_id = {environment_id}")
    rows = payload.count(b"\n")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events_app_event' "
            "AND indexname NOT LIKE '%%pkey' ORDER BY indexname"
        )
        indexes = cursor.fetchall()
    results = []
    for missing in ["nothing", *(name for name, _ in indexes), "every index but the primary key"]:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_event_copy")
            cursor.execute(
                "CREATE TABLE bench_event_copy (LIKE events_app_event INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            cursor.execute("ALTER TABLE bench_event_copy ADD PRIMARY KEY (id)")
            for name, definition in indexes:
                if missing != name and not missing.startswith("every"):
                    cursor.execute(
                        definition.replace(f"INDEX {name} ON", f"INDEX bench_{name} ON").replace(
                            "public.events_app_event ", "public.bench_event_copy "
                        )
                    )
        results.append((missing, rows / best_copy("bench_event_copy", WIDE_COLUMNS, payload)))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_event_copy")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--idempotency-keys", action="store_true")
    parser.add_argument("--index-costs", action="store_true")
    parser.add_argument("--whole-people", action="store_true", help="no person's events span two calls")
    parser.add_argument("--spy", help="write a py-spy profile of the workers (speedscope JSON) to this file")
    args = parser.parse_args()

    recreate_database()
    import django

    django.setup()
    from users_app.services.environments import environment_create

    environment = environment_create(name="bench", api_key="bench-api-key-0123456789").environment
    bodies = bulk_bodies(environment.app_id, args.events, args.idempotency_keys, whole_people=args.whole_people)
    print(f"machine: {os.cpu_count()} cores, load average before {load_average()}; gunicorn -w {args.workers}, DEBUG=0")
    # gunicorn alone, as the earlier figures were taken: the Celery worker's periodic work is not ingest's.
    servers = Servers(SERVER_ENV, args.workers, timeout=120, background=False).start()
    port = servers.port
    spy = None
    try:
        # Untimed: a worker's first calls pay its imports, connection and statements not prepared yet.
        warm_env = environment_create(name="warm-up").environment
        send_all(port, bulk_bodies(warm_env.app_id, 2 * args.workers * BATCH, False, seed=99), args.workers)
        if args.spy:
            spy = subprocess.Popen(
                [os.environ.get("PYSPY") or shutil.which("py-spy") or "py-spy", "record", "--subprocesses", "-r", "50",
                 "-f", "speedscope", "-o", args.spy, "--pid", str(servers.processes[0].pid)],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)
        seconds = send_all(port, bodies, args.clients)
        load_during = load_average()
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(120)
        servers.stop()
    rate = args.events / seconds
    rows, copy_seconds = measure_lean_copy(environment.pk)
    assert rows == args.events, (rows, args.events)
    copy_rate = rows / copy_seconds
    print(
        f"bulk /api/track over HTTP: {args.events:,} events in {seconds:.1f} s ({len(bodies)} calls, {args.clients} "
        f"clients{', idempotency keys' if args.idempotency_keys else ''}) = {rate:,.0f} events/s "
        f"(load average at its end {load_during})"
    )
    print(f"plain COPY of the same rows into lean_event (2 indexes): {copy_seconds:.2f} s = {copy_rate:,.0f} rows/s")
    print(f"ratio HTTP ingest / lean COPY: {rate / copy_rate:.3f} (target >= 0.25, stretch 0.5)")
    if args.index_costs:
        for missing, wide_rate in measure_index_costs(environment.pk):
            print(f"COPY of the wide rows into a copy of events_app_event without {missing}: {wide_rate:,.0f} rows/s")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
