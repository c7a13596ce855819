"""The tracker in a real browser (Debian's chromium, headless, driven by Playwright) against a live server and
the demo product: the seed's four identify stories, calls queued before load, the last event before leaving,
retries, resetIdentity, initial properties and CORS."""

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.builders import CHROMIUM_AVAILABLE, environment_build
from tests.conftest import API_KEY
from tests.heap_shop import AUTOCAPTURED
from users_app.services.tracker_snippet import tracker_snippet

APP_ID = "4242424242"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_AVAILABLE, reason="Debian's chromium is not installed"),
]
# Playwright's sync API runs an event loop in this thread; the Django calls made from the test are sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(autouse=True)
def demo_site_on(settings):
    """The demo product is off outside DEBUG (CAIRN_DEMO_SITE); these tests drive it."""
    settings.CAIRN_DEMO_SITE = True


@pytest.fixture
def site(transactional_db, live_server):
    environment = environment_build(name="Demo shop", app_id=APP_ID, api_key=API_KEY)
    return environment, live_server.url


def demo(base: str, page: str = "") -> str:
    return f"{base}/demo/{APP_ID}/{page}"


def wait_idle(page) -> None:
    """Until the tracker has loaded and the server has confirmed every queued call."""
    page.wait_for_function(
        "() => window.heap && window.heap._cairn === true && window.heap.pending() === 0", timeout=60_000
    )


def wait_in_browser(page, predicate, attempts: int = 300) -> None:
    """Poll `predicate` while Playwright keeps dispatching (route handlers and page events run only while it
    waits; a time.sleep would stall them)."""
    for _ in range(attempts):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError("condition not met")


def who(page) -> tuple[str, str | None]:
    return tuple(page.evaluate("() => [window.heap.userId, window.heap.identity]"))


def user(api, user_id=None, identity=None) -> dict:
    answer = api.get(f"/api/v1/users/{user_id}") if user_id is not None else api.get("/api/v1/users", identity=identity)
    assert answer.status_code == 200, answer.content
    return answer.json()


def every_event(api, user_id) -> list[tuple[str, dict]]:
    answer = api.get(f"/api/v1/users/{user_id}/events", limit=1000).json()
    return [(event["event"], event["properties"]) for event in reversed(answer["results"])]


def events(api, user_id) -> list[tuple[str, dict]]:
    """The events the pages' code sends (autocapture's clicks, submits and changes have their own tests)."""
    return [(name, props) for name, props in every_event(api, user_id) if name not in AUTOCAPTURED]


def tracked_count(api, person: dict) -> int:
    """A person's `event_count` as the read API counts it, less autocapture's events."""
    return person["event_count"] - sum(name in AUTOCAPTURED for name, _ in every_event(api, person["user_id"]))


def names(api, user_id) -> list[str]:
    return [name if name != "pageview" else f"pageview {props.get('path')}" for name, props in events(api, user_id)]


def merges(api, **query) -> list[tuple[str, str]]:
    results = api.get("/api/v1/merges", **query).json()["results"]
    return [(merge["source_user_id"], merge["destination_user_id"]) for merge in results]


def sign_up(page, base, email, plan) -> None:
    page.goto(demo(base, "signup/"))
    page.fill("#signup-email", email)
    page.check(f"input[name=plan][value={plan}]")
    page.click("#signup-submit")
    page.wait_for_url(demo(base, "app/"))
    wait_idle(page)


def log_in(page, base, email) -> None:
    if page.url != demo(base, "login/"):
        page.goto(demo(base, "login/"))
    page.fill("#login-email", email)
    page.click("#login-submit")
    page.wait_for_url(demo(base, "app/"))
    wait_idle(page)


