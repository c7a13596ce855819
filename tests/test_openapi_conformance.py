"""The OpenAPI schema (/api/schema/) says exactly what the API accepts and answers (SPEC 3), checked by
schemathesis on every operation against real PostgreSQL.

Each operation runs twice, with a bounded, derandomized number of cases: positive cases (valid by the
schema) must be accepted (`positive_data_acceptance`: 2xx, or 404 for an unknown user), negative cases
(invalid by the schema) refused (`negative_data_rejection`), and every answer must be documented: no 5xx,
a documented status code and content type, a body matching its response schema.

Generated data gets what no schema can carry, each step a rule the parameter descriptions state: the real
environment's app_id and API key, cursors left out (only the API gives them out), `from` not after `to`,
the bucket cap of a report (and of a retention report's cohorts), a property filter's value, and timestamps
inside 2000-01-01 .. tomorrow. Strings never hold NUL (PostgreSQL refuses it: the fuzz tests cover it), and
unknown parameters are not sent (the API ignores them)."""

import base64
import os
from datetime import UTC, date, datetime, timedelta

import jsonschema
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from config.kernel.schema import APP_ID
from reports_app.query import MAX_BUCKETS
from tests.conftest import API_KEY
from users_app.deletion.tokens import auth_token_issue
from users_app.user_query import MAX_PROPERTY_FILTERS

pytestmark = pytest.mark.django_db(transaction=True)  # schemathesis' WSGI calls end by closing the connection

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
# More for a deeper run by hand: CAIRN_CONFORMANCE_EXAMPLES=500 bash .ci/test tests/test_openapi_conformance.py
EXAMPLES = int(os.environ.get("CAIRN_CONFORMANCE_EXAMPLES", "30"))

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
schema.config.generation.update(allow_x00=False, allow_extra_parameters=False, with_security_parameters=False)
schema.config.output.sanitization.update(enabled=False)  # failure messages show the request as sent
OPERATIONS = {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in schema.get_all_operations())}


def test_every_api_endpoint_is_in_the_schema():
    assert set(OPERATIONS) == {
        "POST /api/track",
        "POST /api/add_user_properties",
        "POST /api/add_account_properties",
        "POST /api/identify",
        "POST /api/v1/identify",
        "POST /api/v1/browser",
        "GET /api/v1/users",
        "GET /api/v1/users/search",
        "GET /api/v1/users/{user_id}",
        "GET /api/v1/users/{user_id}/events",
        "GET /api/v1/merges",
        "GET /api/v1/accounts/{account_id}",
        "GET /api/v1/reports/query",
        "GET /api/v1/reports/funnel",
        "GET /api/v1/reports/retention",
        "GET /api/v1/defined-events",
        "POST /api/v1/defined-events",
        "DELETE /api/v1/defined-events/{defined_event_id}",
        "POST /api/public/v0/auth_token",
        "POST /api/public/v0/user_deletion",
        "GET /api/public/v0/deletion_status/{deletion_request_id}",
    }


