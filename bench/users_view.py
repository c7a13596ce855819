"""The Users view at 1,000,000 profiles on PostgreSQL: server time of the first page, a filtered page
(plan = Startup), later pages, and the count, through the selector and through the HTML view.

    .venv/bin/python bench/users_view.py            # DATABASE_URL defaults to .../cairn_bench_users
    .venv/bin/python bench/users_view.py --profiles 200000 --repeat 9

The data is made once with INSERT ... SELECT generate_series (about a minute) and reused on later runs:
1,000,000 live profiles (a third identified), each with a `plan` (Free 50 %, Startup 20 %, Growth 15 %,
Premium 10 %, Enterprise 5 %) and one session; last_seen spread over a year, skewed to recent activity
(about a quarter active in the last 7 days); plus 20,000 tombstones merged into identified profiles, each
with a session of its own (a pending merge's history, counted on the destination).

Accounts (SPEC 11; added to an existing database on its next run): the environment's account id property is
`company_id`; 80 % of live profiles have one of 20,000 accounts; each account has `seats` and `industry`, and
90 % of them a `tier` (Free 40 %, Startup 30 %, Growth 20 %, Enterprise 10 %).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_users")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("REDIS_URL", None)

APP_ID = "bench-users"
TOMBSTONES = 20_000
ACCOUNTS = 20_000


def ensure_database() -> None:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    if "postgresql" not in config["ENGINE"]:
        sys.exit("This benchmark needs PostgreSQL (DATABASE_URL=postgres://...).")
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')  # a name from our own settings


def populate(profile_count: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from users_app.models import Environment, Profile, property_key_hash
    from users_app.services.environments import environment_create

    call_command("migrate", verbosity=0)
    environment = Environment.objects.filter(app_id=APP_ID).first()
    if environment is None:
        environment = environment_create(name="Bench users", app_id=APP_ID).environment
    have = Profile.objects.filter(environment=environment, merged_into__isnull=True).count()
    if have >= profile_count:
        print(f"data: {have:,} live profiles already present")
        return environment
    if have:
        sys.exit(f"{have:,} profiles present, fewer than {profile_count:,}: drop the database and run again.")
    started = time.perf_counter()
    env_id = environment.pk
    plan_hash = property_key_hash("plan")
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            """
            INSERT INTO users_app_profile (environment_id, user_id, identity, first_seen, last_seen, created_at)
            SELECT %s, n, CASE WHEN n %% 3 = 0 THEN 'user' || n || '@example.com' END,
                   seen - interval '1 day' * 30 * random(), seen, now()
            FROM (SELECT n, now() - interval '1 day' * 365 * power(random(), 3) AS seen
                  FROM generate_series(1, %s) AS n) AS generated
            """,
            [env_id, profile_count],
        )
        cursor.execute(
            """
            INSERT INTO users_app_userproperty (profile_id, key, key_hash, value, is_number, set_at)
            SELECT id, 'plan', %s,
                   CASE WHEN r < 0.50 THEN 'Free' WHEN r < 0.70 THEN 'Startup' WHEN r < 0.85 THEN 'Growth'
                        WHEN r < 0.95 THEN 'Premium' ELSE 'Enterprise' END,
                   false, first_seen
            FROM (SELECT id, first_seen, random() AS r FROM users_app_profile WHERE environment_id = %s) AS p
            """,
            [plan_hash, env_id],
        )
        # Tombstones: anonymous profiles merged into identified ones (user_id 3, 6, 9, ...).
        cursor.execute(
            """
            INSERT INTO users_app_profile (environment_id, user_id, merged_into_id, first_seen, last_seen,
                                           created_at)
            SELECT %s, %s + n, destination.id, destination.first_seen, destination.first_seen, now()
            FROM generate_series(1, %s) AS n
            JOIN users_app_profile AS destination ON destination.environment_id = %s AND destination.user_id = 3 * n
            """,
            [env_id, profile_count, TOMBSTONES, env_id],
        )
        cursor.execute(
            """
            INSERT INTO events_app_session (environment_id, profile_id, original_profile_id, session_key,
                                            started_at, ended_at, landing_page, referrer, utm_source,
                                            utm_medium, utm_campaign, browser, device_type, country, city)
            SELECT environment_id, id, id, md5(id::text), last_seen - interval '5 minutes', last_seen,
                   '/pricing', '', '', '', '', '', '', '', ''
            FROM users_app_profile WHERE environment_id = %s
            """,
            [env_id],
        )
        # What autovacuum does to a table in production: statistics, and the visibility map that lets the
        # recency window of `is not set` filters be an index-only scan.
        cursor.execute("VACUUM ANALYZE users_app_profile")
        cursor.execute("VACUUM ANALYZE users_app_userproperty")
        cursor.execute("VACUUM ANALYZE events_app_session")
    print(
        f"data: made {profile_count:,} profiles (+{min(TOMBSTONES, profile_count // 3):,} tombstones), their "
        "plans and sessions "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return environment


def populate_accounts(environment) -> None:
    """People's accounts (`company_id`) and the accounts' properties, once."""
    from django.db import connection

    from users_app.models import AccountProperty, Environment, property_key_hash

    if environment.account_id_property and AccountProperty.objects.filter(environment=environment).exists():
        print("data: accounts already present")
        return
    started = time.perf_counter()
    Environment.objects.filter(pk=environment.pk).update(account_id_property="company_id")
    environment.account_id_property = "company_id"
    env_id = environment.pk
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            """
            INSERT INTO users_app_userproperty (profile_id, key, key_hash, value, is_number, set_at)
            SELECT id, 'company_id', %s, 'company-' || (abs(hashtext(user_id::text)) %% %s), false, first_seen
            FROM users_app_profile
            WHERE environment_id = %s AND merged_into_id IS NULL AND abs(hashtext(user_id::text || 'a')) %% 5 <> 0
            """,
            [property_key_hash("company_id"), ACCOUNTS, env_id],
        )
        cursor.execute(
            """
            INSERT INTO users_app_accountproperty (environment_id, account_id, key, key_hash, value, is_number,
                                                   set_at)
            SELECT %s, 'company-' || n, 'tier', %s,
                   CASE WHEN r < 0.4 THEN 'Free' WHEN r < 0.7 THEN 'Startup' WHEN r < 0.9 THEN 'Growth'
                        ELSE 'Enterprise' END, false, now()
            FROM (SELECT n, random() AS r FROM generate_series(0, %s - 1) AS n) AS generated WHERE n %% 10 <> 9
            UNION ALL
            SELECT %s, 'company-' || n, 'seats', %s, (1 + n %% 200)::text, true, now()
            FROM generate_series(0, %s - 1) AS n
            UNION ALL
            SELECT %s, 'company-' || n, 'industry', %s, (ARRAY['Software', 'Retail', 'Finance', 'Health'])[1 + n %% 4],
                   false, now()
            FROM generate_series(0, %s - 1) AS n
            """,
            [
                *(env_id, property_key_hash("tier"), ACCOUNTS),
                *(env_id, property_key_hash("seats"), ACCOUNTS),
                *(env_id, property_key_hash("industry"), ACCOUNTS),
            ],
        )
        cursor.execute("VACUUM ANALYZE users_app_userproperty")
        cursor.execute("VACUUM ANALYZE users_app_accountproperty")
    print(
        f"data: made people's accounts and {ACCOUNTS:,} accounts' properties in {time.perf_counter() - started:.0f} s"
    )


def timed(label: str, function, repeat: int) -> object:
    """Print the first (cold) and the median of `repeat` runs, in milliseconds."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"  {label:<58} first {times[0]:7.1f} ms   median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ensure_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    from users_app.selectors import user_count, user_list
    from users_app.user_query import parse_user_query

    environment = populate(args.profiles)
    populate_accounts(environment)
    startup = {"f0": "plan", "f0_op": "eq", "f0_v": "Startup"}
    cases = {
        "first page (last 7 days)": {},
        "filtered page (plan = Startup)": startup,
        "filtered page (plan in Premium, Enterprise)": {"f0": "plan", "f0_op": "in", "f0_v": ["Premium", "Enterprise"]},
        "identified, plan is set, all time": {"kind": "identified", "f0": "plan", "f0_op": "set", "period": "all"},
        "search by user_id": {"q": "123456", "period": "all"},
        "search by identity prefix": {"q": "user12345", "period": "all"},
        "worst case: a value nobody has (plan = Nonexistent)": {"f0": "plan", "f0_op": "eq", "f0_v": "Nonexistent"},
        "worst case: plan is not set (everyone has one)": {"f0": "plan", "f0_op": "notset"},
        "account.tier = Enterprise": {"f0": "account.tier", "f0_op": "eq", "f0_v": "Enterprise"},
        "account.tier in Growth, Enterprise": {"f0": "account.tier", "f0_op": "in", "f0_v": ["Growth", "Enterprise"]},
        "account.tier is set": {"f0": "account.tier", "f0_op": "set"},
        "plan = Startup and account.tier = Enterprise": {**startup, "f1": "account.tier", "f1_v": "Enterprise"},
        "columns plan, company_id, account.tier, account.seats": {
            "col": ["plan", "company_id", "account.tier", "account.seats"]
        },
        "worst case: account.tier = Nonexistent": {"f0": "account.tier", "f0_op": "eq", "f0_v": "Nonexistent"},
        "account.tier is not set (no account, or no tier: 28 %)": {"f0": "account.tier", "f0_op": "notset"},
    }

    class Params(dict):
        def getlist(self, name):
            value = self.get(name)
            return value if isinstance(value, list) else ([] if value is None else [value])

    print(f"\nselector user_list (one page of 50 rows, session counts, plan column), repeat {args.repeat}:")
    for label, params in cases.items():
        query = parse_user_query(Params(params))
        page = timed(
            label, lambda q=query: user_list(environment=environment, filters=q.filters, columns=q.columns), args.repeat
        )
        if page.next_cursor:
            later = parse_user_query(Params({**params, "cursor": page.next_cursor}))
            timed(
                f"{label}: page 2",
                lambda q=later: user_list(
                    environment=environment, filters=q.filters, columns=q.columns, cursor=q.cursor
                ),
                args.repeat,
            )

    print("\nselector user_count (capped at 100,000; computed once per filter change, then cached 60 s):")
    for label, params in cases.items():
        query = parse_user_query(Params(params))
        count = timed(label, lambda q=query: user_count(environment=environment, filters=q.filters), 3)
        print(f"  {'':<58} -> {'more than ' if count.capped else ''}{count.value:,}")

    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    client = Client()
    client.force_login(user)
    print(
        "\nHTML view through the test client (server time: request in, response out; a new DB connection"
        " per request, as with the default DB_CONN_MAX_AGE=0):"
    )
    for label in ("first page (last 7 days)", "filtered page (plan = Startup)", "account.tier = Enterprise"):
        params = {"env": APP_ID, **cases[label]}
        timed(f"GET /users/ {label}", lambda p=params: _get_ok(client, "/users/", p), args.repeat)

        def count_uncached(p=params):
            cache.clear()
            return _get_ok(client, "/users/count/", p)

        timed(f"GET /users/count/ {label} (not cached)", count_uncached, 3)
        timed(f"GET /users/count/ {label} (cached)", lambda p=params: _get_ok(client, "/users/count/", p), 3)


def _get_ok(client, path, params):
    response = client.get(path, params)
    assert response.status_code == 200, response.status_code
    return response


if __name__ == "__main__":
    main()
