"""Sending odd values through Django's test client and telling a server error from an answer (shared by the
query-string and admin fuzz tests)."""

from dataclasses import dataclass
from urllib.parse import quote

from django.db import transaction

from tests.odd_values import ODD_CURSORS, SWEEP_VALUES


def encoded(value: str) -> str:
    # surrogatepass: an unpaired surrogate goes out as its (invalid) UTF-8 bytes, as a hostile client sends it.
    return quote(value, safe="", errors="surrogatepass")


def query_string(params) -> str:
    return "&".join(f"{encoded(name)}={encoded(value)}" for name, value in params)


def answer(client, url: str, params=(), method: str = "get", **headers) -> int | str:
    """The status code, or for a server error what went wrong (for the failure message).

    Django's test client re-raises a view's exception instead of answering 500, so an exception is the 500.
    Each request runs in a savepoint: a database error must not poison the requests after it."""
    path = f"{url}?{query_string(params)}" if params else url
    try:
        with transaction.atomic():
            response = getattr(client, method)(path, **headers)
    except Exception as error:  # noqa: BLE001 - any exception here is the server error being looked for
        return f"{path[:300]} -> {type(error).__name__}: {str(error)[:300]}"
    if response.status_code >= 500:
        return f"{path[:300]} -> {response.status_code}"
    return response.status_code


def server_error(client, url: str, params=(), method: str = "get", **headers) -> str | None:
    """None if the answer is not a 5xx; otherwise what went wrong."""
    result = answer(client, url, params, method, **headers)
    return result if isinstance(result, str) else None


@dataclass(frozen=True)
class Probe:
    """One query parameter of an endpoint: each odd value is written into it with `shape`, next to `base`
    (the parameters without which the value is never read, e.g. a filter's operator needs its property).
    `only`: a shorter list of values for a parameter that Django's generic code reads, not Cairn's."""

    name: str
    shape: str = "{}"
    base: tuple[tuple[str, str], ...] = ()
    cursor: bool = False
    only: tuple[str, ...] | None = None

    def values(self, odd_values) -> list[str]:
        return list(self.only or odd_values) + (ODD_CURSORS if self.cursor else [])

    def params(self, value: str) -> list[tuple[str, str]]:
        return [*self.base, (self.name, self.shape.replace("{}", value))]


def sweep(client, url: str, probes, odd_values=SWEEP_VALUES, **headers) -> list[str]:
    """Every odd value in every probe of `url`: the list of server errors (empty when all is well)."""
    failures = []
    for probe in probes:
        for value in probe.values(odd_values):
            failure = server_error(client, url, probe.params(value), **headers)
            if failure:
                failures.append(failure)
    return failures
