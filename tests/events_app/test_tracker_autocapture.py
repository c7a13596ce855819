"""Heap's two snippets with only the script URL changed, every method they declare, autocapture and its privacy
rules (issue 14, SPEC 13), in a real browser (Debian's chromium, headless) against a live server. The shop page
is another site (tests/heap_shop.py); production mode has its own run (tests/test_production_heap_snippets.py)."""

import json
import os
from pathlib import Path

import pytest
from django.utils import timezone

from events_app.models import Event
from tests.builders import CHROMIUM_AVAILABLE, environment_build, heap_snippet
from tests.conftest import API_KEY
from tests.heap_shop import (
    AUTOCAPTURED,
    after_load,
    check_the_shop,
    queued_calls,
    sent_bodies,
    shop_page,
    timeline,
    use_the_shop,
    wait_idle,
)

APP_ID = "5151515151"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"
# Every method either snippet declares, and identifyHashed, which some installs list.
CLASSIC_METHODS = (
    "addEventProperties addUserProperties clearEventProperties identify resetIdentity removeEventProperty "
    "setEventProperties track unsetEventProperty"
).split()
HEAP5_METHODS = (
    "init startTracking stopTracking track resetIdentity identify getSessionId getUserId getIdentity "
    "addUserProperties addEventProperties removeEventProperty clearEventProperties addAccountProperties addAdapter "
    "addTransformer addTransformerFn onReady addPageviewProperties removePageviewProperty clearPageviewProperties "
    "trackPageview"
).split()
ALL_METHODS = sorted({*CLASSIC_METHODS, *HEAP5_METHODS, "identifyHashed"})

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian's chromium is not installed"),
]
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread


@pytest.fixture
def site(transactional_db, live_server):
    """The environment (accounts by `company_id`), Cairn's address, and the shop's origin (another one)."""
    origin = live_server.url.replace("localhost", "127.0.0.1")
    environment = environment_build(name="Shop", app_id=APP_ID, api_key=API_KEY)
    environment.account_id_property = "company_id"
    environment.allowed_origins = [origin]
    environment.save()
    return live_server.url, origin


def read_with(api):
    def read(path: str) -> dict:
        answer = api.get(path)
        assert answer.status_code == 200, (path, answer.content[:300])
        return answer.json()

    return read


def open_shop(browser, site, kind="heap5", *, url="host", options="", queued="", marker="nothing", path="shop"):
    cairn, origin = site
    context = browser.new_context()
    snippet = heap_snippet(kind, cairn=cairn, app_id=APP_ID, url=url, options=options)
    address = shop_page(context, origin, snippet, queued=queued, marker=marker, path=path)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, address, errors


@pytest.mark.parametrize(
    "kind, url", [("heap5", "host"), ("heap5", "static"), ("classic", "host"), ("classic", "static")]
)
def test_each_snippet_with_only_its_url_changed_sends_everything(browser, site, api, kind, url):
    identity, account, marker = f"ada-{kind}-{url}@example.com", f"acme-{kind}-{url}", f"Mk{kind}{url}Zq93"
    queued = queued_calls(kind, identity=identity, account=account)
    context, page, address, errors = open_shop(browser, site, kind, url=url, queued=queued, marker=marker)
    bodies = sent_bodies(page)
    page.goto(address)
    wait_idle(page)
    after_load(page, kind)
    assert page.evaluate("() => [heap.appid, heap.envId]") == [APP_ID, APP_ID if kind == "heap5" else None]
    use_the_shop(page, marker)
    page.screenshot(path=str(SCREENSHOTS / f"heap-snippet-{kind}-{url}.png"))
    check_the_shop(read_with(api), identity=identity, account=account, marker=marker, bodies=bodies)
    assert errors == []
    context.close()


