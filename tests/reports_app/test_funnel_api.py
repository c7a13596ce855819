"""GET /api/v1/reports/funnel and /api/v1/reports/retention (SPEC 14): the numbers, the key, the 400s naming
the field, the OpenAPI patterns held to the parsers, and the CSV rows the page exports."""

import re

import pytest

from config.kernel.errors import InvalidInput
from reports_app.api_funnels import PERIODS, WINDOW
from reports_app.csv_export import csv_cell, funnel_csv_rows, retention_csv_rows
from reports_app.query_funnels import funnel_query_parse, retention_query_parse, window_parse
from reports_app.selectors import report_funnel, report_retention
from tests.builders import HOSTILE_SCRIPT, set_properties, track
from tests.conftest import OTHER_API_KEY

pytestmark = pytest.mark.django_db

FUNNEL = "/api/v1/reports/funnel"
RETENTION = "/api/v1/reports/retention"
RANGE = {"from": "2026-11-02", "to": "2026-11-15"}


def test_the_funnel_api_answers_the_hand_computed_numbers(funnel_world, api):
    response = api.get(FUNNEL, step=["Sign Up", "Activate", "Upgrade"], window="1d", group_by="user.plan", **RANGE)
    assert response.status_code == 200, response.content
    # conftest.py's funnel_world, by plan (tests/reports_app/test_funnels.py).
    assert response.json() == {
        "steps": ["Sign Up", "Activate", "Upgrade"],
        "window_seconds": 86400,
        "series": [
            {"group": "Startup", "counts": [4, 4, 2], "median_seconds_to_convert": [None, 3600.0, 44100.0]},
            {"group": "Free", "counts": [2, 0, 0], "median_seconds_to_convert": [None, None, None]},
            {"group": "Growth", "counts": [2, 1, 1], "median_seconds_to_convert": [None, 7200.0, 3600.0]},
            {"group": "(none)", "counts": [1, 1, 0], "median_seconds_to_convert": [None, 0.0, None]},
            {"group": "Enterprise", "counts": [1, 1, 1], "median_seconds_to_convert": [None, 1800.0, 1800.0]},
        ],
    }
    # The default window is 14 days; empty step values (a form's spare input) are left out.
    default = api.get(FUNNEL, step=["Sign Up", "", "Activate"], **RANGE).json()
    assert default["window_seconds"] == 14 * 86400 and default["steps"] == ["Sign Up", "Activate"]
    # Within 14 days bob activates, and jack's first attempt too; carol and ivy never do after signing up.
    assert default["series"][0]["counts"] == [10, 8]


def test_a_key_sees_its_own_environment_only(funnel_world, api, other_environment):
    params = {"step": ["Sign Up", "Activate"], **RANGE}
    assert api.get(FUNNEL, api_key="", **params).status_code == 401
    assert api.get(FUNNEL, api_key="wrong-key", **params).status_code == 401
    assert api.get(FUNNEL, api_key=OTHER_API_KEY, **params).json()["series"] == []
    assert api.get(RETENTION, api_key="", start_event="Sign Up", return_event="pageview").status_code == 401


