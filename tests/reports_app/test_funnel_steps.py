"""A funnel's steps are added and removed without JavaScript: "+ Add step" and each step's "×" are submit buttons
(`step_edit`) that bring the builder back with the step added or removed, every other choice kept and nothing
run; Run then runs it. Django's client here, then a real browser with JavaScript off (and on: Enter still runs
the report, the buttons still edit in place). The note under a grouped funnel or retention report."""

import re

import pytest

from reports_app.views_funnels import steps_edited
from tests.builders import CHROMIUM_AVAILABLE, PLANS, chromium_page, user_build
from tests.reports_app.browser import OUTPUT, open_builder, wait_for_chart

STEPS = ["Sign Up", "Activate", "Upgrade"]
CHOICES = {"type": "funnel", "window_count": "3", "window_unit": "h", "group_by": "user.plan", "range": "90d"}


def chosen_steps(html: str) -> list[str]:
    """Each step row's chosen event ("" for none), as the browser would send it."""
    rows = re.findall(r'<select name="step"[^>]*>(.*?)</select>', html, re.S)
    return [(re.search(r'<option value="([^"]*)" selected>', row) or [None, ""])[1] for row in rows]


def edit(signed_in, environment, steps: list[str], step_edit: str):
    page = signed_in.get("/reports/", {"env": environment.app_id, **CHOICES, "step": steps, "step_edit": step_edit})
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.django_db
def test_add_step_brings_back_the_form_with_one_more_empty_step_and_runs_nothing(story, signed_in):
    html = edit(signed_in, story, ["Sign Up", "Activate"], "add")
    assert chosen_steps(html) == ["Sign Up", "Activate", ""]
    assert 'value="remove-3"' in html and 'id="funnel-table"' not in html and "Steps changed" in html
    # Everything else as chosen: the window, the group, the range.
    assert 'name="window_count" id="window-count" min="1" max="8760" value="3"' in html
    assert '<option value="h" selected>' in html and '<option value="user.plan" selected>' in html
    assert '<option value="90d" selected>' in html


@pytest.mark.django_db
def test_remove_takes_out_that_step(story, signed_in):
    assert chosen_steps(edit(signed_in, story, STEPS, "remove-2")) == ["Sign Up", "Upgrade"]
    assert chosen_steps(edit(signed_in, story, [*STEPS, ""], "remove-4")) == STEPS
    # Of the last two rows, the one removed is emptied (as the script does): a funnel keeps two rows.
    assert chosen_steps(edit(signed_in, story, ["Sign Up", "Activate"], "remove-1")) == ["", "Activate"]


@pytest.mark.django_db
def test_ten_steps_at_most_and_a_strange_edit_changes_nothing(story, signed_in):
    ten = [f"e{number}" for number in range(10)]
    html = edit(signed_in, story, ten, "add")
    assert len(chosen_steps(html)) == 10
    assert re.search(r'id="add-step" formnovalidate hidden>', html)
    for strange in ("remove-0", "remove-11", "remove-", "remove-١", "remove-2x", "drop", "add " * 3):
        assert chosen_steps(edit(signed_in, story, STEPS, strange)) == STEPS, strange


def test_steps_edited_is_pure():
    steps = ["A", "B", "C"]
    assert steps_edited(steps, "add") == ["A", "B", "C", ""] and steps == ["A", "B", "C"]
    assert steps_edited(["A", "B"], "remove-2") == ["A", ""]


@pytest.mark.django_db
def test_run_leaves_the_empty_step_out(story, signed_in):
    page = signed_in.get("/reports/", {"env": story.app_id, **CHOICES, "step": ["Sign Up", "Activate", ""]})
    assert page.status_code == 200
    assert page.context["report_query"].steps == ("Sign Up", "Activate")
    assert [series.group for series in page.context["people_result"].series]


