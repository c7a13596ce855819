"""The processes of bench/lean_compare.py, started as docs/operations.md runs production: gunicorn with DEBUG unset,
a Celery worker and beat on Redis, every one with the documented variables and nothing of this shell's own."""

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def production_variables(database_url: str, redis_url: str) -> dict:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DB_CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def manage(env: dict, *arguments: str) -> str:
    """`manage.py <arguments>` with the production variables; its output."""
    result = subprocess.run(
        [PYTHON, "manage.py", *arguments], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON or raw bytes) of one request on a connection of its own, as gunicorn's sync workers
    close each connection anyway."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(content)
    except ValueError:
        return response.status, content


class Servers:
    """gunicorn (`workers` sync workers), a Celery worker and beat, each in its own process group, stopped by
    their own ids. `background=False`: gunicorn alone (bench/ingest_http.py times the web processes' ingest)."""

    def __init__(self, env: dict, workers: int, timeout: int, background: bool = True):
        self.env, self.workers, self.timeout, self.background = env, workers, timeout, background
        self.processes: list[subprocess.Popen] = []
        self.folder = Path(tempfile.mkdtemp(prefix="cairn-lean-"))
        self.port = free_port()

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - the process writes it until stop()
        self.processes.append(
            subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=log, start_new_session=True)
        )

    def start(self) -> "Servers":
        # gunicorn's default timeout (30 s, the one docs/operations.md's unit runs with) would kill the slowest
        # 10M reports before they answer; the benchmark wants their time, so it waits longer and says so.
        self._start(
            "gunicorn",
            [PYTHON, "-m", "gunicorn", "config.wsgi", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}"]
            + ["--timeout", str(self.timeout), "--log-level", "warning"],
        )
        if self.background:
            self._start("worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING"])
            self._start(
                "beat",
                [PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel=WARNING"]
                + ["--schedule", str(self.folder / "celerybeat-schedule")],
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http_call(self.port, "GET", "/healthz")
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start: see {self.folder / 'gunicorn.log'}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the group of a process this object started
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = []

    def __enter__(self) -> "Servers":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
