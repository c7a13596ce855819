"""Defined events (SPEC 13) end to end through the public API: autocaptured events sent to /api/track (and the
browser endpoint), a definition made with POST /api/v1/defined-events, its backfill, matching at ingest, and the
graph report on the defined name."""

import pytest
from django.utils import timezone

from events_app.defined_events.backfill import defined_event_backfill
from events_app.defined_events.services import defined_event_create
from events_app.models import DefinedEvent, DefinedEventMatch, Event
from events_app.services.event_rows import EVENT_COLUMNS, events_insert
from reports_app.query import report_query_parse
from reports_app.selectors.buckets import time_range
from reports_app.selectors.series import ORM_PATH, report_series
from tests.builders import apply_pending_merges, days_ago, iso
from tests.conftest import API_KEY, OTHER_API_KEY
from users_app.deletion.person import person_delete
from users_app.deletion.retention import environment_retention_apply

BEARER = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
BUY = "@body;|@div;#main;.nav;|@button;#buy;.btn;|"
BUY_LABEL = BUY + "@span;.label;|"
SELL = "@body;|@div;#main;.nav;|@button;#sell;.btn;|"
CLICKED_BUY = {"name": "Clicked Buy", "rules": [{"event": "click", "selector": "#buy", "path": "/pricing*"}]}


def click(hierarchy: str, *, path: str = "/pricing", text: str = "Buy now", tag: str = "button") -> dict:
    return {"target_tag": tag, "hierarchy": hierarchy, "path": path, "target_text": text}


def define(api, body: dict = CLICKED_BUY, **extra):
    return api.post("/api/v1/defined-events", body, **{**BEARER, **extra})


def report(api, event: str = "Clicked Buy", **params) -> dict:
    today = timezone.now().date().isoformat()
    answer = api.get("/api/v1/reports/query", event=event, to=today, **{"from": "2026-01-01", **params})
    assert answer.status_code == 200, answer.content
    return answer.json()


def total(answer: dict) -> int:
    return sum(series["total"] for series in answer["series"])


