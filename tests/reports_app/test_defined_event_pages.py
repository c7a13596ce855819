"""The defined events pages (SPEC 13): the list, "Define an event" (recent elements, pick, preview, save), the
preview endpoint, the report builder's list; escaping of every attacker-controlled value; and a real browser
defining an event from recent clicks and reporting on it."""

from pathlib import Path

import pytest

from events_app.defined_events.services import defined_event_create
from events_app.models import DefinedEvent
from tests.builders import CHROMIUM_AVAILABLE, HOSTILE_IMG, HOSTILE_SCRIPT, chromium_page, post_json, user_build
from tests.events_app.test_defined_events import BUY, BUY_LABEL, SELL, click

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
NEW = "/reports/defined-events/new/"


@pytest.fixture
def clicks(calls):
    events = [{"user_id": str(900 + n), "event": "click", "properties": click(BUY)} for n in range(3)]
    events += [{"user_id": "910", "event": "click", "properties": click(SELL, text="Sell")} for _ in range(2)]
    events += [{"user_id": "911", "event": "click", "properties": click(BUY_LABEL, tag="span")}]
    events += [{"user_id": "911", "event": "submit", "properties": {"target_tag": "form", "path": "/signup"}}]
    assert calls.track_bulk(events).json()["accepted"] == 7
    return calls.environment


def test_the_pages_need_a_sign_in(client, environment):
    for url in ("/reports/defined-events/", NEW, "/reports/defined-events/preview?event=click"):
        assert client.get(url).status_code == 302


def test_define_an_event_lists_recent_elements_most_frequent_first(clicks, signed_in):
    page = signed_in.get(NEW)
    assert page.status_code == 200
    elements = page.context["elements"]
    assert [(item.event, item.element_id, item.count) for item in elements][:2] == [
        ("click", "buy", 3),
        ("click", "sell", 2),
    ]
    assert elements[0].rule() == {"event": "click", "selector": "button#buy", "text": "Buy now", "path": "/pricing"}
    assert {item.event for item in elements} == {"click", "submit"}


def test_a_picked_element_shows_its_rule_and_preview_count(clicks, signed_in):
    page = signed_in.get(NEW, {"event": "click", "selector": "#buy", "path": "/pricing"})
    assert page.status_code == 200
    assert page.context["preview"].count == 4  # the span inside #buy too
    assert 'value="#buy"' in page.content.decode()
    assert signed_in.get(NEW, {"event": "click", "selector": "#buy", "text": "Buy now"}).context["preview"].count == 4
    assert signed_in.get(NEW, {"event": "click", "selector": ".btn"}).context["preview"].count == 6


def test_the_preview_endpoint_answers_the_count_or_the_field_in_error(clicks, signed_in):
    answer = signed_in.get("/reports/defined-events/preview", {"event": "click", "selector": "#sell"})
    assert answer.json() == {"count": 2, "scanned": 6, "days": 7}
    refused = signed_in.get("/reports/defined-events/preview", {"event": "click", "selector": "a:hover"})
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "selector"
    assert signed_in.get("/reports/defined-events/preview", {"event": ""}).json()["error"]["field"] == "event"


