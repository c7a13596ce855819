"""Benchmark of funnels and retention on PostgreSQL: GET /api/v1/reports/funnel and /retention (URL routing,
API-key auth, parsing, the selector, JSON) side by side with hand-written SQL of the same semantics on a lean
table (`user_id bigint, name text, ts timestamptz`, indexes (ts) and (name, ts), the person already resolved).

    .venv/bin/python bench/funnels.py                 # 1,000,000 and 10,000,000 events
    .venv/bin/python bench/funnels.py --sizes 1000000 --repeat 7
    .venv/bin/python bench/funnels.py --sizes 1000000 --shape lean

Data is generated in SQL (INSERT ... SELECT generate_series, set-based, indexes built after the load) into one
database per shape and size, `cairn_bench_funnels_<size>` (uniform) or `cairn_bench_funnels_lean_<size>`, on
BENCH_PG (default postgres://postgres@127.0.0.1:5432), and reused by later runs (`--rebuild` to start over). Both
shapes have one person in ten without a plan, plus one anonymous profile per ten people merged into them with the
merge *pending* (their events still on the tombstone), over 90 days (2026-08-01 .. 2026-10-29):
- `uniform` (the default): people = events / 20, each event of a random profile at a random moment: 4% "Sign Up",
  3% "Activate", 2% "Upgrade", 76% "pageview", 15% "Click";
- `lean`: bench/lean_data.py's realistic shape (issue #16; bench/common.py's LEAN_EVENTS_SQL): 13 profiles per
  1,000 events, each active on 1-6 days, a session a day of 5-40 events, one Sign Up in the first session.
The lean table holds the same events with each one's person as user_id.
"""

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    FROM,
    TO,
    each_size_in_its_own_process,
    generate_lean_people_and_events,
    generate_people_and_events,
    load_average,
    median_times,
    prepare_database,
    run_header,
)

API_KEY = "bench-funnels-api-key-00000000000000"
END = "2026-10-30"
STEPS = ["Sign Up", "Activate", "Upgrade"]
WINDOW = timedelta(days=14)
FUNNEL = {"step": STEPS, "window": "14d", "from": FROM, "to": TO}
RETENTION = {"start_event": "Sign Up", "return_event": "pageview", "interval": "week", "periods": "8"}
RETENTION |= {"from": FROM, "to": TO}

# The funnel by hand, for three different step names: the next Activate / Upgrade at or after each event
# (peers of the same time included), then Sign Up -> its Activate's row -> Upgrade, the best attempt per person.
FUNNEL_SQL = """
    WITH step_rows AS (
        SELECT user_id, name, ts,
               min(ts) FILTER (WHERE name = 'Activate') OVER later AS next_activate,
               min(ts) FILTER (WHERE name = 'Upgrade') OVER later AS next_upgrade
        FROM bench_lean_events
        WHERE name IN ('Sign Up', 'Activate', 'Upgrade') AND ts >= %(start)s AND ts < %(end)s::timestamptz + %(window)s
        WINDOW later AS (PARTITION BY user_id ORDER BY ts DESC RANGE UNBOUNDED PRECEDING)),
    attempts AS (
        SELECT user_id, ts AS t0, CASE WHEN next_activate <= ts + %(window)s THEN next_activate END AS t1
        FROM step_rows WHERE name = 'Sign Up' AND ts >= %(start)s AND ts < %(end)s),
    activations AS (SELECT DISTINCT user_id, ts, next_upgrade FROM step_rows WHERE name = 'Activate'),
    full_attempts AS (
        SELECT a.user_id, a.t0, a.t1,
               CASE WHEN v.next_upgrade <= a.t0 + %(window)s THEN v.next_upgrade END AS t2
        FROM attempts a LEFT JOIN activations v ON v.user_id = a.user_id AND v.ts = a.t1),
    best AS (
        SELECT DISTINCT ON (user_id) * FROM full_attempts
        ORDER BY user_id, (t1 IS NOT NULL)::int + (t2 IS NOT NULL)::int DESC, t0)
    SELECT count(*), count(t1), count(t2),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM t1 - t0)::float8),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM t2 - t1)::float8)
    FROM best"""

