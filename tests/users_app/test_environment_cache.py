"""The per-process cache of environments (docs/operations.md, "Environment cache"): a change made through the
ORM is seen at once by this process, any other change within CAIRN_ENVIRONMENT_CACHE_SECONDS, and nothing a
transaction has not committed is ever cached.

These tests need real commits (`transactional_db`): inside the test transaction nothing is cached."""

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from config.kernel.errors import NotFound
from events_app.models import Event, Session
from tests.conftest import API_KEY
from users_app.models import Environment, Profile
from users_app.services import environments
from users_app.services.environments import (
    api_key_hash,
    environment_create,
    environment_for_api_key,
    environment_for_app_id,
    environment_rotate_api_key,
)


@pytest.fixture
def clock(monkeypatch):
    """The cache's clock, moved by hand."""

    class Clock:
        now = 1_000.0

        def advance(self, seconds: float) -> None:
            self.now += seconds

    fake = Clock()
    monkeypatch.setattr(environments, "_wall_clock", lambda: fake.now)
    cache.clear()
    yield fake
    cache.clear()


@pytest.fixture
def committed_environment(transactional_db, clock, environment):
    """The usual test environment (API_KEY, the `calls` fixture's app_id), committed."""
    return environment


def test_a_looked_up_environment_is_served_from_the_cache(committed_environment, django_assert_num_queries):
    environment_for_app_id(committed_environment.app_id)
    environment_for_api_key(API_KEY)
    with django_assert_num_queries(0):
        by_app_id = environment_for_app_id(committed_environment.app_id)
        by_key = environment_for_api_key(API_KEY)
    assert by_app_id.pk == by_key.pk == committed_environment.pk
    # Each caller gets its own instance: assigning to it never changes what the next call sees.
    by_app_id.name = "changed in memory"
    by_app_id.blocked_identities.append("changed in place")
    by_key.blocked_identities.append("changed in place")
    again = environment_for_app_id(committed_environment.app_id)
    assert (again.name, again.blocked_identities) == ("Test site", [])
    assert environment_for_api_key(API_KEY).blocked_identities == []


def test_a_block_list_saved_through_the_orm_applies_to_the_next_identify(committed_environment, calls):
    assert calls.identify("1", "acme").status_code == 200  # caches the environment
    committed_environment.blocked_identities = ["Acme"]
    committed_environment.save()
    answer = calls.identify("2", "acme")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "identity_blocked"
    assert not Profile.objects.filter(user_id=2).exists()  # nothing changes on a 400


def test_a_hold_threshold_saved_through_the_orm_applies_to_the_next_merge(committed_environment, calls):
    assert calls.identify("1", "alice").status_code == 200
    committed_environment.merge_hold_threshold = 0
    committed_environment.save(update_fields=["merge_hold_threshold"])
    assert calls.identify("2", "alice").json()["merge"]["status"] == "held"


def test_a_rotated_key_stops_working_at_once(committed_environment, api):
    assert api.get("/api/v1/users/search").status_code == 200  # caches the environment by its key
    new_key = environment_rotate_api_key(environment=committed_environment)
    assert api.get("/api/v1/users/search").status_code == 401
    assert api.get("/api/v1/users/search", api_key=new_key).status_code == 200


def test_a_deleted_environment_is_unknown_at_once(committed_environment, calls):
    assert calls.identify("1", "alice").status_code == 200
    Profile.objects.filter(environment=committed_environment).delete()
    committed_environment.delete()
    answer = calls.identify("1", "alice")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_app_id"


def test_a_change_the_orm_did_not_see_is_honoured_for_at_most_the_ttl(committed_environment, clock, settings):
    settings.CAIRN_ENVIRONMENT_CACHE_SECONDS = 5
    environment_for_api_key(API_KEY)
    environment_for_app_id(committed_environment.app_id)
    # As another process (or SQL by hand) would change it: this process's cache is not told.
    Environment.objects.filter(pk=committed_environment.pk).update(
        api_key_hash=api_key_hash("another-key-0123456789"), blocked_identities=["acme"]
    )
    clock.advance(4.9)
    assert environment_for_api_key(API_KEY) is not None  # stale, within the TTL
    assert environment_for_app_id(committed_environment.app_id).blocked_identities == []
    clock.advance(0.2)
    assert environment_for_api_key(API_KEY) is None
    assert environment_for_app_id(committed_environment.app_id).blocked_identities == ["acme"]


