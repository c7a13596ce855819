"""The README's embedded default: SQLite and eager Celery, seeded through the real services."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_manage(*args: str, database: Path, **extra_env: str) -> str:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"DATABASE_URL": f"sqlite:///{database}", "DEBUG": "1", **extra_env})
    completed = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_seed_demo_on_sqlite_with_eager_celery_makes_real_merges(tmp_path):
    database = tmp_path / "demo.sqlite3"
    run_manage("migrate", "-v0", database=database)
    output = run_manage("seed_demo", "--users", "400", database=database)
    assert "app_id: 2718281828" in output

    with sqlite3.connect(database) as db:
        plans = {row[0] for row in db.execute("SELECT DISTINCT value FROM users_app_userproperty WHERE key = 'plan'")}
        merge_statuses = dict(db.execute("SELECT status, COUNT(*) FROM users_app_mergerecord GROUP BY status"))
        signups = db.execute("SELECT COUNT(*) FROM events_app_event WHERE name = 'Sign Up'").fetchone()[0]
        live_identified = db.execute(
            "SELECT COUNT(*) FROM users_app_profile WHERE identity IS NOT NULL AND merged_into_id IS NULL"
        ).fetchone()[0]
        events_on_tombstones = db.execute(
            "SELECT COUNT(*) FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id "
            "WHERE p.merged_into_id IS NOT NULL"
        ).fetchone()[0]
        pageview_days = db.execute(
            "SELECT COUNT(DISTINCT date(timestamp)) FROM events_app_event WHERE name = 'pageview'"
        ).fetchone()[0]

    assert plans == {"Free", "Startup", "Growth", "Premium", "Enterprise"}
    # Eager Celery ran every merge the cross-device logins asked for; nothing is left on a tombstone.
    assert merge_statuses.get("done", 0) > 20 and set(merge_statuses) == {"done"}
    assert events_on_tombstones == 0
    assert signups == live_identified > 150
    assert pageview_days > 60  # spread over the last 90 days


def test_merges_of_many_batches_on_sqlite_move_every_row_once(tmp_path):
    # Batches of 3 rows: every demo merge with a longer history takes SQLite's batched path.
    database = tmp_path / "batches.sqlite3"
    run_manage("migrate", "-v0", database=database)
    run_manage("seed_demo", "--users", "120", database=database, CAIRN_MERGE_BATCH_SIZE="3")

    with sqlite3.connect(database) as db:
        statuses = {row[0] for row in db.execute("SELECT DISTINCT status FROM users_app_mergerecord")}
        counted, longest = db.execute(
            "SELECT SUM(events_moved), MAX(events_moved) FROM users_app_mergerecord"
        ).fetchone()
        moved = db.execute("SELECT COUNT(*) FROM events_app_event WHERE profile_id <> original_profile_id").fetchone()[
            0
        ]
        on_tombstones = db.execute(
            "SELECT COUNT(*) FROM events_app_event e JOIN users_app_profile p ON p.id = e.profile_id "
            "WHERE p.merged_into_id IS NOT NULL"
        ).fetchone()[0]
    assert statuses == {"done"} and on_tombstones == 0
    assert longest > 3 and counted == moved


def test_quickstart_sets_up_and_prints_a_working_login(tmp_path):
    database = tmp_path / "quick.sqlite3"
    output = run_manage("quickstart", "--no-serve", "--no-seed", database=database)
    login_line = next(line for line in output.splitlines() if line.strip().startswith("admin"))
    username, password = (part.strip() for part in login_line.split(":", 1)[1].split("/"))
    assert username == "admin" and len(password) >= 8

    check = run_manage(
        "shell",
        "-c",
        # With a request, as a login page calls it: django-axes (login throttling) refuses authenticate() without.
        "from django.contrib.auth import authenticate; from django.test import RequestFactory; "
        "request = RequestFactory().post('/accounts/login/'); "
        f"print(bool(authenticate(request, username='admin', password='{password}')))",
        database=database,
    )
    assert check.strip().splitlines()[-1] == "True"
