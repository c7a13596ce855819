"""Cairn against a lean table, in one run (issue #16): realistic events through the public bulk API over HTTP,
the same rows COPYed into a lean table in the same database, then reports over HTTP against plain SQL on it.

    .venv/bin/python bench/lean_compare.py --sizes 1000000 10000000 --repeat 7
    .venv/bin/python bench/lean_compare.py --sizes 10000000 --repeat 3 --reuse   # keep the ingested data

For each size: a fresh database `cairn_bench_lean_<size>` on BENCH_PG (migrated; `--reuse` keeps one that
exists and skips ingest and the COPY), an environment from `manage.py create_environment` (account id
property `company_id`), then gunicorn (`-w 4`), a Celery worker and beat as docs/operations.md runs them
(DEBUG unset, Redis at BENCH_REDIS_URL, default db 3, flushed first). bench/lean_data.py's data (seeded) goes
through `/api/track` in bulk calls of 1,000 events in time order from 4 concurrent clients (timed: events/s),
then plans and account ids through bulk `/api/add_user_properties` and tiers through bulk
`/api/add_account_properties`. The same rows are COPYed into a fresh `lean_event(user_id bigint, name text,
ts timestamptz)` with its indexes `(ts)` and `(name, ts)` in place (best of 3: rows/s), next to
`lean_plan(user_id, plan)`, `lean_user_account(user_id, account_id)` and `lean_account(account_id, tier)`.
Then VACUUM ANALYZE, `manage.py rollups_catch_up` when the repository has it, and each report timed through
`GET /api/v1/reports/query` (Bearer API key) and as plain SQL on the lean tables, alternately, medians after a
warm-up; the numbers must agree or the run stops. Last, freshness: one new event sent, the report polled
until it counts it.
"""

import argparse
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import lean_data  # noqa: E402
from bench.common import PG, database_create, median_times, sql_as_report  # noqa: E402
from bench.lean_servers import Servers, http_call, manage, production_variables  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
API_KEY = "bench-lean-api-key-0000000000000000"
END = "2026-10-30T00:00:00Z"  # the day after TO
RANGE = {"from": lean_data.FROM, "to": lean_data.TO}
PLAN_JOIN = "LEFT JOIN lean_plan p ON p.user_id = e.user_id"
TIER_JOIN = (
    "LEFT JOIN lean_user_account u ON u.user_id = e.user_id LEFT JOIN lean_account a ON a.account_id = u.account_id"
)
IN_RANGE = "e.ts >= %(start)s AND e.ts < %(end)s"


def grouped_sql(interval: str, measure: str, group: str, join: str, where: str = "") -> str:
    """Plain SQL for a report on the lean tables: (bucket, group, value) rows, and for unique users the range
    totals of each group too (a NULL bucket, GROUPING SETS), as the API counts each person once per group."""
    bucket = f"date_trunc('{interval}', e.ts AT TIME ZONE 'UTC')"
    value = "count(DISTINCT e.user_id)" if measure == "unique_users" else "count(*)"
    grouping = "GROUPING SETS ((1, 2), (2))" if measure == "unique_users" else "1, 2"
    return (
        f"SELECT {bucket}, COALESCE({group}, '(none)'), {value} FROM lean_event e {join} "
        f"WHERE {IN_RANGE} {where} GROUP BY {grouping}"
    )


REPORTS = {
    "every event per day by plan": (
        {"measure": "events", "interval": "day", "group_by": "user.plan"},
        grouped_sql("day", "events", "p.plan", PLAN_JOIN),
    ),
    "unique users per week by plan": (
        {"measure": "unique_users", "interval": "week", "group_by": "user.plan"},
        grouped_sql("week", "unique_users", "p.plan", PLAN_JOIN),
    ),
    "sign-ups per week by plan (events)": (
        {"measure": "events", "event": "Sign Up", "interval": "week", "group_by": "user.plan"},
        grouped_sql("week", "events", "p.plan", PLAN_JOIN, "AND e.name = 'Sign Up'"),
    ),
    "sign-ups per week by plan (unique users)": (
        {"measure": "unique_users", "event": "Sign Up", "interval": "week", "group_by": "user.plan"},
        grouped_sql("week", "unique_users", "p.plan", PLAN_JOIN, "AND e.name = 'Sign Up'"),
    ),
    "every event per day by account.tier": (
        {"measure": "events", "interval": "day", "group_by": "account.tier"},
        grouped_sql("day", "events", "a.tier", TIER_JOIN),
    ),
}


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def send_all(port: int, path: str, bodies: list[bytes], clients: int) -> float:
    """Seconds to send every body from `clients` concurrent clients; any item not accepted stops the run."""
    next_body, lock, failures = iter(range(len(bodies))), threading.Lock(), []

    def client() -> None:
        while not failures:
            with lock:
                index = next(next_body, None)
            if index is None:
                return
            status, answer = http_call(port, "POST", path, bodies[index])
            if status != 200 or answer.get("rejected"):
                failures.append((path, index, status, str(answer)[:300]))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"ingest refused: {failures[:3]}")
    return time.perf_counter() - started


