"""Bad input on every ingest endpoint: the documented 4xx answer, nothing stored, never a 500.

Django's test client re-raises any exception a view lets through, so a 500 fails these tests loudly.
"""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_app.models import Event, Session
from users_app.models import MergeRecord, Profile, UserProperty

pytestmark = pytest.mark.django_db

APP = "1000000001"  # the `environment` fixture's app_id
TRACK, PROPS, IDENTIFY, LEGACY = "/api/track", "/api/add_user_properties", "/api/v1/identify", "/api/identify"


def _who(fields: dict) -> dict:
    # Heap refuses a call that names both identity and user_id: a body given an identity names no user_id.
    return {} if "identity" in fields else {"user_id": "7001"}


def track(**fields):
    return {"app_id": APP, **_who(fields), "event": "pageview", **fields}


def props(**fields):
    return {"app_id": APP, **_who(fields), "properties": {"plan": "Free"}, **fields}


def ident(**fields):
    return {"app_id": APP, "user_id": "7001", "identity": "alice", **fields}


def without(body: dict, key: str) -> dict:
    return {k: v for k, v in body.items() if k != key}


def nested(depth: int) -> dict:
    value = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


# (path, body, status, error code, error field); a str body is sent as it is.
BAD_INPUT = [
    # -- not a JSON object at all
    (TRACK, "{bad json", 400, "invalid_json", None),
    (TRACK, "", 400, "invalid_json", None),
    (TRACK, b"\xff\xfe\x00", 400, "invalid_json", None),
    (TRACK, "[1, 2]", 400, "invalid_type", None),
    (TRACK, json.dumps([track()]), 400, "invalid_type", None),
    (TRACK, "null", 400, "invalid_type", None),
    (TRACK, '"text"', 400, "invalid_type", None),
    (IDENTIFY, "42", 400, "invalid_type", None),
    (PROPS, "[" * 100_000 + "]" * 100_000, 400, "invalid_json", None),
    (TRACK, '{"a":' * 100_000 + "1" + "}" * 100_000, 400, "invalid_json", None),
    (
        IDENTIFY,
        '{"app_id": "' + APP + '", "user_id": "1", "identity": ' + "[" * 50_000 + "]" * 50_000 + "}",
        400,
        "invalid_json",
        None,
    ),
    # -- app_id
    (TRACK, without(track(), "app_id"), 400, "missing_field", "app_id"),
    (TRACK, track(app_id=True), 400, "invalid_app_id", "app_id"),
    (TRACK, track(app_id=""), 400, "invalid_app_id", "app_id"),
    (TRACK, track(app_id=[APP]), 400, "invalid_app_id", "app_id"),
    (TRACK, track(app_id={"id": APP}), 400, "invalid_app_id", "app_id"),
    (TRACK, track(app_id=1.5), 400, "invalid_app_id", "app_id"),
    (TRACK, track(app_id="9" * 65), 400, "invalid_app_id", "app_id"),
    (TRACK, track(app_id="999"), 404, "unknown_app_id", "app_id"),
    (TRACK, track(app_id=999), 404, "unknown_app_id", "app_id"),
    (PROPS, props(app_id="999"), 404, "unknown_app_id", "app_id"),
    (IDENTIFY, ident(app_id="999"), 404, "unknown_app_id", "app_id"),
    (TRACK, {"app_id": "999", "events": [without(track(), "app_id")]}, 404, "unknown_app_id", "app_id"),
    # -- who
    (TRACK, without(track(), "user_id"), 400, "missing_field", "identity"),
    (TRACK, track(user_id=None), 400, "missing_field", "identity"),
    (TRACK, track(user_id=-1), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="-1"), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="abc"), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="1e3"), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="0x10"), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="²"), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="١٢"), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id=""), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id=1.5), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id=2**53), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id=str(2**53)), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id="9" * 400), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id=10**400), 400, "invalid_user_id", "user_id"),
    (TRACK, track(app_id=10**400), 400, "invalid_app_id", "app_id"),
    (TRACK, track(timestamp=10**400), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(identity=10**400), 400, "invalid_identity", "identity"),
    (TRACK, track(properties={"n": 10**400}), 400, "invalid_property", "properties.n"),
    (PROPS, props(properties={"n": -(10**400)}), 400, "invalid_property", "properties.n"),
    # Beyond Python's limit on parsing integers (4300 digits).
    (TRACK, '{"app_id": "' + APP + '", "event": "e", "user_id": 1' + "0" * 5000 + "}", 400, "invalid_json", None),
    (TRACK, track(user_id=True), 400, "invalid_user_id", "user_id"),
    (TRACK, track(user_id=["1"]), 400, "invalid_user_id", "user_id"),
    (IDENTIFY, ident(user_id={"id": 1}), 400, "invalid_user_id", "user_id"),
    (IDENTIFY, without(ident(), "user_id"), 400, "missing_field", "user_id"),
    (IDENTIFY, ident(user_id=None), 400, "missing_field", "user_id"),
    (TRACK, track(identity=""), 400, "invalid_identity", "identity"),
    (TRACK, track(identity="   "), 400, "invalid_identity", "identity"),
    (TRACK, track(identity="x" * 256), 400, "invalid_identity", "identity"),
    (TRACK, track(identity="€" * 256), 400, "invalid_identity", "identity"),
    (TRACK, track(identity=True), 400, "invalid_identity", "identity"),
    (TRACK, track(identity=False), 400, "invalid_identity", "identity"),
    (TRACK, track(identity={"email": "a@b.c"}), 400, "invalid_identity", "identity"),
    (TRACK, track(identity=["alice"]), 400, "invalid_identity", "identity"),
    (TRACK, track(identity="true"), 400, "identity_blocked", "identity"),
    (IDENTIFY, without(ident(), "identity"), 400, "missing_field", "identity"),
    (IDENTIFY, ident(identity=None), 400, "missing_field", "identity"),
    (IDENTIFY, without(without(ident(), "identity"), "user_id"), 400, "missing_field", "user_id"),
    (IDENTIFY, ident(identity=True), 400, "invalid_identity", "identity"),
    (IDENTIFY, ident(identity=""), 400, "invalid_identity", "identity"),
    (IDENTIFY, ident(identity="x" * 256), 400, "invalid_identity", "identity"),
    (IDENTIFY, ident(identity="true"), 400, "identity_blocked", "identity"),
    (IDENTIFY, ident(timestamp="yesterday"), 400, "invalid_timestamp", "timestamp"),
    # -- event
    (TRACK, without(track(), "event"), 400, "missing_field", "event"),
    (TRACK, track(event=""), 400, "missing_field", "event"),
    (TRACK, track(event=42), 400, "missing_field", "event"),
    (TRACK, track(event={"name": "x"}), 400, "missing_field", "event"),
    (TRACK, track(event="x" * 1025), 400, "invalid_field", "event"),
    (TRACK, track(event="é" * 1025), 400, "invalid_field", "event"),
    (TRACK, track(event="名" * 1024), 400, "invalid_field", "event"),  # 3,072 bytes: over the index bound
    (TRACK, track(identity="alice", user_id="7001"), 400, "identity_and_user_id", "user_id"),
    (PROPS, props(identity="alice", user_id="7001"), 400, "identity_and_user_id", "user_id"),
    (TRACK, track(timestamp="yesterday"), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp="2026-13-45T00:00:00Z"), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp="2999-01-01T00:00:00Z"), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp="1999-12-31T00:00:00Z"), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp=1e30), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp=-1e20), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp=1764583200), 400, "invalid_timestamp", "timestamp"),  # seconds are refused
    (TRACK, track(timestamp=True), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(timestamp=["2026-01-01"]), 400, "invalid_timestamp", "timestamp"),
    (TRACK, track(idempotency_key="k" * 256), 400, "invalid_field", "idempotency_key"),
    (TRACK, track(idempotency_key={"k": 1}), 400, "invalid_field", "idempotency_key"),
    (TRACK, track(idempotency_key=""), 400, "invalid_field", "idempotency_key"),
    (TRACK, track(session_id="s" * 65), 400, "invalid_field", "session_id"),
    (TRACK, track(session_id=["s"]), 400, "invalid_field", "session_id"),
    # -- properties (event and user)
    (TRACK, track(properties="plan=Free"), 400, "invalid_type", "properties"),
    (TRACK, track(properties=["Free"]), 400, "invalid_type", "properties"),
    (TRACK, track(properties={"nested": {"a": 1}}), 400, "invalid_property", "properties.nested"),
    (TRACK, track(properties={"list": [[1, 2]]}), 400, "invalid_property", "properties.list"),
    (TRACK, track(properties={"list": [{"a": 1}]}), 400, "invalid_property", "properties.list"),
    (TRACK, track(properties={"list": ["a", None]}), 400, "invalid_property", "properties.list"),
    (TRACK, track(properties={"deep": nested(500)}), 400, "invalid_property", "properties.deep"),
    (TRACK, track(properties={"": "empty key"}), 400, "invalid_property", "properties."),
    (TRACK, track(properties={"k" * 1025: "v"}), 400, "invalid_property", "properties." + "k" * 100),
    (TRACK, track(properties={"k": "v" * 1025}), 400, "invalid_property", "properties.k"),
    (TRACK, track(properties={"k": "€" * 1025}), 400, "invalid_property", "properties.k"),
    (TRACK, track(properties={f"p{n}": n for n in range(1001)}), 400, "too_many_properties", "properties"),
    (
        TRACK,
        '{"app_id": "' + APP + '", "user_id": "1", "event": "e", "properties": {"n": NaN}}',
        400,
        "invalid_property",
        "properties.n",
    ),
    (
        TRACK,
        '{"app_id": "' + APP + '", "user_id": "1", "event": "e", "properties": {"n": Infinity}}',
        400,
        "invalid_property",
        "properties.n",
    ),
    (PROPS, without(props(), "properties"), 400, "missing_field", "properties"),
    (PROPS, props(properties="plan"), 400, "invalid_type", "properties"),
    (PROPS, props(properties={"plan": {"name": "Free"}}), 400, "invalid_property", "properties.plan"),
    (PROPS, props(properties={"plan": ["Free"]}), 400, "invalid_property", "properties.plan"),
    (PROPS, props(properties={"ID": "1"}), 400, "reserved_property", "properties.ID"),
    (PROPS, props(properties={"Id": "1"}), 400, "reserved_property", "properties.Id"),
    (PROPS, props(properties={"iD": "1"}), 400, "reserved_property", "properties.iD"),
    (PROPS, props(properties={"": "x"}), 400, "invalid_property", "properties."),
    (PROPS, props(properties={"k" * 1025: "v"}), 400, "invalid_property", "properties." + "k" * 100),
    (PROPS, props(properties={"€" * 1025: "v"}), 400, "invalid_property", "properties." + "€" * 100),
    (PROPS, props(properties={"plan": "v" * 1025}), 400, "invalid_property", "properties.plan"),
    (PROPS, props(properties={"user_id": "1"}), 400, "reserved_property", "properties.user_id"),
    (PROPS, props(properties={"id": 1}), 400, "reserved_property", "properties.id"),
    (LEGACY, props(properties={"id": 1}), 400, "reserved_property", "properties.id"),
    (PROPS, props(identity="guest"), 400, "identity_blocked", "identity"),
    # -- NUL characters and unpaired surrogates cannot be stored in PostgreSQL text
    (TRACK, track(event="a\x00b"), 400, "invalid_text", "event"),
    (TRACK, track(identity="alice\x00"), 400, "invalid_text", "identity"),
    (TRACK, track(properties={"k": "v\x00"}), 400, "invalid_text", "properties.k"),
    (TRACK, track(properties={"k\x00": "v"}), 400, "invalid_text", "properties.k\x00"),
    (TRACK, track(idempotency_key="k\x00"), 400, "invalid_text", "idempotency_key"),
    (TRACK, track(session_id="s\x00"), 400, "invalid_text", "session_id"),
    (TRACK, track(app_id="1\x00"), 400, "invalid_text", "app_id"),
    (TRACK, '{"app_id": "' + APP + '", "user_id": "1", "event": "\\ud800"}', 400, "invalid_text", "event"),
    (
        TRACK,
        '{"app_id": "' + APP + '", "user_id": "1", "event": "e", "properties": {"k": "\\udfff"}}',
        400,
        "invalid_text",
        "properties.k",
    ),
    (
        PROPS,
        '{"app_id": "' + APP + '", "user_id": "1", "properties": {"\\ud800": "v"}}',
        400,
        "invalid_text",
        "properties.\\ud800",
    ),  # the key is in the error's field, escaped so the answer can be rendered
    (PROPS, props(properties={"plan": "Free\x00"}), 400, "invalid_text", "properties.plan"),
    (IDENTIFY, ident(identity="al\x00ice"), 400, "invalid_text", "identity"),
    (IDENTIFY, '{"app_id": "' + APP + '", "user_id": "1", "identity": "\\ud83d"}', 400, "invalid_text", "identity"),
    # -- bulk calls as a whole
    (TRACK, {"app_id": APP, "events": "all of them"}, 400, "invalid_type", "events"),
    (TRACK, {"app_id": APP, "events": {"0": track()}}, 400, "invalid_type", "events"),
    (TRACK, {"app_id": APP, "events": []}, 400, "empty_batch", "events"),
    (TRACK, {"app_id": APP, "events": [without(track(), "app_id")] * 1001}, 400, "too_many_items", "events"),
    (PROPS, {"app_id": APP, "users": [without(props(), "app_id")] * 1001}, 400, "too_many_items", "users"),
    (PROPS, {"app_id": APP, "users": None}, 400, "invalid_type", "users"),
]