@pytest.mark.parametrize(
    "url, params, field",
    [
        (FUNNEL, {}, "step"),
        (FUNNEL, {"step": ["Sign Up"]}, "step"),
        (FUNNEL, {"step": [f"e{index}" for index in range(11)]}, "step"),
        (FUNNEL, {"step": ["A", "x" * 1025]}, "step"),
        (FUNNEL, {"step": ["A", "B"], "window": "0d"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "window": "366d"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "window": "8761h"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "window": "14"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "window": "2w"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "window": "07d"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "window": "١٤d"}, "window"),
        (FUNNEL, {"step": ["A", "B"], "group_by": "event.path"}, "group_by"),
        (FUNNEL, {"step": ["A", "B"], "group_by": "plan"}, "group_by"),
        (FUNNEL, {"step": ["A", "B"], "where": "plan"}, "where"),
        (FUNNEL, {"step": ["A", "B"], "from": "2026-11-31"}, "from"),
        (FUNNEL, {"step": ["A", "B"], "from": "2026-11-10", "to": "2026-11-01"}, "from"),
        (FUNNEL, {"step": ["A", "B"], "range": "1y"}, "range"),
        (RETENTION, {"return_event": "pageview"}, "start_event"),
        (RETENTION, {"start_event": "Sign Up"}, "return_event"),
        (RETENTION, {"start_event": "Sign Up", "return_event": "pageview", "interval": "hour"}, "interval"),
        (RETENTION, {"start_event": "Sign Up", "return_event": "pageview", "periods": "0"}, "periods"),
        (RETENTION, {"start_event": "Sign Up", "return_event": "pageview", "periods": "101"}, "periods"),
        (RETENTION, {"start_event": "Sign Up", "return_event": "pageview", "periods": "x"}, "periods"),
        (RETENTION, {"start_event": "Sign Up", "return_event": "pageview", "group_by": "event.path"}, "group_by"),
        (
            RETENTION,
            {"start_event": "S", "return_event": "p", "interval": "day", "from": "2000-01-01", "to": "2026-01-01"},
            "interval",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field(environment, api, url, params, field):
    response = api.get(url, **params)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


def test_a_funnel_range_is_not_capped_by_buckets(environment, api):
    response = api.get(FUNNEL, step=["A", "B"], **{"from": "2000-01-01", "to": "9998-12-01"})
    assert response.status_code == 200 and response.json()["series"] == []


def _parses(parse, text) -> bool:
    try:
        parse(text)
    except InvalidInput:
        return False
    return True


def test_the_openapi_patterns_say_exactly_what_the_parsers_take():
    candidates = [f"{number}{unit}" for number in range(0, 9000) for unit in "dh"] + ["", "d", "01d", "1w", "1D"]
    for text in candidates:
        assert bool(re.search(WINDOW["pattern"], text)) == _parses(window_parse, text), text

    def periods(text):
        return retention_query_parse({"start_event": "a", "return_event": "b", "periods": text})

    for text in [*(str(number) for number in range(0, 130)), "007", "1.0", "+1"]:
        assert bool(re.search(PERIODS["pattern"], text)) == _parses(periods, text), text


def test_retention_api_and_the_csv_rows(environment, api, both_paths):
    set_properties(environment, identity="alice", plan=HOSTILE_SCRIPT)
    set_properties(environment, identity="bob", plan="=HYPERLINK(1)")
    for who, event, timestamp in [
        ("alice", "Sign Up", "2026-11-03T10:00:00Z"),
        ("alice", "pageview", "2026-11-10T10:00:00Z"),
        ("bob", "Sign Up", "2026-11-04T10:00:00Z"),
        ("bob", "Activate", "2026-11-04T10:10:00Z"),
    ]:
        track(environment, identity=who, event=event, timestamp=timestamp)
    params = {"start_event": "Sign Up", "return_event": "pageview", "periods": "2", "group_by": "user.plan"}
    params.update({"from": "2026-11-02", "to": "2026-11-15"})
    answer = api.get(RETENTION, **params).json()
    # Equal sizes: by name ("<" sorts before "=").
    assert answer == {
        "interval": "week",
        "cohorts": [
            {"start": "2026-11-02", "group": HOSTILE_SCRIPT, "size": 1, "returned": [1, 1], "partial_periods": []},
            {"start": "2026-11-02", "group": "=HYPERLINK(1)", "size": 1, "returned": [1, 0], "partial_periods": []},
        ],
    }
    retention = report_retention(environment=environment, query=retention_query_parse(params))
    assert retention.as_dict() == answer  # the API is the selector's answer, nothing more
    assert retention_csv_rows(retention) == [
        ["cohort", "group", "size", "week 0", "week 1", "week 2"],
        ["2026-11-02", HOSTILE_SCRIPT, 1, 1, 1, ""],
        ["2026-11-02", "=HYPERLINK(1)", 1, 1, 0, ""],
    ]
    funnel_params = {"step": ["Sign Up", "Activate"], "group_by": "user.plan", "from": "2026-11-02", "to": "2026-11-15"}
    funnel = report_funnel(environment=environment, query=funnel_query_parse(funnel_params))
    assert funnel_csv_rows(funnel) == [
        ["group", "step", "event", "people", "of step 1", "of the step before", "median seconds from the step before"],
        [HOSTILE_SCRIPT, 1, "Sign Up", 1, "1.0000", "1.0000", ""],
        [HOSTILE_SCRIPT, 2, "Activate", 0, "0.0000", "0.0000", ""],
        ["=HYPERLINK(1)", 1, "Sign Up", 1, "1.0000", "1.0000", ""],
        ["=HYPERLINK(1)", 2, "Activate", 1, "1.0000", "1.0000", 600.0],
    ]
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"  # the guard csv_response applies to every cell


def test_the_three_report_apis_document_their_shared_parameters_alike(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    def parameters(path: str) -> dict:
        return {item["name"]: item for item in schema["paths"][path]["get"]["parameters"]}

    trends, funnel, retention = (parameters(path) for path in ("/api/v1/reports/query", FUNNEL, RETENTION))
    for name in ("where", "from", "to", "range"):
        assert funnel[name]["schema"] == retention[name]["schema"] == trends[name]["schema"], name
    for name in ("from", "to", "range"):
        assert funnel[name]["description"] == retention[name]["description"] == trends[name]["description"]
    assert funnel["group_by"] == retention["group_by"]
    # Funnels and retention group people: no event property; the graph report takes them.
    assert "event" not in funnel["group_by"]["schema"]["anyOf"][0]["pattern"]
    assert "event" in trends["group_by"]["schema"]["anyOf"][0]["pattern"]
    assert "partial_periods" in schema["components"]["schemas"]["RetentionCohort"]["properties"]
