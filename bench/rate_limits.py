"""Rate limiter benchmark (issue #11): what the limits cost on the ingest hot path. One command:

    .venv/bin/python bench/rate_limits.py [--rounds 2] [--clients 4] [--requests 10] [--workers 3]

1. The limiter's own cost per call, in-process (users_app/rate_limits.py: building the call's buckets and one
   admission, as /api/track does it), with the counters in Redis (one EVALSHA round trip) and in local memory:
   a single call, 1,000-item bulk calls over 1,000 / 100 / 1 people, and with an environment cap on top.
2. Bulk /api/track throughput through gunicorn (DEBUG=0, as bench/ingest_and_merges.py runs it: 1,000 events
   from 100 devices per call, several clients at once) with the default limits on and with every limit off,
   in the order on, off, off, on, ... so that the growing events table does not favour either.
3. p50 of single /api/track calls (a new visitor each) with the limits on and off.

Runs against a PostgreSQL database of its own, recreated each run (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/cairn_bench_rate_limits) and a Redis database it empties (BENCH_REDIS_URL,
default db 3), with bench/ingest_and_merges.py's server set-up.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_rate_limits")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
import ingest_and_merges as ingest_bench  # noqa: E402 - sets up the benchmark's environment variables

LIMITS_OFF = {"CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE": "0", "CAIRN_RATE_LIMIT_IDENTIFY_PER_MINUTE": "0"}


def limiter_cost(mode: str, calls: int) -> dict[str, list[float]]:
    """{scenario: seconds per call}, measured around what track_ingest adds for the limits."""
    from django.conf import settings

    from events_app.services.ingest import IngestResult, Target, within_rate_limits
    from users_app.models import Environment

    settings.REDIS_URL = ingest_bench.REDIS_URL if mode == "redis" else ""
    rng = random.Random(11)

    def items(count: int, people: int) -> list:
        base = rng.randrange(10**12)
        return [
            (index, SimpleNamespace(target=Target(identity=f"person-{base + index % people}")))
            for index in range(count)
        ]

    scenarios = {
        "single call": (1, 1, 0),
        "bulk of 1,000, 1,000 people": (1000, 1000, 0),
        "bulk of 1,000, 100 people": (1000, 100, 0),
        "bulk of 1,000, 1 person": (1000, 1, 0),
        "bulk of 1,000, 100 people + environment cap": (1000, 100, 10**9),
    }
    timings: dict[str, list[float]] = {}
    for number, (name, (count, people, cap)) in enumerate(scenarios.items()):
        environment = Environment(pk=10**9 + number, app_id=str(number), ingest_limit_per_minute=cap)
        repeat = calls if count == 1 else max(20, calls // 20)
        prepared = [items(count, people) for _ in range(repeat + 5)]
        for parsed in prepared[:5]:  # the script is loaded, the connection made
            within_rate_limits(environment, parsed, IngestResult(), enforce=True)
        values = []
        for parsed in prepared[5:]:
            started = time.perf_counter()
            within_rate_limits(environment, parsed, IngestResult(), enforce=True)
            values.append(time.perf_counter() - started)
        timings[name] = values
    return timings


def bulk_throughput(rounds: int, clients: int, requests: int, workers: int) -> dict[str, list[float]]:
    from users_app.services.environments import environment_create

    rates: dict[str, list[float]] = {"on (defaults)": [], "off": []}
    order = []
    for round_number in range(rounds):
        order += ["on (defaults)", "off"] if round_number % 2 == 0 else ["off", "on (defaults)"]
    for run, label in enumerate(order):
        # A new environment per run: idempotency keys are per environment, so every run stores all its events.
        environment = environment_create(name=f"bench {run}", api_key=f"bench-rate-limit-key-{run:04d}").environment
        server, port = ingest_bench.start_server(workers, None if label.startswith("on") else LIMITS_OFF)
        try:
            ingest_bench.warm_up(port, environment.app_id, workers)
            events, seconds = ingest_bench.measure_bulk_track(port, environment.app_id, clients, requests)
        finally:
            server.terminate()
            server.wait(30)
        rates[label].append(events / seconds)
    return rates


def single_track(calls: int, workers: int) -> dict[str, float]:
    import json

    from users_app.services.environments import environment_create

    results = {}
    for label, extra in (("on (defaults)", None), ("off", LIMITS_OFF)):
        key = f"bench-single-key-{label[:3]}-0001"
        environment = environment_create(name=f"single {label}", api_key=key).environment
        server, port = ingest_bench.start_server(workers, extra)
        try:
            ingest_bench.warm_up(port, environment.app_id, workers)
            rng = random.Random(5)
            values = []
            for _ in range(calls):
                body = json.dumps(
                    {"app_id": environment.app_id, "user_id": str(rng.randrange(2**53)), "event": "pageview"}
                ).encode()
                started = time.perf_counter()
                status, content = ingest_bench.post(port, "/api/track", body)
                values.append(time.perf_counter() - started)
                assert status == 200, content
        finally:
            server.terminate()
            server.wait(30)
        results[label] = statistics.median(values)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="pairs of bulk runs (limits on, limits off)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=10, help="bulk requests per client and run")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--calls", type=int, default=2000, help="single calls for the in-process part")
    parser.add_argument("--single-calls", type=int, default=300)
    args = parser.parse_args()

    ingest_bench.recreate_database()
    import django
    import redis

    django.setup()
    redis.Redis.from_url(ingest_bench.REDIS_URL).flushdb()
    print(f"machine: {os.cpu_count()} cores, /proc/loadavg {Path('/proc/loadavg').read_text().strip()}")
    print("1. the limiter's cost per call (in-process; median / p99):")
    for mode in ("redis", "local"):
        for name, values in limiter_cost(mode, args.calls).items():
            ordered = sorted(values)
            print(
                f"   {mode:5} {name:46} {statistics.median(values) * 1e6:8.0f} us / "
                f"{ordered[int(0.99 * (len(ordered) - 1))] * 1e6:6.0f} us over {len(values)} calls"
            )
    rates = bulk_throughput(args.rounds, args.clients, args.requests, args.workers)
    print(
        f"2. bulk /api/track, {args.clients} clients x {args.requests} calls of 1,000 events, gunicorn -w "
        f"{args.workers}:"
    )
    for label, values in rates.items():
        print(
            f"   limits {label:14}: "
            + ", ".join(f"{value:,.0f}" for value in values)
            + f" events/s (mean {statistics.mean(values):,.0f})"
        )
    on, off = statistics.mean(rates["on (defaults)"]), statistics.mean(rates["off"])
    print(f"   on / off: {on / off:.2f}")
    for label, median in single_track(args.single_calls, args.workers).items():
        print(f"3. single /api/track, limits {label:14}: p50 {median * 1000:.2f} ms over {args.single_calls} calls")
    print(f"   /proc/loadavg at the end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
