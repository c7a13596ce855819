"""The page, the CSV export and GET /api/v1/reports/query give the same numbers; bad input is a 400."""

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from tests.builders import set_properties, track
from tests.conftest import OTHER_API_KEY

pytestmark = pytest.mark.django_db

HEADLINE = {
    "measure": "unique_users",
    "event": "Sign Up",
    "group_by": "user.plan",
    "from": "2026-11-02",
    "to": "2026-11-15",
    "interval": "week",
}
EXPECTED = {
    "buckets": ["2026-11-02", "2026-11-09"],
    "series": [
        {"group": "(none)", "values": [1, 0], "total": 1},
        {"group": "Free", "values": [1, 0], "total": 1},
        {"group": "Growth", "values": [0, 1], "total": 1},
        {"group": "Startup", "values": [1, 0], "total": 1},
    ],
    "partial_buckets": [],  # the range is over
}


class TableParser(HTMLParser):
    """The report page's data table as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows, self.inside, self.cell = [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "report-table") in attrs:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def page_table(html: str) -> list[list[str]]:
    parser = TableParser()
    parser.feed(html)
    return parser.rows


def test_api_answers_spec_7(world, api):
    answer = api.get("/api/v1/reports/query", **HEADLINE)
    assert answer.status_code == 200
    assert answer.json() == EXPECTED


def test_api_where_is_repeatable(world, api):
    answer = api.get(
        "/api/v1/reports/query?measure=events&from=2026-11-02&to=2026-11-15&interval=week"
        "&where=user.plan%3Din%3AStartup%2CFree&where=event.path%3D%2Fpricing"
    )
    assert answer.status_code == 200
    assert answer.json()["series"] == [{"group": "All", "values": [2, 1], "total": 3}]


def test_page_csv_and_api_agree(world, api, signed_in):
    from_api = api.get("/api/v1/reports/query", **HEADLINE).json()
    page = signed_in.get("/reports/", {**HEADLINE, "env": world.app_id, "chart": "stacked_bar"})
    assert page.status_code == 200
    html = page.content.decode()
    rows = page_table(html)
    assert rows[0] == ["Week", *(item["group"] for item in from_api["series"])]
    assert rows[1:-1] == [
        [bucket, *(str(item["values"][position]) for item in from_api["series"])]
        for position, bucket in enumerate(from_api["buckets"])
    ]
    assert rows[-1][1:] == [str(item["total"]) for item in from_api["series"]]
    figure = json.loads(
        re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert [trace["name"] for trace in figure["data"]] == ["(none)", "Free", "Growth", "Startup"]
    assert [list(trace["y"]) for trace in figure["data"]] == [item["values"] for item in from_api["series"]]
    assert figure["layout"]["barmode"] == "stack"

    exported = signed_in.get("/reports/export.csv", {**HEADLINE, "env": world.app_id})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.content.decode())))
    assert table == [
        ["bucket", "(none)", "Free", "Growth", "Startup"],
        ["2026-11-02", "1", "1", "0", "1"],
        ["2026-11-09", "0", "0", "1", "0"],
        ["Total", "1", "1", "1", "1"],
    ]


def test_page_filter_rows_mean_the_same_as_where(world, api, signed_in):
    rows = signed_in.get(
        "/reports/",
        {
            "env": world.app_id,
            "from": "2026-11-02",
            "to": "2026-11-15",
            "interval": "week",
            "filter_field": ["user.plan", ""],
            "filter_op": ["in", "eq"],
            "filter_value": ["Startup,Free", ""],
        },
    )
    assert rows.status_code == 200
    assert (
        rows.context["result"].as_dict()
        == api.get(
            "/api/v1/reports/query",
            **{"from": "2026-11-02", "to": "2026-11-15", "interval": "week", "where": "user.plan=in:Startup,Free"},
        ).json()
    )
    # The link to the report carries the same filter as a `where`, and reproduces it.
    share = rows.context["share_url"]
    assert "where=user.plan%3Din%3AStartup%2CFree" in share
    assert signed_in.get(share).context["result"].as_dict() == rows.context["result"].as_dict()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"measure": "clicks"}, "measure"),
        ({"interval": "year"}, "interval"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "from"),
        ({"group_by": "plan"}, "group_by"),
        ({"group_by": "session.plan"}, "group_by"),
        ({"where": "plan"}, "where"),
        ({"where": "user.=x"}, "where"),
        ({"where": "user.plan=" + "x" * 1025}, "where"),
        ({"from": "2000-01-01", "to": "2026-11-01", "interval": "hour"}, "interval"),
        ({"event": "e" * 1025}, "event"),
        ({"event": "Sign\x00Up"}, "event"),
        ({"where": "user.plan=Start\x00up"}, "where"),
        ({"group_by": "event.pa\x00th"}, "group_by"),
    ],
)
def test_api_bad_parameters_are_400_naming_the_field(environment, api, params, field):
    answer = api.get("/api/v1/reports/query", **params)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field


def test_api_needs_the_environments_key(world, api):
    assert api.get("/api/v1/reports/query", api_key="", **HEADLINE).status_code == 401
    assert api.get("/api/v1/reports/query", api_key="wrong-key-0000000000", **HEADLINE).status_code == 401


def test_api_key_sees_only_its_environment(world, other_environment, api):
    track(other_environment, identity="zed", event="Sign Up", timestamp="2026-11-03T10:00:00Z")
    answer = api.get("/api/v1/reports/query", api_key=OTHER_API_KEY, **HEADLINE).json()
    assert answer["series"] == [{"group": "(none)", "values": [1, 0], "total": 1}]


def test_page_bad_parameters_show_the_error_not_a_500(world, signed_in):
    page = signed_in.get("/reports/", {"env": world.app_id, "interval": "fortnight"})
    assert page.status_code == 400
    assert "interval" in page.content.decode()


def test_page_needs_login(world, client):
    answer = client.get("/reports/")
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_page_escapes_property_values(environment, signed_in):
    hostile = '<img src=x onerror="alert(1)">'
    set_properties(environment, identity="mallory", plan=hostile)
    track(environment, identity="mallory", event="Sign Up", timestamp="2026-11-03T10:00:00Z")
    page = signed_in.get("/reports/", {"group_by": "user.plan", "from": "2026-11-02", "to": "2026-11-15"})
    html = page.content.decode()
    assert hostile not in html
    assert "&lt;img src=x" in html
    exported = signed_in.get(
        "/reports/export.csv",
        {"group_by": "user.plan", "from": "2026-11-02", "to": "2026-11-15", "where": "user.plan=*"},
    )
    assert next(csv.reader(io.StringIO(exported.content.decode())))[1] == hostile


FORMULAS = [
    '=HYPERLINK("http://evil")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "   @SUM(A1)",
    "\n\t -1+1",
    "\u3000=1+1",
    "\uff1dcmd|' /C calc'!A0",
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(A1)",
    "\ttext after a tab",
    "\rtext after a CR",
    "-",
    "-5e3",
    "-0x1",
]


@pytest.mark.parametrize("hostile", FORMULAS)
def test_csv_cells_cannot_start_a_formula(environment, signed_in, hostile):
    set_properties(environment, identity="mallory", plan=hostile)
    track(environment, identity="mallory", event="Sign Up", timestamp="2026-11-03T10:00:00Z")
    exported = signed_in.get("/reports/export.csv", {"group_by": "user.plan", "from": "2026-11-02", "to": "2026-11-15"})
    header = next(csv.reader(io.StringIO(exported.content.decode(), newline="")))
    # The value comes back whole (nothing of it is lost), behind a quote that makes a spreadsheet show it as text.
    assert header[1] == "'" + hostile


@pytest.mark.parametrize("plain", ["Startup", "-5", "-12.5", "42", "3.14", "A=B", "a -b", "  spaced", "e-mail"])
def test_csv_keeps_numbers_and_ordinary_text_as_they_are(environment, signed_in, plain):
    set_properties(environment, identity="mallory", plan=plain)
    track(environment, identity="mallory", event="Sign Up", timestamp="2026-11-03T10:00:00Z")
    exported = signed_in.get(
        "/reports/export.csv", {"group_by": "user.plan", "from": "2026-11-02", "to": "2026-11-15", "interval": "week"}
    )
    table = list(csv.reader(io.StringIO(exported.content.decode(), newline="")))
    assert table[0][1] == plain
    assert table[1:] == [["2026-11-02", "1"], ["2026-11-09", "0"], ["Total", "1"]]


def test_openapi_schema_documents_the_query(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/reports/query" in text
    assert "user.plan=in:Startup,Growth" in text


def test_builder_offers_the_environments_events_and_properties(world, other_environment, signed_in):
    set_properties(other_environment, identity="zed", secret_key_elsewhere="x")
    track(other_environment, identity="zed", event="Elsewhere", timestamp="2026-11-03T10:00:00Z")
    page = signed_in.get("/reports/", {"env": world.app_id})
    assert page.context["event_names"] == ["Sign Up", "Upgrade"]  # page views have their own choice
    choices = page.context["group_choices"]
    assert "user.plan" in choices and "event.path" in choices and "event.source" in choices
    assert "user.secret_key_elsewhere" not in choices


@pytest.mark.parametrize(
    ("chart", "trace_type", "barmode"),
    [
        ("line", "scatter", "group"),
        ("bar", "bar", "group"),
        ("stacked_bar", "bar", "stack"),
    ],
)
def test_chart_types(world, signed_in, chart, trace_type, barmode):
    page = signed_in.get(
        "/reports/",
        {
            "env": world.app_id,
            "group_by": "user.plan",
            "from": "2026-11-02",
            "to": "2026-11-15",
            "interval": "week",
            "chart": chart,
        },
    )
    figure = page.context["figure"]
    assert {trace["type"] for trace in figure["data"]} == {trace_type}
    assert len(figure["data"]) == 4
    assert figure["layout"]["barmode"] == barmode


def test_table_chart_shows_only_the_table(world, signed_in):
    page = signed_in.get(
        "/reports/",
        {
            "env": world.app_id,
            "group_by": "user.plan",
            "from": "2026-11-02",
            "to": "2026-11-15",
            "interval": "week",
            "chart": "table",
        },
    )
    html = page.content.decode()
    assert 'id="chart-data"' not in html
    assert page_table(html)[-1] == ["Total", "4", "3", "1", "1"]