def test_saving_defines_the_event_and_the_list_counts_it(
    clicks, signed_in, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        saved = signed_in.post(
            NEW, {"name": "Clicked Buy", "event": "click", "selector": "#buy", "path": "", "text": ""}
        )
    assert saved.status_code == 302
    defined = DefinedEvent.objects.get()
    assert defined.rules == [{"event": "click", "selector": "#buy"}] and defined.backfill_status == "done"
    listing = signed_in.get("/reports/defined-events/")
    assert listing.context["rows"][0]["count"] == 4
    assert "Clicked Buy" in listing.content.decode()
    builder = signed_in.get("/reports/")
    assert builder.context["defined_event_names"] == ["Clicked Buy"]
    assert 'data-defined="true"' in builder.content.decode()


def test_a_bad_rule_is_shown_again_with_its_error(clicks, signed_in):
    page = signed_in.post(NEW, {"name": "X", "event": "click", "selector": "#a, #b"})
    assert page.status_code == 400
    text = page.content.decode()
    assert "Commas are not supported" in text and 'value="#a, #b"' in text
    assert DefinedEvent.objects.count() == 0


def test_a_report_page_on_a_defined_event_says_so_while_it_backfills(environment, signed_in):
    defined_event_create(environment=environment, name="Clicked Buy", rules=[{"event": "click"}])  # not committed
    page = signed_in.get("/reports/", {"event": "Clicked Buy", "range": "7d"})
    assert 'id="report-backfilling"' in page.content.decode()


def test_attacker_controlled_values_are_escaped(calls, environment, signed_in):
    hostile = {
        "target_tag": HOSTILE_SCRIPT,
        "target_id": HOSTILE_IMG,
        "target_text": HOSTILE_SCRIPT,
        "path": HOSTILE_IMG,
    }
    calls.track(user_id="920", event="click", properties={**hostile, "target_class": HOSTILE_IMG})
    defined_event_create(environment=environment, name=HOSTILE_SCRIPT, rules=[{"event": "click", "text": HOSTILE_IMG}])
    for url in (NEW, "/reports/defined-events/", "/reports/"):
        text = signed_in.get(url).content.decode()
        assert HOSTILE_SCRIPT not in text and HOSTILE_IMG not in text, url
    assert signed_in.get(NEW).context["elements"][0].selector == "*"  # no name the parser would refuse


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian chromium is not installed")
def test_a_pm_defines_an_event_from_recent_clicks_and_reports_on_it(
    live_server, transactional_db, environment, eager_celery
):
    """Events first (through the public ingest API, over HTTP), then the definition made on the page, then a report
    on its name counts them."""
    events = [{"user_id": str(930 + n), "event": "click", "properties": click(BUY)} for n in range(3)]
    events += [{"user_id": "940", "event": "click", "properties": click(SELL, text="Sell")}]
    status, body = post_json(f"{live_server.url}/api/track", {"app_id": environment.app_id, "events": events})
    assert (status, body["accepted"]) == (200, 4)
    user_build("pm")
    OUTPUT.mkdir(exist_ok=True)
    with chromium_page(1400, 900) as page:
        page.goto(f"{live_server.url}/accounts/login/?next={NEW}")
        page.fill("input[name=username]", "pm")
        page.fill("input[name=password]", "pw-123456")
        page.click("form.login button[type=submit]")
        page.wait_for_url(f"**{NEW}**")
        page.locator("#recent-elements a.pick").first.click()
        page.wait_for_load_state("load")
        assert page.input_value("#rule-selector") == "button#buy"
        assert page.inner_text("#preview-count") == "3"
        page.fill("#rule-selector", "#sell")  # with the text "Buy now" still in the rule
        page.wait_for_function("document.getElementById('preview-count')?.textContent === '0'")
        page.fill("#rule-selector", "#buy:hover")
        page.wait_for_selector("#rule-selector[aria-invalid=true]")
        page.fill("#rule-selector", "div > #buy")
        page.wait_for_function("document.getElementById('preview-count')?.textContent === '3'")
        page.fill("#defined-name", "Clicked Buy")
        page.screenshot(path=str(OUTPUT / "defined-event-new.png"), full_page=True)
        page.click("#save-defined")
        page.wait_for_selector("text=Defined “Clicked Buy”")
        assert page.locator("#defined-events tbody td.number").first.inner_text().startswith("3")
        page.screenshot(path=str(OUTPUT / "defined-events-list.png"), full_page=True)

        page.click("#defined-events >> text=Report")
        page.wait_for_load_state("load")
        assert page.locator("#event option:checked").get_attribute("data-defined") == "true"
        assert page.locator("#report-table tfoot th.number").all_inner_texts() == ["3"]
        page.screenshot(path=str(OUTPUT / "defined-event-report.png"), full_page=True)
    assert DefinedEvent.objects.get().rules == [
        {"event": "click", "selector": "div > #buy", "text": "Buy now", "path": "/pricing"}
    ]