def test_calls_queued_before_load_replay_in_order_and_pageview_properties_describe_the_page(browser, site, api):
    queued = """
      heap.addPageviewProperties({section: "shop"});
      heap.track("Q1", {n: 1});
      heap.addEventProperties({campaign: "spring"});
      heap.track("Q2", {n: 2});
      heap.addUserProperties({plan: "Pro"});
      heap.onReady(function () { window.order = (window.order || []).concat(["ready"]); });
      heap.track("Q3", {n: 3});
      heap.removePageviewProperty("nothing-here");
    """
    context, page, address, errors = open_shop(
        browser, site, "heap5", queued=queued, options="{disableAutocapture: true}"
    )
    page.goto(address)
    wait_idle(page)
    user_id = page.evaluate("() => heap.getUserId()")
    events = timeline(read_with(api), user_id)
    assert [name for name, _ in events] == ["pageview", "Q1", "Q2", "Q3"]
    assert events[0][1]["section"] == "shop"  # set before load: on this page's own page view
    assert [props.get("campaign") for _, props in events[1:]] == [None, "spring", "spring"]
    assert all("section" not in props for _, props in events[1:])  # page view properties only on page views
    assert page.evaluate("() => window.order") == ["ready"]
    assert read_with(api)(f"/api/v1/users/{user_id}")["properties"]["plan"]["value"] == "Pro"
    # A single-page app's own page views: the current address, the pageview properties, the call's own.
    page.evaluate("""() => {
        history.replaceState({}, "", "/shop/step-2?utm_source=spa");
        heap.trackPageview({step: 2, path: "/not-the-real-one"});
        heap.clearPageviewProperties();
        heap.trackPageview();
    }""")
    wait_idle(page)
    views = [props for name, props in timeline(read_with(api), user_id) if name == "pageview"]
    assert [(view["path"], view.get("step"), view.get("section")) for view in views] == [
        ("/shop/", None, "shop"),
        ("/shop/step-2", 2, "shop"),
        ("/shop/step-2", None, None),
    ]
    assert views[1]["utm_source"] == "spa" and views[1]["referrer"].endswith("/shop/")
    assert errors == []
    context.close()


@pytest.mark.parametrize("kind", ["classic", "heap5"])
def test_every_declared_method_exists_and_never_throws(browser, site, api, kind):
    context, page, address, errors = open_shop(browser, site, kind)
    page.goto(address)
    wait_idle(page)
    outcome = page.evaluate(
        """(methods) => {
        const circular = {}; circular.self = circular;
        const hostile = {toString() { throw new Error("boom"); }, get length() { throw new Error("boom"); }};
        const junk = [[], [undefined], [null], [hostile], [circular, hostile], [42, {}, () => { throw 1; }],
                      [() => { throw new Error("callback"); }],
                      ["x".repeat(3000), [1, 2]], [Symbol("s")], [{__proto__: null, a: hostile}]];
        const missing = methods.filter(name => typeof heap[name] !== "function");
        let thrown = 0;
        for (const name of methods) {
            if (name === "stopTracking") continue;  // would stop the rest; called below
            for (const args of junk) { try { heap[name](...args); } catch (e) { thrown += 1; } }
        }
        try { heap.stopTracking(hostile); heap.startTracking(hostile); } catch (e) { thrown += 1; }
        return {missing, thrown};
    }""",
        ALL_METHODS,
    )
    assert outcome == {"missing": [], "thrown": 0}
    assert errors == []
    page.evaluate("() => heap.track('Still Works')")
    wait_idle(page)
    assert "Still Works" in [name for name, _ in timeline(read_with(api), page.evaluate("() => heap.getUserId()"))]
    context.close()


def test_text_capture_off_sends_no_text_and_autocapture_off_sends_no_autocaptured_event(browser, site, api):
    context, page, address, errors = open_shop(browser, site, "classic", options="{disableTextCapture: true}")
    page.goto(address)
    wait_idle(page)
    page.click("#buy")
    page.click("#pricing-link span")
    wait_idle(page)
    events = timeline(read_with(api), page.evaluate("() => heap.getUserId()"))
    clicks = [props for name, props in events if name == "click"]
    assert [props["target_tag"] for props in clicks] == ["button", "span"]
    assert all("target_text" not in props for props in clicks) and clicks[1]["href"] == "/pricing?plan=pro"
    context.close()

    context, page, address, errors = open_shop(browser, site, "heap5", options="{disableAutocapture: true}", path="off")
    page.goto(address)
    wait_idle(page)
    page.click("#buy")
    page.fill("#name", "someone")
    page.click("#send")
    page.evaluate("() => heap.track('Manual')")
    wait_idle(page)
    names = [name for name, _ in timeline(read_with(api), page.evaluate("() => heap.getUserId()"))]
    assert names == ["pageview", "Manual"]
    assert errors == []
    context.close()


