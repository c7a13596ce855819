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
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    FROM,
    TO,
    each_size_in_its_own_process,
    generate_people_and_events,
    load_average,
    median_times,
    prepare_database,
    run_header,
    sql_as_report,
)

API_KEY = "bench-reports-api-key-000000000000"

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


def generate(size: int) -> None:
    """Fill the (migrated, empty) database with `size` events (bench/common.py's generator), then vacuum."""
    from django.db import connection

    _, started = generate_people_and_events(size, api_key=API_KEY)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE events_app_event")
        cursor.execute("VACUUM ANALYZE users_app_profile")
        cursor.execute("VACUUM ANALYZE users_app_userproperty")
    print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)


def prepare(size: int, rebuild: bool) -> str:
    database = f"cairn_bench_reports_{size}"
    if prepare_database(database, rebuild=rebuild):
        print(f"Generating {size:,} events into {database} ...", flush=True)
        generate(size)
    else:
        print(f"Reusing {database}", flush=True)
    return database


def run(size: int, repeat: int) -> list[tuple]:
    from django.db import connection
    from django.test import Client

    from users_app.models import Environment, property_key_hash

    environment = Environment.objects.get(app_id=f"bench{size}")
    from events_app.models import Event

    count = Event.objects.filter(environment=environment).count()
    print(run_header(count, connection), flush=True)
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
    others = ["--repeat", str(arguments.repeat)] + (["--rebuild"] if arguments.rebuild else [])
    if each_size_in_its_own_process(__file__, arguments.sizes, others):
        return
    size = arguments.sizes[0]
    prepare(size, arguments.rebuild)
    results = run(size, arguments.repeat)
    print(f"load average at the end: {load_average()}")
    print("\n| events | report | API (median) | plain SQL (median) | ratio | same numbers |")
    print("|---:|---|---:|---:|---:|---|")
    for size, title, api_seconds, sql_seconds, ratio, same in results:
        print(
            f"| {size:,} | {title} | {api_seconds * 1000:.0f} ms | {sql_seconds * 1000:.0f} ms | {ratio:.2f} | "
            f"{'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()
