"""A real browser (Debian's chromium, headless, driven by Playwright) signs in, filters the Users view by
plan, opens a profile and follows its merge history into the admin. Screenshots go to test-output/."""

from pathlib import Path

import pytest

from tests.builders import CHROMIUM_AVAILABLE, chromium_page, days_ago, identify, person, track
from users_app.models import MergeRecord

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian's chromium is not installed"),
]


def test_filter_by_plan_open_a_profile_and_follow_its_merge_into_the_admin(
    live_server, environment, django_user_model, eager_celery
):
    django_user_model.objects.create_superuser("boss", password="pw-boss-123")
    person(environment, 11, identity="alice@example.com", plan="Startup", at=days_ago(1))
    person(environment, 12, identity="bob@example.com", plan="Growth", at=days_ago(2))
    person(environment, 13, plan="Startup", at=days_ago(3))
    track(environment, user_id=14, at=days_ago(0, hours=2), properties={"path": "/from-the-phone"})
    identify(environment, 14, "alice@example.com")  # a real merge (eager: the task runs on commit)
    merge = MergeRecord.objects.get(source__user_id=14)
    assert merge.status == MergeRecord.Status.DONE

    with chromium_page() as page:
        page.goto(f"{live_server.url}/users/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "pw-boss-123")
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#users-table")
        assert page.locator("a.user-link").all_inner_texts() == ["alice@example.com", "bob@example.com", "User 13"]
        page.wait_for_function("document.getElementById('user-count').innerText.includes('match')")
        assert "3 users match" in page.inner_text("#user-count")

        row = page.locator(".filter-row").first
        row.locator("input[name=f0]").fill("plan")
        row.locator("select[name=f0_op]").select_option("eq")
        row.locator("input[name=f0_v]").first.fill("Startup")
        page.click("#user-filters button[type=submit]")
        page.wait_for_url("**f0=plan**")
        assert page.locator("a.user-link").all_inner_texts() == ["alice@example.com", "User 13"]
        page.wait_for_function("document.getElementById('user-count').innerText.includes('match')")
        assert "2 users match" in page.inner_text("#user-count")
        assert "f0_v=Startup" in page.url  # the filter is in the URL, so it can be bookmarked
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "users-view-plan-startup.png"), full_page=True)

        # "is one of": users.js adds a value box without a round trip.
        row = page.locator(".filter-row").first
        row.locator("select[name=f0_op]").select_option("in")
        row.locator("button.add-value").click()
        row.locator("input[name=f0_v]").last.fill("Growth")
        page.click("#user-filters button[type=submit]")
        page.wait_for_url("**f0_v=Growth**")
        assert page.locator("a.user-link").all_inner_texts() == ["alice@example.com", "bob@example.com", "User 13"]
        page.go_back()
        page.wait_for_selector("#users-table")

        page.click("a.user-link >> text=alice@example.com")
        page.wait_for_selector("#merge-history")
        assert page.inner_text("h1.profile-name") == "alice@example.com"
        assert page.inner_text("#session-count") == "2"
        assert "Startup" in page.inner_text("#custom-properties")
        page.locator("#sessions details summary").first.click()
        assert "/from-the-phone" in page.inner_text("#sessions")
        page.screenshot(path=str(OUTPUT / "profile-page.png"), full_page=True)

        page.click(f"#merge-history a.merge-link >> text=#{merge.pk}")
        page.wait_for_url(f"**/admin/users_app/mergerecord/{merge.pk}/change/")
        body = page.inner_text("#content")
        assert "User 14" in body and "alice@example.com" in body
        assert "done" in body.lower()
        page.screenshot(path=str(OUTPUT / "admin-merge-record.png"), full_page=True)
        page.wait_for_load_state("networkidle")  # no request left half-served when the server stops