def case_id(case) -> str:
    path, body, _, code, field = case
    return f"{path.rsplit('/', 1)[-1]}-{code}-{(field or '')[:20]}"


@pytest.mark.parametrize(("path", "body", "status", "code", "field"), BAD_INPUT, ids=[case_id(c) for c in BAD_INPUT])
def test_bad_input_gets_the_documented_error_and_stores_nothing(api, environment, path, body, status, code, field):
    answer = api.post(path, body)
    assert answer.status_code == status, answer.content[:500]
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert not Profile.objects.exists()
    assert not Event.objects.exists()
    assert not UserProperty.objects.exists()
    assert not MergeRecord.objects.exists()


@pytest.mark.parametrize("path", [TRACK, PROPS, IDENTIFY])
def test_a_body_of_several_megabytes_is_413(api, environment, path):
    body = json.dumps(
        {
            "app_id": APP,
            "user_id": "1",
            "event": "e",
            "identity": "a",
            "properties": {"padding": "x" * 1000},
            "junk": ["y" * 1000] * 6000,
        }
    )
    assert len(body) > 5 * 1024 * 1024
    answer = api.post(path, body)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"
    assert not Profile.objects.exists()


# (path, body, the whole message): JSON's names for types, never Python's (NoneType, bool, list, dict).
MESSAGES = [
    (TRACK, track(properties={"k": {"a": 1}}), "Value must be a string, a number, a boolean or an array, not object."),
    (TRACK, track(properties={"k": [None]}), "Array items must be strings, numbers or booleans, not null."),
    (PROPS, props(properties={"k": {}}), "Value must be a string, a number, a boolean or null, not object."),
    (PROPS, props(properties={"k": []}), "Value must be a string, a number, a boolean or null, not array."),
    (TRACK, track(identity=True), "`identity` must be a string or a number, not boolean."),
    (IDENTIFY, ident(identity={"email": "a@b.c"}), "`identity` must be a string or a number, not object."),
    (TRACK, track(properties=["Free"]), "`properties` must be a JSON object, not array."),
    (TRACK, {"app_id": APP, "events": {"0": track()}}, "`events` must be an array, not object."),
    # A required field that is absent or null says so.
    (IDENTIFY, without(ident(), "identity"), "`identity` is required."),
    (IDENTIFY, ident(user_id=None), "`user_id` is required."),
    (TRACK, without(track(), "event"), "`event` is required."),
    # Unix seconds: the same refusal, with a hint.
    (
        TRACK,
        track(timestamp=1764583200),
        "`timestamp` is out of range (2000 to tomorrow). Unix timestamps are in milliseconds: did you send seconds?",
    ),
    (
        IDENTIFY,
        ident(timestamp=1764583200.5),
        "`timestamp` is out of range (2000 to tomorrow). Unix timestamps are in milliseconds: did you send seconds?",
    ),
    # No hint where seconds would not fit either.
    (TRACK, track(timestamp=946684799999), "`timestamp` is out of range (2000 to tomorrow)."),
    (TRACK, track(timestamp=32503680000000), "`timestamp` is out of range (2000 to tomorrow)."),
    (TRACK, track(timestamp=5), "`timestamp` is out of range (2000 to tomorrow)."),
    (TRACK, track(timestamp="1999-12-31T00:00:00Z"), "`timestamp` is out of range (2000 to tomorrow)."),
]


