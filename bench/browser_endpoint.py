"""Browser endpoint benchmark (issue #6). One command, prints its figures:

    .venv/bin/python bench/browser_endpoint.py [--batches 300]

Runs in-process (Django's test client: URL routing, body parsing, the batch service, PostgreSQL; no HTTP
server, no network) against a PostgreSQL database of its own, recreated each run (BENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/cairn_bench_browser). Scenarios, each a stream of batches like
the tracker sends:

1. new visitor: pageview + 2 tracks (a new profile, its first session, its initial properties);
2. returning visitor: 10 tracks in an existing session;
3. sign-up: pageview, identify (new identity), add_user_properties, track;
4. a new session for a profile that already has 20,000 sessions (the "is this the first session?" check).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_browser")


def recreate_database() -> None:
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run(name: str, bodies: list[dict]) -> None:
    from django.test import Client

    client = Client()
    latencies = []
    calls = 0
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        response = client.post(
            "/api/v1/browser",
            json.dumps(body),
            content_type="text/plain",
            HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
        )
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.content
        assert not response.json()["rejected"], response.content
        calls += len(body["calls"])
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{name:<42} {len(bodies):>5} batches  {len(bodies) / elapsed:>7.1f} batches/s  "
        f"{calls / elapsed:>7.1f} calls/s  p50 {statistics.median(latencies) * 1000:6.1f} ms  "
        f"p99 {p99 * 1000:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    recreate_database()
    setup_django()
    from datetime import UTC, datetime, timedelta

    from events_app.models import Session
    from users_app.models import Profile
    from users_app.services.environments import environment_create

    environment = environment_create(name="Bench", app_id="1234567890").environment
    app = {"app_id": "1234567890"}
    now_ms = int(time.time() * 1000)

    def pageview(key, path="/"):
        return {
            "type": "pageview",
            "idempotency_key": key,
            "timestamp": now_ms,
            "properties": {"path": path, "referrer": "https://www.google.com/", "utm_source": "ads"},
        }

    def track(key, name="Click"):
        return {
            "type": "track",
            "event": name,
            "idempotency_key": key,
            "timestamp": now_ms,
            "properties": {"button": "buy", "price": 12},
        }

    n = args.batches
    run(
        "1. new visitor (pageview + 2 tracks)",
        [
            {
                **app,
                "user_id": str(10**12 + i),
                "session_id": f"{i:016x}",
                "calls": [pageview(f"n{i}"), track(f"n{i}a"), track(f"n{i}b")],
            }
            for i in range(n)
        ],
    )
    run(
        "2. returning visitor (10 tracks, same session)",
        [
            {
                **app,
                "user_id": str(10**12 + i),
                "session_id": f"{i:016x}",
                "calls": [track(f"r{i}-{j}") for j in range(10)],
            }
            for i in range(n)
        ],
    )
    run(
        "3. sign-up (pageview, identify, props, track)",
        [
            {
                **app,
                "user_id": str(2 * 10**12 + i),
                "session_id": f"{2 * 10**12 + i:016x}",
                "calls": [
                    pageview(f"s{i}", "/signup"),
                    {"type": "identify", "identity": f"user{i}@example.com"},
                    {"type": "add_user_properties", "properties": {"plan": "Startup"}},
                    track(f"s{i}a", "Sign Up"),
                ],
            }
            for i in range(n)
        ],
    )

    heavy = Profile.objects.create(environment=environment, user_id=3 * 10**12)
    start = datetime.now(UTC) - timedelta(days=400)
    Session.objects.bulk_create(
        [
            Session(
                environment=environment,
                profile=heavy,
                original_profile=heavy,
                session_key=f"old{i}",
                started_at=start + timedelta(minutes=30 * i),
                ended_at=start + timedelta(minutes=30 * i + 5),
                landing_page="/old",
            )
            for i in range(20_000)
        ],
        batch_size=5000,
    )
    run(
        "4. new session, profile with 20,000 sessions",
        [
            {**app, "user_id": str(heavy.user_id), "session_id": f"new{i}", "calls": [pageview(f"h{i}")]}
            for i in range(min(n, 100))
        ],
    )


if __name__ == "__main__":
    main()