# Weekly retention by hand: each person's first Sign Up week, and the distinct weeks of their pageviews after it.
RETENTION_SQL = """
    WITH cohorts AS (
        SELECT user_id, date_trunc('week', min(ts) AT TIME ZONE 'UTC') AS cohort
        FROM bench_lean_events WHERE name = 'Sign Up' AND ts >= %(start)s AND ts < %(end)s GROUP BY user_id),
    returns AS (
        SELECT DISTINCT user_id, date_trunc('week', ts AT TIME ZONE 'UTC') AS bucket
        FROM bench_lean_events WHERE name = 'pageview' AND ts >= %(returns_from)s AND ts < %(returns_to)s)
    SELECT cohort, NULL::timestamp, count(*) FROM cohorts GROUP BY 1
    UNION ALL
    SELECT c.cohort, r.bucket, count(*)
    FROM cohorts c JOIN returns r ON r.user_id = c.user_id AND r.bucket > c.cohort
                                 AND r.bucket <= c.cohort + interval '8 weeks'
    GROUP BY 1, 2"""


FUNNEL_NAMES_SQL = """CASE WHEN r < 0.04 THEN 'Sign Up' WHEN r < 0.07 THEN 'Activate' WHEN r < 0.09 THEN 'Upgrade'
                            WHEN r < 0.85 THEN 'pageview' ELSE 'Click' END"""


SHAPES = ("uniform", "lean")


def generate(size: int, shape: str) -> None:
    """Fill the (migrated, empty) database with `size` events and the lean table with the same events."""
    from django.db import connection

    if shape == "lean":
        environment, started = generate_lean_people_and_events(size, api_key=API_KEY)
    else:
        environment, started = generate_people_and_events(size, api_key=API_KEY, names_sql=FUNNEL_NAMES_SQL)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_lean_events")
        cursor.execute("CREATE TABLE bench_lean_events (user_id bigint, name text, ts timestamptz)")
        # The baseline's table: each event with its person (the tombstone's destination) as user_id.
        cursor.execute(
            """
            INSERT INTO bench_lean_events
            SELECT COALESCE(p.merged_into_id, p.id), e.name, e.timestamp
            FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id
            WHERE e.environment_id = %s""",
            [environment.pk],
        )
        cursor.execute("CREATE INDEX bench_lean_ts ON bench_lean_events (ts)")
        cursor.execute("CREATE INDEX bench_lean_name_ts ON bench_lean_events (name, ts)")
        for table in ("events_app_event", "users_app_profile", "users_app_userproperty", "bench_lean_events"):
            cursor.execute(f"VACUUM ANALYZE {table}")  # fixed names
    print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)


def prepare(size: int, shape: str, rebuild: bool) -> None:
    database = f"cairn_bench_funnels_{size}" if shape == "uniform" else f"cairn_bench_funnels_{shape}_{size}"
    if prepare_database(database, rebuild=rebuild):
        print(f"Generating {size:,} events ({shape}) into {database} ...", flush=True)
        generate(size, shape)
    else:
        print(f"Reusing {database}", flush=True)


def catch_up_rollups(connection) -> None:
    """The rollups counted up to the last event, as beat keeps them (retention reads them), then vacuumed as
    autovacuum would after the inserts (an index-only scan needs the visibility map)."""
    from events_app.rollups.catch_up import rollups_catch_up
    from events_app.rollups.models import ROLLUP_MODELS

    started = time.monotonic()
    caught = rollups_catch_up()
    if caught.batches:
        with connection.cursor() as cursor:
            for model in ROLLUP_MODELS:
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")  # fixed names
    seconds = time.monotonic() - started
    print(f"rollups_catch_up: {caught.batches} batches, {seconds:.1f} s, through event {caught.through_event_id}")


def _funnel_from_sql(rows) -> dict:
    total, activated, upgraded, median_1, median_2 = rows[0]
    medians = [None, *(None if value is None else round(value, 3) for value in (median_1, median_2))]
    return {"counts": [total, activated, upgraded], "median_seconds_to_convert": medians}