def _values(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _cross_parameter_rules(query: dict, path: str) -> None:
    query.pop("cursor", None)  # only a `next` the API gave out is valid
    if query.get("from") and query.get("to") and query["from"] > query["to"]:
        query["from"], query["to"] = query["to"], query["from"]
    for index in range(MAX_PROPERTY_FILTERS):  # a filter on a property needs a value for eq / in
        name = f"f{index}"
        if (
            query.get(name)
            and query.get(f"{name}_op") in (None, "", "eq", "in")
            and not any(_values(query.get(f"{name}_v")))
        ):
            query[f"{name}_v"] = ["Startup"]
    if path.startswith("/api/v1/reports/") and query.get("range") in (None, "", "custom"):
        end = date.fromisoformat(query["to"]) if query.get("to") else datetime.now(UTC).date()
        start = date.fromisoformat(query["from"]) if query.get("from") else end - timedelta(days=29)
        if start > end:  # `to` defaults to today
            query["to"], end = start.isoformat(), start
        per_day = {"hour": 24, "week": 1 / 7, "month": 1 / 28}.get(query.get("interval"), 1)
        if path.endswith(("/query", "/retention")) and ((end - start).days + 1) * per_day > MAX_BUCKETS:
            query["from"], query["to"] = (end - timedelta(days=int(MAX_BUCKETS / per_day) - 1)).isoformat(), str(end)


def _timestamp_window(value, earliest: datetime, latest: datetime) -> None:
    """Timestamps from 2000-01-01 (UTC) to one day after the server's clock; a batch's `sent_at` (the device
    clock) is now, so the skew correction leaves its calls' timestamps where they are."""
    if isinstance(value, list):
        for item in value:
            _timestamp_window(item, earliest, latest)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key == "sent_at":
            value[key] = int(datetime.now(UTC).timestamp() * 1000)
        elif key == "timestamp" and isinstance(item, str):
            moment = datetime.fromisoformat(item.replace("Z", "+00:00").replace("z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            value[key] = min(max(moment, earliest), latest).isoformat()
        elif key == "timestamp" and isinstance(item, int | float) and not isinstance(item, bool):
            value[key] = min(max(item, earliest.timestamp() * 1000), latest.timestamp() * 1000)
        else:
            _timestamp_window(item, earliest, latest)


def prepare(case, mode: GenerationMode, app_id: str) -> None:
    body = case.body
    if isinstance(body, dict) and "app_id" in body and _is_valid(body["app_id"], APP_ID):
        # A real environment, so the rest of the body is judged; a generated app_id that is itself the
        # invalid part stays.
        body["app_id"] = app_id
    if mode is GenerationMode.POSITIVE:
        _cross_parameter_rules(case.query if isinstance(case.query, dict) else {}, case.operation.path)
        _timestamp_window(body, datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(hours=23))


def authorization_for(label: str, app_id: str) -> dict:
    """The read API takes the key as a bearer; Heap's deletion API a token that HTTP Basic app_id:key buys."""
    if label == "POST /api/public/v0/auth_token":
        return {"Authorization": "Basic " + base64.b64encode(f"{app_id}:{API_KEY}".encode()).decode()}
    if "/api/public/v0/" in label:
        return {
            "Authorization": "Bearer "
            + auth_token_issue(authorization_for("POST /api/public/v0/auth_token", app_id)["Authorization"])[
                "access_token"
            ]
        }
    return {"Authorization": f"Bearer {API_KEY}"}


def _is_valid(value, json_schema: dict) -> bool:
    return jsonschema.Draft202012Validator(json_schema).is_valid(value)


def _refused_for_the_environments_state(response) -> bool:
    """A browser batch whose every call is heap.addAccountProperties for a user without an account (`no_account`):
    valid by the schema, refused for what the environment holds (no account id property here), not its shape."""
    if response.status_code != 400:
        return False
    try:
        rejected = response.json().get("rejected") or []
    except ValueError:
        return False
    return bool(rejected) and all(item.get("error", {}).get("code") == "no_account" for item in rejected)


def _accepted_unless_no_account(ctx, response, case):
    if _refused_for_the_environments_state(response):
        return None
    return positive_data_acceptance(ctx, response, case)


# A bulk call keeps its valid items and rejects the others with their index (SPEC 3), and does not read its
# other fields; the browser endpoint does the same with each call of a batch. So data that the schema refuses
# in one item is not a 4xx for the call: only the positive half of the exactness holds for these.
PARTLY_ACCEPTED = {
    "POST /api/track",
    "POST /api/add_user_properties",
    "POST /api/add_account_properties",
    "POST /api/identify",
    "POST /api/v1/browser",
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_the_schema_describes_what_is_accepted_and_answered(environment, label, mode):
    operation = OPERATIONS[label]
    if mode is GenerationMode.NEGATIVE and label == "POST /api/public/v0/auth_token":
        pytest.skip("no parameter or body to make invalid: its one input, the Basic header, is tested on its own")
    if mode is GenerationMode.NEGATIVE and label == "GET /api/v1/defined-events":
        pytest.skip("no parameter or body to make invalid: its one input, the API key, is tested on its own")
    if mode is GenerationMode.NEGATIVE and label in PARTLY_ACCEPTED:
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    else:
        checks = CHECKS
    if mode is GenerationMode.POSITIVE and label == "POST /api/v1/browser":
        checks = [_accepted_unless_no_account if check is positive_data_acceptance else check for check in checks]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        prepare(case, mode, environment.app_id)
        case.call_and_validate(headers=authorization_for(label, environment.app_id), checks=checks)

    run()
