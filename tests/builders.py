"""Test data builders, in one place (STYLE.md, Tests): plain functions with keyword arguments.

Data goes in through the real services (ingest, identify, merges) or the real HTTP API, so what a test builds
is what a user's calls would have made; where a test needs a large history fast, `profile_build` writes the
rows directly. The fixtures every app's tests share are in tests/conftest.py.
"""

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from events_app.models import Event, Session
from events_app.services.ingest import track_ingest, user_properties_ingest
from users_app.merges.apply import merge_apply
from users_app.models import Environment, MergeRecord, Profile
from users_app.services.environments import environment_create
from users_app.services.identify import profile_identify

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = '"><img src=x onerror=alert(1)>'

# ---- time --------------------------------------------------------------------------------------------------

BASE = timezone.now().replace(microsecond=0) - timedelta(days=2)


def at(minutes: float) -> str:
    """A fixed point two days ago plus `minutes`, as ISO text."""
    return (BASE + timedelta(minutes=minutes)).isoformat()


def ago(**delta) -> str:
    """Now minus `delta` (timedelta's keywords), as ISO text."""
    return (timezone.now() - timedelta(**delta)).isoformat()


def days_ago(days: float, hours: float = 0) -> datetime:
    return timezone.now() - timedelta(days=days, hours=hours)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# ---- environments, people, sign-ins ------------------------------------------------------------------------


def environment_build(*, name: str, app_id: str | None = None, api_key: str | None = None) -> Environment:
    """An environment made as the admin makes one (environment_create); its generated app id or key unless given."""
    return environment_create(name=name, app_id=app_id, api_key=api_key).environment


def user_build(username: str, *, password: str | None = "pw-123456", superuser: bool = False, **flags):
    """A dashboard account (`password=None`: no usable password); `is_staff=True` and the like as keywords."""
    manager = get_user_model().objects
    create = manager.create_superuser if superuser else manager.create_user
    return create(username, password=password, **flags)


def signed_in_as(username: str, *, client: Client | None = None, **user) -> Client:
    """A client (a new one unless given) signed in as a new account; `user` goes to user_build."""
    client = client or Client()
    client.force_login(user_build(username, **user))
    return client