def _retention_from_sql(rows, answer: dict) -> bool:
    """The API's cohorts against the plain SQL's rows (cohort, return bucket or NULL for the size, people)."""
    expected = {}
    for cohort in answer["cohorts"]:
        start = cohort["start"]
        expected[(start, None)] = cohort["size"]
        for k, count in enumerate(cohort["returned"][1:], 1):
            if count:
                expected[(start, k)] = count
    found = {}
    for cohort, bucket, count in rows:
        key = cohort.date().isoformat()
        found[(key, None if bucket is None else (bucket - cohort).days // 7)] = count
    # Buckets that begin after `to` are left out by the API: leave them out of the plain SQL's too.
    last = {cohort["start"]: len(cohort["returned"]) - 1 for cohort in answer["cohorts"]}
    found = {key: value for key, value in found.items() if key[1] is None or key[1] <= last.get(key[0], -1)}
    return found == expected


def run(size: int, repeat: int, only: str | None = None) -> list[tuple]:
    from django.db import connection
    from django.test import Client

    from events_app.models import Event
    from users_app.models import Environment

    environment = Environment.objects.get(app_id=f"bench{size}")
    count = Event.objects.filter(environment=environment).count()
    print(run_header(count, connection), flush=True)
    catch_up_rollups(connection)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    sql_params = {
        "start": f"{FROM}T00:00:00Z",
        "end": f"{END}T00:00:00Z",
        "window": WINDOW,
        "returns_from": "2026-08-03T00:00:00Z",  # the Monday after the first cohort's week (2026-07-27)
        "returns_to": "2026-11-02T00:00:00Z",  # the end of the week holding `to`
    }
    cases = [
        ("3-step funnel, 14-day window", "/api/v1/reports/funnel", FUNNEL, FUNNEL_SQL),
        ("3-step funnel by plan (API only)", "/api/v1/reports/funnel", {**FUNNEL, "group_by": "user.plan"}, None),
        ("weekly retention, 8 periods", "/api/v1/reports/retention", RETENTION, RETENTION_SQL),
        (
            "weekly retention by plan (API only)",
            "/api/v1/reports/retention",
            {**RETENTION, "group_by": "user.plan"},
            None,
        ),
    ]
    lines = []
    for title, url, params, sql in cases:
        if only and only not in url:
            continue

        def api_call(url=url, params=params):
            response = client.get(url, params)
            assert response.status_code == 200, response.content[:500]
            return response.json()

        def sql_call(sql=sql):
            if sql is None:
                return None
            with connection.cursor() as cursor:
                cursor.execute(sql, sql_params)
                return cursor.fetchall()

        path = client.get(url, {**params, "explain": "1"}).json().get("explain", {}).get("path", "-")
        api_seconds, sql_seconds, answer, rows = median_times(api_call, sql_call, repeat)
        if sql is None:
            same, ratio, sql_seconds = None, None, None
        elif url.endswith("funnel"):
            same = {
                key: answer["series"][0][key] for key in ("counts", "median_seconds_to_convert")
            } == _funnel_from_sql(rows)
            ratio = api_seconds / sql_seconds
        else:
            same, ratio = _retention_from_sql(rows, answer), api_seconds / sql_seconds
        lines.append((size, title, api_seconds, sql_seconds, ratio, same, path))
        sql_text = "" if sql_seconds is None else f"   SQL {sql_seconds * 1000:8.1f} ms   ratio {ratio:4.2f}"
        same_text = "" if same is None else f"   same numbers: {'yes' if same else 'NO'}"
        print(f"{title:40s} API {api_seconds * 1000:8.1f} ms{sql_text}{same_text}   path {path}", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (median); one warm-up first")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the bench databases")
    parser.add_argument("--only", choices=["funnel", "retention"], help="time one report type only")
    parser.add_argument("--shape", choices=SHAPES, default="uniform", help="the data's shape (module docstring)")
    arguments = parser.parse_args()
    others = ["--repeat", str(arguments.repeat), "--shape", arguments.shape]
    others += ["--only", arguments.only] if arguments.only else []
    if each_size_in_its_own_process(__file__, arguments.sizes, others + (["--rebuild"] if arguments.rebuild else [])):
        return
    size = arguments.sizes[0]
    prepare(size, arguments.shape, arguments.rebuild)
    results = run(size, arguments.repeat, arguments.only)
    print(
        f"shape {arguments.shape}; load average at the end: {load_average()} ({open('/proc/loadavg').read().strip()})"
    )
    print("\n| events | report | API (median) | plain SQL (median) | ratio | same numbers | path |")
    print("|---:|---|---:|---:|---:|---|---|")
    for size, title, api_seconds, sql_seconds, ratio, same, path in results:
        sql_cell = "-" if sql_seconds is None else f"{sql_seconds * 1000:.0f} ms"
        ratio_cell = "-" if ratio is None else f"{ratio:.2f}"
        same_cell = "-" if same is None else ("yes" if same else "NO")
        print(
            f"| {size:,} | {title} | {api_seconds * 1000:.0f} ms | {sql_cell} | {ratio_cell} | {same_cell} | {path} |"
        )


if __name__ == "__main__":
    main()
