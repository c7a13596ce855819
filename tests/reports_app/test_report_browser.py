"""A real browser (headless chromium + Playwright) builds the sign-ups-by-plan report, sees Plotly draw it,
saves it and reopens it. Screenshots go to test-output/."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from events_app.services.ingest import track_ingest, user_properties_ingest
from reports_app.models import SavedReport
from tests.builders import CHROMIUM_AVAILABLE, chromium_page, user_build

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
PLANS = ["Free", "Startup", "Growth", "Premium", "Enterprise"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian chromium is not installed"),
]


@pytest.fixture
def demo_sign_ups(environment):
    now = timezone.now()
    users, events = [], []
    for index in range(25):
        identity = f"person-{index}"
        users.append({"identity": identity, "properties": {"plan": PLANS[index % len(PLANS)]}})
        moment = now - timedelta(days=3 + 3 * index)
        events.append({"identity": identity, "event": "Sign Up", "timestamp": moment.isoformat()})
        events.append({"identity": identity, "event": "pageview", "timestamp": moment.isoformat()})
    assert user_properties_ingest(environment=environment, items=users).accepted == 25
    assert track_ingest(environment=environment, items=events).accepted == 50
    return environment


def trace_count(page) -> int:
    page.wait_for_selector("#chart[data-rendered=true] svg.main-svg", state="attached", timeout=20000)
    return page.evaluate("document.getElementById('chart').data.length")


def test_build_save_and_reopen_sign_ups_by_plan(live_server, transactional_db, demo_sign_ups):
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1400, 1000) as page:
        page.goto(f"{live_server.url}/accounts/login/?next=/reports/")
        page.fill("input[name=username]", "pm")
        page.fill("input[name=password]", "pw-123456")
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/reports/**")

        page.select_option("#measure", "unique_users")
        page.select_option("#event", "Sign Up")
        page.select_option("#group_by", "user.plan")
        page.select_option("#range", "90d")
        page.select_option("#interval", "week")
        page.select_option("#chart-type", "stacked_bar")
        page.click("#run-report")
        page.wait_for_load_state("load")

        assert trace_count(page) == 5
        names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
        assert sorted(names) == sorted(PLANS)
        # Plotly drew one bar trace per plan and a legend entry for each.
        assert page.locator("#chart .barlayer .trace").count() == 5
        assert page.locator("#chart .legend .traces").count() == 5
        totals = page.locator("#report-table tfoot th.number").all_inner_texts()
        assert totals == ["5"] * 5
        page.screenshot(path=str(OUTPUT / "reports-sign-ups-by-plan.png"), full_page=True)

        page.fill("#report-name", "Sign-ups by plan (browser)")
        page.click("#save-new")
        page.wait_for_selector("text=Saved “Sign-ups by plan (browser)”")

        page.goto(f"{live_server.url}/reports/")
        page.click("#saved-reports >> text=Sign-ups by plan (browser)")
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == "Sign-ups by plan (browser)"
        assert trace_count(page) == 5
        assert page.input_value("#group_by") == "user.plan"
        assert page.input_value("#measure") == "unique_users"
        page.screenshot(path=str(OUTPUT / "reports-reopened.png"), full_page=True)
    # Database reads after the browser is gone: inside Playwright's event loop Django would open (and leave
    # open) a separate, context-local connection.
    saved = SavedReport.objects.get(name="Sign-ups by plan (browser)")
    assert saved.params["group_by"] == "user.plan" and saved.params["chart"] == "stacked_bar"
