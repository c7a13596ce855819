"""Where a bulk /api/track call spends its time (issue #16). One command:

    .venv/bin/python bench/ingest_profile.py [--events 100000] [--top 25] [--cprofile]

The calls of bench/ingest_http.py's realistic data (bulk calls of 1,000 events, about 13 people each), sent in
process through Django's test client (the whole middleware, the view, the service, DEBUG=0) to PostgreSQL and
Redis, one at a time. Prints the wall time per call split into the time spent waiting for SQL statements (each
kind of statement: count, total ms, ms per call) and the rest (Python); with `--cprofile`, the functions with
the most own time as well (cProfile slows Python down about 2x, so its figures are shares, not speeds).

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cairn_bench_ingest_profile), recreated.
"""

import argparse
import cProfile
import os
import pstats
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_ingest_profile")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest_http  # noqa: E402  (after BENCH_DATABASE_URL: it reads it at import)


def statement_kind(sql: str) -> str:
    """A statement's shape without its values: its first words and the table it writes or reads."""
    words = re.sub(r"\s+", " ", sql).strip()
    if words.startswith("WITH write_0"):
        return f"WITH ... ({words.count(' AS (INSERT') + words.count(' AS (UPDATE')} held-back writes) SELECT 1"
    table = re.search(r'(?:FROM|INTO|UPDATE|COPY) "?(\w+)"?', words)
    return f"{' '.join(words.split(' ')[:2])[:30]} ... {table.group(1) if table else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--warm-up", type=int, default=5, help="calls sent first, untimed")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()

    ingest_http.recreate_database()
    os.environ["ALLOWED_HOSTS"] += ",testserver"  # Django's test client's host, beside the server's own
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from users_app.services.environments import environment_create

    environment = environment_create(name="bench", api_key="bench-api-key-0123456789").environment
    bodies = ingest_http.bulk_bodies(environment.app_id, args.events + args.warm_up * 1000, False)
    client = Client()
    for body in bodies[: args.warm_up]:
        assert client.post("/api/track", body, content_type="application/json").status_code == 200
    bodies = bodies[args.warm_up :]

    spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = spent[statement_kind(sql)]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    profiler = cProfile.Profile() if args.cprofile else None
    print(f"load average before: {ingest_http.load_average()}")
    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        if profiler:
            profiler.enable()
        for body in bodies:
            response = client.post("/api/track", body, content_type="application/json")
            assert response.status_code == 200 and not response.json()["rejected"], response.content[:300]
        if profiler:
            profiler.disable()
    elapsed = time.perf_counter() - started
    calls = len(bodies)
    # COPY goes through the raw psycopg cursor (event_rows.py), which Django's wrapper does not see: it is
    # measured as its own stage by --cprofile (psycopg's Copy.write_row / __exit__), and counted as Python here.
    sql_seconds = sum(seconds for _, seconds in spent.values())
    print(
        f"{calls} calls of 1,000 events: {elapsed * 1000 / calls:.1f} ms a call = {calls * 1000 / elapsed:,.0f} "
        f"events/s in one process{' (under cProfile)' if profiler else ''}; load average {ingest_http.load_average()}"
    )
    print(
        f"  waiting for SQL statements (COPY excluded): {sql_seconds * 1000 / calls:.1f} ms a call; "
        f"the rest (Python, COPY, Redis): {(elapsed - sql_seconds) * 1000 / calls:.1f} ms a call"
    )
    for kind, (count, seconds) in sorted(spent.items(), key=lambda item: -item[1][1]):
        print(f"    {seconds * 1000 / calls:6.2f} ms a call, {count / calls:5.2f} a call: {kind}")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top * 2)


if __name__ == "__main__":
    main()