def test_stop_tracking_sends_nothing_on_this_page_or_the_next_until_start_tracking(browser, site, api):
    context, page, address, errors = open_shop(browser, site, "heap5")
    bodies = sent_bodies(page)
    page.goto(address)
    wait_idle(page)
    user_id = page.evaluate("() => heap.getUserId()")
    page.evaluate("() => heap.stopTracking()")
    page.click("#buy")
    page.evaluate("() => { heap.track('While Stopped'); heap.addUserProperties({stopped: 'yes'}); }")
    page.reload()  # the choice is kept: no page view either
    page.wait_for_function("() => window.heap && window.heap._cairn === true")
    page.click("#buy")
    page.wait_for_timeout(500)
    assert len(bodies) == 1  # only the first page view went out
    assert page.evaluate("() => heap.pending()") == 0
    page.evaluate("() => { heap.startTracking(); heap.track('After Start'); }")
    wait_idle(page)
    events = timeline(read_with(api), user_id)
    assert [name for name, _ in events] == ["pageview", "After Start"]
    assert "stopped" not in read_with(api)(f"/api/v1/users/{user_id}")["properties"]
    assert errors == []
    context.close()


def test_the_demos_autocapture_page_sends_clicks_and_never_the_values(browser, site, api, settings):
    settings.CAIRN_DEMO_SITE = True  # off outside DEBUG
    cairn, _ = site
    context = browser.new_context(viewport={"width": 1000, "height": 1100})
    page = context.new_page()
    bodies = sent_bodies(page)
    page.goto(f"{cairn}/demo/{APP_ID}/autocapture/")
    wait_idle(page)
    page.click("#buy")
    page.locator("#feedback-name").press_sequentially("Demo-Secret-Qx1")
    page.locator("#feedback-password").press_sequentially("Demo-Secret-Qx2")
    page.select_option("#feedback-topic", "bug")
    page.locator("#feedback-message").press_sequentially("Demo-Secret-Qx3")
    page.click("#feedback-submit")
    page.click("#redacted-button")
    page.click("#ignored-button")
    wait_idle(page)
    page.screenshot(path=str(SCREENSHOTS / "demo-autocapture.png"), full_page=True)
    events = timeline(read_with(api), page.evaluate("() => heap.getUserId()"))
    captured = [
        (name, props.get("target_id"), props.get("target_text")) for name, props in events if name in AUTOCAPTURED
    ]
    # A text field's change comes when it loses focus, so changes are compared without their order.
    changes = sorted(entry for entry in captured if entry[0] == "change")
    assert changes == [("change", f"feedback-{field}", None) for field in ("message", "name", "password", "topic")]
    assert [entry for entry in captured if entry[0] != "change"] == [
        ("click", "buy", "Buy now"),
        ("click", "feedback-submit", "Send feedback"),
        # The form's text (textContent, which counts the hidden "Thanks" too), cut to 64 characters after the
        # whitespace is collapsed and trimmed (the wire format's order: so a cut can end in a space).
        ("submit", "feedback-form", "Feedback Your name Password Topic Message Send feedback Thanks! "),
        ("click", "redacted-button", None),
    ]
    assert page.locator("#feedback-sent").is_visible()
    assert not [body for body in bodies if "Demo-Secret" in body or "Billing question" in body]
    context.close()


def test_long_hierarchies_drop_whole_outer_elements_and_texts_are_cut(browser, site, api):
    context, page, address, errors = open_shop(browser, site, "heap5")
    page.goto(address)
    wait_idle(page)
    page.evaluate("""() => {
        let parent = document.querySelector("main");
        for (let depth = 0; depth < 40; depth++) {
            const div = document.createElement("div");
            div.className = `level-${depth} ` + "x".repeat(20);
            parent.appendChild(div);
            parent = div;
        }
        const target = document.createElement("button");
        target.id = "deep";
        target.className = Array.from({length: 12}, (_, i) => `c${i}`).join(" ") + " bad/class";
        target.textContent = "  word  ".repeat(30);
        parent.appendChild(target);
        const odd = document.createElement("span");
        odd.id = "not valid";
        odd.textContent = "odd";
        document.querySelector("main").appendChild(odd);
    }""")
    page.click("#deep")
    page.click("text=odd")
    wait_idle(page)
    events = timeline(read_with(api), page.evaluate("() => heap.getUserId()"))
    deep, odd = [props for name, props in events if name == "click"]
    target = "@button;#deep;" + "".join(f".c{i};" for i in range(10)) + "|"
    assert deep["hierarchy"].endswith(target) and len(deep["hierarchy"]) <= 1024
    assert deep["hierarchy"].startswith("@div;.level-") and "@body;" not in deep["hierarchy"]
    assert len(deep["hierarchy"]) > 1024 - 60  # only whole elements were dropped, no more
    assert deep["target_class"].endswith("c11 bad/class")  # all of them, as written
    assert deep["target_text"] == ("word " * 13)[:64] and len(deep["target_text"]) == 64
    assert odd["hierarchy"] == "@body;|@main;#shop;|@span;|" and odd["target_id"] == "not valid"
    assert errors == []
    context.close()