def profile_build(
    environment,
    user_id: int,
    *,
    identity: str | None = None,
    events: int = 0,
    sessions: int = 1,
    days: float = 3,
    session_key: str = "k",
    session_every: timedelta = timedelta(minutes=1),
    session_length: timedelta = timedelta(minutes=1),
    events_per_second: int = 1,
    event_name: Callable[[int], str] = lambda index: "pageview",
    batch_size: int = 2000,
) -> Profile:
    """A profile written directly (no service), with a history of `events` events over `sessions` sessions
    starting `days` ago: session n starts n × `session_every` later; event n is in session n % sessions, at
    n // `events_per_second` seconds. For the merge tests, which need large histories fast."""
    profile = Profile.objects.create(environment=environment, user_id=user_id, identity=identity)
    if not events:
        return profile
    start = timezone.now() - timedelta(days=days)
    stored_sessions = Session.objects.bulk_create(
        [
            Session(
                environment=environment,
                profile=profile,
                original_profile=profile,
                session_key=f"{session_key}{index}",
                started_at=start + session_every * index,
                ended_at=start + session_every * index + session_length,
            )
            for index in range(sessions)
        ]
    )
    Event.objects.bulk_create(
        [
            Event(
                environment=environment,
                profile=profile,
                original_profile=profile,
                name=event_name(index),
                session=stored_sessions[index % sessions],
                timestamp=start + timedelta(seconds=index // events_per_second),
            )
            for index in range(events)
        ],
        batch_size=batch_size,
    )
    profile.first_seen, profile.last_seen = start, start + timedelta(seconds=events)
    profile.save()
    return profile


# ---- through the services ----------------------------------------------------------------------------------


def _who(item: dict, user_id, identity) -> dict:
    if user_id is not None:
        item["user_id"] = str(user_id)
    if identity is not None:
        item["identity"] = identity
    return item


def track(
    environment,
    *,
    user_id=None,
    identity=None,
    event: str = "pageview",
    at: datetime | None = None,
    timestamp: str | None = None,
    properties: dict | None = None,
    session_id: str | None = None,
) -> Profile:
    """One event through the ingest service, which must accept it. Its time: `timestamp` (ISO text, sent as it
    is), else `at` (a datetime), else now."""
    item = {"event": event, "timestamp": timestamp or iso(at or timezone.now()), "properties": properties or {}}
    _who(item, user_id, identity)
    if session_id:
        item["session_id"] = session_id
    result = track_ingest(environment=environment, items=[item])
    assert result.accepted == 1, result.as_dict()
    return result.profile


def set_properties(environment, *, user_id=None, identity=None, **properties) -> Profile:
    """User properties through the ingest service (add_user_properties), which must accept them."""
    result = user_properties_ingest(
        environment=environment, items=[_who({"properties": properties}, user_id, identity)]
    )
    assert result.accepted == 1, result.as_dict()
    return result.profile


def identify(environment, user_id, identity):
    return profile_identify(environment=environment, user_id=user_id, identity=identity)


def person(environment, user_id, *, identity=None, plan=None, at=None, **properties) -> Profile:
    """A user seen at `at` (default now) with one pageview, optionally identified and with a plan."""
    track(environment, user_id=user_id, at=at, properties={"path": "/pricing", "referrer": "https://google.com/"})
    if identity is not None:
        identify(environment, user_id, identity)
    if plan is not None:
        properties["plan"] = plan
    if properties:
        set_properties(environment, user_id=user_id, **properties)
    return Profile.objects.get(environment=environment, user_id=user_id).merged_into or Profile.objects.get(
        environment=environment, user_id=user_id
    )


def apply_pending_merges() -> None:
    """What the worker does once identify's transaction commits (the async path has its own tests)."""
    for merge_id in MergeRecord.objects.filter(status="pending").values_list("pk", flat=True):
        merge_apply(merge_id=merge_id)


# ---- through the HTTP API ----------------------------------------------------------------------------------


def identified(calls, identity: str, *, events: int = 1, **item) -> str:
    """An identified profile with `events` events tracked through /api/track (`item`: their fields); its user_id."""
    for _ in range(events):
        assert calls.track(identity=identity, **item).status_code == 200
    return calls.user_by_identity(identity).json()["user_id"]


def initial_properties(api, user_id) -> dict:
    """The Initial … properties the read API shows for a user."""
    properties = api.get(f"/api/v1/users/{user_id}").json()["properties"]
    return {key: value["value"] for key, value in properties.items() if key.startswith("Initial ")}


def post_json(url: str, body: dict) -> tuple[int, dict]:
    """A JSON POST to a live server over real HTTP: its status and its JSON body (a 500's page as `raw`)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:  # a 500's HTML page: keep it for the failure message
            return error.code, {"raw": text.decode(errors="replace")[-2000:]}


PLANS = ("Free", "Startup", "Growth", "Premium", "Enterprise")


def plan_story(now: datetime, people: int = 30) -> tuple[list[dict], list[dict]]:
    """(user properties items, track items) of a small funnel-and-retention story by plan, for the ingest
    services or the public API: person i (plan PLANS[i % 5]) signs up 4 + 2i days before `now`; two in three
    activate an hour later, half of those upgrade two days after signing up; person i comes back (a pageview)
    in each of the i % 4 weeks after their sign-up, while that week has begun by `now`."""
    users, events = [], []
    for index in range(people):
        identity = f"story-{index}@example.com"
        users.append({"identity": identity, "properties": {"plan": PLANS[index % len(PLANS)]}})
        signed_up = now - timedelta(days=4 + 2 * index, hours=1)
        steps = [("Sign Up", signed_up)]
        if index % 3:
            steps.append(("Activate", signed_up + timedelta(hours=1)))
            if index % 2 == 0:
                steps.append(("Upgrade", signed_up + timedelta(days=2)))
        steps += [("pageview", signed_up + timedelta(days=7 * week)) for week in range(1, index % 4 + 1)]
        events += [
            {"identity": identity, "event": name, "timestamp": iso(moment)} for name, moment in steps if moment < now
        ]
    return users, events


def locked_or_done(thread: threading.Thread) -> bool:
    """True once `thread` has finished or its query waits for a row lock held by another transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return not thread.is_alive() or cursor.fetchone()[0] > 0


# ---- a real browser ----------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_AVAILABLE = Path(CHROMIUM).exists()


def chromium_launch(playwright):
    """Debian's chromium, headless, through Playwright."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-gpu",
            "--disable-component-update",
            "--no-first-run",
        ],
    )


@contextmanager
def chromium_page(width: int = 1400, height: int = 900, *, javascript: bool = True):
    """A page of a browser started here and closed afterwards (`javascript=False`: a browser with scripts off).
    Start it after the test data is made: while Playwright's event loop runs, Django would hand the test thread
    a different database connection (asgiref's context-local), one pytest-django never closes."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium_launch(playwright)
        try:
            context = browser.new_context(java_script_enabled=javascript, viewport={"width": width, "height": height})
            yield context.new_page()
        finally:
            browser.close()


# ---- the database as a whole ---------------------------------------------------------------------------------


def every_text_cell_containing(value: str) -> list[str]:
    """Every (table, column) of the database, any type cast to text, holding `value`."""
    hits = []
    with connection.cursor() as db:
        for table in connection.introspection.table_names():
            for column in connection.introspection.get_table_description(db, table):
                name = connection.ops.quote_name(column.name)
                db.execute(
                    f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} WHERE CAST({name} AS TEXT) LIKE %s",
                    [f"%{value}%"],
                )
                if db.fetchone()[0]:
                    hits.append(f"{table}.{column.name}")
    return hits


# ---- Heap's install snippets, verbatim (issue 14): a customer changes only the script's URL -------------------

HEAP_CLASSIC_SNIPPET = (
    "window.heap=window.heap||[],heap.load=function(e,t){window.heap.appid=e,window.heap.config=t=t||{};var r=docume"
    'nt.createElement("script");r.type="text/javascript",r.async=!0,r.src="https://cdn.heapanalytics.com/js/heap-"+'
    'e+".js";var a=document.getElementsByTagName("script")[0];a.parentNode.insertBefore(r,a);for(var n=function(e){'
    'return function(){heap.push([e].concat(Array.prototype.slice.call(arguments,0)))}},p=["addEventProperties",'
    '"addUserProperties","clearEventProperties","identify","resetIdentity","removeEventProperty","setEventProperti'
    'es","track","unsetEventProperty"],o=0;o<p.length;o++)heap[p[o]]=n(p[o])};\n  heap.load("YOUR_APP_ID");'
)
HEAP5_SNIPPET = (
    "window.heapReadyCb=window.heapReadyCb||[],window.heap=window.heap||[],heap.load=function(e,t){window.heap.envI"
    "d=e,window.heap.clientConfig=t=t||{},window.heap.clientConfig.shouldFetchServerConfig=!1;var a=document.creat"
    'eElement("script");a.type="text/javascript",a.async=!0,a.src="https://cdn.us.heap-api.com/config/"+e+"/heap_c'
    'onfig.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(a,r);var n=["init","star'
    'tTracking","stopTracking","track","resetIdentity","identify","getSessionId","getUserId","getIdentity","addUse'
    'rProperties","addEventProperties","removeEventProperty","clearEventProperties","addAccountProperties","addAda'
    'pter","addTransformer","addTransformerFn","onReady","addPageviewProperties","removePageviewProperty","clearPa'
    'geviewProperties","trackPageview"],i=function(e){return function(){var t=Array.prototype.slice.call(arguments'
    ",0);window.heapReadyCb.push({name:e,fn:function(){heap[e]&&heap[e].apply(heap,t)}})}};for(var p=0;p<n.length;"
    'p++)heap[n[p]]=i(n[p])};\n  heap.load("YOUR_ENV_ID");'
)
# What each snippet's script address becomes: only the host changed (Cairn answers Heap's paths), or the whole
# string replaced with the tracker's own address.
_HEAP_SCRIPT = {
    "classic": ('"https://cdn.heapanalytics.com/js/heap-"+e+".js"', "https://cdn.heapanalytics.com"),
    "heap5": ('"https://cdn.us.heap-api.com/config/"+e+"/heap_config.js"', "https://cdn.us.heap-api.com"),
}


def heap_snippet(kind: str, *, cairn: str, app_id: str, url: str = "host", options: str = "") -> str:
    """Heap's `kind` snippet ("classic" or "heap5") for `app_id`, loading the tracker from `cairn` (scheme and
    host): `url="host"` changes only the host, `url="static"` replaces the address with the tracker's. `options`
    is a JavaScript object literal for heap.load's second argument (none by default, as Heap's page gives it)."""
    snippet = HEAP_CLASSIC_SNIPPET if kind == "classic" else HEAP5_SNIPPET
    address, host = _HEAP_SCRIPT[kind]
    if url == "host":
        snippet = snippet.replace(host, cairn)
    else:
        snippet = snippet.replace(address, json.dumps(f"{cairn}/static/cairn/tracker.min.js"))
    placeholder = '"YOUR_APP_ID")' if kind == "classic" else '"YOUR_ENV_ID")'
    load = json.dumps(app_id) + (f", {options})" if options else ")")
    return snippet.replace(placeholder, load)
