"""The report builder's funnel in production (SPEC 9): gunicorn with DEBUG off, collectstatic's hashed files,
PostgreSQL (tests/test_production.py's server). The data goes in through the public ingest API; an admin builds a
funnel by plan in a real Chromium, saves it and reopens it, and the page's numbers equal the read API's. Every
asset loads and no script fails. Screenshots: test-output/funnel-prod.png, funnel-reopened-prod.png."""

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime

from tests import test_production as server
from tests.builders import PLANS, plan_story
from tests.conftest import REPO
from tests.reports_app.browser import reopen, save_report, wait_for_chart
from tests.reports_app.test_funnel_browser import STEPS, build_funnel, funnel_from_api, funnel_on_page
from tests.test_production import OUTPUT, UNVERIFIED_TLS, log_in, new_page

pytestmark = server.pytestmark
production = server.production  # the server, started for this module as for that one

APP_ID = "1414213562"
API_KEY = "builder-production-key-0123456789"


def post(site, path: str, body: dict) -> None:
    request = urllib.request.Request(
        site.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, context=UNVERIFIED_TLS, timeout=30) as answer:
        assert answer.status == 200
        assert not json.loads(answer.read()).get("rejected")


def test_an_admin_builds_saves_and_reopens_a_funnel_by_plan(production, browser):
    subprocess.run(
        [sys.executable, "manage.py", "create_environment", "Ledger", "--app-id", APP_ID, "--api-key", API_KEY],
        cwd=REPO,
        env=production.env,
        check=True,
        capture_output=True,
    )
    users, events = plan_story(datetime.now(UTC))
    post(production, "/api/add_user_properties", {"app_id": APP_ID, "users": users})
    post(production, "/api/track", {"app_id": APP_ID, "events": events})

    page, assets, errors = new_page(browser, width=1400)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, production, "/reports/")
    page.goto(f"{production.url}/reports/?env={APP_ID}")
    build_funnel(page)
    assert sorted(wait_for_chart(page, timeout=30_000)) == sorted(PLANS)
    expected = funnel_from_api(page, production.url, API_KEY)
    assert funnel_on_page(page) == expected and len(expected) == len(PLANS)
    page.screenshot(path=str(OUTPUT / "funnel-prod.png"), full_page=True)

    save_report(page, "Funnel by plan (production)")
    reopen(page, production.url, "Funnel by plan (production)", APP_ID)
    assert sorted(wait_for_chart(page, timeout=30_000)) == sorted(PLANS)
    assert page.locator("#funnel-steps select[name=step]").evaluate_all("all => all.map(s => s.value)") == STEPS
    assert funnel_on_page(page) == expected
    # The CSV export of the reopened report answers (in production: the secure cookie over https).
    csv = page.request.get(production.url + page.get_attribute("#export-csv", "href"))
    assert csv.status == 200 and csv.text().startswith("group,step,event,people")
    page.screenshot(path=str(OUTPUT / "funnel-reopened-prod.png"), full_page=True)
    assets.assert_whole("/static/vendor/plotly-", "/static/cairn/reports.", "/static/cairn/cairn.")
    assert not errors
