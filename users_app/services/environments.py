"""Environments: creating them, rotating keys, and looking them up (by app_id on every ingest call, by API key on
every read API call) through a small per-process cache."""

import copy
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from users_app.errors import InvalidInput, NotFound
from users_app.models import Environment

# How long a process may answer from a cached Environment row (docs/operations.md, "Environment cache"). A save
# or delete through the ORM (services, admin) clears this process's cache at once; other processes see the
# change after at most this long.
ENVIRONMENT_CACHE_SECONDS = 5.0


@dataclass
class EnvironmentWithKey:
    environment: Environment
    api_key: str  # shown once; only its hash is stored


def api_key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _new_app_id() -> str:
    # Heap's app_ids are numeric; keep the same look so existing snippets and configs feel at home.
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def environment_create(*, name: str, app_id: str | None = None, api_key: str | None = None) -> EnvironmentWithKey:
    app_id = app_id or _new_app_id()
    api_key = api_key or f"cairn_{secrets.token_urlsafe(32)}"
    if len(api_key) < 16:
        raise InvalidInput("invalid_api_key", "An API key must be at least 16 characters.", "api_key")
    with transaction.atomic():
        if Environment.objects.filter(app_id=app_id).exists():
            raise InvalidInput("duplicate_app_id", f"app_id {app_id} already exists.", "app_id")
        environment = Environment.objects.create(
            name=name, app_id=app_id, api_key_hash=api_key_hash(api_key), api_key_hint=api_key[:10]
        )
    return EnvironmentWithKey(environment=environment, api_key=api_key)


def environment_rotate_api_key(*, environment: Environment) -> str:
    api_key = f"cairn_{secrets.token_urlsafe(32)}"
    environment.api_key_hash = api_key_hash(api_key)
    environment.api_key_hint = api_key[:10]
    environment.save(update_fields=["api_key_hash", "api_key_hint"])
    return api_key


def unknown_app_id(app_id: str) -> NotFound:
    return NotFound(f"No environment has app_id {app_id!r}.", field="app_id", code="unknown_app_id")


def environment_for_app_id(app_id: str) -> Environment:
    environment = _cached(_by_app_id, app_id, lambda: Environment.objects.filter(app_id=app_id).first())
    if environment is None:
        raise unknown_app_id(app_id)
    return environment


def environment_write_failure(environment: Environment) -> InvalidInput | None:
    """A write for a (cached) environment failed on a foreign key: if the environment was deleted meanwhile by
    another process, within the cache's lifetime, the error to answer instead (nothing of the call was
    stored). None if it still exists: the failure is something else. Clears this process's cache either way,
    so the next call reads the row again."""
    environment_cache_clear()
    if Environment.objects.filter(pk=environment.pk).exists():
        return None
    if Environment.objects.filter(app_id=environment.app_id).exists():  # deleted and created again since
        return InvalidInput(
            "environment_changed",
            f"The environment of app_id {environment.app_id!r} was replaced while this call was stored; nothing "
            "was stored. Send the call again.",
            "app_id",
            status=503,
        )
    return unknown_app_id(environment.app_id)


def environment_for_api_key(api_key: str) -> Environment | None:
    key_hash = api_key_hash(api_key)
    return _cached(_by_key_hash, key_hash, lambda: Environment.objects.filter(api_key_hash=key_hash).first())


# ---- the per-process cache -----------------------------------------------------------------------------------

# lookup key -> (monotonic expiry, row). Only environments that exist are cached, so the size is bounded by the
# number of environments (and their keys), whatever app_ids or keys callers make up.
_by_app_id: dict[str, tuple[float, Environment]] = {}
_by_key_hash: dict[str, tuple[float, Environment]] = {}


def environment_cache_clear() -> None:
    _by_app_id.clear()
    _by_key_hash.clear()


def _cached(cache: dict, key: str, load: Callable[[], Environment | None]) -> Environment | None:
    now = time.monotonic()
    entry = cache.get(key)
    if entry is not None and entry[0] > now:
        # A deep copy (about 20 us): a caller assigning to its row, or changing one of its JSON lists in place,
        # never changes what another call sees.
        return copy.deepcopy(entry[1])
    environment = load()
    seconds = getattr(settings, "CAIRN_ENVIRONMENT_CACHE_SECONDS", ENVIRONMENT_CACHE_SECONDS)
    # Inside a transaction the row may be uncommitted (created by this very transaction) or about to be rolled
    # back: never cache what other calls might not be allowed to see.
    if environment is not None and seconds > 0 and not connection.in_atomic_block:
        cache[key] = (now + seconds, copy.deepcopy(environment))
    return environment


@receiver([post_save, post_delete], sender=Environment, dispatch_uid="cairn_environment_cache")
def _environment_changed(using: str, **kwargs) -> None:
    """Cache invalidation only (no business logic): any save or delete of an environment in this process
    (services, admin, shell) clears the cache now, and again when its transaction commits, in case another
    thread of this process re-read the old row in between."""
    environment_cache_clear()
    transaction.on_commit(environment_cache_clear, using=using)