def test_the_seeds_four_stories_and_reset_identity(browser, site, api, settings):
    _, base = site
    settings.CAIRN_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    shared = browser.new_context(extra_http_headers={"CF-IPCountry": "NL"})  # the shared computer
    page = shared.new_page()
    app = f"/demo/{APP_ID}/"

    # 1. An anonymous visitor arrives from a newsletter and signs up: anonymous -> new identity.
    page.goto(
        demo(base, "?utm_source=newsletter&utm_medium=email&utm_campaign=launch"),
        referer="https://news.example.org/issue-42",
    )
    wait_idle(page)
    anonymous_alice, identity = who(page)
    assert identity is None
    assert user(api, anonymous_alice)["identity"] is None
    sign_up(page, base, "alice@example.com", "Startup")
    assert who(page) == (anonymous_alice, "alice@example.com")  # same user_id, now identified
    alice = user(api, identity="alice@example.com")
    assert alice["user_id"] == anonymous_alice
    assert alice["properties"]["plan"]["value"] == "Startup"
    assert names(api, anonymous_alice) == [
        f"pageview {app}",
        f"pageview {app}signup/",
        "Sign Up",
        f"pageview {app}app/",
    ]
    assert alice["session_count"] == 1 and tracked_count(api, alice) == 4
    initial = {key: value["value"] for key, value in alice["properties"].items() if key.startswith("Initial ")}
    assert initial["Initial Landing Page"] == app
    assert initial["Initial Referrer"] == "https://news.example.org/issue-42"
    assert (initial["Initial UTM Source"], initial["Initial UTM Medium"], initial["Initial UTM Campaign"]) == (
        "newsletter",
        "email",
        "launch",
    )
    assert "Chrome" in initial["Initial Browser"] and initial["Initial Device Type"] == "Desktop"
    assert initial["Initial Country"] == "NL"
    assert merges(api, identity="alice@example.com") == []
    page.screenshot(path=str(SCREENSHOTS / "tracker-1-signed-up.png"))

    # 2. Alice on her phone (a second browser) logs in: anonymous -> existing identity, merged.
    phone = browser.new_context()
    phone_page = phone.new_page()
    phone_page.goto(demo(base, "login/"))
    wait_idle(phone_page)
    anonymous_phone, _ = who(phone_page)
    assert anonymous_phone != anonymous_alice
    log_in(phone_page, base, "alice@example.com")
    assert who(phone_page) == (anonymous_alice, "alice@example.com")  # adopted the answered user_id
    assert merges(api, identity="alice@example.com") == [(anonymous_phone, anonymous_alice)]
    assert user(api, anonymous_phone)["merged_into"] == anonymous_alice
    alice = user(api, identity="alice@example.com")
    assert tracked_count(api, alice) == 7  # counted at once, before any merge task has moved the rows
    assert alice["session_count"] == 2  # the phone's visit that logged in is one session
    assert set(names(api, anonymous_alice)) >= {f"pageview {app}login/", "Log In"}
    phone.close()

    # 3. On the shared computer (still alice), bob signs up: identified -> new identity, a new profile.
    sign_up(page, base, "bob@example.com", "Growth")
    bob_id, identity = who(page)
    assert identity == "bob@example.com" and bob_id != anonymous_alice
    bob = user(api, identity="bob@example.com")
    assert bob["user_id"] == bob_id and bob["merged_into"] is None
    assert bob["properties"]["plan"]["value"] == "Growth"
    assert names(api, bob_id) == ["Sign Up", f"pageview {app}app/"]
    assert merges(api, identity="bob@example.com") == []
    alice = user(api, identity="alice@example.com")
    assert alice["properties"]["plan"]["value"] == "Startup"  # bob's plan did not touch alice
    assert tracked_count(api, alice) == 8  # + the sign-up page view, made while the browser was still alice's

    # 4. Alice comes back to the shared computer and logs in: identified -> existing identity, no merge.
    log_in(page, base, "alice@example.com")
    assert who(page) == (anonymous_alice, "alice@example.com")
    assert merges(api, identity="alice@example.com") == [(anonymous_phone, anonymous_alice)]
    assert merges(api, identity="bob@example.com") == []
    assert names(api, bob_id) == ["Sign Up", f"pageview {app}app/", f"pageview {app}login/"]
    assert names(api, anonymous_alice)[-2:] == ["Log In", f"pageview {app}app/"]
    assert tracked_count(api, user(api, identity="alice@example.com")) == 10
    # One visit on the shared computer: alice's session went on; bob's part of it is his own session.
    assert user(api, identity="alice@example.com")["session_count"] == 2
    assert user(api, identity="bob@example.com")["session_count"] == 1
    # She moves to another plan with the plan picker.
    page.check("input[name=plan][value=Premium]")
    page.click("#plan-submit")
    wait_idle(page)
    assert user(api, identity="alice@example.com")["properties"]["plan"]["value"] == "Premium"
    assert user(api, identity="bob@example.com")["properties"]["plan"]["value"] == "Growth"
    assert events(api, anonymous_alice)[-1] == ("Change Plan", {"plan": "Premium"})

    # 5. Alice logs out: resetIdentity starts a new anonymous user and session; nothing is sent for it.
    session_before = page.evaluate("() => heap.getSessionId()")
    sent = []
    page.on("request", lambda request: sent.append(request.post_data) if "/api/v1/browser" in request.url else None)
    page.click("#logout")
    page.wait_for_url(demo(base))
    wait_idle(page)
    newcomer, identity = who(page)
    assert identity is None and newcomer not in (anonymous_alice, bob_id, anonymous_phone)
    assert page.evaluate("() => heap.getSessionId()") != session_before
    assert names(api, anonymous_alice)[-1] == "Log Out"  # tracked before the reset: still alice's
    stranger = user(api, newcomer)
    assert stranger["identity"] is None and stranger["merged_into"] is None
    assert names(api, newcomer) == [f"pageview {app}"]
    sent_calls = [call["type"] for body in sent if body for call in json.loads(body)["calls"]]
    assert "identify" not in sent_calls  # the reset itself sent nothing
    page.screenshot(path=str(SCREENSHOTS / "tracker-5-after-reset.png"))
    shared.close()


