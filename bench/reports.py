"""Benchmark of graph reports on PostgreSQL: GET /api/v1/reports/query (URL routing, API-key auth, parsing,
report_series, JSON) side by side with hand-written SQL computing the same numbers.

    .venv/bin/python bench/reports.py                 # 1,000,000 and 10,000,000 events
    .venv/bin/python bench/reports.py --sizes 1000000 --repeat 7

Data is generated in SQL (generate_series) into one database per size, `cairn_bench_reports_<size>`, on
BENCH_PG (default postgres://postgres@127.0.0.1:5432) and reused by later runs (`--rebuild` to start over).
The data: people = events / 20, one in ten without a plan, plus one anonymous profile per ten people merged
into them with the merge *pending* (their events still on the tombstone, which has its own stale plan);
events over 90 days (2026-08-01 .. 2026-10-29): 2% "Sign Up", 1% "Upgrade", 82% "pageview", 15% "Click".
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
API_KEY = "bench-reports-api-key-000000000000"
FROM, TO, DAYS = "2026-08-01", "2026-10-29", 90
PLANS = ["Free", "Startup", "Growth", "Premium", "Enterprise"]

REPORTS = {
    "sign-ups per week by plan (unique users)": {
        "params": {
            "measure": "unique_users",
            "event": "Sign Up",
            "group_by": "user.plan",
            "from": FROM,
            "to": TO,
            "interval": "week",
        },
        # Buckets and range totals (each person once) in one statement.
        "sql": """
            WITH ev AS (
                SELECT date_trunc('week', e.timestamp AT TIME ZONE 'UTC') AS bucket,
                       COALESCE(p.merged_into_id, p.id) AS person
                FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id
                WHERE e.environment_id = %(env)s AND e.name = 'Sign Up'
                  AND e.timestamp >= %(start)s AND e.timestamp < %(end)s)
            SELECT ev.bucket, COALESCE(up.value, '(none)') AS grp, COUNT(DISTINCT ev.person)
            FROM ev LEFT JOIN users_app_userproperty up ON up.profile_id = ev.person AND up.key_hash = %(key)s
            GROUP BY GROUPING SETS ((ev.bucket, grp), (grp))""",
    },
    "sign-ups per week by plan (events)": {
        "params": {
            "measure": "events",
            "event": "Sign Up",
            "group_by": "user.plan",
            "from": FROM,
            "to": TO,
            "interval": "week",
        },
        "sql": """
            SELECT date_trunc('week', e.timestamp AT TIME ZONE 'UTC') AS bucket,
                   COALESCE(up.value, '(none)') AS grp, COUNT(*)
            FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id
            LEFT JOIN users_app_userproperty up
                   ON up.profile_id = COALESCE(p.merged_into_id, p.id) AND up.key_hash = %(key)s
            WHERE e.environment_id = %(env)s AND e.name = 'Sign Up'
              AND e.timestamp >= %(start)s AND e.timestamp < %(end)s
            GROUP BY 1, 2""",
    },
    "all events per day by plan (events)": {
        "params": {"measure": "events", "group_by": "user.plan", "from": FROM, "to": TO, "interval": "day"},
        "sql": """
            SELECT date_trunc('day', e.timestamp AT TIME ZONE 'UTC') AS bucket,
                   COALESCE(up.value, '(none)') AS grp, COUNT(*)
            FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id
            LEFT JOIN users_app_userproperty up
                   ON up.profile_id = COALESCE(p.merged_into_id, p.id) AND up.key_hash = %(key)s
            WHERE e.environment_id = %(env)s AND e.timestamp >= %(start)s AND e.timestamp < %(end)s
            GROUP BY 1, 2""",
    },
}


def admin_connection():
    import psycopg

    return psycopg.connect(f"{PG}/postgres", autocommit=True)


def database_exists(name: str) -> bool:
    with admin_connection() as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def setup_django(database: str) -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{database}"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.pop("REDIS_URL", None)
    # Persistent connections, as a production server would use: time the query, not the connect.
    os.environ.setdefault("DB_CONN_MAX_AGE", "600")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def generate(size: int) -> None:
    """Fill the (migrated, empty) database with `size` events, set-based, indexes built after the load."""
    from django.db import connection

    from users_app.models import property_key_hash
    from users_app.services.environments import environment_create

    environment = environment_create(name=f"Bench {size:,}", app_id=f"bench{size}", api_key=API_KEY).environment
    people = max(size // 20, 10)
    tombstones = people // 10
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO users_app_profile (environment_id, user_id, identity, first_seen, last_seen, created_at)
            SELECT %s, g, 'person-' || g, %s::timestamptz, %s::timestamptz, now()
            FROM generate_series(1, %s) g""",
            [environment.pk, FROM, TO, people],
        )
        cursor.execute("SELECT min(id) FROM users_app_profile WHERE environment_id = %s", [environment.pk])
        first_person = cursor.fetchone()[0]
        # Anonymous profiles merged into people with the merge still pending (SPEC 2 rule 4).
        cursor.execute(
            """
            INSERT INTO users_app_profile (environment_id, user_id, identity, merged_into_id, first_seen,
                                           last_seen, created_at)
            SELECT %s, %s + g, NULL, %s + (g * 10) %% %s, %s::timestamptz, %s::timestamptz, now()
            FROM generate_series(1, %s) g""",
            [environment.pk, people, first_person, people, FROM, TO, tombstones],
        )
        key_hash = property_key_hash("plan")
        cursor.execute(
            """
            INSERT INTO users_app_userproperty (profile_id, key, key_hash, value, is_number, set_at)
            SELECT p.id, 'plan', %s, (%s::text[])[1 + (p.id * 7919) %% 5], false, now()
            FROM users_app_profile p
            WHERE p.environment_id = %s AND (p.merged_into_id IS NOT NULL OR p.id %% 10 <> 0)""",
            [key_hash, PLANS, environment.pk],
        )
        cursor.execute("""
            SELECT indexname, indexdef FROM pg_indexes
            WHERE tablename = 'events_app_event' AND indexdef NOT LIKE '%%UNIQUE%%'""")
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')  # names from pg_indexes, not from input
        total_profiles = people + tombstones
        batch = 1_000_000
        for offset in range(0, size, batch):
            cursor.execute(
                """
                INSERT INTO events_app_event (environment_id, profile_id, original_profile_id, session_id, name,
                                              timestamp, properties, idempotency_key, received_at)
                SELECT %(env)s, pid, pid, NULL,
                       CASE WHEN r < 0.02 THEN 'Sign Up' WHEN r < 0.03 THEN 'Upgrade'
                            WHEN r < 0.85 THEN 'pageview' ELSE 'Click' END,
                       %(start)s::timestamptz + random() * %(days)s * interval '1 day', '{}'::jsonb, NULL, now()
                FROM (SELECT %(first)s + floor(random() * %(profiles)s)::bigint AS pid, random() AS r
                      FROM generate_series(1, %(count)s)) s""",
                {
                    "env": environment.pk,
                    "start": FROM,
                    "days": DAYS,
                    "first": first_person,
                    "profiles": total_profiles,
                    "count": min(batch, size - offset),
                },
            )
            print(f"  {offset + min(batch, size - offset):,} events ({time.monotonic() - started:.0f} s)", flush=True)
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE events_app_event")
        cursor.execute("VACUUM ANALYZE users_app_profile")
        cursor.execute("VACUUM ANALYZE users_app_userproperty")
    print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)


