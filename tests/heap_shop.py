"""A customer's shop page with one of Heap's snippets, as a migrating Heap customer has it (issue 14): served by
Playwright's routing at another origin than Cairn, driven in a real browser (clicks, typing, a select, a submit),
and what the read API must show afterwards. Shared by the live-server tests (tests/events_app/
test_tracker_autocapture.py) and the production ones (tests/test_production_heap_snippets.py)."""

import json
from collections.abc import Callable
from urllib.parse import quote

from tests.builders import every_text_cell_containing

AUTOCAPTURED = ("click", "submit", "change")
# The buy button, as the hierarchy writes it: `w-1/2` has a character selectors cannot name, so it is left out.
BUY_HIERARCHY = "@body;|@main;#shop;|@div;.nav;.dark;|@button;#buy;.btn;.btn-primary;|"

SHOP_BODY = """
<main id="shop">
  <div class="nav dark w-1/2">
    <button type="button" id="buy" class="btn  btn-primary">  Buy
        now  </button>
    <a href="/pricing?plan=pro" id="pricing-link"><span class="label">See   pricing</span></a>
  </div>
  <form id="signup" class="form">
    <label id="name-label">Name <input type="text" id="name" name="name" placeholder="Your name here"></label>
    <textarea id="note" name="note"></textarea>
    <input type="password" id="secret" name="secret">
    <select id="topic" name="topic"><option value="">Pick one</option>
      <option value="{marker}-opt">{marker} option</option></select>
    <div contenteditable="true" id="editable"></div>
    <button type="submit" id="send">Send</button>
  </form>
  <div data-heap-redact-text><button type="button" id="redacted">Card 4417 1234</button></div>
  <div data-heap-ignore><p><button type="button" id="ignored">Not tracked</button></p></div>
</main>
<script>
  document.addEventListener("click", function (event) {{ if (event.target.closest("a")) event.preventDefault(); }});
  document.getElementById("signup").addEventListener("submit", function (event) {{ event.preventDefault(); }});
</script>
"""


def shop_page(context, origin: str, snippet: str, *, queued: str = "", marker: str = "nothing", path="shop") -> str:
    """Route `origin/<path>/` to a shop page with `snippet` and the calls `queued` before the tracker loads."""
    # A routed page counts as a public site for Chrome's Local Network Access rules: let it reach the server.
    context.grant_permissions(["local-network-access"])
    html = (
        f"<!doctype html><html><head><title>Shop</title><script>{snippet}\n{queued}</script></head>"
        f"<body>{SHOP_BODY.format(marker=marker)}</body></html>"
    )
    context.route(f"{origin}/{path}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    return f"{origin}/{path}/"


def wait_idle(page) -> None:
    """Until the tracker has loaded and the server has confirmed every queued call."""
    page.wait_for_function(
        "() => window.heap && window.heap._cairn === true && window.heap.pending() === 0", timeout=60_000
    )


def sent_bodies(page) -> list[str]:
    """Every body the page sends to the browser endpoint, from now on."""
    bodies: list[str] = []
    page.on("request", lambda request: bodies.append(request.post_data or "") if "/api/v1/" in request.url else None)
    return bodies


def use_the_shop(page, marker: str) -> None:
    """Click, type the marker into every kind of field, pick the option naming it, submit."""
    page.click("#buy")
    page.click("#pricing-link span")
    for field in ("#name", "#note", "#secret", "#editable"):
        page.locator(field).press_sequentially(f"{marker}-{field[1:]}")
    page.select_option("#topic", f"{marker}-opt")
    page.click("#redacted")
    page.click("#ignored")
    page.click("#send")
    wait_idle(page)


def timeline(read: Callable[[str], dict], user_id: str) -> list[tuple[str, dict]]:
    results = read(f"/api/v1/users/{user_id}/events?limit=1000")["results"]
    return [(event["event"], event["properties"]) for event in reversed(results)]


def autocaptured(events: list[tuple[str, dict]], name: str, target_id: str) -> list[dict]:
    return [props for event, props in events if event == name and props.get("target_id") == target_id]


def check_the_shop(
    read: Callable[[str], dict], *, identity: str, account: str, marker: str, bodies: list[str], path: str = "shop"
):
    """What the read API shows after `use_the_shop`, for a page that identified, set user and account properties
    and tracked "Queued Purchase" with the event property shop=yes. Returns the user."""
    user = read(f"/api/v1/users?identity={quote(identity)}")
    assert user["properties"]["plan"]["value"] == "Pro"
    assert user["properties"]["company_id"]["value"] == account
    company = read(f"/api/v1/accounts/{quote(account)}")
    assert {key: value["value"] for key, value in company["properties"].items()} == {"tier": "Gold", "seats": 12}
    assert company["user_count"] == 1
    events = timeline(read, user["user_id"])
    names = [name for name, _ in events]
    assert names[0] == "pageview" and "Queued Purchase" in names
    (buy,) = autocaptured(events, "click", "buy")
    assert buy == {
        "target_tag": "button",
        "target_id": "buy",
        "target_class": "btn btn-primary",
        "target_text": "Buy now",
        "hierarchy": BUY_HIERARCHY,
        "path": f"/{path}/",
        "shop": "yes",
    }
    (link,) = [props for name, props in events if name == "click" and props.get("target_tag") == "span"]
    assert (link["href"], link["target_text"], link["target_class"]) == ("/pricing?plan=pro", "See pricing", "label")
    assert link["hierarchy"].endswith("@a;#pricing-link;|@span;.label;|")
    for field, tag in (("name", "input"), ("note", "textarea"), ("secret", "input"), ("topic", "select")):
        (change,) = autocaptured(events, "change", field)
        assert change["target_tag"] == tag and "target_text" not in change, change
    (submit,) = autocaptured(events, "submit", "signup")
    assert submit["target_tag"] == "form" and submit["target_text"] == "Name Send"
    (redacted,) = autocaptured(events, "click", "redacted")
    assert "target_text" not in redacted  # inside data-heap-redact-text
    assert not [props for _, props in events if "ignored" in json.dumps(props)]  # data-heap-ignore: nothing
    # The page's event property `target_text` never stands in for autocapture's own (it owns the key).
    assert all(props.get("target_text") != "from the page" for name, props in events if name in AUTOCAPTURED)
    # Nothing typed or picked left the browser, or reached any table.
    assert not [body for body in bodies if marker in body]
    assert every_text_cell_containing(marker) == []
    return user


def queued_calls(kind: str, *, identity: str, account: str) -> str:
    """Calls a page makes before the tracker has loaded, with the methods `kind`'s snippet declares."""
    calls = [
        f"heap.identify({json.dumps(identity)});",
        f'heap.addUserProperties({{plan: "Pro", company_id: {json.dumps(account)}}});',
        'heap.addEventProperties({shop: "yes", target_text: "from the page"});',
        'heap.track("Queued Purchase", {n: 1});',
    ]
    if kind == "heap5":  # the classic snippet declares neither: the page calls them once loaded
        calls.append('heap.addAccountProperties({tier: "Gold", seats: 12});')
        calls.append("heap.onReady(function () { window.readyRuns = (window.readyRuns || 0) + 1; });")
    return "\n".join(calls)


def after_load(page, kind: str) -> None:
    """The calls the classic snippet cannot queue, made once the tracker is there."""
    if kind == "classic":
        page.evaluate("""() => {
            heap.addAccountProperties({tier: "Gold", seats: 12});
            heap.onReady(function () { window.readyRuns = (window.readyRuns || 0) + 1; });
        }""")
    assert page.evaluate("() => window.readyRuns") == 1
