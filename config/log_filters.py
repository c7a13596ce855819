"""Logging filters for config/settings.py's LOGGING: production logs carry what needs a person (5xx, with
their tracebacks; suspicious requests, one line each), not every client error."""

import logging


def _demote(record: logging.LogRecord, level: int) -> None:
    # Filters run before any handler sees the record, so changing it here changes what every handler gets.
    record.levelno = level
    record.levelname = logging.getLevelName(level)
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None


class ClientErrorsQuiet(logging.Filter):
    """On `django.request`. Django logs every 4xx response at WARNING, Http404 and PermissionDenied with their
    tracebacks: each rejected ingest call, each scanner's 404, each viewer opening an admin URL. They are the
    client's errors, not the server's; they become INFO lines without traceback (seen with LOG_LEVEL=INFO).
    5xx keep ERROR and their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            _demote(record, logging.INFO)
        return True


class SecurityWarningOnce(logging.Filter):
    """On the console handler (the `django.security.*` loggers are many, and a logger's own filters do not see
    its children's records). Django logs each SuspiciousOperation (a Host not in ALLOWED_HOSTS, a bad session
    or upload) at ERROR with its traceback; what matters is that it happened: one WARNING line. The 400 that
    follows it on `django.request` is quiet (ClientErrorsQuiet), so it is logged once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security.") and record.levelno >= logging.WARNING:
            _demote(record, logging.WARNING)
        return True
