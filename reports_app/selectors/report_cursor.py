"""The one home of the settings a report statement (trends on PostgreSQL, funnels, retention) runs with."""

from contextlib import contextmanager

from django.conf import settings
from django.db import connections, transaction


@contextmanager
def report_cursor(using: str = "default", **planner: str):
    """A cursor for one report statement, planned with its own settings: `work_mem` = CAIRN_REPORT_WORK_MEM_MB
    for each sort and hash (the server's default 4 MB spills them to disk at 10M events; 0 keeps the server's),
    no JIT (these statements' estimates are large and compiling took longer than running: 0.43 of 1.7 s,
    docs/benchmarks.md), and any `planner` settings the caller adds (fixed names, values as parameters).

    Set local to a transaction (a savepoint inside a caller's) and put back after the statement, so that a
    caller's own transaction (a test's, a page's) plans its other queries as before; if the statement fails, the
    rollback of the savepoint puts them back."""
    values = {"jit": "off", **planner}
    if settings.CAIRN_REPORT_WORK_MEM_MB > 0:
        values["work_mem"] = f"{int(settings.CAIRN_REPORT_WORK_MEM_MB)}MB"
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        before = _planner_set(cursor, values)
        yield cursor
        _planner_set(cursor, before)


def _planner_set(cursor, values: dict[str, str]) -> dict[str, str]:
    """Set these settings for the current transaction in one round trip; their values before."""
    names = list(values)
    columns = ", ".join("current_setting(%s), set_config(%s, %s, true)" for _ in names)
    cursor.execute(f"SELECT {columns}", [item for name in names for item in (name, name, values[name])])
    row = cursor.fetchone()
    return {name: row[2 * position] for position, name in enumerate(names)}
