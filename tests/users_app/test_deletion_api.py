"""Heap's user deletion API (SPEC 12): auth_token, user_deletion, deletion_status, with Heap's shapes."""

import base64

import pytest

from tests.conftest import API_KEY, OTHER_API_KEY
from users_app.deletion.requests import deletion_request_run
from users_app.models import DeletionRequest


def basic(app_id: str, api_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{app_id}:{api_key}".encode()).decode()}


def token_for(api, app_id: str, api_key: str) -> str:
    answer = api.post("/api/public/v0/auth_token", "", **basic(app_id, api_key))
    assert answer.status_code == 200, answer.content
    assert answer.json()["expires_in"] > 0
    return answer.json()["access_token"]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer " + API_KEY,
        "Basic !!!",
        "Basic " + base64.b64encode(b"1000000001").decode(),
        "Basic " + base64.b64encode(b"1000000001:wrong-key-0123456789").decode(),
        "Basic " + base64.b64encode(f"1000000002:{API_KEY}".encode()).decode(),
    ],
)
def test_auth_token_refuses_a_wrong_pair_with_401(api, environment, other_environment, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    answer = api.post("/api/public/v0/auth_token", "", **extra)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"]


def test_heaps_deletion_flow_end_to_end(api, calls, environment):
    assert calls.track(identity="alice", event="signup").status_code == 200
    assert calls.track(user_id="5551", event="pageview").status_code == 200
    calls.identify("5551", "alice")
    assert calls.track(user_id="8881", event="pageview").status_code == 200
    token = token_for(api, environment.app_id, API_KEY)

    accepted = api.post(
        "/api/public/v0/user_deletion",
        {"users": [{"identity": "alice"}, {"user_id": "8881"}, {"user_id": 12345}]},
        **bearer(token),
    )
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "pending"
    request_id = accepted.json()["deletion_request_id"]
    status_url = f"/api/public/v0/deletion_status/{request_id}"
    assert api.client.get(status_url, **bearer(token)).json() == {
        "deletion_request_id": request_id,
        "status": "pending",
        "users_requested": 3,
        "users_deleted": 0,
    }

    deletion_request_run(deletion_request_id=int(request_id))  # what the worker does

    assert api.client.get(status_url, **bearer(token)).json() == {
        "deletion_request_id": request_id,
        "status": "done",
        "users_requested": 3,
        "users_deleted": 2,  # alice (two profiles) and 8881; 12345 never existed
    }
    for user_id in ("5551", "8881"):
        assert calls.user(user_id).status_code == 404
    assert calls.user_by_identity("alice").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "users"),
        ({"users": []}, "users"),
        ({"users": "alice"}, "users"),
        ({"users": [{"user_id": "1"}] * 10_001}, "users"),
        ({"users": [{"user_id": "1"}, "alice"]}, "users[1]"),
        ({"users": [{"user_id": "1", "identity": "a"}]}, "users[0]"),
        ({"users": [{"email": "a@b.c"}]}, "users[0]"),
        ({"users": [{"user_id": "-4"}]}, "users[0].user_id"),
        ({"users": [{"identity": "  "}]}, "users[0].identity"),
        ({"users": [{"identity": {"a": 1}}]}, "users[0].identity"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, environment, body, field):
    answer = api.post("/api/public/v0/user_deletion", body, **bearer(token_for(api, environment.app_id, API_KEY)))
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["field"] == field
    assert not DeletionRequest.objects.exists()


def test_invalid_json_is_a_400(api, environment):
    answer = api.post("/api/public/v0/user_deletion", "{nope", **bearer(token_for(api, environment.app_id, API_KEY)))
    assert answer.status_code == 400


@pytest.mark.parametrize("token", ["", "garbage", API_KEY, "x" * 5000])
def test_the_deletion_endpoints_need_a_valid_token(api, environment, token):
    extra = bearer(token) if token else {}
    assert api.post("/api/public/v0/user_deletion", {"users": [{"user_id": "1"}]}, **extra).status_code == 401
    assert api.client.get("/api/public/v0/deletion_status/1", **extra).status_code == 401
    assert not DeletionRequest.objects.exists()


def test_a_token_sees_only_its_own_environments_requests(api, environment, other_environment):
    mine = token_for(api, environment.app_id, API_KEY)
    theirs = token_for(api, other_environment.app_id, OTHER_API_KEY)
    request_id = api.post("/api/public/v0/user_deletion", {"users": [{"user_id": "1"}]}, **bearer(mine)).json()[
        "deletion_request_id"
    ]
    assert api.client.get(f"/api/public/v0/deletion_status/{request_id}", **bearer(theirs)).status_code == 404
    for unknown in ("999999", "abc", "1" * 40):
        assert api.client.get(f"/api/public/v0/deletion_status/{unknown}", **bearer(mine)).status_code == 404


def test_rotating_the_api_key_ends_its_tokens(api, environment):
    from users_app.services.environments import environment_rotate_api_key

    token = token_for(api, environment.app_id, API_KEY)
    environment_rotate_api_key(environment=environment)
    assert api.post("/api/public/v0/user_deletion", {"users": [{"user_id": "1"}]}, **bearer(token)).status_code == 401


def test_an_expired_token_is_refused(api, environment, monkeypatch):
    from users_app.deletion import tokens

    token = token_for(api, environment.app_id, API_KEY)
    monkeypatch.setattr(tokens, "TOKEN_SECONDS", -1)
    assert api.client.get("/api/public/v0/deletion_status/1", **bearer(token)).status_code == 401