def test_calls_queued_before_the_script_loads_arrive_in_order(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base, "playground/"))
    wait_idle(page)
    assert page.evaluate("() => window.cairnQueuedBeforeLoad") is True
    user_id, _ = who(page)
    recorded = events(api, user_id)
    assert [name for name, _ in recorded] == [
        "pageview",
        "Playground Queued 1",
        "Playground Queued 2",
        "Playground Queued 3",
    ]
    # addEventProperties was queued between 1 and 2: it applies to the calls after it only.
    assert [props.get("campaign_page") for _, props in recorded[1:]] == [None, "playground", "playground"]
    assert [props["position"] for _, props in recorded[1:]] == [1, 2, 3]
    assert user(api, user_id)["properties"]["Playground Visited"]["value"] == "yes"
    context.close()


def test_the_last_event_before_leaving_the_site_arrives(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base, "playground/"))
    wait_idle(page)
    user_id, _ = who(page)

    # The click tracks an event and navigates at once to a page without the tracker: only the
    # sendBeacon made on page hide can deliver it.
    # Ordinary sends fail from now on, so only the beacon can get the event through. (Chromium does not
    # pass beacons through Playwright's routing at all; if it ever does, they go on.)
    def beacons_only(route):
        route.abort() if route.request.resource_type == "fetch" else route.continue_()

    context.route("**/api/v1/browser*", beacons_only)
    page.click("#leave")
    page.wait_for_url(demo(base, "goodbye/"))
    assert page.evaluate("() => typeof window.heap") == "undefined"
    wait_in_browser(page, lambda: "Leave Playground" in [name for name, _ in events(api, user_id)])
    assert [name for name, _ in events(api, user_id)].count("Leave Playground") == 1
    context.close()


def test_failed_sends_are_kept_and_retried_in_order(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    context.route("**/api/v1/browser*", refuse)
    page.goto(demo(base, "playground/"))
    page.wait_for_function("() => window.heap && window.heap._cairn === true")
    for number in range(1, 4):
        page.evaluate(f"() => heap.track('Offline {number}')")
    wait_in_browser(page, lambda: len(refused) >= 2)
    user_id, _ = who(page)
    stored = page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('_cairn_q_'))"
        ".flatMap(k => JSON.parse(localStorage.getItem(k)).items.map(i => i.e || i.t))"
    )
    assert stored[-3:] == ["Offline 1", "Offline 2", "Offline 3"]
    assert api.get(f"/api/v1/users/{user_id}").status_code == 404  # nothing got through yet
    # The visitor moves on while still offline; then the network comes back.
    page.goto(demo(base))
    page.wait_for_function("() => window.heap && window.heap._cairn === true")
    context.unroute("**/api/v1/browser*")
    wait_idle(page)
    recorded = names(api, user_id)
    app = f"/demo/{APP_ID}/"
    assert recorded == [
        f"pageview {app}playground/",
        "Playground Queued 1",
        "Playground Queued 2",
        "Playground Queued 3",
        "Offline 1",
        "Offline 2",
        "Offline 3",
        f"pageview {app}",
    ]
    context.close()


