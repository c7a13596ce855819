"""What the benchmarks share: the bench databases on BENCH_PG, Django set up on one of them, the set-based
generator of bench/reports.py's data, the alternate-and-median timing, and the lines they print.

Scripts in bench/ run by hand (`.venv/bin/python bench/<name>.py`); they put the repository on sys.path and
then import this module as `bench.common`.
"""

import os
import statistics
import time
from datetime import date

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
FROM, TO, DAYS = "2026-08-01", "2026-10-29", 90
PLANS = ["Free", "Startup", "Growth", "Premium", "Enterprise"]

# bench/reports.py's event names, as a CASE over `r` (random() per event, in [0, 1)).
REPORTS_NAMES_SQL = """CASE WHEN r < 0.02 THEN 'Sign Up' WHEN r < 0.03 THEN 'Upgrade'
                            WHEN r < 0.85 THEN 'pageview' ELSE 'Click' END"""


def admin_connection():
    import psycopg

    return psycopg.connect(f"{PG}/postgres", autocommit=True)


def database_exists(name: str) -> bool:
    with admin_connection() as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_create(name: str, *, rebuild: bool) -> bool:
    """Create the bench database `name` if missing (dropped first with `rebuild`); True if it is new."""
    if rebuild and database_exists(name):
        with admin_connection() as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # our own fixed names only
    if database_exists(name):
        return False
    with admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return True


def setup_django(database: str) -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{database}"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    # Eager Celery: whatever a call queues (a backfill) runs in this process, where it is timed.
    os.environ.pop("REDIS_URL", None)
    # Persistent connections, as a production server would use: time the query, not the connect.
    os.environ.setdefault("DB_CONN_MAX_AGE", "600")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def prepare_database(database: str, *, rebuild: bool) -> bool:
    """The bench database created if need be, Django set up on it and migrated; True if it has no events yet
    (the caller generates them)."""
    from django.core.management import call_command

    fresh = database_create(database, rebuild=rebuild)
    setup_django(database)
    call_command("migrate", verbosity=0)
    from events_app.models import Event

    return fresh or not Event.objects.exists()


