"""Benchmark of account reports (SPEC 11, issue #13) on PostgreSQL: GET /api/v1/reports/query with
`account.<property>` and `unique_accounts`, side by side, in the same run and on the same data, with plain SQL on
a lean copy of that data (people already resolved, one row per event):

    lean_events(user_id bigint, name text, ts timestamptz)   indexes (ts) and (name, ts)
    lean_users(user_id bigint, account_id text)              one row per person (account_id NULL: none)
    lean_accounts(account_id text, tier text)                one row per account that has a tier

The ORM's GROUP BY (report_series(path=ORM_PATH), the path account reports took before) is timed too, once per
report by default, to show what the PostgreSQL pass replaced.

    .venv/bin/python bench/account_reports.py                      # 1,000,000 events
    .venv/bin/python bench/account_reports.py --sizes 1000000 10000000 --repeat 3 --orm-repeat 0

Data: bench/reports.py's events, people, pending merges and plans (its generator, into its own database
`cairn_bench_accounts_<size>`, reused by later runs; `--rebuild` to start over), plus accounts: one per ten
people, `company_id` on nine people in ten, a stale `company_id` of its own on every merged-away profile (which
must have no say), `tier` on nine accounts in ten and `industry` on all, and one account in a hundred with
properties and no people.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    FROM,
    PLANS,
    TO,
    each_size_in_its_own_process,
    median_times,
    prepare_database,
    run_header,
    sql_as_report,
)
from bench.reports import API_KEY  # noqa: E402
from bench.reports import generate as generate_events  # noqa: E402

END = "2026-10-30T00:00:00Z"
INDUSTRIES = ["Software", "Retail", "Health", "Finance"]

REPORTS = {
    "unique accounts per week by account.tier": {
        "params": {"measure": "unique_accounts", "group_by": "account.tier", "interval": "week"},
        "sql": """
            SELECT date_trunc('week', e.ts AT TIME ZONE 'UTC') AS bucket, COALESCE(a.tier, '(none)') AS grp,
                   COUNT(DISTINCT u.account_id)
            FROM lean_events e JOIN lean_users u ON u.user_id = e.user_id
            LEFT JOIN lean_accounts a ON a.account_id = u.account_id
            WHERE e.ts >= %(start)s AND e.ts < %(end)s
            GROUP BY GROUPING SETS ((bucket, grp), (grp))""",
    },
    "every event per day by account.tier": {
        "params": {"measure": "events", "group_by": "account.tier", "interval": "day"},
        "sql": """
            SELECT date_trunc('day', e.ts AT TIME ZONE 'UTC') AS bucket, COALESCE(a.tier, '(none)') AS grp,
                   COUNT(*)
            FROM lean_events e JOIN lean_users u ON u.user_id = e.user_id
            LEFT JOIN lean_accounts a ON a.account_id = u.account_id
            WHERE e.ts >= %(start)s AND e.ts < %(end)s
            GROUP BY 1, 2""",
    },
    "sign-ups per week where account.tier=Enterprise (unique users)": {
        "params": {
            "measure": "unique_users",
            "event": "Sign Up",
            "where": "account.tier=Enterprise",
            "interval": "week",
        },
        "sql": """
            SELECT date_trunc('week', e.ts AT TIME ZONE 'UTC') AS bucket, 'All' AS grp, COUNT(DISTINCT e.user_id)
            FROM lean_events e JOIN lean_users u ON u.user_id = e.user_id
            JOIN lean_accounts a ON a.account_id = u.account_id AND a.tier = 'Enterprise'
            WHERE e.name = 'Sign Up' AND e.ts >= %(start)s AND e.ts < %(end)s
            GROUP BY GROUPING SETS ((bucket, grp), (grp))""",
    },
}


def add_accounts(size: int) -> None:
    """Accounts on bench/reports.py's people (see the module docstring), set-based."""
    from django.db import connection

    from users_app.models import Environment, property_key_hash

    environment = Environment.objects.get(app_id=f"bench{size}")
    environment.account_id_property = "company_id"
    environment.save(update_fields=["account_id_property"])
    # People are events / 20: ten people per account. A person's account is (31 * id) mod accounts and
    # bench/reports.py's plan (7919 * id) mod 5: a tier of (account / 7) mod 5 is not a function of the plan.
    accounts = max(size // 200, 10)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO users_app_userproperty (profile_id, key, key_hash, value, is_number, set_at)
            SELECT p.id, 'company_id', %(key)s,
                   'acct-' || (CASE WHEN p.merged_into_id IS NULL THEN p.id * 31 ELSE p.id * 17 END) %% %(accounts)s,
                   false, now()
            FROM users_app_profile p
            WHERE p.environment_id = %(env)s AND (p.merged_into_id IS NOT NULL OR p.id %% 10 <> 3)""",
            {"key": property_key_hash("company_id"), "accounts": accounts, "env": environment.pk},
        )
        for key, values, condition in [
            ("tier", PLANS, "g %% 10 <> 0"),
            ("industry", INDUSTRIES, "true"),
        ]:
            cursor.execute(
                f"""
                INSERT INTO users_app_accountproperty (environment_id, account_id, key, key_hash, value, is_number,
                                                       set_at)
                SELECT %(env)s, 'acct-' || g, %(name)s, %(key)s, (%(values)s::text[])[1 + (g / 7) %% %(count)s],
                       false, now()
                FROM generate_series(0, %(last)s) g WHERE {condition}""",  # condition: fixed text above
                {
                    "env": environment.pk,
                    "name": key,
                    "key": property_key_hash(key),
                    "values": values,
                    "count": len(values),
                    "last": accounts + accounts // 100 - 1,
                },
            )
        cursor.execute("VACUUM ANALYZE users_app_userproperty")
        cursor.execute("VACUUM ANALYZE users_app_accountproperty")


def build_lean_copy(size: int) -> None:
    """The lean reference tables, from the same rows: each event's person and each person's account resolved."""
    from django.db import connection

    from users_app.models import Environment, property_key_hash

    environment = Environment.objects.get(app_id=f"bench{size}")
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS lean_events, lean_users, lean_accounts")
        cursor.execute(
            """
            CREATE TABLE lean_events AS
            SELECT COALESCE(p.merged_into_id, p.id)::bigint AS user_id, e.name::text AS name, e.timestamp AS ts
            FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id
            WHERE e.environment_id = %s""",
            [environment.pk],
        )
        cursor.execute("CREATE INDEX lean_events_ts ON lean_events (ts)")
        cursor.execute("CREATE INDEX lean_events_name_ts ON lean_events (name, ts)")
        cursor.execute(
            """
            CREATE TABLE lean_users AS
            SELECT p.id::bigint AS user_id, up.value::text AS account_id
            FROM users_app_profile p
            LEFT JOIN users_app_userproperty up ON up.profile_id = p.id AND up.key_hash = %s
            WHERE p.environment_id = %s AND p.merged_into_id IS NULL""",
            [property_key_hash("company_id"), environment.pk],
        )
        cursor.execute(
            """
            CREATE TABLE lean_accounts AS
            SELECT account_id::text AS account_id, value::text AS tier FROM users_app_accountproperty
            WHERE environment_id = %s AND key_hash = %s""",
            [environment.pk, property_key_hash("tier")],
        )
        for table in ("lean_events", "lean_users", "lean_accounts"):
            cursor.execute(f"VACUUM ANALYZE {table}")  # fixed names
    print(f"  lean copy built in {time.monotonic() - started:.0f} s", flush=True)


def prepare(size: int, rebuild: bool) -> None:
    database = f"cairn_bench_accounts_{size}"
    if prepare_database(database, rebuild=rebuild):
        print(f"Generating {size:,} events with accounts into {database} ...", flush=True)
        generate_events(size)
        add_accounts(size)
        build_lean_copy(size)
        return
    print(f"Reusing {database}", flush=True)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('lean_accounts') IS NOT NULL")
        if not cursor.fetchone()[0]:
            build_lean_copy(size)


def run(size: int, repeat: int, orm_repeat: int) -> list[tuple]:
    from django.db import connection
    from django.http import QueryDict
    from django.test import Client

    from reports_app.query import report_query_parse
    from reports_app.selectors import report_series
    from reports_app.selectors.series import ORM_PATH
    from users_app.models import Environment

    environment = Environment.objects.get(app_id=f"bench{size}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM lean_events")
        count = cursor.fetchone()[0]
    print(run_header(count, connection, digits=2), flush=True)

    client = Client(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    lines = []
    for title, report in REPORTS.items():
        params = {**report["params"], "from": FROM, "to": TO}

        def api_call(params=params):
            response = client.get("/api/v1/reports/query", params)
            assert response.status_code == 200, response.content[:500]
            return response.json()

        def sql_call(sql=report["sql"]):
            with connection.cursor() as cursor:
                cursor.execute(sql, {"start": f"{FROM}T00:00:00Z", "end": END})
                return cursor.fetchall()

        api_seconds, sql_seconds, answer, rows = median_times(api_call, sql_call, repeat)
        from_api = {item["group"]: (item["values"], item["total"]) for item in answer["series"]}
        same = from_api == sql_as_report(rows, answer["buckets"])
        orm_seconds = None
        if orm_repeat:
            query = report_query_parse(QueryDict(urlencode(params)))
            timings = []
            for _ in range(orm_repeat):
                started = time.perf_counter()
                orm_answer = report_series(environment=environment, query=query, path=ORM_PATH).as_dict()
                timings.append(time.perf_counter() - started)
            orm_seconds = sorted(timings)[len(timings) // 2]
            same = same and orm_answer == answer
        ratio = api_seconds / sql_seconds
        lines.append((size, title, api_seconds, sql_seconds, ratio, orm_seconds, same, os.getloadavg()[0]))
        orm_text = f"   ORM path {orm_seconds * 1000:8.1f} ms" if orm_seconds is not None else ""
        print(
            f"{title:62s} API {api_seconds * 1000:8.1f} ms   lean SQL {sql_seconds * 1000:8.1f} ms   "
            f"ratio {ratio:5.2f}{orm_text}   same numbers: {'yes' if same else 'NO'}",
            flush=True,
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (median); one warm-up first")
    parser.add_argument("--orm-repeat", type=int, default=1, help="timed runs of the ORM path (0: skip it)")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the bench databases")
    arguments = parser.parse_args()
    others = ["--repeat", str(arguments.repeat), "--orm-repeat", str(arguments.orm_repeat)]
    if each_size_in_its_own_process(__file__, arguments.sizes, others + (["--rebuild"] if arguments.rebuild else [])):
        return
    size = arguments.sizes[0]
    prepare(size, arguments.rebuild)
    results = run(size, arguments.repeat, arguments.orm_repeat)
    print(f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print("\n| events | report | API (median) | lean SQL (median) | ratio | ORM path | same numbers | load |")
    print("|---:|---|---:|---:|---:|---:|---|---:|")
    for size, title, api_seconds, sql_seconds, ratio, orm_seconds, same, load in results:
        orm_text = f"{orm_seconds * 1000:,.0f} ms" if orm_seconds is not None else "-"
        print(
            f"| {size:,} | {title} | {api_seconds * 1000:,.0f} ms | {sql_seconds * 1000:,.0f} ms | {ratio:.2f} | "
            f"{orm_text} | {'yes' if same else 'NO'} | {load:.2f} |"
        )


if __name__ == "__main__":
    main()
