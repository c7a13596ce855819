"""The report builder's funnel and retention pages: the type switch, the page, its CSV export and the API giving
the same numbers (one selector each), refused input kept in the form, escaping, and partial periods."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from events_app.defined_events.services import defined_event_create
from reports_app.charts_funnels import duration_text, retention_curves, retention_rows
from reports_app.query import ReportQuery
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors import Cohort, RetentionResult
from tests.builders import HOSTILE_SCRIPT, set_properties, track

pytestmark = pytest.mark.django_db

RANGE = {"range": "custom", "from": "2026-11-02", "to": "2026-11-15"}
FUNNEL_PAGE = {"type": "funnel", "step": ["Sign Up", "Activate", "Upgrade"], "group_by": "user.plan", **RANGE}
RETENTION_PAGE = {
    "type": "retention",
    "start_event": "Sign Up",
    "return_event": "pageview",
    "interval": "week",
    "periods": "2",
    **RANGE,
}


class Tables(HTMLParser):
    """Every table of a page by id, as rows of (cell text, the cell's attributes)."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(attributes.get("id"), [])
        elif self.current is not None and tag == "tr":
            self.current.append([])
        elif self.current is not None and tag in ("td", "th"):
            self.cell = ["", attributes]

    def handle_endtag(self, tag):
        if tag == "table":
            self.current = None
        elif self.current is not None and tag in ("td", "th") and self.cell is not None:
            self.current[-1].append((self.cell[0].strip(), self.cell[1]))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[0] += data


def table(html: str, table_id: str) -> list[list[tuple[str, dict]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables[table_id]


def figure_of(html: str) -> dict:
    found = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_funnel_page_its_csv_and_the_api_agree(funnel_world, api, signed_in):
    page = signed_in.get("/reports/", {**FUNNEL_PAGE, "env": funnel_world.app_id, "window_count": "1"})
    assert page.status_code == 200
    html = page.content.decode()
    api_params = {key: value for key, value in FUNNEL_PAGE.items() if key not in ("type", "range")}
    from_api = api.get("/api/v1/reports/funnel", window="1d", **api_params).json()
    assert [item["group"] for item in from_api["series"]] == ["Startup", "Free", "Growth", "(none)", "Enterprise"]

    rows = [[text for text, _ in row] for row in table(html, "funnel-table")[1:]]
    people, group = {}, None
    for row in rows:
        group = row[0] or group
        people.setdefault(group, []).append(int(row[2]))
    assert people == {item["group"]: item["counts"] for item in from_api["series"]}
    # Startup: 4 -> 4 -> 2, medians 1h and 12h 15m (44,100 s).
    assert rows[:3] == [
        ["Startup", "1. Sign Up", "4", "100%", "", ""],
        ["", "2. Activate", "4", "100%", "100%", "1h"],
        ["", "3. Upgrade", "2", "50%", "50%", "12h 15m"],
    ]
    figure = figure_of(html)
    assert [trace["name"] for trace in figure["data"]] == [item["group"] for item in from_api["series"]]
    assert [list(trace["y"]) for trace in figure["data"]] == [item["counts"] for item in from_api["series"]]
    assert figure["data"][0]["text"][2] == "50%<br>(50%)"
    assert "median 12h 15m from step 2" in figure["data"][0]["customdata"][2]

    # The share link is the canonical URL (window=1d), and the CSV export of it gives the API's numbers.
    share = page.context["share_url"]
    assert "window=1d" in share and "type=funnel" in share
    exported = csv_rows(signed_in.get("/reports/export.csv?" + urlsplit(share).query))
    assert exported[0][:4] == ["group", "step", "event", "people"]
    assert {group: [int(row[3]) for row in exported[1:] if row[0] == group] for group in people} == people
    assert exported[3][6] == "44100.0"


def test_the_retention_page_its_csv_and_the_api_agree(world, api, signed_in):
    page = signed_in.get("/reports/", {**RETENTION_PAGE, "env": world.app_id, "group_by": "user.plan"})
    assert page.status_code == 200
    html = page.content.decode()
    api_params = {key: value for key, value in RETENTION_PAGE.items() if key not in ("type", "range")}
    from_api = api.get("/api/v1/reports/retention", group_by="user.plan", **api_params).json()
    assert from_api["cohorts"], from_api
    rows = table(html, "cohort-table")
    assert [text for text, _ in rows[0]] == ["Cohort (week of)", "Group", "People", "Week 0", "Week 1", "Week 2"]
    from_page = [
        {
            "start": row[0][0],
            "group": row[1][0],
            "size": int(row[2][0]),
            "returned": [int(attributes["data-people"]) for _, attributes in row[3:] if "data-people" in attributes],
        }
        for row in rows[1:]
    ]
    # The page marks periods not over yet by style; the API lists them (partial_periods, tested on its own).
    cohorts = [
        {key: value for key, value in cohort.items() if key != "partial_periods"} for cohort in from_api["cohorts"]
    ]
    assert from_page == cohorts
    # Each cell's colour comes from the fixed palette, and a full cohort is 100 %.
    assert all(re.fullmatch(r"background:#[0-9a-f]{6};color:#[0-9a-f]{3,6}", row[3][1]["style"]) for row in rows[1:])
    assert rows[1][3][0] == "100%"
    figure = figure_of(html)
    assert {trace["name"] for trace in figure["data"]} == {cohort["group"] for cohort in from_api["cohorts"]}

    exported = csv_rows(signed_in.get("/reports/export.csv?" + urlsplit(page.context["share_url"]).query))
    assert exported[0] == ["cohort", "group", "size", "week 0", "week 1", "week 2"]
    assert [
        {"start": row[0], "group": row[1], "size": int(row[2]), "returned": [int(cell) for cell in row[3:] if cell]}
        for row in exported[1:]
    ] == cohorts


def test_the_type_switch_carries_the_range_and_a_persons_group(world, signed_in):
    trends = signed_in.get("/reports/", {"env": world.app_id, "group_by": "user.plan", "where": "user.plan=*", **RANGE})
    links = {link["type"]: parse_qs(link["querystring"]) for link in trends.context["type_switch"]}
    assert links["funnel"]["type"] == ["funnel"] and "type" not in links["trends"]
    assert links["retention"]["group_by"] == ["user.plan"] and links["retention"]["where"] == ["user.plan=*"]
    assert links["funnel"]["from"] == ["2026-11-02"]
    # An event property is no person's group: it stays behind.
    by_path = signed_in.get("/reports/", {"env": world.app_id, "group_by": "event.path"})
    assert "group_by" not in parse_qs(by_path.context["type_switch"][1]["querystring"])

    # The first visit of a type: the builder, no numbers, no error.
    for report_type in ("funnel", "retention"):
        blank = signed_in.get("/reports/", {"env": world.app_id, "type": report_type, "group_by": "user.plan"})
        assert blank.status_code == 200 and "error" not in blank.context
        assert 'id="choose-events"' in blank.content.decode() and 'id="save-report"' not in blank.content.decode()
        assert blank.context["query"].group_by is not None
    assert signed_in.get("/reports/", {"env": world.app_id, "type": "pie"}).status_code == 400


def test_refused_input_is_a_400_naming_the_field_and_the_form_keeps_what_was_sent(world, signed_in):
    one_step = signed_in.get("/reports/", {"env": world.app_id, "type": "funnel", "step": ["Sign Up", ""]})
    assert one_step.status_code == 400 and one_step.context["error"].field == "step"
    assert one_step.context["funnel_form"]["steps"] == ["Sign Up", ""]
    assert '<option value="Sign Up" selected>' in one_step.content.decode()
    window = signed_in.get("/reports/", {"env": world.app_id, **FUNNEL_PAGE, "window_count": "0", "window_unit": "h"})
    assert window.status_code == 400 and window.context["error"].field == "window"
    assert window.context["funnel_form"]["steps"] == FUNNEL_PAGE["step"]
    periods = signed_in.get("/reports/", {"env": world.app_id, **RETENTION_PAGE, "periods": "500"})
    assert periods.status_code == 400 and periods.context["error"].field == "periods"
    assert periods.context["retention_form"]["start_event"] == "Sign Up"
    event_group = signed_in.get("/reports/", {"env": world.app_id, **RETENTION_PAGE, "group_by": "event.path"})
    assert event_group.status_code == 400 and event_group.context["error"].field == "group_by"
    assert signed_in.get("/reports/export.csv", {"env": world.app_id, "type": "funnel"}).status_code == 400


def test_filter_rows_mean_the_same_as_where(funnel_world, api, signed_in):
    page = signed_in.get(
        "/reports/",
        {
            **FUNNEL_PAGE,
            "env": funnel_world.app_id,
            "filter_field": ["user.plan", ""],
            "filter_op": ["in", "eq"],
            "filter_value": ["Startup,Free", ""],
        },
    )
    assert page.status_code == 200
    assert "where=user.plan%3Din%3AStartup%2CFree" in page.context["share_url"]
    from_api = api.get(
        "/api/v1/reports/funnel",
        step=FUNNEL_PAGE["step"],
        where="user.plan=in:Startup,Free",
        group_by="user.plan",
        **{"from": "2026-11-02", "to": "2026-11-15"},
    ).json()
    assert page.context["people_result"].as_dict() == from_api
    assert {series["group"] for series in from_api["series"]} == {"Startup", "Free"}


def test_property_values_are_escaped_in_the_page_and_the_chart(environment, signed_in):
    set_properties(environment, identity="mallory", plan=HOSTILE_SCRIPT)
    now = timezone.now()
    track(environment, identity="mallory", event="Sign Up", timestamp=(now - timedelta(days=2)).isoformat())
    track(environment, identity="mallory", event="pageview", timestamp=(now - timedelta(days=1)).isoformat())
    for params in (
        {"type": "funnel", "step": ["Sign Up", "pageview"]},
        {"type": "retention", "start_event": "Sign Up", "return_event": "pageview", "interval": "day"},
    ):
        html = signed_in.get(
            "/reports/", {"env": environment.app_id, "group_by": "user.plan", **params}
        ).content.decode()
        assert HOSTILE_SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        names = {trace["name"] for trace in figure_of(html)["data"]}
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names


def test_periods_not_over_are_partial_and_the_curve_averages_the_finished_ones():
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday: the week of 11-23 is not over
    base = ReportQuery(date_from=date(2026, 11, 2), date_to=date(2026, 11, 25), range="custom", interval="week")
    query = RetentionQuery(start_event="Sign Up", return_event="pageview", periods=3, base=base)
    cohorts = [
        Cohort(date(2026, 11, 2), "All", 10, [10, 5, 4, 2]),  # week 3 (11-23) not over
        Cohort(date(2026, 11, 9), "All", 30, [30, 6, 3]),  # week 2 (11-23) not over
        Cohort(date(2026, 11, 23), "All", 4, [4]),  # its own week not over: its size can still grow
    ]
    result = RetentionResult(query, cohorts, computed_at=now)
    assert [result.partial_periods(cohort) for cohort in cohorts] == [[3], [2], [0]]
    rows = retention_rows(result)
    assert [[cell and cell["partial"] for cell in row["cells"]] for row in rows] == [
        [False, False, False, True],
        [False, False, True, None],
        [True, None, None, None],
    ]
    # Week 1: (5 + 6) / 40; week 2: only the first cohort's is over, 4 / 10; week 3: none is over, 2 / 10 partial.
    assert retention_curves(result) == [{"group": "All", "values": [100.0, 27.5, 40.0, 20.0], "partial": [3]}]


def test_durations_read_as_a_person_reads_them():
    assert [duration_text(value) for value in (None, 0.0, 59.4, 60, 3600, 44100, 86400, 93600, 90061)] == [
        "",
        "0s",
        "59s",
        "1m",
        "1h",
        "12h 15m",
        "1d",
        "1d 2h",
        "1d 1h",
    ]


def test_the_step_and_event_pickers_offer_page_views_defined_events_and_raw_events(world, signed_in):
    defined_event_create(environment=world, name="Clicked Buy", rules=[{"event": "click", "selector": "#buy"}])
    page = signed_in.get("/reports/", {"env": world.app_id, **FUNNEL_PAGE, "step": ["Clicked Buy", "Sign Up"]})
    assert page.status_code == 200
    html = page.content.decode()
    step_one = re.search(r'<select name="step" aria-label="Step 1">(.*?)</select>', html, re.S).group(1)
    assert '<option value="Clicked Buy" data-defined="true" selected>◆ Clicked Buy</option>' in step_one
    assert '<option value="pageview">Page views</option>' in step_one and '<option value="Sign Up">' in step_one
    # A defined event is offered once, among the defined ones, not again as a raw name.
    assert step_one.count('value="Clicked Buy"') == 1
    retention = signed_in.get("/reports/", {"env": world.app_id, **RETENTION_PAGE}).content.decode()
    start = re.search(r'<select name="start_event" id="start-event">(.*?)</select>', retention, re.S).group(1)
    assert 'data-defined="true"' in start and '<option value="Sign Up" selected>' in start
    trends = signed_in.get("/reports/", {"env": world.app_id, "event": "Clicked Buy"}).content.decode()
    assert '<option value="Clicked Buy" data-defined="true" selected>◆ Clicked Buy</option>' in trends
    assert '<option value="" selected>' not in re.search(
        r'<select name="event" id="event">(.*?)</select>', trends, re.S
    ).group(1)