def generate_people_and_events(size: int, *, api_key: str, names_sql: str = REPORTS_NAMES_SQL):
    """bench/reports.py's data, set-based, into the (migrated, empty) database: people = events / 20, one in
    ten without a plan, plus one anonymous profile per ten people merged into them with the merge *pending*
    (their events still on the tombstone, which has its own stale plan); `size` events over the 90 days named
    by `names_sql`, indexes built after the load. Returns (environment, monotonic start) for the caller's
    "generated in" line; the caller vacuums (it may add tables first)."""
    from django.db import connection

    from events_app.partitions import event_partitions_cover
    from users_app.services.environments import environment_create

    environment = environment_create(name=f"Bench {size:,}", app_id=f"bench{size}", api_key=api_key).environment
    people = max(size // 20, 10)
    started = time.monotonic()
    with connection.cursor() as cursor:
        first_person, tombstones = people_with_plans_insert(cursor, environment, people)
        # Their months' partitions first (events_app/partitions.py), or the rows would all land in DEFAULT.
        event_partitions_cover(date.fromisoformat(FROM), date.fromisoformat(TO))
        indexes = event_indexes_drop(cursor)
        batch = 1_000_000
        for offset in range(0, size, batch):
            cursor.execute(
                f"""
                INSERT INTO events_app_event (environment_id, profile_id, original_profile_id, session_id, name,
                                              timestamp, properties, idempotency_key, received_at)
                SELECT %(env)s, pid, pid, NULL, {names_sql},
                       %(start)s::timestamptz + random() * %(days)s * interval '1 day', '{{}}'::jsonb, NULL, now()
                FROM (SELECT %(first)s + floor(random() * %(profiles)s)::bigint AS pid, random() AS r
                      FROM generate_series(1, %(count)s)) s""",  # names_sql: fixed text of a bench script
                {
                    "env": environment.pk,
                    "start": FROM,
                    "days": DAYS,
                    "first": first_person,
                    "profiles": people + tombstones,
                    "count": min(batch, size - offset),
                },
            )
            print(f"  {offset + min(batch, size - offset):,} events ({time.monotonic() - started:.0f} s)", flush=True)
        event_indexes_create(cursor, indexes)
    return environment, started


# bench/lean_data.py's shape (issue #16), set-based: per profile 1-6 active days (draws of the 90, the same day
# drawn twice counting once), a session a day of 5-40 events 5 s to 2 min apart opening with a pageview; the first
# session's second event is the Sign Up; 40% of people Activate at the end of their second day (their first if
# they have one), a quarter of those with two days or more Upgrade near the end of their last; the rest 80%
# pageview, 14% Click, 6% Search. The person-level draws are hashes of the profile id, so repeatable.
LEAN_EVENTS_SQL = """
    WITH days AS (
        SELECT DISTINCT pid, floor(random() * %(days)s)::int AS day
        FROM (SELECT pid, 1 + floor(random() * 6)::int AS draws
              FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS pid) AS drawn,
             LATERAL generate_series(1, drawn.draws)),
    sessions AS (
        SELECT pid, day, row_number() OVER w AS nth, count(*) OVER (PARTITION BY pid) AS active_days,
               5 + floor(random() * 36)::int AS length, random() * 81000 AS opens_at, 5 + random() * 115 AS gap
        FROM days WINDOW w AS (PARTITION BY pid ORDER BY day)),
    positions AS (
        SELECT s.*, position, random() AS r, (pid * 7919) %% 10 < 4 AS activates, (pid * 104729) %% 4 = 0 AS upgrades
        FROM sessions s, LATERAL generate_series(0, s.length - 1) AS position)
    INSERT INTO events_app_event (environment_id, profile_id, original_profile_id, session_id, name, timestamp,
                                  properties, idempotency_key, received_at)
    SELECT %(env)s, pid, pid, NULL,
           CASE WHEN position = 0 THEN 'pageview'
                WHEN nth = 1 AND position = 1 THEN 'Sign Up'
                WHEN activates AND nth = least(2, active_days) AND position = length - 1 THEN 'Activate'
                WHEN activates AND upgrades AND active_days >= 2 AND nth = active_days AND position = length - 2
                     THEN 'Upgrade'
                WHEN r < 0.8 THEN 'pageview' WHEN r < 0.94 THEN 'Click' ELSE 'Search' END,
           %(start)s::timestamptz + day * interval '1 day' + (opens_at + position * gap) * interval '1 second',
           '{}'::jsonb, NULL, now()
    FROM positions"""


def generate_lean_people_and_events(size: int, *, api_key: str):
    """bench/lean_data.py's shape (LEAN_EVENTS_SQL; about `size` events, 13 profiles per 1,000 events) on
    people_with_plans_insert's people, tombstones and plans, in batches of profiles. Returns as
    generate_people_and_events does."""
    from django.db import connection

    from users_app.services.environments import environment_create

    environment = environment_create(name=f"Bench {size:,}", app_id=f"bench{size}", api_key=api_key).environment
    profiles = max(13, round(size * 13 / 1000))
    people = profiles * 10 // 11  # and one tombstone per ten people: `profiles` in all
    started = time.monotonic()
    with connection.cursor() as cursor:
        first_person, tombstones = people_with_plans_insert(cursor, environment, people)
        indexes = event_indexes_drop(cursor)
        batch = 13_000  # profiles: about 1,000,000 events
        for offset in range(0, people + tombstones, batch):
            last = first_person + min(offset + batch, people + tombstones) - 1
            cursor.execute(
                LEAN_EVENTS_SQL,
                {"env": environment.pk, "start": FROM, "days": DAYS, "first": first_person + offset, "last": last},
            )
            print(f"  {offset + batch:,} profiles ({time.monotonic() - started:.0f} s)", flush=True)
        event_indexes_create(cursor, indexes)
    return environment, started


def people_with_plans_insert(cursor, environment, people: int) -> tuple[int, int]:
    """`people` people (people_insert), one in ten without a plan, plus one anonymous profile per ten people
    merged into them with the merge *pending* (their events still on the tombstone, which has its own stale plan;
    SPEC 2 rule 4). Returns (the first person's id, the tombstones' number): the tombstones' ids follow the
    people's."""
    from users_app.models import property_key_hash

    first_person = people_insert(cursor, environment, people)
    tombstones = people // 10
    cursor.execute(
        """
        INSERT INTO users_app_profile (environment_id, user_id, identity, merged_into_id, first_seen,
                                       last_seen, created_at)
        SELECT %s, %s + g, NULL, %s + (g * 10) %% %s, %s::timestamptz, %s::timestamptz, now()
        FROM generate_series(1, %s) g""",
        [environment.pk, people, first_person, people, FROM, TO, tombstones],
    )
    cursor.execute(
        """
        INSERT INTO users_app_userproperty (profile_id, key, key_hash, value, is_number, set_at)
        SELECT p.id, 'plan', %s, (%s::text[])[1 + (p.id * 7919) %% 5], false, now()
        FROM users_app_profile p
        WHERE p.environment_id = %s AND (p.merged_into_id IS NOT NULL OR p.id %% 10 <> 0)""",
        [property_key_hash("plan"), PLANS, environment.pk],
    )
    return first_person, tombstones


def people_insert(cursor, environment, people: int) -> int:
    """`people` identified profiles (`person-<n>`, user_id n) with the random seed set for what follows; returns
    the first one's id (the others follow it)."""
    cursor.execute("SELECT setseed(0.42)")
    cursor.execute(
        """
        INSERT INTO users_app_profile (environment_id, user_id, identity, first_seen, last_seen, created_at)
        SELECT %s, g, 'person-' || g, %s::timestamptz, %s::timestamptz, now()
        FROM generate_series(1, %s) g""",
        [environment.pk, FROM, TO, people],
    )
    cursor.execute("SELECT min(id) FROM users_app_profile WHERE environment_id = %s", [environment.pk])
    return cursor.fetchone()[0]


def event_indexes_drop(cursor) -> list[tuple[str, str]]:
    """Drop the events' indexes but the unique ones before a bulk load; returns them for event_indexes_create."""
    cursor.execute("""
        SELECT indexname, indexdef FROM pg_indexes
        WHERE tablename = 'events_app_event' AND indexdef NOT LIKE '%%UNIQUE%%'""")
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')  # names from pg_indexes, not from input
    return indexes


def event_indexes_create(cursor, indexes: list[tuple[str, str]]) -> None:
    for _, definition in indexes:
        # A partitioned table's index reads "ON ONLY": as it is, it would be made for the table alone, invalid,
        # without its partitions' indexes.
        cursor.execute(definition.replace(" ON ONLY ", " ON "))  # definitions from pg_indexes, not from input


def prepare_bench(database: str, rebuild: bool, generate, size: int) -> None:
    """The bench database ready (prepare_database), with `generate(size)` run when it has no events yet."""
    if prepare_database(database, rebuild=rebuild):
        print(f"Generating {size:,} events into {database} ...", flush=True)
        generate(size)
    else:
        print(f"Reusing {database}", flush=True)


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
    """Plain SQL rows (bucket, group, value; a NULL bucket for a range total, as GROUPING SETS gives it) in the
    API's shape {group: (values per bucket, total)}, to check both compute the same numbers."""
    index = {bucket: position for position, bucket in enumerate(buckets)}
    values, totals = {}, {}
    for bucket, group, value in rows:
        if bucket is None:
            totals[group] = value
            continue
        values.setdefault(group, [0] * len(buckets))[index[bucket.date().isoformat()]] += value
    return {group: (series, totals.get(group, sum(series))) for group, series in values.items()}


def load_average(digits: int = 1) -> str:
    """The one-minute load average, e.g. "3.4"."""
    return f"{os.getloadavg()[0]:.{digits}f}"


def run_header(count: int, connection, digits: int = 1) -> str:
    """The line each run starts with: how much data, which PostgreSQL, how busy the machine is."""
    return (
        f"\n{count:,} events, PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"load average {load_average(digits)} on {os.cpu_count()} cores"
    )


def each_size_in_its_own_process(script: str, sizes: list[int], arguments: list[str]) -> bool:
    """Django is set up once per process: with more than one size, run `script` once per size (with the other
    `arguments`) in a process of its own, and say so (True: the caller is done)."""
    if len(sizes) <= 1:
        return False
    import subprocess
    import sys

    for size in sizes:
        subprocess.run([sys.executable, script, "--sizes", str(size), *arguments], check=True)
    return True