def ingest(port: int, dataset, app_id: str, clients: int) -> dict:
    # Untimed first: a worker's first calls pay its imports, its connection and statements not yet prepared. Into
    # an environment of their own, so that neither the reports nor the lean copy see them.
    warm_up = lean_data.generate(8000, seed=99)
    send_all(port, "/api/track", lean_data.track_bodies(warm_up, "leanwarmup"), clients)
    bodies = lean_data.track_bodies(dataset, app_id)
    print(f"  sending {dataset.size:,} events in {len(bodies):,} bulk calls from {clients} clients ...", flush=True)
    seconds = send_all(port, "/api/track", bodies, clients)
    users = lean_data.user_property_bodies(dataset, app_id)
    user_seconds = send_all(port, "/api/add_user_properties", users, clients)
    send_all(port, "/api/add_account_properties", lean_data.account_property_bodies(dataset, app_id), clients)
    return {
        "events_per_second": dataset.size / seconds,
        "ingest_seconds": seconds,
        "users_per_second": sum(body.count(b'"identity"') for body in users) / user_seconds,
    }


def lean_tables(connection, dataset, copy_repeat: int) -> dict:
    """The lean copy: lean_event COPYed `copy_repeat` times into a fresh table with both indexes (the best
    time is the baseline), and the people's plans and accounts."""
    payload = lean_data.lean_copy_text(dataset)
    timings = []
    for _ in range(copy_repeat):
        connection.execute("DROP TABLE IF EXISTS lean_event")
        connection.execute("CREATE TABLE lean_event (user_id bigint, name text, ts timestamptz)")
        connection.execute("CREATE INDEX lean_event_ts ON lean_event (ts)")
        connection.execute("CREATE INDEX lean_event_name_ts ON lean_event (name, ts)")
        connection.commit()
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy("COPY lean_event (user_id, name, ts) FROM STDIN") as copy:
            for offset in range(0, len(payload), 1 << 20):
                copy.write(payload[offset : offset + (1 << 20)])
        connection.commit()
        timings.append(time.perf_counter() - started)
    people = range(1, dataset.people + 1)
    tables = {
        "lean_plan (user_id bigint, plan text)": [(p, dataset.plans[p]) for p in people if dataset.plans[p]],
        "lean_user_account (user_id bigint, account_id text)": [
            (p, dataset.accounts[p]) for p in people if dataset.accounts[p]
        ],
        "lean_account (account_id text, tier text)": list(dataset.tiers.items()),
    }
    for definition, rows in tables.items():
        name = definition.split()[0]
        connection.execute(f"DROP TABLE IF EXISTS {name}")  # fixed names above
        connection.execute(f"CREATE TABLE {definition}")
        with connection.cursor() as cursor, cursor.copy(f"COPY {name} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.execute(f"CREATE UNIQUE INDEX ON {name} ({definition.split('(')[1].split()[0]})")
    connection.commit()
    return {"copy_rows_per_second": dataset.size / min(timings), "copy_seconds": min(timings)}


def api_report(port: int, params: dict) -> dict:
    status, answer = http_call(
        port, "GET", f"/api/v1/reports/query?{urlencode(params)}", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    if status != 200:
        raise SystemExit(f"report {params} answered {status}: {str(answer)[:500]}")
    return answer


def compare_reports(port: int, connection, repeat: int) -> list[tuple]:
    lines = []
    for title, (params, sql) in REPORTS.items():
        params = {**params, **RANGE}
        explained = api_report(port, {**params, "explain": "1"}).get("explain")
        path = explained.get("path") if isinstance(explained, dict) else None

        def sql_call(sql=sql):
            return connection.execute(sql, {"start": f"{lean_data.FROM}T00:00:00Z", "end": END}).fetchall()

        api_seconds, sql_seconds, answer, rows = median_times(lambda p=params: api_report(port, p), sql_call, repeat)
        from_api = {item["group"]: (item["values"], item["total"]) for item in answer["series"]}
        from_sql = sql_as_report(rows, answer["buckets"])
        if from_api != from_sql:
            differing = sorted(set(from_api) ^ set(from_sql)) or [g for g in from_api if from_api[g] != from_sql[g]]
            api_totals = {group: values[1] for group, values in from_api.items()}
            sql_totals = {group: values[1] for group, values in from_sql.items()}
            raise SystemExit(
                f"{title}: the API and the lean SQL disagree (groups {differing}):\n"
                f"API totals {api_totals}\nSQL totals {sql_totals}"
            )
        lines.append((title, api_seconds, sql_seconds, path, loadavg().split()[0]))
        print(
            f"  {title:42s} API {api_seconds * 1000:9,.0f} ms   lean SQL {sql_seconds * 1000:8,.0f} ms   "
            f"ratio {api_seconds / sql_seconds:5.2f}   same numbers   path {path or '-'}",
            flush=True,
        )
    return lines


def total_of(port: int, params: dict) -> int:
    """All the events a report of events counts."""
    return sum(item["total"] for item in api_report(port, params)["series"])


def freshness(port: int, app_id: str, connection, moment: datetime, params: dict, timeout: float = 120) -> float | None:
    """Seconds from one new event's 200 to the first answer of `params` that counts it (None: not within
    `timeout`). The event is added to lean_event too, so that a later `--reuse` run compares like with like."""
    before = total_of(port, params)
    body = {"app_id": app_id, "identity": lean_data.identity_of(1), "event": "pageview"}
    body |= {"timestamp": lean_data.iso(int(moment.timestamp() * 1000)), "properties": {"path": "/fresh"}}
    status, answer = http_call(port, "POST", "/api/track", json.dumps(body).encode())
    assert status == 200 and answer["accepted"] == 1, answer
    sent = time.perf_counter()
    connection.execute("INSERT INTO lean_event VALUES (1, 'pageview', %s)", [moment])
    connection.commit()
    while time.perf_counter() - sent < timeout:
        if total_of(port, params) == before + 1:
            return time.perf_counter() - sent
        time.sleep(0.1)
    return None


def run(size: int, repeat: int, reuse: bool, clients: int, workers: int, copy_repeat: int) -> None:
    import psycopg
    import redis

    started = time.monotonic()
    load_before = loadavg()
    database = f"cairn_bench_lean_{size}"
    fresh = database_create(database, rebuild=not reuse)
    env = production_variables(f"{PG}/{database}", REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()  # the bench's own Redis db: no stale limits or queued tasks
    manage(env, "migrate", "--noinput", "-v", "0")
    app_id = f"lean{size}"
    if fresh:
        manage(
            env,
            "create_environment",
            f"Lean {size:,}",
            "--app-id",
            app_id,
            "--api-key",
            API_KEY,
            "--account-property",
            "company_id",
        )
        manage(env, "create_environment", "Warm-up", "--app-id", "leanwarmup")
    connection = psycopg.connect(f"{PG}/{database}")
    figures = {}
    print(f"\n{size:,} events into {database}; load average {load_before}", flush=True)
    with Servers(env, workers=workers, timeout=900) as servers:
        if fresh:
            dataset = lean_data.generate(size)
            figures |= ingest(servers.port, dataset, app_id, clients)
            print(f"  ingest: {figures['events_per_second']:,.0f} events/s ({figures['ingest_seconds']:.0f} s)")
            figures |= lean_tables(connection, dataset, copy_repeat)
            print(f"  COPY into lean_event: {figures['copy_rows_per_second']:,.0f} rows/s", flush=True)
            del dataset
        else:
            print("  --reuse: ingest and the COPY skipped (the data is the last run's)")
        connection.autocommit = True
        # This machine's PostgreSQL runs with autovacuum off (a CI setting); after a bulk load a production
        # database's autovacuum would have vacuumed and analysed both sides, so do it here, for both alike.
        connection.execute("VACUUM ANALYZE")
        if "rollups_catch_up" in manage(env, "help", "--commands"):
            caught_up = time.perf_counter()
            manage(env, "rollups_catch_up")
            figures["rollups_seconds"] = time.perf_counter() - caught_up
            print(f"  rollups_catch_up: {figures['rollups_seconds']:.1f} s")
        count = connection.execute("SELECT count(*) FROM lean_event").fetchone()[0]
        sizes = "pg_total_relation_size('events_app_event'), pg_total_relation_size('lean_event')"
        figures["table_bytes"] = connection.execute(f"SELECT {sizes}").fetchone()
        version = connection.info.server_version
        print(f"  {count:,} events, PostgreSQL {version}; reports (median of {repeat}):", flush=True)
        lines = compare_reports(servers.port, connection, repeat)
        connection.autocommit = False
        today = datetime.now(UTC).date()
        last_week = {"measure": "events", "interval": "day", "from": str(today - timedelta(days=6)), "to": str(today)}
        figures["fresh_now"] = freshness(servers.port, app_id, connection, datetime.now(UTC), last_week)
        late = datetime(2026, 10, 29, 12, tzinfo=UTC)  # the benchmark range's last day: an event arriving late
        figures["fresh_late"] = freshness(
            servers.port, app_id, connection, late, {**REPORTS["every event per day by plan"][0], **RANGE}
        )
    connection.close()
    print_table(size, count, repeat, lines, figures, load_before, time.monotonic() - started)


def print_table(size, count, repeat, lines, figures, load_before, seconds) -> None:
    print(f"\n### {count:,} events (size {size:,}), medians of {repeat}; load average before: {load_before}")
    print("\n| report (90 days) | `/api/v1/reports/query` | plain SQL on the lean table | ratio | path | load |")
    print("|---|---:|---:|---:|---|---:|")
    for title, api_seconds, sql_seconds, path, load in lines:
        print(
            f"| {title} | {api_seconds * 1000:,.0f} ms | {sql_seconds * 1000:,.0f} ms | "
            f"{api_seconds / sql_seconds:.2f} | {path or '-'} | {load} |"
        )
    if "events_per_second" in figures:
        ratio = figures["events_per_second"] / figures["copy_rows_per_second"]
        print(
            f"\nBulk ingest over HTTP: {figures['events_per_second']:,.0f} events/s "
            f"({figures['ingest_seconds']:.0f} s); plain COPY into the lean table: "
            f"{figures['copy_rows_per_second']:,.0f} rows/s; ratio **{ratio:.2f}** (target >= 0.25). "
            f"User properties: {figures['users_per_second']:,.0f} people/s."
        )
    for key, what in (("fresh_now", "an event of now, last 7 days"), ("fresh_late", "a late event, the 90 days")):
        value = figures.get(key)
        print(f"Freshness ({what}): " + ("not counted within 120 s" if value is None else f"{value:.2f} s"))
    cairn_bytes, lean_bytes = figures["table_bytes"]
    print(f"Tables with their indexes: events_app_event {cairn_bytes >> 20:,} MB, lean_event {lean_bytes >> 20:,} MB.")
    if "rollups_seconds" in figures:
        print(f"rollups_catch_up: {figures['rollups_seconds']:.1f} s")
    print(f"Load average after: {loadavg()}; the run took {seconds / 60:.1f} min.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per report (median); one warm-up first")
    parser.add_argument("--reuse", action="store_true", help="keep an existing database: skip ingest and COPY")
    parser.add_argument("--clients", type=int, default=4, help="concurrent ingest clients")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (docs: about 2 x cores)")
    parser.add_argument("--copy-repeat", type=int, default=3, help="COPYs of the lean table (the best counts)")
    arguments = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}; {os.cpu_count()} cores")
    for size in arguments.sizes:
        run(size, arguments.repeat, arguments.reuse, arguments.clients, arguments.workers, arguments.copy_repeat)


if __name__ == "__main__":
    main()
