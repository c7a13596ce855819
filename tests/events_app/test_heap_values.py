"""Heap's values on the server API and the browser endpoint (SPEC 10): what Heap's own references send is
accepted and stored as Heap stores it, read back through Cairn's read API."""

import pytest

from events_app.models import Event

APP = "1000000001"
TRACK, PROPS, BROWSER = "/api/track", "/api/add_user_properties", "/api/v1/browser"

pytestmark = pytest.mark.django_db

# Heap's Track reference example ("Array property values"), as published but for the app_id and identity.
HEAP_TRACK_EXAMPLE = {
    "app_id": APP,
    "identity": "alice@example.com",
    "event": "Send Transactional Email",
    "timestamp": "2017-03-10T22:21:56+00:00",
    "properties": {
        "subject": "Welcome to My App!",
        "variation": "A",
        "flavors": ["vanilla", "chocolate", "strawberry"],
    },
}


def user_by_identity(api, identity: str) -> dict:
    answer = api.get("/api/v1/users", identity=identity)
    assert answer.status_code == 200, answer.content
    return answer.json()


def events_of(api, identity: str) -> list[dict]:
    user_id = user_by_identity(api, identity)["user_id"]
    return api.get(f"/api/v1/users/{user_id}/events").json()["results"]


def event_properties(api, identity: str, body: dict) -> dict:
    answer = api.post(TRACK, {"app_id": APP, "identity": identity, "event": "e", **body})
    assert answer.status_code == 200, answer.content
    return events_of(api, identity)[0]["properties"]


def test_heaps_track_reference_example_is_stored_as_heap_stores_it(api, environment):
    answer = api.post(TRACK, HEAP_TRACK_EXAMPLE)
    assert answer.status_code == 200, answer.content
    [event] = events_of(api, "alice@example.com")
    assert event["event"] == "Send Transactional Email"
    assert event["timestamp"].startswith("2017-03-10T22:21:56")
    assert event["properties"] == {
        "subject": "Welcome to My App!",
        "variation": "A",
        "flavors": "vanilla||chocolate||strawberry",
    }


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (["a", 1, 2.5, True, False, 5.0], "a||1||2.5||true||false||5"),
        ([], ""),
        (["only"], "only"),
        (["x" * 600, "y" * 600], ("x" * 600 + "||" + "y" * 600)[:1024]),  # cut at 1024 characters
        (["€" * 2000], "€" * 1024),
    ],
)
def test_an_array_property_is_its_items_joined_by_two_bars_cut_at_1024(api, environment, value, stored):
    assert event_properties(api, "arrays", {"properties": {"list": value}}) == {"list": stored}


def test_booleans_are_stored_as_true_and_false_on_events_and_users(api, environment):
    assert event_properties(api, "bools", {"properties": {"paid": True, "trial": False}}) == {
        "paid": "true",
        "trial": "false",
    }
    answer = api.post(PROPS, {"app_id": APP, "identity": "bools", "properties": {"admin": True, "beta": False}})
    assert answer.status_code == 200, answer.content
    properties = user_by_identity(api, "bools")["properties"]
    assert (properties["admin"]["value"], properties["beta"]["value"]) == ("true", "false")


def test_a_null_event_property_is_dropped_and_the_event_kept(api, environment):
    assert event_properties(api, "nulls", {"properties": {"gone": None, "kept": "v"}}) == {"kept": "v"}


def test_a_null_user_property_still_removes_it(api, environment):
    api.post(PROPS, {"app_id": APP, "identity": "carol", "properties": {"plan": "Free", "trial": "yes"}})
    api.post(PROPS, {"app_id": APP, "identity": "carol", "properties": {"trial": None}})
    assert set(user_by_identity(api, "carol")["properties"]) == {"plan"}


@pytest.mark.parametrize("key", ["id", "ID", "Id", "iD", "user_id"])
def test_id_in_any_case_and_user_id_are_reserved_user_property_keys(api, environment, key):
    answer = api.post(PROPS, {"app_id": APP, "identity": "dave", "properties": {key: "1"}})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "reserved_property",
        "message": f"`{key}` is reserved (in any letter case).",
        "field": f"properties.{key}",
    }


def test_an_object_value_is_refused_naming_its_key(api, environment):
    answer = api.post(TRACK, {"app_id": APP, "identity": "erin", "event": "e", "properties": {"cart": {"n": 1}}})
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "properties.cart"
    assert not Event.objects.exists()


@pytest.mark.parametrize("name", ["n" * 1024, "é" * 1024, "名" * 866])
def test_event_names_up_to_1024_characters_on_the_server_api(api, environment, name):
    answer = api.post(TRACK, {"app_id": APP, "identity": "frank", "event": name})
    assert answer.status_code == 200, answer.content
    assert [event["event"] for event in events_of(api, "frank")] == [name]
    # The reports find it by its name (the name index holds it).
    report = api.get("/api/v1/reports/query", event=name, range="7d")
    assert report.status_code == 200, report.content
    assert sum(series["total"] for series in report.json()["series"]) == 1


def test_identity_and_user_id_together_are_refused_as_heap_refuses_them(api, environment):
    answer = api.post(TRACK, {"app_id": APP, "identity": "gina", "user_id": "42", "event": "e"})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "identity_and_user_id",
        "message": "Send `identity` or `user_id`, not both.",
        "field": "user_id",
    }
    assert not Event.objects.exists()


def test_the_bulk_paths_follow_the_same_rules(api, environment):
    events = [
        {"identity": "hal", "event": "a", "properties": {"tags": ["x", "y"], "ok": True, "none": None}},
        {"identity": "hal", "user_id": "42", "event": "both"},
        {"identity": "hal", "event": "n" * 1024},
    ]
    answer = api.post(TRACK, {"app_id": APP, "events": events})
    assert answer.status_code == 200, answer.content
    assert answer.json()["accepted"] == 2
    assert [item["index"] for item in answer.json()["rejected"]] == [1]
    assert answer.json()["rejected"][0]["error"]["code"] == "identity_and_user_id"
    stored = {event["event"]: event["properties"] for event in events_of(api, "hal")}
    assert stored == {"a": {"tags": "x||y", "ok": "true"}, "n" * 1024: {}}

    users = [{"identity": "ivy", "properties": {"vip": True}}, {"identity": "ivy", "properties": {"ID": 1}}]
    answer = api.post(PROPS, {"app_id": APP, "users": users})
    assert answer.json()["accepted"] == 1
    assert answer.json()["rejected"][0]["error"]["code"] == "reserved_property"
    assert user_by_identity(api, "ivy")["properties"]["vip"]["value"] == "true"


def test_the_browser_endpoint_takes_the_same_values_and_keeps_255_character_names(api, environment):
    calls = [
        {"type": "track", "event": "Filter", "properties": {"sizes": ["S", "M"], "sale": True, "none": None}},
        {"type": "add_user_properties", "properties": {"newsletter": False}},
        {"type": "track", "event": "n" * 256},
    ]
    answer = api.post(BROWSER, {"app_id": APP, "user_id": "7007", "calls": calls})
    assert answer.status_code == 200, answer.content
    assert [item["index"] for item in answer.json()["rejected"]] == [2]
    [event] = api.get("/api/v1/users/7007/events").json()["results"]
    assert (event["event"], event["properties"]) == ("Filter", {"sizes": "S||M", "sale": "true"})
    assert api.get("/api/v1/users/7007").json()["properties"]["newsletter"]["value"] == "false"