@pytest.fixture
def backfill_on_commit(eager_celery, django_capture_on_commit_callbacks):
    """Definitions made inside it have their backfill (and re-sweep) run when the block ends, as on commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_past_events_count_once_the_definition_is_made(calls, api, backfill_on_commit):
    events = [
        {"user_id": "11", "event": "click", "properties": click(BUY)},
        {"user_id": "11", "event": "click", "properties": click(BUY_LABEL, tag="span")},  # inside the button
        {"user_id": "12", "event": "click", "properties": click(BUY, path="/pricing/annual")},
        {"user_id": "12", "event": "click", "properties": click(SELL)},
        {"user_id": "12", "event": "click", "properties": click(BUY, path="/docs")},
        {"user_id": "13", "event": "submit", "properties": click(BUY)},
        {"user_id": "13", "event": "pageview", "properties": {"path": "/pricing"}},
    ]
    assert calls.track_bulk(events).json()["accepted"] == 7
    with backfill_on_commit():
        created = define(api)
    assert created.status_code == 201, created.content
    assert created.json() == {"id": created.json()["id"], "name": "Clicked Buy"}
    answer = report(api)
    assert total(answer) == 3
    assert "backfilling" not in answer
    assert total(report(api, measure="unique_users")) == 2
    listed = api.get("/api/v1/defined-events").json()["results"]
    assert [(item["name"], item["rules"], item["backfill"]) for item in listed] == [
        ("Clicked Buy", CLICKED_BUY["rules"], "done")
    ]


def test_new_events_are_matched_at_ingest_single_bulk_and_browser(calls, api, client, environment, backfill_on_commit):
    with backfill_on_commit():
        assert define(api).status_code == 201
    assert calls.track(user_id="21", event="click", properties=click(BUY)).status_code == 200
    # 30 events: the bulk path that stores by COPY, with the matching ones split off.
    bulk = [{"user_id": "22", "event": "click", "properties": click(BUY if n % 3 == 0 else SELL)} for n in range(30)]
    assert calls.track_bulk(bulk).json()["accepted"] == 30
    browser = client.post(
        "/api/v1/browser",
        {
            "app_id": environment.app_id,
            "user_id": "23",
            "session_id": "s23",
            "calls": [{"type": "track", "event": "click", "properties": click(BUY_LABEL, tag="span")}],
        },
        content_type="application/json",
    )
    assert browser.status_code == 200, browser.content
    assert total(report(api)) == 1 + 10 + 1
    assert Event.objects.filter(environment=environment).count() == 32


def test_a_duplicate_idempotency_key_is_matched_once(calls, api, backfill_on_commit):
    with backfill_on_commit():
        define(api)
    for _ in range(2):
        calls.track(user_id="31", event="click", properties=click(BUY), idempotency_key="k-1")
    assert total(report(api)) == 1
    assert DefinedEventMatch.objects.count() == 1


def test_a_report_says_backfilling_while_the_backfill_has_not_run(calls, api):
    calls.track(user_id="41", event="click", properties=click(BUY))
    assert define(api).status_code == 201  # no commit in this test: the task was not queued
    answer = report(api)
    assert answer["backfilling"] is True
    assert total(answer) == 0
    assert "backfilling" not in report(api, event="click")
    defined_event_backfill(defined_event_id=DefinedEvent.objects.get().pk)
    answer = report(api)
    assert "backfilling" not in answer and total(answer) == 1


def test_the_backfill_is_idempotent_and_resumes_in_batches(calls, api, environment, settings):
    settings.CAIRN_DEFINED_EVENT_BATCH_IDS = 3
    calls.track_bulk([{"user_id": "51", "event": "click", "properties": click(BUY)} for _ in range(10)])
    define(api)
    defined = DefinedEvent.objects.get()
    assert defined_event_backfill(defined_event_id=defined.pk) == "done"
    assert defined_event_backfill(defined_event_id=defined.pk) == "resweep done"
    assert defined_event_backfill(defined_event_id=defined.pk) == "nothing to do"
    # Run again from the start, as a redelivered task of a dead worker would: nothing counted twice.
    DefinedEvent.objects.filter(pk=defined.pk).update(backfill_status="running", backfill_position=0)
    defined_event_backfill(defined_event_id=defined.pk)
    assert DefinedEventMatch.objects.count() == 10
    assert total(report(api)) == 10


def test_the_resweep_catches_an_event_that_ingest_stored_without_the_definition(calls, api, environment):
    """An ingest transaction that read the environment before the definition existed and committed after the
    backfill passed: its events were matched by neither. The re-sweep finds them."""
    define(api)
    defined = DefinedEvent.objects.get()
    assert defined_event_backfill(defined_event_id=defined.pk) == "done"
    profile = calls.track(user_id="61", event="pageview") and environment.profiles.get(user_id=61)
    late = (environment.pk, profile.pk, profile.pk, None, "click", timezone.now(), click(BUY), None)
    assert len(late) == len(EVENT_COLUMNS)
    events_insert([late])  # as a call holding the old (empty) definitions would
    assert total(report(api)) == 0
    assert defined_event_backfill(defined_event_id=defined.pk) == "resweep done"
    assert total(report(api)) == 1


def test_a_merged_person_counts_once(calls, api, backfill_on_commit):
    calls.track(user_id="71", event="click", properties=click(BUY))
    calls.identify("71", "alice")
    apply_pending_merges()
    with backfill_on_commit():
        define(api)
    calls.track(user_id="72", event="click", properties=click(BUY))
    calls.identify("72", "alice")  # pending merge: the tombstone's events already count as alice's
    calls.track(identity="alice", event="click", properties=click(BUY))
    answer = report(api, measure="unique_users")
    assert total(answer) == 1
    assert total(report(api)) == 3


def test_a_raw_event_of_the_same_name_counts_too(calls, api, backfill_on_commit):
    with backfill_on_commit():
        define(api)
    calls.track(user_id="81", event="Clicked Buy")
    calls.track(user_id="81", event="click", properties=click(BUY))
    assert total(report(api)) == 2


def test_the_timeline_names_the_defined_events_an_event_matches(calls, api, backfill_on_commit):
    with backfill_on_commit():
        define(api)
        define(api, {"name": "Any click", "rules": [{"event": "click"}]})
    calls.track(user_id="91", event="click", properties=click(BUY))
    calls.track(user_id="91", event="click", properties=click(SELL))
    results = calls.events("91").json()["results"]
    assert sorted(item["defined_events"] for item in results) == [["Any click"], ["Any click", "Clicked Buy"]]


def test_deleting_a_definition_keeps_the_events(calls, api, backfill_on_commit):
    with backfill_on_commit():
        define(api)
    calls.track(user_id="95", event="click", properties=click(BUY))
    defined_pk = DefinedEvent.objects.get().pk
    assert api.client.delete(f"/api/v1/defined-events/{defined_pk}", **BEARER).status_code == 204
    assert api.client.delete(f"/api/v1/defined-events/{defined_pk}", **BEARER).status_code == 404
    assert DefinedEventMatch.objects.count() == 0 and Event.objects.count() == 1
    assert total(report(api)) == 0
    calls.track(user_id="95", event="click", properties=click(BUY))  # ingest has forgotten it too
    assert DefinedEventMatch.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"rules": [{"event": "click"}]}, 400, "name"),
        ({"name": " ", "rules": [{"event": "click"}]}, 400, "name"),
        ({"name": "x" * 256, "rules": [{"event": "click"}]}, 400, "name"),
        ({"name": "x"}, 400, "rules"),
        ({"name": "x", "rules": [{"event": "click", "selector": "a, b"}]}, 400, "rules[0].selector"),
        (
            {"name": "x", "rules": [{"event": "click"}, {"event": "click", "selector": "a[x]"}]},
            400,
            "rules[1].selector",
        ),
        ({"name": "x", "rules": [{"event": "click", "text": 3}]}, 400, "rules[0].text"),
        ({"name": "Clicked Buy", "rules": [{"event": "click"}]}, 409, "name"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(api, environment, body, status, field):
    defined_event_create(environment=environment, **CLICKED_BUY)
    answer = define(api, body)
    assert answer.status_code == status, answer.content
    assert answer.json()["error"]["field"] == field


def test_a_key_sees_its_own_environment_only(api, environment, other_environment):
    defined_event_create(environment=environment, **CLICKED_BUY)
    assert api.get("/api/v1/defined-events", api_key=OTHER_API_KEY).json() == {"results": []}
    assert api.get("/api/v1/defined-events", api_key="").status_code == 401
    assert define(api, HTTP_AUTHORIZATION="Bearer nope-nope-nope-nope").status_code == 401
    other = api.post("/api/v1/defined-events", CLICKED_BUY, HTTP_AUTHORIZATION=f"Bearer {OTHER_API_KEY}")
    assert other.status_code == 201  # the same name in another environment
    defined_pk = DefinedEvent.objects.get(environment=environment).pk
    deleted = api.client.delete(f"/api/v1/defined-events/{defined_pk}", HTTP_AUTHORIZATION=f"Bearer {OTHER_API_KEY}")
    assert deleted.status_code == 404
    assert api.post("/api/v1/defined-events", "[1]", **BEARER).status_code == 400
    assert api.post("/api/v1/defined-events", "{", **BEARER).status_code == 400


def test_deleting_a_person_deletes_their_matches_with_their_events(calls, api, environment, backfill_on_commit):
    with backfill_on_commit():
        define(api)
    calls.track(user_id="101", event="click", properties=click(BUY))
    calls.identify("101", "bob")
    calls.track(identity="bob", event="click", properties=click(BUY))
    calls.track(user_id="102", event="click", properties=click(BUY))
    assert DefinedEventMatch.objects.count() == 3
    person_delete(person_pk=environment.profiles.get(identity="bob").pk)
    assert DefinedEventMatch.objects.count() == 1
    assert set(DefinedEventMatch.objects.values_list("event_id", flat=True)) == set(
        Event.objects.values_list("pk", flat=True)
    )
    assert total(report(api)) == 1


def test_retention_deletes_matches_with_their_events(calls, api, environment, backfill_on_commit):
    with backfill_on_commit():
        define(api)
    calls.track(user_id="111", event="click", properties=click(BUY), timestamp=iso(days_ago(40)))
    calls.track(user_id="111", event="click", properties=click(BUY))
    environment.event_retention_days = 30
    environment.save()
    assert environment_retention_apply(environment=environment).events_deleted == 1
    assert list(DefinedEventMatch.objects.values_list("event_id", flat=True)) == [Event.objects.get().pk]


@pytest.mark.parametrize(
    "params",
    [
        {"measure": "events", "interval": "day"},
        {"measure": "unique_users", "interval": "week", "group_by": "user.plan"},
        {"measure": "events", "where": "user.plan!=Free", "interval": "month"},
        {"measure": "unique_accounts", "group_by": "account.tier"},
    ],
    ids=lambda params: params["measure"] + "-" + params.get("group_by", params.get("where", "")),
)
def test_the_match_rows_path_and_the_event_rows_path_agree(
    calls, api, environment, backfill_on_commit, monkeypatch, params
):
    """A report on a defined event reads its match rows when it needs only time and person; the same report
    through the events themselves (Event.objects.named) must give the same numbers, merged people included."""
    environment.account_id_property = "company"
    environment.save()
    calls.add_properties({"plan": "Free", "company": "acme"}, identity="alice")
    calls.add_properties({"plan": "Growth", "company": "initech"}, identity="bob")
    api.post(
        "/api/add_account_properties",
        {"app_id": environment.app_id, "account_id": "acme", "properties": {"tier": "Gold"}},
    )
    with backfill_on_commit():
        define(api)
    for who in ({"identity": "alice"}, {"identity": "bob"}, {"user_id": "131"}, {"user_id": "132"}):
        calls.track(event="click", properties=click(BUY), **who)
    calls.identify("131", "alice")  # pending merge
    calls.identify("132", "bob")
    apply_pending_merges()
    calls.track(user_id="133", event="click", properties=click(BUY), timestamp=iso(days_ago(40)))
    fast = report(api, **params)
    assert total(fast) > 0
    window = {"start": days_ago(400), "end": timezone.now()}
    defined = DefinedEvent.objects.get(environment=environment, name="Clicked Buy")
    assert DefinedEventMatch.objects.standing_for(defined, **window) is not None
    monkeypatch.setattr(type(DefinedEventMatch.objects), "standing_for", lambda *args, **kwargs: None)
    assert DefinedEventMatch.objects.standing_for(defined, **window) is None
    assert report(api, **params) == fast


@pytest.mark.parametrize(
    "params",
    [
        {"measure": "events", "interval": "week", "group_by": "event.path"},
        {"measure": "unique_users", "interval": "week", "group_by": "event.target_tag"},
        {"measure": "events", "interval": "day", "where": ["event.path=/pricing/annual", "user.plan=*"]},
        {"measure": "sessions", "interval": "month"},
    ],
    ids=lambda params: params["measure"] + "-" + params.get("group_by", str(params.get("where", ""))),
)
def test_a_defined_events_rows_read_through_its_raw_names_agree_with_the_orm_full_scan(
    calls, api, environment, backfill_on_commit, monkeypatch, params
):
    """A report that needs the defined event's event rows (an event property, sessions) reads them as its rules'
    raw names semi-joined with its match rows (Event.objects.matched_by); the ORM's GROUP BY over the UNION of
    Event.objects.named must give the same numbers: other elements, other paths, other raw names and merged
    people included."""
    with backfill_on_commit():
        define(api, {"name": "Clicked Buy", "rules": [CLICKED_BUY["rules"][0], {"event": "submit", "path": "/buy"}]})
    calls.add_properties({"plan": "Free"}, identity="alice")
    for who in ({"identity": "alice"}, {"identity": "bob"}, {"user_id": "141"}):
        calls.track(event="click", properties=click(BUY), **who)
        calls.track(event="click", properties=click(BUY_LABEL, path="/pricing/annual", tag="span"), **who)
        calls.track(event="click", properties=click(SELL), **who)  # another element
        calls.track(event="click", properties=click(BUY, path="/docs"), **who)  # another page
        calls.track(event="submit", properties={"path": "/buy"}, **who)  # the second rule
        calls.track(event="change", properties=click(BUY), **who)  # another raw name
    calls.track(identity="bob", event="click", properties=click(BUY), timestamp=iso(days_ago(40)))
    calls.identify("141", "alice")  # pending merge
    query = report_query_parse({"event": "Clicked Buy", "from": "2026-01-01", **params})
    defined = DefinedEvent.objects.get(environment=environment, name="Clicked Buy")
    assert defined.raw_names == ["click", "submit"]
    start, end = time_range(query)
    assert Event.objects.matched_by(defined, start=start, end=end).count() == 10
    through_raw_names = report_series(environment=environment, query=query).as_dict()
    assert total(through_raw_names) > 0
    monkeypatch.setattr(type(DefinedEventMatch.objects), "standing_for", lambda *args, **kwargs: None)
    assert report_series(environment=environment, query=query, path=ORM_PATH).as_dict() == through_raw_names


def test_the_profile_page_marks_the_events_a_defined_event_matches(
    calls, api, environment, signed_in, backfill_on_commit
):
    with backfill_on_commit():
        define(api, {"name": "<b>Clicked</b> Buy", "rules": [{"event": "click", "selector": "#buy"}]})
    calls.track(user_id="141", event="click", properties=click(BUY), session_id="s141")
    calls.track(user_id="141", event="click", properties=click(SELL), session_id="s141")
    page = signed_in.get("/users/141/", {"env": environment.app_id}).content.decode()
    assert page.count("defined-event-tag") == 1
    assert "◆ &lt;b&gt;Clicked&lt;/b&gt; Buy" in page
    session_pk = environment.sessions.get().pk
    session = signed_in.get(f"/users/141/sessions/{session_pk}/", {"env": environment.app_id}).content.decode()
    assert session.count("defined-event-tag") == 1