def other_site(context, base, environment) -> str:
    """A page of another site, with the snippet pointing at the live server (http://localhost:PORT): the
    page is served at http://127.0.0.1:PORT/shop/, another origin. (A made-up public host name would run
    into Chrome's Private Network Access rules for reaching localhost, which is not what is tested here.)"""
    from django.test import RequestFactory

    # The routed page counts as a public site for Chrome's Local Network Access rules: let it reach localhost.
    context.grant_permissions(["local-network-access"])
    request = RequestFactory().get("/", HTTP_HOST=base.split("://", 1)[1])
    html = f"<!doctype html><html><head>{tracker_snippet(environment, request)}</head><body>Shop</body></html>"
    origin = base.replace("localhost", "127.0.0.1")
    context.route(f"{origin}/shop/**", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    return origin


def test_cors_an_allowed_origin_can_send(browser, site, api):
    environment, base = site
    context = browser.new_context()
    origin = other_site(context, base, environment)
    environment.allowed_origins = [origin]
    environment.save()
    page = context.new_page()
    page.goto(f"{origin}/shop/landing?utm_source=" + quote("partner site"))
    wait_idle(page)
    user_id, _ = who(page)
    recorded = events(api, user_id)
    assert [(name, props["path"], props["utm_source"]) for name, props in recorded] == [
        ("pageview", "/shop/landing", "partner site")
    ]
    context.close()


def test_cors_an_origin_not_allowed_cannot_send(browser, site, api):
    environment, base = site
    environment.allowed_origins = ["http://shop.example.test"]
    environment.save()
    context = browser.new_context()
    origin = other_site(context, base, environment)
    page = context.new_page()
    finished = []  # the browser reports a response it may not share with the page as a failed request
    page.on("requestfinished", lambda request: finished.append(request) if "/api/v1/browser" in request.url else None)
    page.on("requestfailed", lambda request: finished.append(request) if "/api/v1/browser" in request.url else None)
    page.goto(f"{origin}/shop/")
    wait_in_browser(page, lambda: bool(finished))
    user_id, _ = who(page)
    assert page.evaluate("() => heap.pending()") == 1  # kept (and retried later), not lost
    assert api.get(f"/api/v1/users/{user_id}").status_code == 404
    context.close()


def test_the_tracker_never_throws_into_the_page(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(demo(base, "playground/"))
    wait_idle(page)
    outcome = page.evaluate("""() => {
        const circular = {}; circular.self = circular;
        const hostile = {toString() { throw new Error("boom"); }};
        const calls = [
            () => heap.track(hostile), () => heap.track(), () => heap.track("", {}), () => heap.track("x".repeat(5000)),
            () => heap.track("Odd values", {nested: {a: 1}, list: [1], fn() {}, nan: NaN, ok: true, n: 2}),
            () => heap.identify(), () => heap.identify(null), () => heap.identify({}), () => heap.identify("   "),
            () => heap.addUserProperties(circular), () => heap.addUserProperties("nope"),
            () => heap.addUserProperties(),
            () => heap.addEventProperties(null), () => heap.removeEventProperty(hostile),
            () => heap.identify(hostile), () => heap.push(["track"]), () => heap.push(null),
        ];
        let thrown = 0;
        for (const call of calls) { try { call(); } catch (e) { thrown += 1; } }
        return thrown;
    }""")
    assert outcome == 0 and errors == []
    page.evaluate("() => heap.track('Still Works')")
    wait_idle(page)
    user_id, identity = who(page)
    assert identity is None
    recorded = dict(events(api, user_id))
    assert "Still Works" in recorded
    # The valid values of a call with odd ones are kept; the rest are left out.
    assert recorded["Odd values"] == {"campaign_page": "playground", "ok": "true", "n": 2}
    assert "x" * 255 in recorded  # event names are cut to 255 characters, not refused
    context.close()


def test_single_page_app_route_changes_are_page_views(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base, "playground/"))
    wait_idle(page)
    page.evaluate("() => history.pushState({}, '', 'settings?utm_source=spa')")
    page.evaluate("() => history.pushState({}, '', 'settings?utm_source=spa#billing')")  # same page: no view
    page.evaluate("() => history.back()")
    page.wait_for_function("() => location.hash === ''")
    page.evaluate("() => history.back()")
    page.wait_for_function("() => location.pathname.endsWith('/playground/')")
    wait_idle(page)
    user_id, _ = who(page)
    views = [
        (props["path"], props.get("utm_source"), props["referrer"].removeprefix(base))
        for name, props in events(api, user_id)
        if name == "pageview"
    ]
    app = f"/demo/{APP_ID}/"
    assert views == [
        (f"{app}playground/", None, ""),
        (f"{app}playground/settings", "spa", f"{app}playground/"),
        (f"{app}playground/", None, f"{app}playground/settings?utm_source=spa"),
    ]
    context.close()


def test_ids_live_in_first_party_cookies_and_identify_is_sent_once(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base))
    wait_idle(page)
    user_id, _ = who(page)
    assert 0 <= int(user_id) < 2**53
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    id_cookie, session_cookie = cookies[f"_cairn_id_{APP_ID}"], cookies[f"_cairn_ses_{APP_ID}"]
    assert id_cookie["value"].startswith(f"{user_id}%7C") or id_cookie["value"] == f"{user_id}|"
    days = (id_cookie["expires"] - time.time()) / 86400
    assert 390 < days <= 395  # 13 months
    minutes = (session_cookie["expires"] - time.time()) / 60
    assert 25 < minutes <= 30  # renewed by every call: 30 minutes of inactivity end the session
    # The same user on the next page; identifying twice with the same identity sends it once.
    page.evaluate("() => heap.identify('ken@example.com')")
    wait_idle(page)
    page.goto(demo(base, "app/"))
    wait_idle(page)
    assert who(page) == (user_id, "ken@example.com")
    assert page.evaluate("() => { heap.identify('ken@example.com'); return heap.pending(); }") == 0
    assert user(api, user_id)["identity"] == "ken@example.com"
    context.close()