@pytest.mark.django_db
def test_a_grouped_funnel_and_retention_say_they_group_by_the_current_value(story, signed_in):
    funnel = signed_in.get("/reports/", {"env": story.app_id, **CHOICES, "step": STEPS}).content.decode()
    assert "Grouped by each person's current <strong>plan</strong>" in funnel
    assert "have left the group they started in" in funnel
    retention = {"type": "retention", "start_event": "Sign Up", "return_event": "pageview", "range": "90d"}
    by_account = signed_in.get("/reports/", {"env": story.app_id, **retention, "group_by": "account.tier"})
    assert "the current <strong>tier</strong> of each person's account" in by_account.content.decode()
    ungrouped = signed_in.get("/reports/", {"env": story.app_id, **CHOICES, "group_by": "", "step": STEPS})
    assert 'id="group-note"' not in ungrouped.content.decode()


def step_values(page) -> list[str]:
    return page.locator("#funnel-steps select[name=step]").evaluate_all("all => all.map(s => s.value)")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian chromium is not installed")
def test_without_javascript_a_funnel_is_built_step_by_step(live_server, transactional_db, story):
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1400, 1000, javascript=False) as page:
        open_builder(page, live_server.url, "funnel")
        page.select_option("#funnel-steps select[name=step] >> nth=0", "Sign Up")
        page.select_option("#funnel-steps select[name=step] >> nth=1", "Upgrade")
        page.select_option("#group_by", "user.plan")
        page.fill("#window-count", "3")
        page.click("#add-step")  # a submit: the page comes back with a third, empty step
        page.wait_for_load_state("load")
        assert step_values(page) == ["Sign Up", "Upgrade", ""]
        assert page.input_value("#group_by") == "user.plan" and page.input_value("#window-count") == "3"
        assert page.locator("#choose-events").is_visible()
        page.select_option("#funnel-steps select[name=step] >> nth=2", "Activate")
        page.click("[aria-label='Remove step 2']")  # the Upgrade step goes
        page.wait_for_load_state("load")
        assert step_values(page) == ["Sign Up", "Activate"]
        assert page.locator("#funnel-steps .step-number").all_inner_texts() == ["1", "2"]
        page.click("#add-step")
        page.wait_for_load_state("load")
        page.select_option("#funnel-steps select[name=step] >> nth=2", "Upgrade")
        page.fill("#window-count", "14")
        # Enter in the window's field runs the report (the form's default button), not step 1's "×".
        page.press("#window-count", "Enter")
        page.wait_for_load_state("load")
        assert page.locator("#funnel-table").is_visible()
        assert step_values(page) == STEPS and "step_edit" not in page.url
        assert page.locator("#funnel-table tbody tr").count() == 3 * 5  # three steps, five plans
        assert page.locator("#group-note").is_visible()
        # No empty chart box: a note says the table has the numbers.
        assert page.locator("#no-chart").is_visible() and not page.locator("#chart").is_visible()
        page.screenshot(path=str(OUTPUT / "funnel-without-javascript.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian chromium is not installed")
def test_with_javascript_the_buttons_edit_in_place_and_enter_runs(live_server, transactional_db, story):
    user_build("pm")
    with chromium_page(1400, 1000) as page:
        open_builder(page, live_server.url, "funnel")
        opened = page.url
        page.click("#add-step")
        page.click("#add-step")
        assert step_values(page) == ["", "", "", ""] and page.url == opened  # no request: edited in place
        page.click("[aria-label='Remove step 1']")
        assert page.locator("#funnel-steps .step-number").all_inner_texts() == ["1", "2", "3"]
        for position, name in enumerate(STEPS):
            page.select_option(f"#funnel-steps select[name=step] >> nth={position}", name)
        page.select_option("#group_by", "user.plan")
        page.press("#window-count", "Enter")
        page.wait_for_load_state("load")
        assert sorted(wait_for_chart(page)) == sorted(PLANS)
        assert step_values(page) == STEPS and not page.locator("#no-chart").is_visible()
