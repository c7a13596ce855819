"""Who may write through the ingest endpoints (audit findings, SPEC 9): a page on another site only if its
origin is allowed (every endpoint, not only the browser one), and, when the environment says so, a server
only with the environment's API key. Refused calls store nothing."""

import json

import pytest
from django.test import Client

from events_app.models import Event
from tests.conftest import API_KEY, OTHER_API_KEY
from users_app.models import Profile, UserProperty

ALLOWED = "https://shop.example.com"
EVIL = "https://evil.example"


def body_of(endpoint: str, app_id: str) -> dict:
    """A call to `endpoint` that stores something about user 77 (or alice)."""
    return {
        "/api/track": {"app_id": app_id, "user_id": "77", "event": "Bought"},
        "/api/add_user_properties": {"app_id": app_id, "user_id": "77", "properties": {"plan": "Free"}},
        "/api/identify": {"app_id": app_id, "user_id": "77", "properties": {"plan": "Free"}},
        "/api/v1/identify": {"app_id": app_id, "user_id": "77", "identity": "alice"},
    }[endpoint]


SERVER_ENDPOINTS = ["/api/track", "/api/add_user_properties", "/api/identify", "/api/v1/identify"]


def nothing_stored(environment) -> bool:
    return not (
        Profile.objects.filter(environment=environment).exists()
        or Event.objects.filter(environment=environment).exists()
    )


def send(endpoint: str, body: dict, content_type="application/json", **headers):
    return Client().post(endpoint, json.dumps(body), content_type=content_type, **headers)


@pytest.fixture
def shop(environment):
    environment.allowed_origins = [ALLOWED]
    environment.save()
    return environment


# ---- origins ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", SERVER_ENDPOINTS)
def test_a_page_on_a_disallowed_origin_cannot_write(endpoint, shop):
    # What a page can send without a preflight: fetch(url, {mode: "no-cors", headers: {"Content-Type": "text/plain"}}).
    response = send(endpoint, body_of(endpoint, shop.app_id), content_type="text/plain", HTTP_ORIGIN=EVIL)

    assert response.status_code == 403, response.content
    assert response.json()["error"] == {
        "code": "origin_not_allowed",
        "field": "Origin",
        "message": "This origin is not in the environment's allowed origins.",
    }
    assert nothing_stored(shop)


@pytest.mark.parametrize("endpoint", SERVER_ENDPOINTS)
@pytest.mark.parametrize("origin", [ALLOWED, ALLOWED + "/", "http://testserver", None])
def test_allowed_origins_this_server_and_calls_without_origin_write(endpoint, origin, shop):
    headers = {"HTTP_ORIGIN": origin} if origin else {}

    response = send(endpoint, body_of(endpoint, shop.app_id), content_type="text/plain", **headers)

    assert response.status_code == 200, response.content
    assert Profile.objects.filter(environment=shop).exists()


def test_an_opaque_origin_is_not_an_allowed_one(shop):
    # Sandboxed iframes and file:// pages send `Origin: null`.
    response = send("/api/track", body_of("/api/track", shop.app_id), HTTP_ORIGIN="null")
    assert response.status_code == 403
    assert nothing_stored(shop)


def test_a_wildcard_allows_every_origin_on_the_server_endpoints_too(shop):
    shop.allowed_origins = ["*"]
    shop.save()
    assert send("/api/track", body_of("/api/track", shop.app_id), HTTP_ORIGIN=EVIL).status_code == 200


def test_a_bulk_call_from_a_disallowed_origin_stores_none_of_its_items(shop):
    body = {"app_id": shop.app_id, "events": [{"user_id": str(n), "event": "x"} for n in range(10)]}
    assert send("/api/track", body, HTTP_ORIGIN=EVIL).status_code == 403
    assert nothing_stored(shop)


# ---- server calls need the API key ------------------------------------------------------------------------------


@pytest.fixture
def locked(environment):
    environment.server_calls_need_api_key = True
    environment.save()
    return environment


def test_the_api_key_setting_is_off_by_default(environment):
    assert environment.server_calls_need_api_key is False
    assert send("/api/track", body_of("/api/track", environment.app_id)).status_code == 200


