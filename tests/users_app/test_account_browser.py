"""A real browser (headless chromium + Playwright) goes from a profile to its account page and from there to a
colleague's profile, and a hostile property value stays text. Screenshot: test-output/account-page.png."""

from pathlib import Path

import pytest

from tests.builders import CHROMIUM_AVAILABLE, HOSTILE_SCRIPT, chromium_page, person, user_build
from users_app.services.accounts import account_properties_set

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian chromium is not installed"),
]


def test_profile_to_account_page_and_back(live_server, transactional_db, environment):
    environment.account_id_property = "company_id"
    environment.save()
    person(environment, 101, identity="alice@acme.test", plan="Growth", company_id="acme")
    person(environment, 102, identity="bob@acme.test", plan="Free", company_id="acme")
    account_properties_set(
        environment=environment,
        updates=[("acme", {"name": "Acme Inc", "tier": "Enterprise", "industry": "Software", "motto": HOSTILE_SCRIPT})],
    )
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1200, 800) as page:
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{live_server.url}/accounts/login/?next=/users/101/%3Fenv%3D{environment.app_id}")
        page.fill("input[name=username]", "pm")
        page.fill("input[name=password]", "pw-123456")
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#account-link")
        page.click("#account-link")
        page.wait_for_selector("#account-name")
        assert page.inner_text("#account-name") == "acme"
        assert page.inner_text("#account-user-count") == "2"
        assert HOSTILE_SCRIPT in page.inner_text("#account-properties")  # shown as text, never run
        page.screenshot(path=str(OUTPUT / "account-page.png"), full_page=True)
        page.click("text=bob@acme.test")
        page.wait_for_selector("h1.profile-name")
        assert page.inner_text("h1.profile-name") == "bob@acme.test"
        assert dialogs == []