def test_a_defined_event_made_after_real_clicks_counts_them_in_a_report(browser, site, api, settings, eager_celery):
    """Issue 14's end to end: clicks autocaptured by the tracker in a real browser, then a defined event made over
    the API (its backfill runs on commit), then a graph report on its name counts the clicks before it."""
    settings.CAIRN_DEMO_SITE = True
    cairn, _ = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{cairn}/demo/{APP_ID}/autocapture/")
    wait_idle(page)
    for _ in range(3):
        page.click("#buy")
    page.click("#redacted-button")  # another element: not the defined event
    wait_idle(page)
    context.close()
    made = api.post(
        "/api/v1/defined-events",
        {"name": "Clicked Buy", "rules": [{"event": "click", "selector": "#buy"}]},
        HTTP_AUTHORIZATION=f"Bearer {API_KEY}",
    )
    assert made.status_code == 201, made.content
    today = timezone.now().date().isoformat()
    answer = api.get("/api/v1/reports/query", event="Clicked Buy", to=today, **{"from": today}).json()
    assert [series["total"] for series in answer["series"]] == [3]
    assert not answer.get("backfilling")


def test_a_burst_of_100_clicks_is_one_request_and_every_click_is_stored(browser, site, settings):
    """Issue 14: a busy page costs one request per burst (the tracker's batches go up to the browser endpoint's 200
    calls), and nothing of the burst is lost."""
    settings.CAIRN_DEMO_SITE = True
    cairn, _ = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{cairn}/demo/{APP_ID}/autocapture/")
    wait_idle(page)  # the page view sent and confirmed
    posts = []
    page.on("request", lambda request: posts.append(request) if "/api/v1/browser" in request.url else None)
    page.evaluate("() => { const buy = document.querySelector('#buy'); for (let i = 0; i < 100; i++) buy.click(); }")
    wait_idle(page)
    context.close()
    assert [request.method for request in posts] == ["POST"]
    assert len(json.loads(posts[0].post_data)["calls"]) == 100
    assert Event.objects.filter(name="click", properties__target_id="buy").count() == 100


def test_an_account_update_over_its_accounts_rate_limit_stays_queued_and_the_rest_is_stored(
    browser, site, api, settings
):
    """heap.addAccountProperties counts against its account's bucket (shared with the server API), not the
    person's: here the server API has used up acme's burst, so the browser's update is refused alone, the page's
    event in the same batch is stored, and the tracker keeps the update queued to send it again later."""
    # Bursts of 5 that refill at one a minute: the person's page view, properties and event fit in theirs.
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = 1
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = 5
    accounts = [{"account_id": "acme", "properties": {"n": n}} for n in range(5)]
    assert api.post("/api/add_account_properties", {"app_id": APP_ID, "accounts": accounts}).json()["accepted"] == 5
    context, page, address, errors = open_shop(browser, site, "heap5", options="{disableAutocapture: true}")
    page.goto(address)
    wait_idle(page)
    page.evaluate("""() => {
        heap.addUserProperties({company_id: "acme"});
        heap.addAccountProperties({tier: "Gold"});
        heap.track("After The Update");
    }""")
    page.wait_for_function("() => heap.pending() === 1", timeout=60_000)  # the update alone is left
    user_id = page.evaluate("() => heap.getUserId()")
    assert "After The Update" in [name for name, _ in timeline(read_with(api), user_id)]
    assert page.evaluate("() => heap.pending()") == 1
    assert errors == []
    context.close()
    assert "tier" not in read_with(api)("/api/v1/accounts/acme")["properties"]
