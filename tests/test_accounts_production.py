"""The pages of accounts (SPEC 11) and of deleting a person (SPEC 12) in production (SPEC 9), as an admin in a real
Chromium: gunicorn with DEBUG off, collectstatic's hashed and compressed files, a Celery worker on Redis, PostgreSQL
(tests/test_production.py's server). The data is demo-like (the demo's companies, people at a few of them) and
sent through the public ingest API, as an integration would. Each page must load its scripts and styles with no
console error and show the right numbers. Screenshots: test-output/account-page-prod.png,
users-account-filter-prod.png, delete-confirm-prod.png, account-report-prod.png (and the accounts admin's
accounts-admin-prod.png, account-admin-page-prod.png)."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from events_app.services.demo_data import demo_companies
from tests import test_production as server
from tests.conftest import REPO, wait_for
from tests.test_production import ADMIN_PASSWORD, OUTPUT, UNVERIFIED_TLS, new_page

pytestmark = server.pytestmark
production = server.production  # the server, started for this module as for that one

APP_ID = "1618033988"
API_KEY = "accounts-production-key-0123456789"
FIRST_NAMES = ["ada", "alan", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances", "edsger"]


class Companies:
    """Four of the demo's companies, one of each tier where the demo has one, and who works at each."""

    def __init__(self):
        by_tier = {}
        for company in demo_companies(7):
            by_tier.setdefault(company["properties"]["tier"], company)
        self.companies = list(by_tier.values())
        # Two people at each company but the last, which gets four; then a throwaway person with no company.
        self.people = [
            (f"{FIRST_NAMES[(index * 2 + offset) % len(FIRST_NAMES)]}{index}@{company['account_id']}.example", company)
            for index, company in enumerate(self.companies)
            for offset in range(4 if company is self.companies[-1] else 2)
        ]

    @property
    def target(self) -> dict:
        return self.companies[-1]

    def people_of_tier(self, tier: str) -> list[str]:
        return sorted(identity for identity, company in self.people if company["properties"]["tier"] == tier)


def post(site, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        site.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, context=UNVERIFIED_TLS, timeout=30) as answer:
        assert answer.status == 200
        result = json.loads(answer.read())
    assert not result.get("rejected"), result
    return result