@pytest.mark.parametrize("endpoint", SERVER_ENDPOINTS)
def test_with_the_setting_on_a_call_without_the_key_is_refused(endpoint, locked):
    response = send(endpoint, body_of(endpoint, locked.app_id))

    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and error["field"] == "Authorization"
    assert "Authorization: Bearer" in error["message"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert nothing_stored(locked)


@pytest.mark.parametrize("endpoint", SERVER_ENDPOINTS)
def test_with_the_setting_on_the_key_as_a_bearer_token_or_in_the_body_is_accepted(endpoint, locked):
    assert send(endpoint, body_of(endpoint, locked.app_id), HTTP_AUTHORIZATION=f"Bearer {API_KEY}").status_code == 200
    assert send(endpoint, {**body_of(endpoint, locked.app_id), "api_key": API_KEY}).status_code == 200


@pytest.mark.parametrize("required", [True, False])
@pytest.mark.parametrize("key", ["wrong-key-0123456789abcdef", OTHER_API_KEY])
def test_a_wrong_key_or_another_environments_key_is_refused_whatever_the_setting(
    required, key, environment, other_environment
):
    environment.server_calls_need_api_key = required
    environment.save()

    by_header = send("/api/track", body_of("/api/track", environment.app_id), HTTP_AUTHORIZATION=f"Bearer {key}")
    in_body = send("/api/v1/identify", {**body_of("/api/v1/identify", environment.app_id), "api_key": key})

    assert by_header.status_code == 401 and by_header.json()["error"]["field"] == "Authorization"
    assert in_body.status_code == 401 and in_body.json()["error"]["field"] == "api_key"
    assert nothing_stored(environment)


def test_an_api_key_that_is_not_a_string_is_refused(locked):
    response = send("/api/track", {**body_of("/api/track", locked.app_id), "api_key": 12345})
    assert response.status_code == 401 and response.json()["error"]["field"] == "api_key"


def test_the_key_in_the_body_is_not_stored_with_the_call(locked):
    send("/api/add_user_properties", {**body_of("/api/add_user_properties", locked.app_id), "api_key": API_KEY})
    assert list(UserProperty.objects.values_list("key", flat=True)) == ["plan"]


def test_bulk_calls_carry_the_key_once_for_the_whole_call(locked):
    body = {"app_id": locked.app_id, "api_key": API_KEY, "users": [{"user_id": "1", "properties": {"a": 1}}]}
    assert send("/api/add_user_properties", body).json()["accepted"] == 1


def test_the_browser_endpoint_never_asks_for_the_key_but_takes_only_what_browsers_send(locked):
    # A page cannot keep a secret: the browser endpoint is guarded by its allowed origins, not the key...
    batch = {"app_id": locked.app_id, "user_id": "77", "calls": [{"type": "pageview", "idempotency_key": "p"}]}
    response = send("/api/v1/browser", batch, content_type="text/plain", HTTP_ORIGIN="http://testserver")
    assert response.status_code == 200, response.content
    # ...and a server may not use it to get around the key: without an Origin it is refused, nothing stored.
    rewrite = {
        "app_id": locked.app_id,
        "user_id": "78",
        "calls": [
            {"type": "identify", "identity": "alice@example.com"},
            {"type": "add_user_properties", "properties": {"plan": "Free"}},
        ],
    }
    refused = send("/api/v1/browser", rewrite, content_type="text/plain")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_required"
    assert Event.objects.filter(environment=locked).count() == 1
    assert not UserProperty.objects.filter(key="plan").exists()


def test_a_key_that_is_not_valid_text_is_refused_not_a_server_error(locked):
    for path in ("/api/track", "/api/v1/identify"):
        response = send(path, {**body_of(path, locked.app_id), "api_key": "\ud800" * 20})
        assert response.status_code == 401, (path, response.content)


def test_the_admin_sets_both_guards(staff, environment):
    page = staff.get(f"/admin/users_app/environment/{environment.pk}/change/").content.decode()
    assert 'name="server_calls_need_api_key"' in page and 'name="ingest_limit_per_minute"' in page

    response = staff.post(
        f"/admin/users_app/environment/{environment.pk}/change/",
        {
            "name": environment.name,
            "app_id": environment.app_id,
            "blocked_identities": "",
            "merge_hold_threshold": "25",
            "allowed_origins": "",
            "server_calls_need_api_key": "on",
            "ingest_limit_per_minute": "5000",
        },
    )

    assert response.status_code == 302
    environment.refresh_from_db()
    assert environment.server_calls_need_api_key is True and environment.ingest_limit_per_minute == 5000
    assert send("/api/track", body_of("/api/track", environment.app_id)).status_code == 401


def test_the_schema_documents_the_guards_answers(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for route in SERVER_ENDPOINTS:
        operation = schema["paths"][route]["post"]
        assert {"401", "403", "429"} <= set(operation["responses"]), route
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert "api_key" in schema["components"]["schemas"][body]["properties"], route
    assert {"403", "429"} <= set(schema["paths"]["/api/v1/browser"]["post"]["responses"])
