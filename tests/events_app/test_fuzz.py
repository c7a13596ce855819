"""Fuzzing the ingest endpoints (SPEC 3: bad input is a 400 with the error body, never a 500).

Two bounded runs: schemathesis generates requests from the served OpenAPI schema (/api/schema/), and
hypothesis throws arbitrary JSON (deep nesting, huge numbers, odd unicode, wrong types) into every field
of single and bulk calls. Half the generated bodies get the real app_id so they reach the write path."""

import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

INGEST_PATHS = r"^/api/(track|add_user_properties|identify|v1/identify)$"
FUZZ_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible, not flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).include(path_regex=INGEST_PATHS)
OPERATIONS = {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in schema.get_all_operations())}


def assert_not_a_server_error(status: int, content: bytes, request_body) -> None:
    assert status < 500, f"{status} for {request_body!r:.2000}: {content[:500]!r}"
    if status >= 400:
        error = json.loads(content)["error"]
        assert set(error) == {"code", "message", "field"}, error


def test_the_schema_lists_the_ingest_endpoints():
    assert set(OPERATIONS) == {
        "POST /api/track", "POST /api/add_user_properties", "POST /api/identify", "POST /api/v1/identify"
    }


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_schema_driven_requests_never_get_a_server_error(label, client, environment):
    operation = OPERATIONS[label]
    statuses = set()

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(), use_real_app_id=st.booleans())
    def run(case, use_real_app_id):
        body = case.body if isinstance(case.body, dict | list | str | int | float | bool) else None
        if use_real_app_id and isinstance(body, dict):
            body["app_id"] = environment.app_id
        # Sent through Django's test client rather than case.call(): a raw WSGI call ends by closing the
        # database connection, which is the test's transaction.
        response = client.post(operation.path, json.dumps(body), content_type="application/json")
        assert_not_a_server_error(response.status_code, response.content, body)
        statuses.add(response.status_code)

    run()
    # The run got past validation into the write path, not only into 400s.
    assert 200 in statuses and 400 in statuses, statuses


# ---- arbitrary JSON in every field -----------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
    | st.sampled_from(["", " ", "guest", "0", "-1", "1e400", "NaN", "2026-02-30T25:00:00Z", "\u0000", "x" * 300,
                       "9007199254740992", "9007199254740991", "null", "[object Object]", "'alice'", "\ud7ff"])
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["app_id", "user_id", "identity", "event", "properties", "timestamp", "idempotency_key", "session_id"]


def item_strategy():
    return st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS))


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(["/api/track", "/api/add_user_properties", "/api/identify", "/api/v1/identify"]),
    body=item_strategy(),
    bulk=st.none() | st.lists(item_strategy() | json_values, max_size=5),
    bulk_field=st.sampled_from(["events", "users"]),
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
