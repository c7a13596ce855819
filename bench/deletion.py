"""Deletion and retention benchmark (issue #13). One command, prints its figures:

    .venv/bin/python bench/deletion.py [--person-events 100000] [--expired-events 1000000]

Runs against PostgreSQL (a database of its own, recreated each run: BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/cairn_bench_deletion), in one process, with the services the task calls:

1. deletion_request_run for a person with `--person-events` events (and a merged device), while a thread sends
   single track calls (track_ingest, the /api/track service) for other people: how long, and ingest p50/p99
   meanwhile against ingest alone;
2. event_retention_sweep over `--expired-events` expired events (spread over 1,000 people), ingest measured the
   same way.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cairn_bench_deletion")
ENV = {
    **os.environ,
    "DATABASE_URL": DATABASE_URL,
    "DEBUG": "0",
    "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-not-for-production"),
    "LOG_LEVEL": "ERROR",
}
ENV.pop("REDIS_URL", None)  # eager Celery: nothing here goes through the broker
os.environ.clear()
os.environ.update(ENV)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"


def recreate_database() -> None:
    import psycopg

    name = urlsplit(DATABASE_URL).path.lstrip("/")
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=ENV, check=True)


def insert_history(environment_id: int, profile_ids: list[int], events: int, days_ago: int) -> None:
    """`events` events spread over these profiles (one session each), `days_ago` days old, written by SQL."""
    from django.db import connection

    with connection.cursor() as db:
        db.execute(
            "INSERT INTO events_app_session (environment_id, profile_id, original_profile_id, session_key, started_at,"
            " ended_at, landing_page, referrer, utm_source, utm_medium, utm_campaign, browser, device_type, country,"
            " city) SELECT %s, p, p, 'bench', now() - make_interval(days => %s), now() - make_interval(days => %s),"
            " '', '', '', '', '', '', '', '', '' FROM unnest(%s::bigint[]) AS p",
            [environment_id, days_ago, days_ago, profile_ids],
        )
        db.execute(
            "INSERT INTO events_app_event (environment_id, profile_id, original_profile_id, session_id, name,"
            " \"timestamp\", properties, received_at) SELECT %s, s.profile_id, s.profile_id, s.id, 'pageview',"
            " now() - make_interval(days => %s) + make_interval(secs => g), '{}'::jsonb, now()"
            " FROM generate_series(0, %s - 1) AS g"
            " JOIN events_app_session s ON s.profile_id = (%s::bigint[])[1 + g %% %s]",
            [environment_id, days_ago, events, profile_ids, len(profile_ids)],
        )
        db.execute("ANALYZE")


class IngestProbe(threading.Thread):
    """Single track calls for other people, back to back, until stopped: their latencies in ms."""

    def __init__(self, environment):
        super().__init__(daemon=True)
        self.environment, self.latencies, self.stopped = environment, [], threading.Event()

    def run(self) -> None:
        from django.db import connection

        from events_app.services.ingest import track_ingest

        index = 0
        while not self.stopped.is_set():
            index += 1
            start = time.perf_counter()
            track_ingest(
                environment=self.environment, items=[{"user_id": str(900_000 + index % 500), "event": "probe"}]
            )
            self.latencies.append((time.perf_counter() - start) * 1000)
        connection.close()

    def figures(self) -> str:
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return f"{len(ordered)} calls, p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms"


def probed(environment, work, seconds: float | None = None):
    probe = IngestProbe(environment)
    probe.start()
    start = time.perf_counter()
    result = work() if work else time.sleep(seconds)
    elapsed = time.perf_counter() - start
    probe.stopped.set()
    probe.join()
    return result, elapsed, probe.figures()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--person-events", type=int, default=100_000)
    parser.add_argument("--expired-events", type=int, default=1_000_000)
    arguments = parser.parse_args()
    recreate_database()
    import django

    django.setup()
    from users_app.deletion.requests import deletion_request_create, deletion_request_run
    from users_app.deletion.retention import event_retention_sweep
    from users_app.models import Profile
    from users_app.services.environments import environment_create

    print(f"load average before: {os.getloadavg()}")
    environment = environment_create(name="Bench").environment
    _, _, alone = probed(environment, None, seconds=10)
    print(f"ingest alone (10 s): {alone}")

    person = Profile.objects.create(environment=environment, user_id=1, identity="bench-person")
    device = Profile.objects.create(environment=environment, user_id=2, merged_into=person)
    insert_history(environment.pk, [person.pk, device.pk], arguments.person_events, days_ago=1)

    def delete_the_person():
        # Eager Celery (no broker here): the task runs as the request's transaction commits; run again, a no-op.
        request = deletion_request_create(environment=environment, users=[{"identity": "bench-person"}])
        return deletion_request_run(deletion_request_id=request.pk)

    done, elapsed, during = probed(environment, delete_the_person)
    print(
        f"delete a person with {done.events_deleted:,} events ({done.profiles_deleted} profiles): {elapsed:.1f} s; "
        f"ingest meanwhile: {during}; load average {os.getloadavg()}"
    )

    environment.event_retention_days = 30
    environment.save()
    people = [Profile.objects.create(environment=environment, user_id=10 + n).pk for n in range(1000)]
    insert_history(environment.pk, people, arguments.expired_events, days_ago=60)
    result, elapsed, during = probed(environment, event_retention_sweep)
    print(
        f"retention pass over {result.events_deleted:,} expired events ({result.sessions_deleted:,} sessions): "
        f"{elapsed:.1f} s; ingest meanwhile: {during}; load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
