"""SPEC 3's read API: exact answer shapes, Bearer auth per environment, pagination, the OpenAPI schema."""

import base64
import os
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import OTHER_API_KEY
from users_app.models import Profile

pytestmark = pytest.mark.django_db

USER_KEYS = {
    "user_id",
    "identity",
    "properties",
    "first_seen",
    "last_seen",
    "session_count",
    "event_count",
    "merged_into",
}
MERGE_KEYS = {
    "id",
    "source_user_id",
    "destination_user_id",
    "identity",
    "status",
    "events_moved",
    "requested_at",
    "finished_at",
}


def is_iso(value: str) -> bool:
    return datetime.fromisoformat(value).tzinfo is not None


def test_user_detail_has_the_exact_shape(calls):
    calls.track(user_id="1001", event="Sign Up", session_id="a")
    calls.track(user_id="1001", event="pageview", session_id="b")
    calls.add_properties(
        {
            "plan": "Startup",
            "seats": 5,
            "ratio": 2.5,
            "zip": "02134",
            "order": 12345678901234567,
            "big": 1e300,
            "negative": -3,
        },
        user_id="1001",
    )
    answer = calls.user("1001")
    assert answer.status_code == 200
    user = answer.json()
    assert set(user) == USER_KEYS
    assert user["user_id"] == "1001"
    assert user["identity"] is None
    assert user["merged_into"] is None
    assert (user["session_count"], user["event_count"]) == (2, 2)
    assert is_iso(user["first_seen"]) and is_iso(user["last_seen"])
    values = {key: item["value"] for key, item in user["properties"].items()}
    # Values come back with the type they were sent with, integers exactly (no trip through a float).
    assert values == {
        "plan": "Startup",
        "seats": 5,
        "ratio": 2.5,
        "zip": "02134",
        "order": 12345678901234567,
        "big": 1e300,
        "negative": -3,
    }
    assert isinstance(values["seats"], int) and isinstance(values["zip"], str)
    for item in user["properties"].values():
        assert set(item) == {"value", "set_at"} and is_iso(item["set_at"])


def test_user_by_identity_answers_the_same_as_by_user_id(calls):
    calls.track(identity="alice", event="Sign Up")
    by_identity = calls.user_by_identity("alice").json()
    assert set(by_identity) == USER_KEYS
    assert by_identity["identity"] == "alice"
    assert by_identity == calls.user(by_identity["user_id"]).json()


def test_user_ids_are_decimal_strings_even_at_the_top_of_the_range(calls):
    calls.track(user_id=0)
    assert calls.user("0").json()["user_id"] == "0"
    top = str(2**53 - 1)
    calls.track(user_id=top)
    user = calls.user(top).json()
    assert user["user_id"] == top
    assert calls.track(user_id=int(top)).json()["user_id"] == top


def test_unknown_user_is_404(calls):
    answer = calls.user("424242")
    assert answer.status_code == 404
    assert set(answer.json()["error"]) == {"code", "message", "field"}
    assert calls.user_by_identity("nobody").status_code == 404


@pytest.mark.parametrize("user_id", ["abc", "-1", "1.5", str(2**53), "²", "١٢"])
def test_malformed_user_id_in_the_path_is_400(calls, user_id):
    answer = calls.user(user_id)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_user_id"


def test_merged_away_user_answers_its_tombstone(calls):
    calls.track(identity="alice")
    alice_id = calls.user_by_identity("alice").json()["user_id"]
    calls.track(user_id="1002", event="Sign Up")
    calls.identify("1002", "alice")
    tombstone = calls.user("1002").json()
    assert set(tombstone) == USER_KEYS
    assert tombstone["merged_into"] == alice_id
    assert tombstone["identity"] is None
    assert tombstone["event_count"] == 1  # what it recorded itself


