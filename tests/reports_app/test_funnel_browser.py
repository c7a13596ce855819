"""A real browser (headless chromium + Playwright) builds a funnel by plan and a weekly retention report by plan
in the report builder, sees Plotly draw them, saves each and reopens it; the page's numbers equal the API's.
The same funnel in production mode: tests/test_builder_production.py (which uses the helpers here and in
tests/reports_app/browser.py).
Screenshots: test-output/funnel-by-plan.png, funnel-reopened.png, retention-by-plan.png, retention-reopened.png."""

import pytest

from reports_app.models import SavedReport
from tests.builders import CHROMIUM_AVAILABLE, PLANS, chromium_page, user_build
from tests.conftest import API_KEY
from tests.reports_app.browser import (
    OUTPUT,
    api_get,
    choose_type,
    log_in,
    open_builder,
    reopen,
    save_report,
    wait_for_chart,
)

STEPS = ["Sign Up", "Activate", "Upgrade"]
FUNNEL_API = {"step": STEPS, "window": "14d", "group_by": "user.plan", "range": "90d"}
RETENTION_API = {
    "start_event": "Sign Up",
    "return_event": "pageview",
    "interval": "week",
    "periods": "8",
    "group_by": "user.plan",
    "range": "90d",
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian chromium is not installed"),
]


def build_funnel(page) -> None:
    """Sign Up -> Activate -> Upgrade within 14 days, by plan, the last 90 days: through the builder's controls
    (the page is the builder)."""
    choose_type(page, "funnel")
    steps = page.locator("#funnel-steps select[name=step]")
    steps.nth(0).select_option("Sign Up")
    steps.nth(1).select_option("Activate")
    page.click("#add-step")
    assert page.locator("#funnel-steps .step-number").all_inner_texts() == ["1", "2", "3"]
    steps.nth(2).select_option("Upgrade")
    page.fill("#window-count", "14")
    page.select_option("#window-unit", "d")
    page.select_option("#group_by", "user.plan")
    page.select_option("#range", "90d")
    page.click("#run-report")
    page.wait_for_load_state("load")


def funnel_on_page(page) -> dict[str, list[int]]:
    """The data table's people per group and step."""
    counts, group = {}, None
    for row in page.locator("#funnel-table tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        group = cells[0] or group
        counts.setdefault(group, []).append(int(cells[2].replace(",", "")))
    return counts


def funnel_from_api(page, base_url: str, api_key: str) -> dict[str, list[int]]:
    answer = api_get(page, base_url, "/api/v1/reports/funnel", FUNNEL_API, api_key)
    return {series["group"]: series["counts"] for series in answer["series"]}


def test_build_save_and_reopen_a_funnel_by_plan(live_server, transactional_db, story):
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1400, 1000) as page:
        log_in(page, live_server.url, "pm", "pw-123456")
        build_funnel(page)
        assert sorted(wait_for_chart(page)) == sorted(PLANS)
        assert page.locator("#chart .barlayer .trace").count() == 5
        # Each bar carries its conversion label; step 1's is 100 %.
        labels = page.locator("#chart .barlayer .trace").first.locator("text").all_text_contents()
        assert labels[0] == "100%" and labels[1].count("%") == 2
        expected = funnel_from_api(page, live_server.url, API_KEY)
        assert funnel_on_page(page) == expected and len(expected) == 5
        page.screenshot(path=str(OUTPUT / "funnel-by-plan.png"), full_page=True)

        save_report(page, "Funnel by plan (browser)")
        reopen(page, live_server.url, "Funnel by plan (browser)")
        assert sorted(wait_for_chart(page)) == sorted(PLANS)
        assert page.locator("#funnel-steps select[name=step]").evaluate_all("all => all.map(s => s.value)") == STEPS
        assert page.input_value("#group_by") == "user.plan" and page.input_value("#window-count") == "14"
        assert funnel_on_page(page) == expected
        assert page.locator("#type-funnel.current").count() == 1
        page.screenshot(path=str(OUTPUT / "funnel-reopened.png"), full_page=True)
    saved = SavedReport.objects.get(name="Funnel by plan (browser)")
    assert saved.params["type"] == "funnel" and saved.params["step"] == STEPS and saved.params["window"] == "14d"


def cohorts_on_page(page) -> list[dict]:
    """The cohort table as the API writes cohorts (each cell's people is its data-people; a cell marked not over
    yet is one of the cohort's partial_periods)."""
    cohorts = []
    for row in page.locator("#cohort-table tbody tr").all():
        cells = row.locator("td")
        periods = row.locator("td[data-people]").evaluate_all(
            "all => all.map(cell => [cell.dataset.people, cell.classList.contains('partial')])"
        )
        cohorts.append(
            {
                "start": cells.nth(0).inner_text(),
                "group": cells.nth(1).inner_text(),
                "size": int(cells.nth(2).inner_text().replace(",", "")),
                "returned": [int(people) for people, _ in periods],
                "partial_periods": [position for position, (_, partial) in enumerate(periods) if partial],
            }
        )
    return cohorts


def curve_groups(trace_names: list[str]) -> set[str]:
    # A curve's dotted tail (periods no cohort has finished) is a trace of its own, in the same legend group.
    return {name.removesuffix(" (not over yet)") for name in trace_names}


def test_build_save_and_reopen_weekly_retention_by_plan(live_server, transactional_db, story):
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1400, 1100) as page:
        open_builder(page, live_server.url, "retention")
        page.select_option("#start-event", "Sign Up")
        page.select_option("#return-event", "pageview")
        page.select_option("#retention-interval", "week")
        page.fill("#periods", "8")
        page.select_option("#group_by", "user.plan")
        page.select_option("#range", "90d")
        page.click("#run-report")
        page.wait_for_load_state("load")

        assert curve_groups(wait_for_chart(page)) == set(PLANS)
        expected = api_get(page, live_server.url, "/api/v1/reports/retention", RETENTION_API, API_KEY)["cohorts"]
        assert cohorts_on_page(page) == expected and expected
        # The week not over yet is marked in the triangle (the story's last sign-up was 4 days ago, at most 6
        # days into this week, so some cohort's cell is this week's) and drawn dotted.
        assert page.locator("#cohort-table td.partial").count() >= 1
        assert page.locator("#partial-note").is_visible()
        page.screenshot(path=str(OUTPUT / "retention-by-plan.png"), full_page=True)

        save_report(page, "Retention by plan (browser)")
        reopen(page, live_server.url, "Retention by plan (browser)")
        assert curve_groups(wait_for_chart(page)) == set(PLANS)
        assert page.input_value("#start-event") == "Sign Up" and page.input_value("#return-event") == "pageview"
        assert page.input_value("#periods") == "8" and page.input_value("#retention-interval") == "week"
        assert cohorts_on_page(page) == expected
        page.screenshot(path=str(OUTPUT / "retention-reopened.png"), full_page=True)
    saved = SavedReport.objects.get(name="Retention by plan (browser)")
    assert saved.params["type"] == "retention" and saved.params["periods"] == "8"
