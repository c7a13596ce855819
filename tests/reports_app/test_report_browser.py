"""A real browser (headless chromium + Playwright) builds the sign-ups-by-plan report, sees Plotly draw it,
saves it and reopens it. Screenshots go to test-output/."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events_app.services.ingest import track_ingest, user_properties_ingest
from reports_app.models import SavedReport
from tests.builders import CHROMIUM_AVAILABLE, PLANS, chromium_page, user_build
from tests.reports_app.browser import OUTPUT, log_in, reopen, save_report, wait_for_chart

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


def test_build_save_and_reopen_sign_ups_by_plan(live_server, transactional_db, demo_sign_ups):
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1400, 1000) as page:
        log_in(page, live_server.url, "pm", "pw-123456")

        page.select_option("#measure", "unique_users")
        page.select_option("#event", "Sign Up")
        page.select_option("#group_by", "user.plan")
        page.select_option("#range", "90d")
        page.select_option("#interval", "week")
        page.select_option("#chart-type", "stacked_bar")
        page.click("#run-report")
        page.wait_for_load_state("load")

        names = wait_for_chart(page)
        assert sorted(names) == sorted(PLANS)
        # Plotly drew one bar trace per plan and a legend entry for each.
        assert page.locator("#chart .barlayer .trace").count() == 5
        assert page.locator("#chart .legend .traces").count() == 5
        totals = page.locator("#report-table tfoot th.number").all_inner_texts()
        assert totals == ["5"] * 5
        page.screenshot(path=str(OUTPUT / "reports-sign-ups-by-plan.png"), full_page=True)

        save_report(page, "Sign-ups by plan (browser)")
        reopen(page, live_server.url, "Sign-ups by plan (browser)")
        assert len(wait_for_chart(page)) == 5
        assert page.input_value("#group_by") == "user.plan"
        assert page.input_value("#measure") == "unique_users"
        page.screenshot(path=str(OUTPUT / "reports-reopened.png"), full_page=True)
    # Database reads after the browser is gone: inside Playwright's event loop Django would open (and leave
    # open) a separate, context-local connection.
    saved = SavedReport.objects.get(name="Sign-ups by plan (browser)")
    assert saved.params["group_by"] == "user.plan" and saved.params["chart"] == "stacked_bar"