# ---- authentication ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/1003",
        "/api/v1/users?identity=alice",
        "/api/v1/users/1003/events",
        "/api/v1/merges?identity=alice",
    ],
)
@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer ", "Bearer wrong-key-0123456789", "Basic dXNlcjpwYXNz", "test-api-key-0123456789abcdef"],
)
def test_missing_or_wrong_key_is_401(client, calls, path, header):
    calls.track(user_id="1003", identity="alice")
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header}
    answer = client.get(path, **headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_another_environments_key_sees_404_for_our_users(calls, other_environment):
    calls.track(user_id="1004", event="Sign Up")
    calls.track(identity="alice")
    calls.track(user_id="1005")
    calls.identify("1005", "alice")
    assert calls.api.get("/api/v1/users/1004", api_key=OTHER_API_KEY).status_code == 404
    assert calls.api.get("/api/v1/users/1004/events", api_key=OTHER_API_KEY).status_code == 404
    assert calls.api.get("/api/v1/users", api_key=OTHER_API_KEY, identity="alice").status_code == 404
    merges = calls.api.get("/api/v1/merges", api_key=OTHER_API_KEY, identity="alice")
    assert merges.status_code == 200 and merges.json() == {"results": []}
    assert calls.user("1004").status_code == 200


def test_same_user_id_in_two_environments_are_two_people(calls, api, other_environment):
    calls.track(user_id="1006", event="Sign Up")
    api.post("/api/track", {"app_id": other_environment.app_id, "user_id": "1006", "event": "A"})
    api.post("/api/track", {"app_id": other_environment.app_id, "user_id": "1006", "event": "B"})
    assert calls.user("1006").json()["event_count"] == 1
    assert api.get("/api/v1/users/1006", api_key=OTHER_API_KEY).json()["event_count"] == 2
    # The same identity too: identify in one environment never merges into the other's person.
    calls.identify("1006", "alice")
    answer = api.post("/api/v1/identify", {"app_id": other_environment.app_id, "user_id": "1006", "identity": "alice"})
    assert answer.json() == {"user_id": "1006", "identity": "alice", "merge": None}
    assert Profile.objects.filter(identity="alice").count() == 2


# ---- events ------------------------------------------------------------------------------------------


def test_events_are_newest_first_with_the_exact_shape(calls):
    start = timezone.now() - timedelta(hours=3)
    calls.track_bulk(
        [
            {
                "user_id": "1007",
                "event": f"e{minute}",
                "timestamp": (start + timedelta(minutes=minute)).isoformat(),
                "properties": {"n": minute},
                "session_id": "tab-1",
            }
            for minute in (5, 1, 3)
        ]
    )
    answer = calls.events("1007")
    assert answer.status_code == 200
    page = answer.json()
    assert set(page) == {"results", "next"}
    assert page["next"] is None
    assert [e["event"] for e in page["results"]] == ["e5", "e3", "e1"]
    first = page["results"][0]
    # SPEC 3's four fields, and the defined events (SPEC 13) the event matches: none here.
    assert set(first) == {"event", "timestamp", "properties", "session_id", "defined_events"}
    assert first["defined_events"] == []
    assert first["properties"] == {"n": 5}
    assert first["session_id"] == "tab-1"
    assert datetime.fromisoformat(first["timestamp"]) == start + timedelta(minutes=5)


def test_event_cursor_pagination_walks_every_event_once(calls):
    start = timezone.now() - timedelta(hours=1)
    # Two events share a timestamp: the cursor must not skip or repeat either.
    times = [
        start,
        start + timedelta(seconds=1),
        start + timedelta(seconds=1),
        start + timedelta(seconds=2),
        start + timedelta(seconds=3),
    ]
    calls.track_bulk([{"user_id": "1008", "event": f"e{i}", "timestamp": t.isoformat()} for i, t in enumerate(times)])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = calls.events("1008", **params).json()
        pages += 1
        seen += [e["event"] for e in page["results"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == ["e0", "e1", "e2", "e3", "e4"]
    assert seen[0] == "e4" and seen[-1] == "e0"


def test_events_of_a_destination_include_a_pending_merge(calls):
    calls.track(identity="alice", event="Upgrade")
    alice_id = calls.user_by_identity("alice").json()["user_id"]
    calls.track(user_id="1009", event="Sign Up", timestamp=(timezone.now() - timedelta(days=1)).isoformat())
    calls.identify("1009", "alice")
    assert [e["event"] for e in calls.events(alice_id).json()["results"]] == ["Upgrade", "Sign Up"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        base64.urlsafe_b64encode(b"x|y").decode(),
        base64.urlsafe_b64encode(b"2026-13-45T00:00:00|1").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+99:00|1").decode(),
    ],
)
def test_bad_cursor_is_400_never_500(calls, cursor):
    calls.track(user_id="1010")
    answer = calls.events("1010", cursor=cursor)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc", "²", "1.5"])
def test_bad_limit_is_400(calls, limit):
    calls.track(user_id="1011")
    answer = calls.events("1011", limit=limit)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "limit"


# ---- merges ------------------------------------------------------------------------------------------


def test_merges_by_identity_and_by_user_id(calls):
    calls.track(identity="alice")
    alice_id = calls.user_by_identity("alice").json()["user_id"]
    calls.track(user_id="1012", event="Sign Up")
    merge_id = calls.identify("1012", "alice").json()["merge"]["id"]
    calls.track(identity="bob")
    calls.track(user_id="1013")
    calls.identify("1013", "bob")

    by_identity = calls.merges(identity="alice").json()
    assert set(by_identity) == {"results"}
    [merge] = by_identity["results"]
    # SPEC 3's fields, plus `trigger` (what asked for the merge), which admins also see.
    assert set(merge) == MERGE_KEYS | {"trigger"}
    assert merge["id"] == merge_id
    assert (merge["source_user_id"], merge["destination_user_id"]) == ("1012", alice_id)
    assert (merge["identity"], merge["status"], merge["events_moved"]) == ("alice", "pending", 0)
    assert is_iso(merge["requested_at"]) and merge["finished_at"] is None

    assert [m["id"] for m in calls.merges(user_id="1012").json()["results"]] == [merge_id]
    assert [m["id"] for m in calls.merges(user_id=alice_id).json()["results"]] == [merge_id]
    assert calls.merges(identity="nobody").json() == {"results": []}


def test_merge_list_rejects_malformed_filters(calls):
    assert calls.merges(user_id="abc").status_code == 400
    assert calls.merges(identity="x" * 300).status_code == 400
    assert calls.merges(identity="a\x00b").status_code == 400


def test_lookup_by_identity_with_unstorable_text_is_400(calls):
    assert calls.user_by_identity("a\x00b").status_code == 400
    assert calls.user_by_identity("").status_code == 400


# ---- OpenAPI -----------------------------------------------------------------------------------------


def api_routes(resolver=None, prefix: str = "") -> list[str]:
    """Every URL under /api/, written the way OpenAPI writes it (`{user_id}`)."""
    routes = []
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += api_routes(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            routes.append("/" + route.replace("<str:", "{").replace("<int:", "{").replace(">", "}"))
    return routes


def test_openapi_schema_lists_every_endpoint(client):
    answer = client.get("/api/schema/", {"format": "json"})
    assert answer.status_code == 200
    schema = answer.json()
    assert schema["openapi"].startswith("3.")
    routes = [route for route in api_routes() if route not in ("/api/schema/", "/api/docs/")]
    for required in (
        "/api/track",
        "/api/add_user_properties",
        "/api/identify",
        "/api/v1/identify",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/{user_id}/events",
        "/api/v1/merges",
    ):
        assert required in routes
    missing = [route for route in routes if route not in schema["paths"]]
    assert missing == []
    # Each read endpoint documents its error answers too (found by QA: only the 200 was there for some).
    for route in (
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/{user_id}/events",
        "/api/v1/merges",
        "/api/v1/users/search",
    ):
        assert {"400", "401"} <= set(schema["paths"][route]["get"]["responses"]), route


# ---- property-based: any parameter is a 200, 400 or 404, never a 500 ----------------------------------

ANY_PARAMETER = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["0", "1", str(2**53 - 1), str(2**53), "-1", "1e3", "²", "١", "%00", base64.urlsafe_b64encode(b"x|1").decode()]
)


@settings(
    max_examples=int(os.environ.get("CAIRN_FUZZ_EXAMPLES", 80)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(user_id=ANY_PARAMETER, cursor=ANY_PARAMETER, limit=ANY_PARAMETER, identity=ANY_PARAMETER)
def test_any_read_parameter_is_never_a_server_error(calls, user_id, cursor, limit, identity):
    path_user_id = quote(user_id.replace("/", ""), safe="") or "0"  # a "/" would make another URL
    answers = [
        calls.api.get(f"/api/v1/users/{path_user_id}"),
        calls.api.get(f"/api/v1/users/{path_user_id}/events", cursor=cursor, limit=limit),
        calls.api.get("/api/v1/users", identity=identity),
        calls.api.get("/api/v1/merges", identity=identity),
        calls.api.get("/api/v1/merges", user_id=user_id),
    ]
    for answer in answers:
        assert answer.status_code in (200, 400, 404), (answer.request, answer.status_code, answer.content[:300])
        if answer.status_code != 200:
            assert answer["Content-Type"] == "application/json", (answer.request, answer.content[:300])
            assert set(answer.json()["error"]) == {"code", "message", "field"}


def test_an_unknown_api_path_is_a_json_404(client):
    answer = client.post("/api/v2/track", "{}", content_type="application/json")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert client.get("/no-such-page/").status_code == 404  # pages keep the HTML 404
