"""Fuzzing the ingest endpoints (SPEC 3: bad input is a 400 with the error body, never a 500).

Two bounded runs: every known odd value (tests/odd_values.py) in every field of a valid call of each
endpoint, the browser endpoint's included; and hypothesis throwing arbitrary JSON (deep nesting, huge
numbers, odd unicode, wrong types) into every field of single and bulk calls, half of them with the real
app_id so they reach the write path. Requests generated from the OpenAPI schema, valid and invalid, run in
tests/test_openapi_conformance.py."""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.odd_values import ODD_VALUES, SWEEP_VALUES

pytestmark = pytest.mark.django_db

FUZZ_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible, not flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def assert_not_a_server_error(status: int, content: bytes, request_body) -> None:
    assert status < 500, f"{status} for {request_body!r:.2000}: {content[:500]!r}"
    if status >= 400:
        error = json.loads(content)["error"]
        assert set(error) == {"code", "message", "field"}, error


# ---- every odd value in every field of a valid call -------------------------------------------------------

VALID_CALLS = {
    "/api/track": {
        "identity": "alice",
        "event": "Sign Up",
        "properties": {"plan": "Free"},
        "timestamp": "2026-01-05T10:00:00Z",
        "idempotency_key": "k-1",
        "session_id": "s-1",
    },
    "/api/add_user_properties": {"user_id": "4242", "properties": {"plan": "Free"}},
    "/api/add_account_properties": {"account_id": "acme", "properties": {"tier": "Free"}},
    "/api/v1/identify": {"user_id": "4242", "identity": "alice", "timestamp": "2026-01-05T10:00:00Z"},
    "/api/v1/browser": {
        "user_id": "4242",
        "session_id": "s-1",
        "sent_at": 1767607200000,
        "calls": [
            {
                "type": "track",
                "event": "Sign Up",
                "timestamp": 1767607200000,
                "idempotency_key": "k-1",
                "session_id": "s-2",
                "properties": {"plan": "Free"},
            },
            {"type": "identify", "identity": "alice"},
            {"type": "add_user_properties", "properties": {"plan": "Free"}},
        ],
    },
}


def field_paths(value, prefix=()):
    """Every place in a body a value sits: dict keys and list indexes down to the leaves."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from field_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from field_paths(item, prefix + (index,))


def replaced(body: dict, path: tuple, value) -> dict:
    body = copy.deepcopy(body)
    *parents, last = path
    target = body
    for step in parents:
        target = target[step]
    target[last] = value
    return body


@pytest.mark.parametrize("path", sorted(VALID_CALLS))
def test_every_odd_value_in_every_field_of_a_valid_call(client, environment, path):
    body = {"app_id": environment.app_id, **VALID_CALLS[path]}
    assert client.post(path, json.dumps(body), content_type="application/json").status_code == 200
    failures = []
    # Odd property names too: a new key next to the valid one.
    new_keys = [("properties", "²")] if "properties" in body else []
    new_keys += [("calls", 0, "properties", "١٢")] if "calls" in body else []
    for field in [*field_paths(body), *new_keys]:
        # Odd strings, and the digits also as JSON numbers where they parse as one (1e3, -1, 2**53 ...).
        values = SWEEP_VALUES + [json.loads(v) for v in SWEEP_VALUES if _is_json_number(v)] + [None, [], {}]
        for value in values:
            sent = replaced(body, field, value)
            payload = json.dumps(sent)
            response = client.post(path, payload, content_type="application/json")
            if response.status_code >= 500:
                failures.append(f"{response.status_code} for {payload[:300]}")
            elif response.status_code >= 400:
                assert set(json.loads(response.content)["error"]) == {"code", "message", "field"}, payload[:300]
    assert failures == []


def _is_json_number(text: str) -> bool:
    try:
        return isinstance(json.loads(text), int | float)
    except ValueError:
        return False


# ---- arbitrary JSON in every field -----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "",
            " ",
            "guest",
            "0",
            "-1",
            "1e400",
            "NaN",
            "2026-02-30T25:00:00Z",
            "\u0000",
            "x" * 300,
            "9007199254740992",
            "9007199254740991",
            "null",
            "[object Object]",
            "'alice'",
            "\ud7ff",
            *ODD_VALUES,
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "app_id",
    "user_id",
    "identity",
    "account_id",
    "event",
    "properties",
    "timestamp",
    "idempotency_key",
    "session_id",
]


def item_strategy():
    return st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS))


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(
        ["/api/track", "/api/add_user_properties", "/api/add_account_properties", "/api/identify", "/api/v1/identify"]
    ),
    body=item_strategy(),
    bulk=st.none() | st.lists(item_strategy() | json_values, max_size=5),
    bulk_field=st.sampled_from(["events", "users", "accounts"]),
    use_real_app_id=st.booleans(),
)
def test_arbitrary_json_in_every_field_never_gets_a_server_error(
    client, environment, path, body, bulk, bulk_field, use_real_app_id
):
    if bulk is not None:
        body = {**body, bulk_field: bulk}
    if use_real_app_id:
        body["app_id"] = environment.app_id
    response = client.post(path, json.dumps(body), content_type="application/json")
    assert_not_a_server_error(response.status_code, response.content, body)