def prepare(size: int, rebuild: bool) -> str:
    from django.core.management import call_command

    database = f"cairn_bench_reports_{size}"
    if rebuild and database_exists(database):
        with admin_connection() as connection:
            connection.execute(f'DROP DATABASE "{database}"')  # our own fixed name
    fresh = not database_exists(database)
    if fresh:
        with admin_connection() as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
    setup_django(database)
    call_command("migrate", verbosity=0)
    from events_app.models import Event

    if fresh or not Event.objects.exists():
        print(f"Generating {size:,} events into {database} ...", flush=True)
        generate(size)
    else:
        print(f"Reusing {database}", flush=True)
    return database


def median_times(first, second, repeat: int) -> tuple[float, float, object, object]:
    """Median seconds of two functions run alternately (one warm-up each first), so that the load of a
    shared machine weighs on both alike."""
    first_result, second_result = first(), second()
    first_timings, second_timings = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        first_result = first()
        first_timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        second_result = second()
        second_timings.append(time.perf_counter() - started)
    return statistics.median(first_timings), statistics.median(second_timings), first_result, second_result


def sql_as_report(rows, buckets: list[str]) -> dict:
    """The plain SQL rows in the API's shape, to check both compute the same numbers."""
    index = {bucket: position for position, bucket in enumerate(buckets)}
    values, totals = {}, {}
    for bucket, group, value in rows:
        if bucket is None:
            totals[group] = value
            continue
        values.setdefault(group, [0] * len(buckets))[index[bucket.date().isoformat()]] += value
    return {group: (series, totals.get(group, sum(series))) for group, series in values.items()}


