"""The ingest write path's shortcuts keep SPEC behaviour: a profile created by the call skips lookups (its
first/last seen and initial properties come from the call itself), writes made without model instances keep
every value exactly, and the number of queries does not grow with the batch."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events_app.models import Event, Session
from events_app.services.event_rows import COPY_MIN_ROWS
from tests.builders import at, initial_properties
from users_app.models import Profile

pytestmark = pytest.mark.django_db

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


def track(api, environment, body: dict, **headers):
    response = api.post("/api/track", {"app_id": environment.app_id, **body}, **headers)
    assert response.status_code == 200, response.content
    return response.json()


def track_bulk(calls, events: list) -> dict:
    response = calls.track_bulk(events)
    assert response.status_code == 200, response.content
    return response.json()


def test_a_new_visitors_first_event_sets_first_seen_its_session_and_initial_properties(api, calls, environment):
    track(
        api,
        environment,
        {
            "user_id": "7001",
            "event": "pageview",
            "timestamp": at(0),
            "properties": {"path": "/pricing", "referrer": "https://ex.org/"},
        },
        HTTP_USER_AGENT=CHROME,
    )
    user = calls.user("7001").json()
    assert (user["first_seen"], user["last_seen"], user["session_count"], user["event_count"]) == (at(0), at(0), 1, 1)
    # A server call's user agent is the backend's, not the person's: no browser or device from it.
    assert initial_properties(calls.api, "7001") == {
        "Initial Landing Page": "/pricing",
        "Initial Referrer": "https://ex.org/",
    }
    assert Event.objects.get().session == Session.objects.get()


def test_a_bulk_of_new_and_returning_visitors(calls, environment):
    calls.track(user_id="7002", event="pageview", timestamp=at(0), properties={"path": "/a"})
    answer = track_bulk(
        calls,
        [
            # A returning visitor: a later event, and a late one from an earlier visit that becomes the first.
            {"user_id": "7002", "event": "pageview", "timestamp": at(10), "properties": {"path": "/b"}},
            {"user_id": "7002", "event": "pageview", "timestamp": at(-120), "properties": {"path": "/early"}},
            # A new visitor with two visits, sent latest first.
            {"user_id": "7003", "event": "pageview", "timestamp": at(90), "properties": {"path": "/second"}},
            {"user_id": "7003", "event": "pageview", "timestamp": at(0), "properties": {"path": "/first"}},
            {"user_id": "7003", "event": "click", "timestamp": at(5)},
        ],
    )
    assert answer == {"accepted": 5, "rejected": []}
    returning, new = calls.user("7002").json(), calls.user("7003").json()
    assert (returning["first_seen"], returning["last_seen"], returning["session_count"]) == (at(-120), at(10), 2)
    assert (new["first_seen"], new["last_seen"], new["session_count"], new["event_count"]) == (at(0), at(90), 2, 3)
    assert initial_properties(calls.api, "7002") == {"Initial Landing Page": "/early"}
    assert initial_properties(calls.api, "7003") == {"Initial Landing Page": "/first"}
    first_visit = Session.objects.get(profile__user_id=7003, landing_page="/first")
    assert sorted(first_visit.events.values_list("name", flat=True)) == ["click", "pageview"]


def test_a_new_profile_whose_events_are_all_stored_already_has_no_first_seen(calls):
    calls.track(user_id="7004", event="Sign Up", idempotency_key="signup-1", timestamp=at(0))
    answer = track_bulk(
        calls, [{"user_id": "7005", "event": "Sign Up", "idempotency_key": "signup-1", "timestamp": at(5)}]
    )
    assert answer == {"accepted": 1, "rejected": [], "duplicates": 1}
    assert Event.objects.count() == 1
    copy = Profile.objects.get(user_id=7005)
    assert (copy.first_seen, copy.last_seen, copy.sessions.count()) == (None, None, 0)


def test_a_new_identity_is_created_with_its_first_and_last_seen(calls):
    answer = track_bulk(
        calls,
        [
            {"identity": "o'brien \"\\ é", "event": "A", "timestamp": at(3)},
            {"identity": "o'brien \"\\ é", "event": "B", "timestamp": at(1)},
        ],
    )
    assert answer["accepted"] == 2
    profile = Profile.objects.get(identity="o'brien \"\\ é")
    assert (profile.first_seen.isoformat(), profile.last_seen.isoformat()) == (at(1), at(3))
    assert profile.events.count() == 2


# Text that means something to COPY, SQL or JSON: tabs, newlines, backslashes, COPY's \N and \., quotes.
AWKWARD = "tab\there\nnew line\r\\N \\. 'quote' \"double\" é 漢字 🙂 %s %(x)s"


@pytest.mark.parametrize("count", [1, COPY_MIN_ROWS + 1], ids=["insert", "copy"])
def test_awkward_values_are_stored_exactly(calls, count):
    answer = track_bulk(
        calls,
        [
            {
                "user_id": str(7100 + index),
                "event": AWKWARD,
                "idempotency_key": f"{AWKWARD}-{index}",
                "properties": {AWKWARD: AWKWARD, "path": f"/{AWKWARD}", "n": 2**60, "x": 1.5, "yes": True},
            }
            for index in range(count)
        ],
    )
    assert answer == {"accepted": count, "rejected": []}
    event = Event.objects.get(idempotency_key=f"{AWKWARD}-0")
    assert event.name == AWKWARD
    assert event.properties == {AWKWARD: AWKWARD, "path": f"/{AWKWARD}", "n": 2**60, "x": 1.5, "yes": "true"}
    assert event.session.landing_page == f"/{AWKWARD}"
    assert initial_properties(calls.api, "7100") == {"Initial Landing Page": f"/{AWKWARD}"}


def test_a_visit_going_on_under_a_new_profile_keeps_its_landing_page(calls):
    calls.track(
        user_id="7201",
        event="pageview",
        session_id="tab-9",
        timestamp=at(0),
        properties={"path": "/landing", "referrer": "https://ex.org/"},
    )
    calls.track(user_id="7202", event="click", session_id="tab-9", timestamp=at(1))
    visit = Session.objects.get(profile__user_id=7202)
    assert (visit.session_key, visit.landing_page, visit.referrer) == ("tab-9", "/landing", "https://ex.org/")


def queries_of(calls, events: list) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert calls.track_bulk(events).json()["accepted"] == len(events)
    return len(captured.captured_queries)


@pytest.mark.parametrize("session", [{}, {"session_id": "tab"}], ids=["server", "session_id"])
def test_the_number_of_queries_does_not_grow_with_the_batch(calls, session):
    def batch(first_user: int, size: int, minute: int) -> list:
        return [
            {
                "user_id": str(first_user + index % (size // 3)),
                "event": "pageview",
                "timestamp": at(minute),
                "idempotency_key": f"{first_user}-{index}-{minute}",
                "properties": {"path": "/"},
                **session,
            }
            for index in range(size)
        ]

    # New visitors, then the same people returning within their visit (sessions continued and widened).
    small_new, large_new = queries_of(calls, batch(10_000, 30, 0)), queries_of(calls, batch(20_000, 600, 0))
    small_back, large_back = queries_of(calls, batch(10_000, 30, 5)), queries_of(calls, batch(20_000, 600, 5))
    assert small_new == large_new
    assert small_back == large_back
    assert Event.objects.count() == 2 * (30 + 600)
    assert Session.objects.count() == 10 + 200


def test_without_returning_the_new_rows_are_read_back(api, calls, environment, monkeypatch):
    """SQLite before 3.35 has no INSERT ... RETURNING: nothing counts as created, every row is looked up."""
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    track(
        api,
        environment,
        {"user_id": "7301", "event": "pageview", "timestamp": at(0), "properties": {"path": "/pricing"}},
        HTTP_USER_AGENT=CHROME,
    )
    track(api, environment, {"user_id": "7301", "event": "click", "timestamp": at(2)})
    user = calls.user("7301").json()
    assert (user["first_seen"], user["last_seen"], user["session_count"], user["event_count"]) == (at(0), at(2), 1, 2)
    assert initial_properties(calls.api, "7301") == {"Initial Landing Page": "/pricing"}