def test_unknown_app_ids_and_keys_are_not_cached(transactional_db, clock):
    with pytest.raises(NotFound):
        environment_for_app_id("1000000077")
    assert environment_for_api_key("not-yet-a-key-0123456789") is None
    # bulk_create sends no signal: only the absence of negative caching makes it visible at once.
    Environment.objects.bulk_create(
        [Environment(name="Late", app_id="1000000077", api_key_hash=api_key_hash("not-yet-a-key-0123456789"))]
    )
    assert environment_for_app_id("1000000077").name == "Late"
    assert environment_for_api_key("not-yet-a-key-0123456789").name == "Late"


def test_rows_read_inside_a_transaction_are_not_cached(transactional_db, clock):
    with pytest.raises(RuntimeError), transaction.atomic():
        environment_create(name="Rolled back", app_id="1000000088", api_key="rolled-back-key-0123456789")
        assert environment_for_app_id("1000000088").name == "Rolled back"
        raise RuntimeError("roll back")
    with pytest.raises(NotFound):
        environment_for_app_id("1000000088")


def test_the_cache_can_be_turned_off(committed_environment, settings, django_assert_num_queries):
    settings.CAIRN_ENVIRONMENT_CACHE_SECONDS = 0
    environment_for_app_id(committed_environment.app_id)
    with django_assert_num_queries(1):
        environment_for_app_id(committed_environment.app_id)


def deleted_by_another_process(environment: Environment) -> None:
    """SQL by hand, as another process's delete would look to this one: no signal clears this cache."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Environment._meta.db_table} WHERE id = %s", [environment.pk])


@pytest.mark.parametrize("call", ["track", "bulk track", "identify", "add_user_properties", "browser"])
def test_a_write_for_an_environment_deleted_by_another_process_is_a_404_and_stores_nothing(
    committed_environment, api, call
):
    app_id = committed_environment.app_id
    environment_for_app_id(app_id)  # cached in this process
    deleted_by_another_process(committed_environment)
    path, body = {
        "track": ("/api/track", {"app_id": app_id, "user_id": "5", "event": "Late"}),
        "bulk track": ("/api/track", {"app_id": app_id, "events": [{"user_id": "5", "event": "Late"}]}),
        "identify": ("/api/v1/identify", {"app_id": app_id, "user_id": "5", "identity": "alice"}),
        "add_user_properties": (
            "/api/add_user_properties",
            {"app_id": app_id, "user_id": "5", "properties": {"plan": "Free"}},
        ),
        "browser": (
            "/api/v1/browser",
            {"app_id": app_id, "user_id": "5", "calls": [{"type": "track", "event": "Late"}]},
        ),
    }[call]

    answer = api.post(path, body)

    assert answer.status_code == 404, answer.content
    assert (answer.json()["error"]["code"], answer.json()["error"]["field"]) == ("unknown_app_id", "app_id")
    assert not Profile.objects.exists() and not Session.objects.exists() and not Event.objects.exists()
    # The cache was dropped: the next call is refused before it writes anything.
    with CaptureQueriesContext(connection) as queries:
        assert api.post(path, body).status_code == 404
    assert not [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_a_write_for_an_environment_replaced_by_another_process_asks_to_be_sent_again(committed_environment, calls):
    app_id = committed_environment.app_id
    environment_for_app_id(app_id)  # cached in this process
    deleted_by_another_process(committed_environment)
    # Created again with the same app_id (create_environment --app-id), without this process hearing of it.
    Environment.objects.bulk_create(
        [Environment(name="Again", app_id=app_id, api_key_hash=api_key_hash("again-key-0123456789"))]
    )

    answer = calls.track(user_id="5", event="Late")

    assert answer.status_code == 503 and answer["Retry-After"] == "1"
    assert (answer.json()["error"]["code"], answer.json()["error"]["field"]) == ("environment_changed", "app_id")
    assert not Event.objects.exists()
    assert calls.track(user_id="5", event="Late").status_code == 200  # sent again, it lands in the new one
    assert Event.objects.get().environment.name == "Again"


def test_a_row_read_just_before_a_change_committed_is_not_served_after_it(committed_environment):
    app_id = committed_environment.app_id

    def read_then_another_process_changes_it():
        old_row = Environment.objects.get(pk=committed_environment.pk)
        # The admin's save commits while this call still holds the old row, before it writes it to the cache.
        changed = Environment.objects.get(pk=committed_environment.pk)
        changed.blocked_identities = ["acme"]
        changed.save()
        return old_row

    environments._cached(environments._app_id_key(app_id), read_then_another_process_changes_it)

    assert environment_for_app_id(app_id).blocked_identities == ["acme"]