def read_api(site, path: str):
    request = urllib.request.Request(site.url + path, headers={"Authorization": f"Bearer {API_KEY}"})
    try:
        with urllib.request.urlopen(request, context=UNVERIFIED_TLS, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, None


@pytest.fixture(scope="module")
def quarry(production):
    """An environment with an account id property (the documented command), the companies and their people."""
    subprocess.run(
        [sys.executable, "manage.py", "create_environment", "Quarry", "--app-id", APP_ID, "--api-key", API_KEY]
        + ["--account-property", "company_id"],
        cwd=REPO,
        env=production.env,
        check=True,
        capture_output=True,
    )
    data = Companies()
    post(production, "/api/add_account_properties", {"app_id": APP_ID, "accounts": data.companies})
    now = datetime.now(UTC)
    events = []
    for index, (identity, _) in enumerate(data.people):
        signed_up = now - timedelta(days=index % 5, hours=index + 1)
        events += [
            {
                "identity": identity,
                "event": "pageview",
                "timestamp": signed_up.isoformat(),
                "properties": {"path": "/"},
            },
            {"identity": identity, "event": "Sign Up", "timestamp": (signed_up + timedelta(minutes=2)).isoformat()},
        ]
    events.append({"identity": "throwaway@example.com", "event": "pageview", "properties": {"path": "/pricing"}})
    post(production, "/api/track", {"app_id": APP_ID, "events": events})
    users = [
        {"identity": identity, "properties": {"company_id": company["account_id"], "plan": "Growth"}}
        for identity, company in data.people
    ]
    post(production, "/api/add_user_properties", {"app_id": APP_ID, "users": users})
    return data


def signed_in_page(site, browser, path: str):
    """A page signed in as the admin, on `path`; with the errors the console and the page report, and the static
    files it asked for."""
    page, assets, page_errors = new_page(browser)
    page.on("console", lambda message: page_errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{site.url}/accounts/login/?{urlencode({'next': path})}")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(site.url + path.split("?")[0] + "*")
    return page, assets, page_errors


def test_the_account_page(production, quarry, browser):
    target = quarry.target
    page, assets, errors = signed_in_page(
        production, browser, f"/users/account/?{urlencode({'env': APP_ID, 'id': target['account_id']})}"
    )
    page.wait_for_selector("#account-name")
    assert page.inner_text("#account-name") == target["account_id"]
    assert page.inner_text("#account-user-count") == "4"
    properties = page.inner_text("#account-properties")
    for key, value in target["properties"].items():
        assert key in properties and str(value) in properties
    assert sorted(page.locator("#account-users a.user-link").all_inner_texts()) == sorted(
        identity for identity, company in quarry.people if company is target
    )
    # The page's stylesheet applied: the users table has the grid's styles, not the browser's defaults.
    assert page.evaluate("getComputedStyle(document.querySelector('table.grid')).borderCollapse") == "collapse"
    page.screenshot(path=str(OUTPUT / "account-page-prod.png"), full_page=True)
    assets.assert_whole("/static/cairn/users.", "/static/cairn/cairn.")
    assert not errors


def test_the_users_view_filtered_by_account_tier(production, quarry, browser):
    tier = quarry.target["properties"]["tier"]
    params = {"env": APP_ID, "period": "30d", "f0": "account.tier", "f0_op": "eq", "f0_v": tier}
    query = urlencode([*params.items(), ("col", "plan"), ("col", "company_id"), ("col", "account.tier")])
    page, assets, errors = signed_in_page(production, browser, f"/users/?{query}")
    page.wait_for_selector("#users-table")
    expected = quarry.people_of_tier(tier)
    assert sorted(page.locator("#users-table a.user-link").all_inner_texts()) == expected
    # users.js ran: it fetched the count (the page does not wait for it) and hid the value boxes of no use.
    page.wait_for_function("() => !document.querySelector('#user-count .pending')?.textContent.includes('Counting')")
    assert page.inner_text("#user-count").startswith(f"{len(expected)} users match")
    assert page.input_value("input[name=f0]") == "account.tier"
    headers = page.locator("#users-table thead th").all_inner_texts()
    assert headers[-3:] == ["plan", "company_id", "account.tier"]
    assert set(page.locator("#users-table tbody td:last-child").all_inner_texts()) == {tier}
    suggestions = page.eval_on_selector_all("#property-keys option", "options => options.map(o => o.value)")
    assert {"account.tier", "account.industry", "account.employees", "plan", "company_id"} <= set(suggestions)
    page.screenshot(path=str(OUTPUT / "users-account-filter-prod.png"), full_page=True)
    # An account cell leads to its account page.
    page.locator("#users-table a.account-link").first.click()
    page.wait_for_selector("#account-name")
    assert page.inner_text("#account-name") == quarry.target["account_id"]
    assets.assert_whole("/static/cairn/users.", "/static/cairn/cairn.")
    assert not errors


def test_an_account_report_draws_its_chart(production, quarry, browser):
    report = {"env": APP_ID, "measure": "unique_accounts", "event": "Sign Up", "group_by": "account.tier"}
    page, assets, errors = signed_in_page(
        production, browser, f"/reports/?{urlencode({**report, 'range': '30d', 'interval': 'week', 'chart': 'bar'})}"
    )
    page.wait_for_selector("#chart[data-rendered=true] svg.main-svg", state="attached", timeout=30_000)
    # Plotly drew one bar trace per tier, and the table's totals are the distinct accounts of each tier.
    traces = page.evaluate("() => document.getElementById('chart').data.map(trace => trace.name)")
    tiers = Counter(company["properties"]["tier"] for company in quarry.companies)
    assert sorted(traces) == sorted(tiers)
    totals = dict(
        zip(
            page.locator("#report-table thead th.number").all_inner_texts(),
            page.locator("#report-table tfoot th.number").all_inner_texts(),
            strict=True,
        )
    )
    assert totals == {tier: str(count) for tier, count in tiers.items()}
    assert page.locator("#chart .legend").count() == 1 and page.locator("#chart g.trace.bars").count() == len(tiers)
    page.screenshot(path=str(OUTPUT / "account-report-prod.png"), full_page=True)
    assets.assert_whole("/static/vendor/plotly-", "/static/cairn/reports.", "/static/cairn/cairn.")
    assert not errors


def test_the_admin_lists_accounts_and_confirms_deleting_a_throwaway_person(production, quarry, browser):
    target = quarry.target
    page, assets, errors = signed_in_page(
        production, browser, f"/admin/users_app/accountproperty/?{urlencode({'q': target['account_id']})}"
    )
    row = page.locator("#result_list tbody tr").first
    assert row.locator("th").inner_text() == target["account_id"]
    environment, property_count, _last_set, user_count, _link = row.locator("td").all_inner_texts()
    assert (environment, property_count, user_count) == ("Quarry", str(len(target["properties"])), "4")
    assert page.inner_text("p.paginator").startswith("1 account")
    page.screenshot(path=str(OUTPUT / "accounts-admin-prod.png"), full_page=True)
    row.locator("th a").click()
    page.wait_for_selector("#account-properties")
    keys = page.locator("#account-properties tr.account-property td:first-child").all_inner_texts()
    assert keys == sorted(target["properties"])
    page.screenshot(path=str(OUTPUT / "account-admin-page-prod.png"), full_page=True)

    page.goto(f"{production.url}/admin/users_app/profile/?q=throwaway%40example.com")
    page.locator("#result_list tbody tr", has_text="throwaway@example.com").locator("th a").click()
    page.click("a.deletelink:text('Delete this person')")
    page.wait_for_selector("ul.deletion-preview")
    preview = page.inner_text("ul.deletion-preview")
    assert "1 profile " in preview and "1 event" in preview and "1 session" in preview
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"
    page.screenshot(path=str(OUTPUT / "delete-confirm-prod.png"), full_page=True)
    page.click("input[type=submit][value='Yes, delete this person']")
    page.wait_for_selector(".messagelist .success")
    # The worker runs the deletion: the person is gone from the read API; the others are not.
    wait_for(lambda: read_api(production, "/api/v1/users?identity=throwaway%40example.com")[0] == 404, timeout=60)
    assert read_api(production, f"/api/v1/users?{urlencode({'identity': quarry.people[0][0]})}")[0] == 200
    assets.assert_whole("/static/admin/css/base.")
    assert not errors
