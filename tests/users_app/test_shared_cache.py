"""The cache every web process shares (SPEC 9): Redis when REDIS_URL is set, so a change made in one process
is seen by all of them at once; and it fails open, so a Redis outage never stops ingest or a page."""

import os

import pytest
from django.core.cache import caches

from config.kernel import shared_cache
from users_app.models import Environment
from users_app.services.environments import environment_for_app_id

REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", ""),
        "KEY_PREFIX": "cairn-test",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
UNREACHABLE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


@pytest.fixture
def redis_cache(settings, redis_broker):
    settings.CACHES = REDIS_CACHE
    yield caches["default"]
    caches["default"].clear()


@pytest.fixture
def cache_up_again():
    yield
    shared_cache._down_until = 0.0


def test_what_one_process_cached_is_read_by_another(redis_cache):
    shared_cache.shared_cache_set("cairn:probe", {"value": 7}, 30)
    # Another process: its own connection to Redis, nothing in its memory.
    import redis

    other = redis.Redis.from_url(os.environ["REDIS_URL"])
    assert any(b"cairn:probe" in key for key in other.keys("cairn-test:*"))
    caches.close_all()
    assert shared_cache.shared_cache_get("cairn:probe") == {"value": 7}


def test_an_environment_changed_in_one_process_is_seen_at_once_by_every_process(transactional_db, redis_cache):
    environment = Environment.objects.create(name="Shop", app_id="1000000042", api_key_hash="h" * 64)
    assert environment_for_app_id("1000000042").blocked_identities == []  # now cached in Redis
    # The admin (another process) adds to the block list: its save drops the shared entry.
    Environment.objects.filter(pk=environment.pk).update(blocked_identities=["acme"])  # unseen by the cache...
    assert environment_for_app_id("1000000042").blocked_identities == []  # ...so still the cached row
    Environment.objects.get(pk=environment.pk).save()  # a save through the ORM, as the admin's
    assert environment_for_app_id("1000000042").blocked_identities == ["acme"]


def test_a_redis_outage_is_a_miss_not_an_error(transactional_db, settings, cache_up_again):
    settings.CACHES = UNREACHABLE_CACHE
    Environment.objects.create(name="Shop", app_id="1000000043", api_key_hash="i" * 64)
    assert environment_for_app_id("1000000043").name == "Shop"
    assert shared_cache.shared_cache_get("anything") is None
    assert shared_cache.shared_cache_reachable() is False
    shared_cache.shared_cache_set("anything", 1, 10)  # does not raise


def test_the_health_check_reports_the_database_and_the_cache(client, db, settings, cache_up_again):
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"database": "ok", "cache": "ok"}
    settings.CACHES = UNREACHABLE_CACHE
    answer = client.get("/healthz")
    # Redis down is reported, not fatal: ingest keeps working without it.
    assert answer.status_code == 200 and answer.json() == {"database": "ok", "cache": "unavailable"}
