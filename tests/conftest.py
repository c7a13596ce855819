"""Shared fixtures. Tests run against real PostgreSQL and Redis (see .ci/test)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from config.celery import app as celery_app
from tests.builders import CHROMIUM_AVAILABLE, chromium_launch, environment_build, signed_in_as, user_build

REPO = Path(__file__).resolve().parent.parent
API_KEY = "test-api-key-0123456789abcdef"
OTHER_API_KEY = "other-api-key-0123456789abcdef"


@pytest.fixture
def environment(db):
    return environment_build(name="Test site", app_id="1000000001", api_key=API_KEY)


@pytest.fixture
def other_environment(db):
    return environment_build(name="Other site", app_id="1000000002", api_key=OTHER_API_KEY)


@pytest.fixture
def viewer(db):
    """A client signed in as a viewer: an account that is not staff."""
    return signed_in_as("viewer", password="pw-viewer-123")


@pytest.fixture
def boss(db):
    """A superuser account."""
    return user_build("boss", password="pw-boss-123", superuser=True)


@pytest.fixture
def staff(boss):
    """A client signed in as `boss`."""
    client = Client()
    client.force_login(boss)
    return client


@pytest.fixture
def admin(db):
    """A staff account, the actor of the merge actions in the service tests."""
    return user_build("root", password="x", is_staff=True)


@pytest.fixture
def signed_in(client):
    """The test's `client`, signed in as a viewer named pm."""
    return signed_in_as("pm", client=client)


class JsonClient:
    """A thin wrapper over Django's test client for JSON calls."""

    def __init__(self, client, api_key: str = API_KEY):
        self.client = client
        self.api_key = api_key

    def post(self, path: str, body, **extra):
        payload = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(path, payload, content_type="application/json", **extra)

    def get(self, path: str, api_key: str | None = None, **params):
        key = self.api_key if api_key is None else api_key
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
        return self.client.get(path, params, **headers)


@pytest.fixture
def api(client):
    return JsonClient(client)


@pytest.fixture
def eager_celery(settings):
    """Run tasks in-process (on commit) for tests about logic, not about the async path."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = not os.environ.get("REDIS_URL")


def worker_environment() -> dict:
    """The environment a real worker subprocess needs to use the test database and the test broker."""
    settings_dict = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    env.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
    return env


class BackgroundProcess:
    """A server process of the project's own (a Celery worker, gunicorn, beat), its output in test-output/,
    started when `ready(log_text)` says so, stopped with its whole process group."""

    name = "process"

    def __init__(self, command: list[str], env: dict | None = None, ready=lambda log: True, timeout: float = 60):
        self.command, self.env, self.ready, self.timeout = command, env, ready, timeout
        self.process: subprocess.Popen | None = None
        self.log_path = REPO / "test-output" / f"{self.name}-{os.getpid()}-{time.time_ns()}.log"

    def start(self):
        self.log_path.parent.mkdir(exist_ok=True)
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=self.env or worker_environment(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.ready(self.log_path.read_text()):
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in {self.timeout} s: {self.log_path.read_text()[-2000:]}")

    def output(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None):
            self.log.close()


class WorkerProcess(BackgroundProcess):
    name = "celery-worker"

    def __init__(self, extra_args=(), env: dict | None = None):
        super().__init__(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *extra_args,
            ],
            env=env,
            ready=lambda log: "ready" in log,
        )


@pytest.fixture
def redis_broker():
    """The test broker, emptied before and after the test."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set: the real-worker tests need Redis")
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def empty_broker_afterwards(request):
    """Identify queues merge tasks after commit; when nobody consumes them in a test, drop them afterwards."""
    if os.environ.get("REDIS_URL"):
        request.getfixturevalue("redis_broker")


@pytest.fixture
def celery_worker_process(transactional_db, redis_broker):
    """A real `celery -A config worker` process on the real broker and the test database."""
    worker = WorkerProcess().start()
    yield worker
    worker.stop()


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


class CairnCalls:
    """The public API of one environment, one method per endpoint (used by the identity-core tests)."""

    def __init__(self, api: JsonClient, environment):
        self.api = api
        self.environment = environment
        self.app_id = environment.app_id

    def track(self, **item):
        return self.api.post("/api/track", {"app_id": self.app_id, "event": "pageview", **item})

    def track_bulk(self, events: list):
        return self.api.post("/api/track", {"app_id": self.app_id, "events": events})

    def add_properties(self, properties: dict, **target):
        return self.api.post("/api/add_user_properties", {"app_id": self.app_id, "properties": properties, **target})

    def identify(self, user_id, identity, **extra):
        return self.api.post(
            "/api/v1/identify", {"app_id": self.app_id, "user_id": user_id, "identity": identity, **extra}
        )

    def user(self, user_id, **params):
        return self.api.get(f"/api/v1/users/{user_id}", **params)

    def user_by_identity(self, identity):
        return self.api.get("/api/v1/users", identity=identity)

    def events(self, user_id, **params):
        return self.api.get(f"/api/v1/users/{user_id}/events", **params)

    def merges(self, **params):
        return self.api.get("/api/v1/merges", **params)


@pytest.fixture
def calls(api, environment):
    return CairnCalls(api, environment)


@pytest.fixture
def start_celery_worker(transactional_db, redis_broker):
    """Start a real worker in the middle of a test (after work was queued with no worker running)."""
    workers = []

    def start() -> WorkerProcess:
        workers.append(WorkerProcess().start())
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(autouse=True, scope="session")
def rate_limit_counters_forgotten():
    """The test database starts its ids again at each run, so an environment of this run could meet the Redis
    rate-limit counters an environment with the same id left a minute ago: forget them once, at the start."""
    if os.environ.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        for key in client.scan_iter(match="cairn:rl:*", count=1000):
            client.delete(key)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, one for a test module (Playwright's sync API)."""
    if not CHROMIUM_AVAILABLE:
        pytest.skip("Debian chromium is not installed")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = chromium_launch(playwright)
        yield launched
        launched.close()