def test_event_properties_are_kept_across_pages_until_removed(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base, "playground/"))
    wait_idle(page)
    page.evaluate("() => heap.addEventProperties({campaign: 'winter', keep: 'yes'})")
    page.goto(demo(base, "app/"))
    wait_idle(page)
    page.evaluate("() => { heap.removeEventProperty('keep'); heap.track('On Page Two'); }")
    wait_idle(page)
    user_id, _ = who(page)
    by_name = {name: props for name, props in events(api, user_id)}
    assert by_name["On Page Two"]["campaign"] == "winter"
    assert "keep" not in by_name["On Page Two"]
    context.close()


def test_a_closed_tabs_unsent_calls_are_picked_up_by_the_next_page(browser, site, api):
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base))
    wait_idle(page)
    user_id, _ = who(page)
    # Two other tabs left queues: one closed 5 minutes ago, one still open (it wrote its queue just now).
    page.evaluate(
        """([appId, userId]) => {
        const item = (id, name, ago) => ({i: id, t: "track", e: name, u: userId, s: "0123456789abcdef",
                                          ts: Date.now() - ago, p: {}});
        localStorage.setItem(`_cairn_q_${appId}_closedtab`,
            JSON.stringify({at: Date.now() - 300000, items: [item("orphan1", "From A Closed Tab", 300000)]}));
        localStorage.setItem(`_cairn_q_${appId}_opentab`,
            JSON.stringify({at: Date.now(), items: [item("live1", "From An Open Tab", 1000)]}));
    }""",
        [APP_ID, user_id],
    )
    page.reload()
    wait_idle(page)
    recorded = [name for name, _ in events(api, user_id)]
    assert "From A Closed Tab" in recorded  # adopted and sent
    assert "From An Open Tab" not in recorded  # its own tab will send it
    assert page.evaluate(f"() => localStorage.getItem('_cairn_q_{APP_ID}_closedtab')") is None
    assert page.evaluate(f"() => localStorage.getItem('_cairn_q_{APP_ID}_opentab')") is not None
    context.close()


def test_an_identity_over_255_characters_is_refused_not_cut_short(browser, site, api):
    # Cut to 255, two people whose identities share their first 255 characters would become one.
    _, base = site
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo(base, "playground/"))
    wait_idle(page)
    user_id, _ = who(page)
    page.evaluate("() => heap.identify('L'.repeat(255) + 'X-person-one')")
    assert page.evaluate("() => heap.pending()") == 0  # nothing sent
    assert who(page) == (user_id, None)
    # 255 characters counted as the server counts them (code points): 255 emoji are 510 UTF-16 units.
    page.evaluate("() => heap.identify('\\u{1F600}'.repeat(255))")
    wait_idle(page)
    assert who(page) == (user_id, "\U0001f600" * 255)
    assert user(api, user_id)["identity"] == "\U0001f600" * 255
    context.close()
