"""A bucket that is not over yet (this week, today) is marked as partial on the page, in the chart and in the
API, so an unfinished week does not read as a sudden drop; finished buckets are never marked. The same for a
retention report's periods (`partial_periods`, per cohort)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from reports_app.charts import report_figure
from reports_app.query import report_query_parse
from reports_app.selectors import report_series
from tests.builders import track

pytestmark = pytest.mark.django_db


def monday(day):
    return day - timedelta(days=day.weekday())


@pytest.fixture
def this_and_last_week(environment):
    today = timezone.now().astimezone(UTC).date()
    last_week = monday(today) - timedelta(days=7)
    for moment in (datetime.combine(last_week, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9), timezone.now()):
        track(environment, identity="pat", event="Sign Up", timestamp=moment.isoformat())
    return {"from": last_week.isoformat(), "to": today.isoformat(), "interval": "week", "event": "Sign Up"}


def test_api_names_the_week_not_over_yet(this_and_last_week, api):
    answer = api.get("/api/v1/reports/query", **this_and_last_week).json()
    this_monday = monday(timezone.now().astimezone(UTC).date()).isoformat()
    assert answer["buckets"] == [this_and_last_week["from"], this_monday]
    assert answer["partial_buckets"] == [this_monday]
    assert answer["series"] == [{"group": "All", "values": [1, 1], "total": 2}]


def test_days_after_today_in_a_custom_range_are_partial_too(environment):
    today = timezone.now().astimezone(UTC).date()
    query = report_query_parse(
        {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    )
    result = report_series(environment=environment, query=query)
    assert result.partial_positions == [1, 2]  # today and tomorrow; yesterday is over


def test_line_chart_draws_the_unfinished_week_dotted(this_and_last_week, environment):
    result = report_series(environment=environment, query=report_query_parse({**this_and_last_week, "chart": "line"}))
    traces = report_figure(result)["data"]
    solid, dotted = traces
    assert solid["x"] == [this_and_last_week["from"]] and solid["line"].get("dash") is None
    # The dotted part starts at the last finished week, so the line stays joined, and shares the legend entry.
    assert dotted["x"] == result.bucket_labels and dotted["line"]["dash"] == "dot"
    assert dotted["legendgroup"] == solid["legendgroup"] and dotted["showlegend"] is False


def test_bars_shade_the_unfinished_week(this_and_last_week, environment):
    result = report_series(environment=environment, query=report_query_parse({**this_and_last_week, "chart": "bar"}))
    (bars,) = report_figure(result)["data"]
    assert bars["marker"]["opacity"] == [1, 0.45]
    assert bars["marker"]["pattern"]["shape"] == ["", "/"]


def test_page_marks_the_row_and_says_why(this_and_last_week, environment, signed_in):
    page = signed_in.get("/reports/", {"env": environment.app_id, **this_and_last_week})
    html = page.content.decode()
    assert 'id="partial-note"' in html
    assert html.count('class="partial"') == 1


def test_a_finished_range_has_no_mark(environment, signed_in, api):
    track(environment, identity="pat", event="Sign Up", timestamp="2026-11-03T09:00:00Z")
    params = {"from": "2026-11-02", "to": "2026-11-15", "interval": "week"}
    assert api.get("/api/v1/reports/query", **params).json()["partial_buckets"] == []
    html = signed_in.get("/reports/", {"env": environment.app_id, **params}).content.decode()
    assert 'id="partial-note"' not in html and 'class="partial"' not in html


def test_retention_api_names_each_cohorts_periods_not_over_yet(this_and_last_week, environment, api, signed_in):
    # pat: Sign Up last week (the cohort) and again now; quinn signs up now: this week's cohort.
    track(environment, identity="quinn", event="Sign Up", timestamp=timezone.now().isoformat())
    for who in ("pat", "quinn"):
        track(environment, identity=who, event="pageview", timestamp=timezone.now().isoformat())
    params = {"start_event": "Sign Up", "return_event": "pageview", "interval": "week", "periods": "4"}
    params.update({"from": this_and_last_week["from"], "to": this_and_last_week["to"]})
    answer = api.get("/api/v1/reports/retention", **params).json()
    this_monday = monday(timezone.now().astimezone(UTC).date()).isoformat()
    # Last week's cohort is complete, its week 1 (this week) can still grow; this week's cohort can still grow.
    assert answer["cohorts"] == [
        {"start": this_and_last_week["from"], "group": "All", "size": 1, "returned": [1, 1], "partial_periods": [1]},
        {"start": this_monday, "group": "All", "size": 1, "returned": [1], "partial_periods": [0]},
    ]
    # The page marks exactly the cells the API names.
    html = signed_in.get("/reports/", {"env": environment.app_id, "type": "retention", **params}).content.decode()
    assert html.count("cohort-cell partial") == 2 and 'id="partial-note"' in html


def test_a_finished_retention_range_has_no_partial_period(environment, api):
    track(environment, identity="pat", event="Sign Up", timestamp="2026-11-03T09:00:00Z")
    track(environment, identity="pat", event="pageview", timestamp="2026-11-10T09:00:00Z")
    params = {"start_event": "Sign Up", "return_event": "pageview", "from": "2026-11-02", "to": "2026-11-15"}
    (cohort,) = api.get("/api/v1/reports/retention", **params).json()["cohorts"]
    assert cohort["returned"] == [1, 1] and cohort["partial_periods"] == []
