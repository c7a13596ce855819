"""Environments: creating them, rotating keys, and looking them up (by app_id on every ingest call, by API key on
every read API call) through the cache all web processes share (users_app/shared_cache.py)."""

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from users_app.errors import InvalidInput, NotFound
from users_app.models import Environment
from users_app.shared_cache import shared_cache_delete, shared_cache_get, shared_cache_set

# A cached Environment row is answered for settings.CAIRN_ENVIRONMENT_CACHE_SECONDS (docs/operations.md,
# "Environment cache"). A save or delete through the ORM (services, admin, shell) drops it at once for every
# process; a change the ORM does not see (QuerySet.update, SQL by hand) is seen after at most that long.


@dataclass
class EnvironmentWithKey:
    environment: Environment
    api_key: str  # shown once; only its hash is stored


def api_key_hash(api_key: str) -> str:
    # surrogatepass: a JSON body may carry a lone surrogate ("\\ud800"), which plain UTF-8 cannot encode; such a
    # key matches no environment's (401), it must not be a 500.
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


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
    environment = _cached(_app_id_key(app_id), lambda: Environment.objects.filter(app_id=app_id).first())
    if environment is None:
        raise unknown_app_id(app_id)
    return environment


def environment_write_failure(environment: Environment) -> InvalidInput | None:
    """A write for a (cached) environment failed on a foreign key: if the environment was deleted meanwhile by
    another process, within the cache's lifetime, the error to answer instead (nothing of the call was
    stored). None if it still exists: the failure is something else. Drops the cached row either way, so the
    next call reads the row again."""
    environment_cache_forget(environment)
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
    return _cached(_key_hash_key(key_hash), lambda: Environment.objects.filter(api_key_hash=key_hash).first())


# ---- the shared cache ---------------------------------------------------------------------------------------


def _app_id_key(app_id: str) -> str:
    # Hashed: an app_id is whatever a caller sent (any characters, up to its length limit), a key must not be.
    return f"cairn:environment:app_id:{hashlib.sha256(app_id.encode()).hexdigest()}"


def _key_hash_key(key_hash: str) -> str:
    return f"cairn:environment:key:{key_hash}"


def _cache_keys(environment: Environment) -> list[str]:
    return [_app_id_key(environment.app_id), _key_hash_key(environment.api_key_hash)]


def environment_cache_forget(environment: Environment) -> None:
    """Drop this environment's entries (by app_id and by key) from the cache every process reads."""
    shared_cache_delete(_cache_keys(environment))


_wall_clock = time.time  # the tests move it by hand


def _cached(cache_key: str, load: Callable[[], Environment | None]) -> Environment | None:
    # The entry carries its own wall-clock expiry (the cache's own TTL is a little longer, for clean-up): every
    # process then honours the same TTL, whichever cache holds the entry.
    entry = shared_cache_get(cache_key)
    if entry is not None and entry[0] > _wall_clock():
        # Unpickled from the cache: each call gets its own copy, so a caller assigning to its row, or changing one
        # of its JSON lists in place, never changes what another call sees.
        return entry[1]
    environment = load()
    seconds = settings.CAIRN_ENVIRONMENT_CACHE_SECONDS
    # Inside a transaction the row may be uncommitted (created by this very transaction) or about to be rolled
    # back: never cache what other calls might not be allowed to see.
    if environment is not None and seconds > 0 and not connection.in_atomic_block:
        shared_cache_set(cache_key, (_wall_clock() + seconds, environment), seconds + 1)
    return environment


@receiver(pre_save, sender=Environment, dispatch_uid="cairn_environment_cache_before")
def _environment_changing(instance: Environment, **kwargs) -> None:
    """Cache invalidation only (no business logic): a rotated key or a changed app_id must stop working at once,
    so the entries under the values the row had before this save are dropped too (saves of environments are
    rare: one query)."""
    before = Environment.objects.filter(pk=instance.pk).first() if instance.pk is not None else None
    instance._cache_keys_before_save = _cache_keys(before) if before is not None else []


@receiver([post_save, post_delete], sender=Environment, dispatch_uid="cairn_environment_cache")
def _environment_changed(instance: Environment, using: str, **kwargs) -> None:
    """Any save or delete of an environment (services, admin, shell) drops its entries now, for every process,
    and again when its transaction commits, in case a call re-read the old row in between."""
    keys = _cache_keys(instance) + getattr(instance, "_cache_keys_before_save", [])
    shared_cache_delete(keys)
    transaction.on_commit(lambda: shared_cache_delete(keys), using=using)
