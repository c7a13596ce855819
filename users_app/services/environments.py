"""Environments: creating them, rotating keys, and looking them up (by app_id on every ingest call, by API key on
every read API call) through the cache all web processes share (config/kernel/shared_cache.py)."""

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from config.kernel.errors import InvalidInput, NotFound
from config.kernel.shared_cache import shared_cache_bump, shared_cache_get_many, shared_cache_set
from users_app.models import Environment

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


def new_app_id() -> str:
    # Heap's app_ids are numeric; keep the same look so existing snippets and configs feel at home.
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def new_api_key() -> str:
    return f"cairn_{secrets.token_urlsafe(32)}"


def environment_create(
    *,
    name: str,
    app_id: str | None = None,
    api_key: str | None = None,
    blocked_identities: list[str] | None = None,
    merge_hold_threshold: int | None = None,
    allowed_origins: list[str] | None = None,
    server_calls_need_api_key: bool | None = None,
    ingest_limit_per_minute: int | None = None,
    account_id_property: str | None = None,
    event_retention_days: int | None = None,
) -> EnvironmentWithKey:
    """A new environment with every setting it starts with; a setting left None takes the model's default (so
    the defaults have one home). The API key is made here (None: a random one) and only its hash is stored."""
    app_id = app_id or new_app_id()
    api_key = api_key or new_api_key()
    if len(api_key) < 16:
        raise InvalidInput("invalid_api_key", "An API key must be at least 16 characters.", "api_key")
    settings_given = {
        "blocked_identities": blocked_identities,
        "merge_hold_threshold": merge_hold_threshold,
        "allowed_origins": allowed_origins,
        "server_calls_need_api_key": server_calls_need_api_key,
        "ingest_limit_per_minute": ingest_limit_per_minute,
        "account_id_property": account_id_property.strip() if account_id_property else None,
        "event_retention_days": event_retention_days,  # None: kept forever, the model's default
    }
    with transaction.atomic():
        if Environment.objects.filter(app_id=app_id).exists():
            raise InvalidInput("duplicate_app_id", f"app_id {app_id} already exists.", "app_id")
        environment = Environment.objects.create(
            name=name,
            app_id=app_id,
            api_key_hash=api_key_hash(api_key),
            api_key_hint=api_key[:10],
            **{field: value for field, value in settings_given.items() if value is not None},
        )
    return EnvironmentWithKey(environment=environment, api_key=api_key)


def environment_rotate_api_key(*, environment: Environment) -> str:
    api_key = new_api_key()
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
    environment_cache_invalidate()
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


# Every entry is stamped with the generation it was read under; any save or delete of any environment starts a
# new one. Dropping the changed row's own entries would not do: a call that read the old row just before the
# change committed could write it back just after, to be served for the whole TTL (found by review). An entry
# of an older generation is a miss, whenever it was written. Environments change rarely: a new generation
# costs one query per environment and process, once.
GENERATION_KEY = "cairn:environment:generation"


def environment_cache_invalidate() -> None:
    """Every cached environment becomes a miss, in every process."""
    shared_cache_bump(GENERATION_KEY)


_wall_clock = time.time  # the tests move it by hand


def _cached(cache_key: str, load: Callable[[], Environment | None]) -> Environment | None:
    # One round trip for the generation and the entry. The entry carries its own wall-clock expiry (the cache's
    # own TTL is a little longer, for clean-up): every process then honours the same TTL.
    found = shared_cache_get_many([GENERATION_KEY, cache_key])
    generation = found.get(GENERATION_KEY, 0)
    entry = found.get(cache_key)
    if entry is not None and entry[0] == generation and entry[1] > _wall_clock():
        # Unpickled from the cache: each call gets its own copy, so a caller assigning to its row, or changing one
        # of its JSON lists in place, never changes what another call sees.
        return entry[2]
    environment = load()
    seconds = settings.CAIRN_ENVIRONMENT_CACHE_SECONDS
    # Inside a transaction the row may be uncommitted (created by this very transaction) or about to be rolled
    # back: never cache what other calls might not be allowed to see.
    if environment is not None and seconds > 0 and not connection.in_atomic_block:
        shared_cache_set(cache_key, (generation, _wall_clock() + seconds, environment), seconds + 1)
    return environment


@receiver([post_save, post_delete], sender=Environment, dispatch_uid="cairn_environment_cache")
def _environment_changed(using: str, **kwargs) -> None:
    """Cache invalidation only (no business logic): any save or delete of an environment (services, admin,
    shell) starts a new generation now, for every process, and again when its transaction commits, so a row
    read in between (the old one, still committed then) is not served either."""
    environment_cache_invalidate()
    transaction.on_commit(environment_cache_invalidate, using=using)