def run(size: int, repeat: int) -> list[tuple]:
    from django.db import connection
    from django.test import Client

    from users_app.models import Environment, property_key_hash

    environment = Environment.objects.get(app_id=f"bench{size}")
    from events_app.models import Event

    count = Event.objects.filter(environment=environment).count()
    print(
        f"\n{count:,} events, PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    lines = []
    for title, report in REPORTS.items():

        def api_call(params=report["params"]):
            response = client.get("/api/v1/reports/query", params)
            assert response.status_code == 200, response.content[:500]
            return response.json()

        def sql_call(sql=report["sql"]):
            with connection.cursor() as cursor:
                cursor.execute(
                    sql,
                    {
                        "env": environment.pk,
                        "start": f"{FROM}T00:00:00Z",
                        "end": "2026-10-30T00:00:00Z",
                        "key": property_key_hash("plan"),
                    },
                )
                return cursor.fetchall()

        api_seconds, sql_seconds, answer, rows = median_times(api_call, sql_call, repeat)
        from_api = {item["group"]: (item["values"], item["total"]) for item in answer["series"]}
        same = from_api == sql_as_report(rows, answer["buckets"])
        ratio = api_seconds / sql_seconds
        lines.append((size, title, api_seconds, sql_seconds, ratio, same))
        print(
            f"{title:44s} API {api_seconds * 1000:8.1f} ms   SQL {sql_seconds * 1000:8.1f} ms   "
            f"ratio {ratio:4.2f}   same numbers: {'yes' if same else 'NO'}",
            flush=True,
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (median); one warm-up first")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the bench databases")
    arguments = parser.parse_args()
    if len(arguments.sizes) > 1:
        # Django is set up once per process: run each size in its own process.
        import subprocess

        for size in arguments.sizes:
            command = [sys.executable, __file__, "--sizes", str(size), "--repeat", str(arguments.repeat)]
            subprocess.run(command + (["--rebuild"] if arguments.rebuild else []), check=True)
        return
    size = arguments.sizes[0]
    prepare(size, arguments.rebuild)
    results = run(size, arguments.repeat)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("\n| events | report | API (median) | plain SQL (median) | ratio | same numbers |")
    print("|---:|---|---:|---:|---:|---|")
    for size, title, api_seconds, sql_seconds, ratio, same in results:
        print(
            f"| {size:,} | {title} | {api_seconds * 1000:.0f} ms | {sql_seconds * 1000:.0f} ms | {ratio:.2f} | "
            f"{'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()
