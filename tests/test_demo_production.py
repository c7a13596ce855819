"""The demo on a production server: seed_demo never leaves the documented (public) API key outside DEBUG,
and the public demo site is off unless CAIRN_DEMO_SITE asks for it."""

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from events_app.services.demo_data import DEMO_API_KEY
from tests.test_demo_path import REPO, run_manage

PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "test-secret-key-not-for-production"}


def demo_key_hash(database) -> str:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT api_key_hash FROM users_app_environment WHERE app_id = '2718281828'").fetchone()[0]


def printed_key(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("api_key: ")).removeprefix("api_key: ")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "prod.sqlite3"
    run_manage("migrate", "-v0", database=path)
    return path


def test_outside_debug_the_demo_gets_a_random_key_and_prints_it(database):
    output = run_manage("seed_demo", "--users", "20", database=database, **PRODUCTION)
    key = printed_key(output)
    assert key != DEMO_API_KEY and len(key) > 30
    assert demo_key_hash(database) == sha256(key)


def test_outside_debug_the_documented_key_is_refused(database):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DATABASE_URL=f"sqlite:///{database}", **PRODUCTION)
    completed = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--users", "20", "--api-key", DEMO_API_KEY],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode != 0 and "printed in the docs" in completed.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM users_app_environment").fetchone()[0] == 0


def test_an_explicit_key_is_used(database):
    output = run_manage(
        "seed_demo", "--users", "20", "--api-key", "our-own-demo-key-0123456789", database=database, **PRODUCTION
    )
    assert printed_key(output) == "our-own-demo-key-0123456789"
    assert demo_key_hash(database) == sha256("our-own-demo-key-0123456789")


def test_with_debug_the_documented_key_still_works_and_reseeding_keeps_it(database):
    assert printed_key(run_manage("seed_demo", "--users", "20", database=database)) == DEMO_API_KEY
    assert printed_key(run_manage("seed_demo", "--users", "20", database=database)) == DEMO_API_KEY
    assert demo_key_hash(database) == sha256(DEMO_API_KEY)


def test_a_demo_seeded_under_debug_loses_the_public_key_when_seeded_in_production(database):
    run_manage("seed_demo", "--users", "20", database=database)
    rotated = printed_key(run_manage("seed_demo", "--users", "20", database=database, **PRODUCTION))
    assert rotated != DEMO_API_KEY and demo_key_hash(database) == sha256(rotated)
    # Seeding again keeps that key: it is not known any more (only its hash is stored), so nothing is printed.
    again = run_manage("seed_demo", "--users", "20", database=database, **PRODUCTION)
    assert printed_key(again).startswith("unchanged") and demo_key_hash(database) == sha256(rotated)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"DEBUG": "0"}, "False"),
        ({"DEBUG": "1"}, "True"),
        ({"DEBUG": "0", "CAIRN_DEMO_SITE": "1"}, "True"),
        ({"DEBUG": "1", "CAIRN_DEMO_SITE": "0"}, "False"),
    ],
)
def test_demo_site_setting_follows_debug_unless_set(tmp_path, extra, expected):
    output = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CAIRN_DEMO_SITE)",
        database=tmp_path / "unused.sqlite3",
        SECRET_KEY="test-secret-key-not-for-production",
        **extra,
    )
    assert output.strip().splitlines()[-1] == expected
