"""The cache web processes share: Redis when REDIS_URL is set (settings.CACHES), this process's memory on the
embedded default. What must agree across gunicorn workers and machines (environments, user counts) goes here.

It fails open: Redis is an accelerator on the request path, never a dependency (docs/operations.md, "Outages":
ingest keeps working while Redis is down). A failed call is a miss, and for CACHE_DOWN_SECONDS after it the
cache is not asked at all, so an outage costs one call a connection attempt, not every call."""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

logger = logging.getLogger(__name__)

CACHE_DOWN_SECONDS = 5.0
_down_until = 0.0


def _call(operation: Callable[[], Any], default: Any = None) -> Any:
    global _down_until
    if _down_until > time.monotonic():
        return default
    try:
        return operation()
    except Exception as error:  # noqa: BLE001 - redis-py raises ConnectionError, TimeoutError, OSError...
        if _down_until == 0.0 or _down_until < time.monotonic() - CACHE_DOWN_SECONDS:
            logger.warning(
                "shared cache unavailable, answering from the database for %s s: %s", CACHE_DOWN_SECONDS, error
            )
        _down_until = time.monotonic() + CACHE_DOWN_SECONDS
        return default


def shared_cache_get(key: str) -> Any:
    return _call(lambda: cache.get(key))


def shared_cache_set(key: str, value: Any, seconds: float) -> None:
    _call(lambda: cache.set(key, value, seconds))


def shared_cache_get_many(keys: list[str]) -> dict[str, Any]:
    """The keys that are cached, in one round trip (MGET)."""
    return _call(lambda: cache.get_many(keys), {})


def shared_cache_bump(key: str) -> None:
    """Add one to a counter that never expires (a generation), creating it at 1."""

    def bump() -> None:
        cache.add(key, 0, None)
        cache.incr(key)

    _call(bump)


def shared_cache_get_or_set(key: str, compute: Callable[[], Any], seconds: float) -> Any:
    value = shared_cache_get(key)
    if value is None:
        value = compute()
        shared_cache_set(key, value, seconds)
    return value


def shared_cache_reachable() -> bool:
    """A round trip to the cache now (the health check), regardless of a recent failure."""
    try:
        cache.set("cairn:health", 1, 10)
        return cache.get("cairn:health") == 1
    except Exception:  # noqa: BLE001
        return False