@pytest.mark.parametrize(("path", "body", "message"), MESSAGES)
def test_error_messages_speak_json(api, environment, path, body, message):
    answer = api.post(path, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == message
    assert not Event.objects.exists()


def test_bulk_with_some_bad_items_stores_every_valid_item(api, environment):
    events = [
        {"user_id": "7101", "event": "ok-0"},
        {"user_id": "-5", "event": "bad-user-id"},
        {"identity": "alice", "event": "ok-2", "properties": {"n": 1}},
        "not an object",
        {"user_id": "7101", "event": "bad-props", "properties": {"x": {"y": 1}}},
        {"identity": "guest", "event": "blocked"},
        {"user_id": "7102", "event": "ok-6", "idempotency_key": "once"},
        {"user_id": "7101"},
        {"user_id": "7102", "event": "ok-8", "session_id": "tab"},
    ]
    answer = api.post(TRACK, {"app_id": APP, "events": events})
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 4
    assert [(r["index"], r["error"]["code"]) for r in body["rejected"]] == [
        (1, "invalid_user_id"),
        (3, "invalid_type"),
        (4, "invalid_property"),
        (5, "identity_blocked"),
        (7, "missing_field"),
    ]
    for rejected in body["rejected"]:
        assert set(rejected["error"]) == {"code", "message", "field"}
    assert sorted(Event.objects.values_list("name", flat=True)) == ["ok-0", "ok-2", "ok-6", "ok-8"]
    assert not Profile.objects.filter(identity="guest").exists()


def test_bulk_properties_with_some_bad_items_stores_every_valid_item(api, environment):
    users = [
        {"user_id": "7201", "properties": {"plan": "Free"}},
        {"user_id": "7202", "properties": {"user_id": "x"}},
        {"identity": "bob", "properties": {"plan": "Growth", "seats": 4}},
        {"identity": "carol"},
    ]
    answer = api.post(PROPS, {"app_id": APP, "users": users})
    assert answer.status_code == 200
    assert [r["index"] for r in answer.json()["rejected"]] == [1, 3]
    assert answer.json()["accepted"] == 2
    assert UserProperty.objects.count() == 3
    assert not Profile.objects.filter(user_id=7202).exists()
    assert not Profile.objects.filter(identity="carol").exists()


def test_bulk_where_every_item_is_bad_is_a_400_listing_them(api, environment):
    answer = api.post(TRACK, {"app_id": APP, "events": [{"user_id": "x", "event": "a"}, {"event": "b"}]})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["code"] == "all_items_rejected"
    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert not Event.objects.exists()


def test_multibyte_values_at_the_limits_are_stored(api, environment, calls):
    key, value = "€" * 1024, "€" * 1024
    identity, event = "€" * 255, "€" * 255
    answer = api.post(
        TRACK,
        {
            "app_id": APP,
            "identity": identity,
            "event": event,
            "properties": {key: value},
            "idempotency_key": "€" * 255,
            "session_id": "€" * 64,
        },
    )
    assert answer.status_code == 200, answer.content[:300]
    answer = api.post(PROPS, {"app_id": APP, "identity": identity, "properties": {key: value, "😀" * 1024: 1}})
    assert answer.status_code == 200, answer.content[:300]
    user = calls.user_by_identity(identity).json()
    assert user["identity"] == identity
    assert user["properties"][key]["value"] == value
    assert user["properties"]["😀" * 1024]["value"] == 1
    [stored] = calls.events(user["user_id"]).json()["results"]
    assert (stored["event"], stored["properties"], stored["session_id"]) == (event, {key: value}, "€" * 64)
    # The same key again updates the same property (keys are compared whole, not by an index prefix).
    api.post(PROPS, {"app_id": APP, "identity": identity, "properties": {key: "€"}})
    api.post(PROPS, {"app_id": APP, "identity": identity, "properties": {key[:-1] + "x": "other"}})
    properties = calls.user_by_identity(identity).json()["properties"]
    assert properties[key]["value"] == "€"
    assert properties[key[:-1] + "x"]["value"] == "other"
    assert Session.objects.count() == 1


def test_identify_with_a_multibyte_identity_at_the_limit(calls):
    calls.track(user_id="7301")
    answer = calls.identify("7301", "ß" * 255)
    assert answer.status_code == 200
    assert answer.json()["identity"] == "ß" * 255


# ---- property-based: any JSON in any field is a 2xx or a documented 4xx, never a 500 -------------------

ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=30)  # includes NUL and lone surrogates
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**400), max_value=10**400) | st.floats() | ANY_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3),
    max_leaves=8,
)
PLAUSIBLE = {
    "user_id": st.sampled_from(["1", "0", str(2**53 - 1), 42]),
    "identity": st.sampled_from(["alice", "Bob", 7]),
    "event": st.sampled_from(["pageview", "Sign Up"]),
    "properties": st.dictionaries(ANY_TEXT, ANY_JSON, max_size=3),
}
FIELDS = ["user_id", "identity", "event", "properties", "timestamp", "idempotency_key", "session_id"]


@st.composite
def ingest_items(draw) -> dict:
    item = {}
    for field in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        plausible = PLAUSIBLE.get(field)
        item[field] = draw(plausible | ANY_JSON if plausible is not None else ANY_JSON)
    return item


@settings(
    max_examples=int(os.environ.get("CAIRN_FUZZ_EXAMPLES", 120)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from([TRACK, PROPS, IDENTIFY]),
    items=st.lists(ingest_items(), min_size=1, max_size=3),
    bulk=st.booleans(),
)
def test_any_json_in_any_field_is_never_a_server_error(api, environment, path, items, bulk):
    list_field = "users" if path == PROPS else "events"
    body = {"app_id": APP, list_field: items} if bulk and path != IDENTIFY else {"app_id": APP, **items[0]}
    answer = api.post(path, body)
    assert answer.status_code in (200, 400, 404), answer.content[:300]
    if answer.status_code != 200:
        assert set(answer.json()["error"]) == {"code", "message", "field"}
    elif path != IDENTIFY:
        assert answer.json()["accepted"] + len(answer.json()["rejected"]) == (len(items) if bulk else 1)
