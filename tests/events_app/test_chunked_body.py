"""Bodies sent with `Transfer-Encoding: chunked` (streaming clients) under the production server, gunicorn:
read to their end and stored, with the body size limit still answered 413 (audit finding). Django's test
client always sends a Content-Length, so this runs a real gunicorn on the test database."""

import http.client
import json
import socket
import subprocess
import sys
import time
import zlib

import pytest

from events_app.models import Event
from tests.conftest import REPO, free_port, worker_environment
from users_app.services.environments import environment_create

MAX_BODY_BYTES = 20_000


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    port = free_port()
    with django_db_blocker.unblock():
        env = worker_environment()  # the test database's URL, known once it is set up
    env.update(
        {"DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", "CAIRN_MAX_BODY_BYTES": str(MAX_BODY_BYTES), "LOG_LEVEL": "ERROR"}
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)
    yield port
    server.terminate()
    server.wait(20)


@pytest.fixture
def streamed(transactional_db, request):
    """An environment of this test's own app_id: the server process caches environments by app_id for a few
    seconds, and the database is emptied between these tests."""
    app_id = str(3_000_000_000 + zlib.crc32(request.node.name.encode()) % 10**9)
    return environment_create(name="Streaming", app_id=app_id).environment


def post_chunked(port: int, path: str, pieces: list[bytes]) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        # A generator has no length: http.client sends it as chunks, one per piece, with no Content-Length.
        connection.request(
            "POST",
            path,
            body=(piece for piece in pieces),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_is_read_to_its_end_and_stored(gunicorn, streamed):
    body = json.dumps(
        {
            "app_id": streamed.app_id,
            "events": [{"user_id": "5", "event": "Streamed", "idempotency_key": f"s{index}"} for index in range(50)],
        }
    ).encode()
    pieces = [body[offset : offset + 100] for offset in range(0, len(body), 100)]

    status, _, answer = post_chunked(gunicorn, "/api/track", pieces)

    assert status == 200, answer
    assert answer["accepted"] == 50
    assert Event.objects.filter(environment=streamed, name="Streamed").count() == 50


def test_a_chunked_body_over_the_size_limit_is_a_413_and_stores_nothing(gunicorn, streamed):
    events = [{"user_id": "5", "event": "Streamed", "properties": {"padding": "x" * 500}} for _ in range(60)]
    body = json.dumps({"app_id": streamed.app_id, "events": events}).encode()
    assert len(body) > MAX_BODY_BYTES

    status, _, answer = post_chunked(
        gunicorn, "/api/track", [body[offset : offset + 4096] for offset in range(0, len(body), 4096)]
    )

    assert status == 413
    assert answer["error"]["code"] == "body_too_large"
    assert not Event.objects.filter(environment=streamed).exists()


def test_identify_reads_a_chunked_body_too(gunicorn, streamed):
    body = json.dumps({"app_id": streamed.app_id, "user_id": "9", "identity": "streamer"}).encode()

    status, _, answer = post_chunked(gunicorn, "/api/v1/identify", [body[:10], body[10:]])

    assert status == 200, answer
    assert answer["identity"] == "streamer"


@pytest.mark.parametrize("framing", [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX\r\n0\r\n\r\n"])
def test_broken_chunk_framing_is_a_400_not_a_server_error(gunicorn, framing):
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=30) as raw:
        raw.sendall(
            b"POST /api/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + framing
        )
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status == 400, answer[:300]
