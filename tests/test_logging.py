"""What production logs carry: a 5xx with its traceback; a suspicious request as one WARNING line; client errors
(404, a viewer's 403, a rejected API call) only as INFO lines without traceback (LOG_LEVEL=INFO shows them)."""

import io
import logging

import pytest
from django.test import Client

from config.views import HomeView
from tests.builders import signed_in_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def console():
    """What the configured console handler writes (the one gunicorn's stderr carries)."""
    handler = next(handler for handler in logging.getLogger().handlers if handler.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.fixture
def viewer_client():
    return signed_in_as("viewer", client=Client(raise_request_exception=False))


def loud(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


def test_a_404_logs_no_warning_and_no_traceback(client, caplog, console):
    caplog.set_level(logging.DEBUG)
    assert client.get("/no-such-page/").status_code == 404
    assert client.get("/api/no-such-endpoint").status_code == 404
    assert loud(caplog) == []
    assert console.getvalue() == ""
    # Still there for whoever asks for INFO, as one line each.
    assert [record.levelname for record in caplog.records if record.name == "django.request"] == ["INFO", "INFO"]


def test_a_viewers_403_logs_no_warning_and_no_traceback(viewer_client, caplog, console):
    caplog.set_level(logging.DEBUG)
    assert viewer_client.get("/admin/").status_code == 403
    assert viewer_client.get("/admin/users_app/environment/").status_code == 403
    assert loud(caplog) == []
    assert console.getvalue() == ""


def test_a_rejected_api_call_logs_no_warning(client, caplog, console):
    caplog.set_level(logging.DEBUG)
    assert client.post("/api/track", "{not json", content_type="application/json").status_code == 400
    assert loud(caplog) == []
    assert console.getvalue() == ""


def test_a_500_still_logs_an_error_with_its_traceback(viewer_client, caplog, console, monkeypatch):
    def broken(self, **kwargs):
        raise RuntimeError("a bug, for the logging test")

    monkeypatch.setattr(HomeView, "get_context_data", broken)
    caplog.set_level(logging.DEBUG)
    assert viewer_client.get("/").status_code == 500
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [(record.name, record.getMessage()) for record in errors] == [("django.request", "Internal Server Error: /")]
    assert errors[0].exc_info and errors[0].exc_info[0] is RuntimeError
    output = console.getvalue()
    assert output.startswith("ERROR django.request: Internal Server Error: /")
    assert "Traceback (most recent call last)" in output and "a bug, for the logging test" in output


def test_a_suspicious_request_is_one_warning_line_without_traceback(caplog, console):
    client = Client(raise_request_exception=False)
    assert client.get("/", HTTP_HOST="evil.example").status_code == 400
    lines = console.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("WARNING django.security.DisallowedHost: Invalid HTTP_HOST header: 'evil.example'")
    assert "Traceback" not in console.getvalue()


def test_log_level_info_shows_client_errors_as_single_lines(client, console):
    handler = next(handler for handler in logging.getLogger().handlers if handler.get_name() == "console")
    level = handler.level
    handler.setLevel(logging.INFO)
    try:
        assert client.get("/no-such-page/").status_code == 404
    finally:
        handler.setLevel(level)
    assert console.getvalue().splitlines() == ["INFO django.request: Not Found: /no-such-page/"]
