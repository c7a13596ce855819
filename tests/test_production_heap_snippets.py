"""Heap's snippets against Cairn in production mode (issue 14): gunicorn with DEBUG off, collected static files,
TLS, a real worker (tests/test_production.py's server). A customer's shop on another origin keeps Heap's snippet
and changes only its script URL: heap.js 5 with only the host changed (Cairn answers Heap's
`/config/<env_id>/heap_config.js`), the classic one with the tracker's own address. Screenshots go to
test-output/production-heap-*.png."""

import gzip
import json
import os
from urllib.parse import quote

import pytest

from tests.builders import environment_build, heap_snippet
from tests.heap_shop import (
    AUTOCAPTURED,
    after_load,
    check_the_shop,
    queued_calls,
    sent_bodies,
    shop_page,
    use_the_shop,
    wait_idle,
)
from tests.test_production import OUTPUT, log_in, new_page, production  # noqa: F401 - a fixture

SHOP_APP_ID = "2357111317"
SHOP_API_KEY = "production-heap-shop-key-0123456789"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="production runs real workers on Redis"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="production runs on PostgreSQL"
    ),
]


@pytest.fixture(scope="module")
def shop_origin(production, django_db_blocker):  # noqa: F811 - the imported fixture
    """The shop's environment, written before the server ever looks it up (so no cache holds an older row), and
    the shop's origin: the same server by another name, another origin for the browser."""
    origin = production.url.replace("127.0.0.1", "localhost")
    with django_db_blocker.unblock():
        environment = environment_build(name="Heap shop", app_id=SHOP_APP_ID, api_key=SHOP_API_KEY)
        environment.account_id_property = "company_id"
        environment.allowed_origins = [origin]
        environment.save()
    return origin


def shop_reader(production):  # noqa: F811
    """The read API of the shop's environment (its own key)."""

    def read(path: str) -> dict:
        answer = production.get(path, {"Authorization": f"Bearer {SHOP_API_KEY}"})
        assert answer.status == 200, (path, answer.read()[:300])
        return json.loads(answer.read())

    return read


@pytest.mark.parametrize("kind, url", [("heap5", "host"), ("classic", "static")])
def test_a_heap_snippet_with_only_its_url_changed_works_in_production(production, shop_origin, browser, kind, url):  # noqa: F811
    identity, account, marker = f"grace-{kind}@example.com", f"globex-{kind}", f"Pq{kind}Marker77"
    page, _, errors = new_page(browser)
    snippet = heap_snippet(kind, cairn=production.url, app_id=SHOP_APP_ID, url=url)
    queued = queued_calls(kind, identity=identity, account=account)
    address = shop_page(page.context, shop_origin, snippet, queued=queued, marker=marker, path=f"shop-{kind}")
    bodies = sent_bodies(page)
    scripts = []
    page.on(
        "response", lambda response: scripts.append(response) if response.request.resource_type == "script" else None
    )
    page.goto(address)
    wait_idle(page)
    after_load(page, kind)
    assert [response.url.removeprefix(production.url) for response in scripts] == [
        f"/config/{SHOP_APP_ID}/heap_config.js" if kind == "heap5" else "/static/cairn/tracker.min.js"
    ]
    use_the_shop(page, marker)
    page.screenshot(path=str(OUTPUT / f"production-heap-{kind}-shop.png"))
    user = check_the_shop(
        shop_reader(production), identity=identity, account=account, marker=marker, bodies=bodies, path=f"shop-{kind}"
    )
    assert errors == []

    # The profile page in the dashboard shows the autocaptured events in the person's timeline.
    dashboard, _, dashboard_errors = new_page(browser)
    log_in(dashboard, production, f"/users/{user['user_id']}/?env={SHOP_APP_ID}")
    dashboard.click("details summary")  # the session's events
    dashboard.screenshot(path=str(OUTPUT / f"production-heap-{kind}-profile.png"), full_page=True)
    timeline_text = dashboard.locator("body").inner_text()
    assert all(name in timeline_text for name in AUTOCAPTURED) and "Queued Purchase" in timeline_text
    assert marker not in dashboard.content()
    assert dashboard_errors == []
    page.context.close()
    dashboard.context.close()


def test_heaps_script_addresses_serve_the_tracker_like_its_static_address(production, shop_origin):  # noqa: F811
    headers = {"Origin": shop_origin, "Accept-Encoding": "gzip"}
    static = production.get("/static/cairn/tracker.min.js", headers)
    tracker = gzip.decompress(static.read())
    for path in (f"/js/heap-{SHOP_APP_ID}.js", f"/config/{quote(SHOP_APP_ID)}/heap_config.js"):
        answer = production.get(path, headers)
        assert answer.status == 200, path
        for header in ("Content-Type", "Cache-Control", "Access-Control-Allow-Origin", "Cross-Origin-Resource-Policy"):
            assert answer.headers[header] == static.headers[header], header
        assert answer.headers["Cache-Control"] == "max-age=300, public"
        assert answer.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(answer.read()) == tracker
