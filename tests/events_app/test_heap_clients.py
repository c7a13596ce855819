"""Heap's real clients against a running Cairn (issue #13, SPEC 10): `heapapi` (PyPI) and Heap's own `heap-api`
(npm), unchanged but for the host, send the bodies of Heap's reference pages to gunicorn; Cairn's read API
then shows the values stored as Heap stores them.

The Node client is installed by .ci/install into .ci/node (pinned by its package-lock.json); the test is skipped
only where node itself is missing."""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from heapapi import HeapAPIClient

from tests.builders import environment_build
from tests.conftest import REPO, BackgroundProcess, free_port, wait_for, worker_environment

APP_ID = "2718281828"
API_KEY = "heap-clients-test-key-0123456789"
NODE_FOLDER = REPO / ".ci" / "node"
NODE_DRIVER = Path(__file__).with_name("heap_node_client.js")

pytestmark = [
    # The environment is the module fixture's, committed; the tests write and read through HTTP only.
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the server process shares the test database, which needs PostgreSQL",
    ),
]


class Cairn:
    def __init__(self, url: str):
        self.url = url

    def read(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {API_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def user(self, identity: str) -> dict:
        return self.read(f"/api/v1/users?identity={urllib.parse.quote(identity)}")

    def user_properties(self, identity: str) -> dict:
        return {key: entry["value"] for key, entry in self.user(identity)["properties"].items()}

    def events(self, identity: str) -> list[dict]:
        return self.read(f"/api/v1/users/{self.user(identity)['user_id']}/events")["results"]

    def healthy(self) -> bool:
        try:
            self.user("nobody")
        except urllib.error.HTTPError as error:
            return error.code == 404
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def cairn(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        environment_build(name="Heap clients", app_id=APP_ID, api_key=API_KEY)
    port = free_port()
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR", "REDIS_URL") if name in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": worker_environment()["DATABASE_URL"],
            "SECRET_KEY": "heap-clients-test-secret-key-not-for-production",
            "ALLOWED_HOSTS": "127.0.0.1",
        }
    )

    class Web(BackgroundProcess):
        name = "gunicorn-heap-clients"

    bin_dir = Path(sys.executable).parent
    web = Web(
        [str(bin_dir / "gunicorn"), "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"],
        env=env,
        ready=lambda log: "Listening at" in log,
    )
    web.start()
    try:
        site = Cairn(f"http://127.0.0.1:{port}")
        wait_for(site.healthy, timeout=30)
        yield site
    finally:
        web.stop()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


def python_client(cairn: Cairn) -> HeapAPIClient:
    client = HeapAPIClient(APP_ID)
    # The one change an integration makes: the host (the client keeps its URLs on the class).
    client.track_api = client.track_api.replace("https://heapanalytics.com", cairn.url)
    client.props_api = client.props_api.replace("https://heapanalytics.com", cairn.url)
    return client


# Heap's Track reference example ("Array property values") and its Bulk Add User Properties example, as
# published but for the app_id and the e-mail addresses (example.com here).
TRACK_EXAMPLE = {
    "identity": "alice@example.com",
    "event": "Send Transactional Email",
    "timestamp": "2017-03-10T22:21:56+00:00",
    "properties": {
        "subject": "Welcome to My App!",
        "variation": "A",
        "flavors": ["vanilla", "chocolate", "strawberry"],
    },
}
BULK_USERS_EXAMPLE = [
    {
        "identity": "bob@example.com",
        "properties": {"Role": "Admin", "Vertical": "Ecommerce", "email": "bob@example.com"},
    },
    {"identity": "carol@example.com", "properties": {"Role": "User", "Vertical": "Saas", "email": "carol@example.com"}},
]


def test_heapapi_python_client_sends_heaps_examples_and_cairn_stores_them_as_heap(cairn):
    client = python_client(cairn)
    sent = client.track(TRACK_EXAMPLE["identity"], TRACK_EXAMPLE["event"], TRACK_EXAMPLE["properties"])
    assert sent.status_code == 200
    [event] = cairn.events("alice@example.com")
    assert event["event"] == "Send Transactional Email"
    assert event["properties"] == {
        "subject": "Welcome to My App!",
        "variation": "A",
        "flavors": "vanilla||chocolate||strawberry",
    }

    [bulk] = client.bulk_track([{**TRACK_EXAMPLE, "identity": "dave@example.com"}])
    assert bulk.status_code == 200 and bulk.json()["accepted"] == 1
    [event] = cairn.events("dave@example.com")
    assert event["timestamp"].startswith("2017-03-10T22:21:56")
    assert event["properties"]["flavors"] == "vanilla||chocolate||strawberry"

    sent = client.add_user_properties("alice@example.com", {"Role": "Admin", "paid": True, "seats": 5})
    assert sent.status_code == 200
    assert cairn.user_properties("alice@example.com") == {"Role": "Admin", "paid": "true", "seats": 5}

    [bulk] = client.bulk_add_user_properties(BULK_USERS_EXAMPLE)
    assert bulk.status_code == 200 and bulk.json() == {"accepted": 2, "rejected": []}
    for user in BULK_USERS_EXAMPLE:
        assert cairn.user_properties(user["identity"]) == user["properties"]


def run_node_client(cairn: Cairn, calls: list[dict]) -> list[dict]:
    if not (NODE_FOLDER / "node_modules" / "heap-api").is_dir():
        # .ci/install puts it there; a checkout whose install predates the step gets it now, from the lock file.
        subprocess.run(["npm", "ci", "--prefix", str(NODE_FOLDER), "--no-audit", "--no-fund"], check=True)
    done = subprocess.run(
        ["node", str(NODE_DRIVER), cairn.url, APP_ID, json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="node is not installed")
def test_heaps_own_node_client_sends_heaps_examples_and_cairn_stores_them(cairn):
    # The Node client itself allows names of up to 1024 characters (Heap's server limit) and refuses arrays
    # and booleans before sending, so it sends strings and numbers.
    long_name = "Send Transactional Email " + "x" * (1024 - 25)
    calls = [
        {"method": "track", "event": long_name, "identity": "erin@example.com", "properties": {"variation": "A"}},
        {
            "method": "track",
            "event": TRACK_EXAMPLE["event"],
            "identity": "erin@example.com",
            "properties": {"subject": "Welcome to My App!", "variation": "B", "attempt": 2},
        },
        {
            "method": "addUserProperties",
            "identity": "erin@example.com",
            "properties": BULK_USERS_EXAMPLE[0]["properties"],
        },
        {"method": "addUserProperties", "identity": 12345, "properties": {"Role": "User", "seats": 3}},
    ]
    assert run_node_client(cairn, calls) == [{"ok": True}] * len(calls)
    events = {event["event"]: event["properties"] for event in cairn.events("erin@example.com")}
    assert events == {
        long_name: {"variation": "A"},
        "Send Transactional Email": {"subject": "Welcome to My App!", "variation": "B", "attempt": 2},
    }
    assert cairn.user_properties("erin@example.com") == BULK_USERS_EXAMPLE[0]["properties"]
    assert cairn.user_properties("12345") == {"Role": "User", "seats": 3}
