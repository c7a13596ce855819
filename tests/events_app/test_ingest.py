"""SPEC 3's ingest: /api/track single and bulk, idempotency, profiles created on the fly, sessions."""

import pytest

from events_app.models import Event, Session
from tests.builders import at
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord, Profile

pytestmark = pytest.mark.django_db


def test_single_track_by_user_id(calls):
    answer = calls.track(user_id="5001", event="Sign Up", properties={"plan": "Free", "seats": 3}, timestamp=at(0))
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 1, "rejected": [], "user_id": "5001"}
    event = Event.objects.get()
    assert (event.name, event.properties, event.profile.user_id) == ("Sign Up", {"plan": "Free", "seats": 3}, 5001)
    assert event.timestamp.isoformat() == at(0)
    user = calls.user("5001").json()
    assert user["first_seen"] == user["last_seen"] == at(0)


def test_track_by_an_unknown_identity_creates_its_profile(calls):
    answer = calls.track(identity="alice@example.com", event="Upgrade")
    assert answer.status_code == 200
    profile = Profile.objects.get()
    assert profile.identity == "alice@example.com"
    assert answer.json()["user_id"] == str(profile.user_id)
    assert calls.track(identity="alice@example.com").json()["user_id"] == str(profile.user_id)
    assert calls.user_by_identity("alice@example.com").json()["event_count"] == 2


def test_bulk_track(calls):
    answer = calls.track_bulk(
        [
            {"user_id": "5002", "event": "pageview"},
            {"identity": "bob", "event": "Sign Up"},
            {"user_id": 5002, "event": "click", "properties": {"button": "buy"}},
        ]
    )
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 3, "rejected": []}
    assert calls.user("5002").json()["event_count"] == 2
    assert calls.user_by_identity("bob").json()["event_count"] == 1


def test_bulk_of_exactly_1000_items_is_accepted(calls):
    answer = calls.track_bulk([{"user_id": str(6000 + n % 50), "event": "pageview"} for n in range(1000)])
    assert answer.json() == {"accepted": 1000, "rejected": []}
    assert Event.objects.count() == 1000
    assert Profile.objects.count() == 50


@pytest.mark.parametrize("app_id", ["1000000001", 1000000001, " 1000000001 ", 1000000001.0])
def test_app_id_as_string_or_number(calls, api, app_id):
    answer = api.post("/api/track", {"app_id": app_id, "user_id": "5003", "event": "pageview"})
    assert answer.status_code == 200
    assert Event.objects.get().environment == calls.environment
    answer = api.post("/api/add_user_properties", {"app_id": app_id, "user_id": 5003, "properties": {"a": 1}})
    assert answer.status_code == 200
    answer = api.post("/api/v1/identify", {"app_id": app_id, "user_id": 5003, "identity": "alice"})
    assert answer.json()["user_id"] == "5003"
    assert Profile.objects.get().identity == "alice"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1767225600000, "2026-01-01T00:00:00+00:00"),  # Unix epoch milliseconds
        (1767225600500.0, "2026-01-01T00:00:00.500000+00:00"),
        ("2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00", "2026-01-01T00:00:00+00:00"),  # no time zone: UTC
        ("2026-01-01 00:00:00Z", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_timestamps_as_iso_8601_or_epoch_milliseconds(calls, timestamp, expected):
    assert calls.track(user_id="5014", timestamp=timestamp).status_code == 200
    assert calls.events("5014").json()["results"][0]["timestamp"] == expected


@pytest.mark.parametrize(("identity", "stored"), [(12345, "12345"), (12345.0, "12345"), (0.5, "0.5"), (" 42 ", "42")])
def test_identity_as_a_number_is_stored_as_a_string(calls, identity, stored):
    assert calls.track(identity=identity).status_code == 200
    assert Profile.objects.get().identity == stored
    assert calls.user_by_identity(stored).json()["identity"] == stored


def test_add_user_properties_bulk(calls, api):
    answer = api.post(
        "/api/add_user_properties",
        {
            "app_id": calls.app_id,
            "users": [
                {"identity": "alice", "properties": {"plan": "Growth"}},
                {"user_id": "5004", "properties": {"plan": "Free", "seats": 2}},
                {"identity": "alice", "properties": {"company": "Acme"}},
            ],
        },
    )
    assert answer.json() == {"accepted": 3, "rejected": []}
    alice = calls.user_by_identity("alice").json()["properties"]
    assert {k: v["value"] for k, v in alice.items()} == {"plan": "Growth", "company": "Acme"}
    assert calls.user("5004").json()["properties"]["seats"]["value"] == 2


def test_later_value_in_one_bulk_wins(calls, api):
    api.post(
        "/api/add_user_properties",
        {
            "app_id": calls.app_id,
            "users": [
                {"user_id": "5005", "properties": {"plan": "Free"}},
                {"user_id": "5005", "properties": {"plan": "Premium"}},
                {"user_id": "5005", "properties": {"plan": None, "seats": 1}},
                {"user_id": "5005", "properties": {"plan": "Enterprise"}},
            ],
        },
    )
    properties = calls.user("5005").json()["properties"]
    assert {k: v["value"] for k, v in properties.items()} == {"plan": "Enterprise", "seats": 1}


# ---- idempotency -------------------------------------------------------------------------------------


def test_repeated_idempotency_key_is_stored_once(calls):
    for _ in range(3):
        answer = calls.track(user_id="5006", event="Purchase", idempotency_key="order-1")
        assert answer.status_code == 200
    assert answer.json()["duplicates"] == 1
    assert Event.objects.count() == 1
    assert calls.user("5006").json()["event_count"] == 1


def test_idempotency_key_repeated_within_one_bulk(calls):
    answer = calls.track_bulk(
        [
            {"user_id": "5007", "event": "Purchase", "idempotency_key": "order-2"},
            {"user_id": "5007", "event": "Purchase", "idempotency_key": "order-2"},
            {"user_id": "5007", "event": "Purchase", "idempotency_key": "order-3"},
            {"user_id": "5007", "event": "Purchase"},
            {"user_id": "5007", "event": "Purchase"},
        ]
    )
    assert answer.json() == {"accepted": 5, "rejected": [], "duplicates": 1}
    assert Event.objects.count() == 4
    assert sorted(Event.objects.exclude(idempotency_key=None).values_list("idempotency_key", flat=True)) == [
        "order-2",
        "order-3",
    ]


def test_idempotency_keys_are_per_environment(calls, api, other_environment):
    calls.track(user_id="5008", idempotency_key="k")
    api.post(
        "/api/track",
        {"app_id": other_environment.app_id, "user_id": "5008", "event": "pageview", "idempotency_key": "k"},
    )
    assert Event.objects.count() == 2


# ---- sessions ----------------------------------------------------------------------------------------


def test_server_events_without_session_id_are_grouped_by_30_minutes_of_inactivity(calls):
    # 0, 10, 39 (29 minutes after 10) -> one session; 70 (31 minutes later) -> a second one.
    for minutes in (0, 10, 39, 70):
        calls.track(user_id="5009", timestamp=at(minutes))
    sessions = list(Session.objects.order_by("started_at"))
    assert len(sessions) == 2
    assert (sessions[0].started_at.isoformat(), sessions[0].ended_at.isoformat()) == (at(0), at(39))
    assert sessions[1].started_at.isoformat() == at(70)
    assert [s.events.count() for s in sessions] == [3, 1]
    assert calls.user("5009").json()["session_count"] == 2


def test_grouping_by_inactivity_also_works_within_one_bulk_in_any_order(calls):
    calls.track_bulk([{"user_id": "5010", "event": "e", "timestamp": at(m)} for m in (100, 0, 20, 140, 41)])
    assert calls.user("5010").json()["session_count"] == 3  # {0, 20, 41}, {100}, {140}


def test_events_with_session_id_are_grouped_by_that_id(calls):
    calls.track(user_id="5011", session_id="tab-a", timestamp=at(0))
    calls.track(user_id="5011", session_id="tab-a", timestamp=at(300))  # hours later, same session id
    calls.track(user_id="5011", session_id="tab-b", timestamp=at(1))  # another id, overlapping in time
    sessions = {s.session_key: s for s in Session.objects.all()}
    assert set(sessions) == {"tab-a", "tab-b"}
    assert sessions["tab-a"].events.count() == 2
    assert (sessions["tab-a"].started_at.isoformat(), sessions["tab-a"].ended_at.isoformat()) == (at(0), at(300))
    assert calls.user("5011").json()["session_count"] == 2


def test_sessions_of_different_users_are_separate(calls):
    calls.track(user_id="5012", timestamp=at(0))
    calls.track(user_id="5013", timestamp=at(1))
    calls.track(user_id="5012", session_id="same", timestamp=at(2))
    calls.track(user_id="5013", session_id="same", timestamp=at(3))
    assert Session.objects.count() == 4


# ---- sessions across a merge: one visit stays one session when the visitor logs in --------------------


def visitor_logs_in(calls, **session) -> str:
    """alice has an old session; an anonymous visitor starts a visit, logs in as alice (case 4) and the
    client switches to alice's user_id for the rest of the visit. Returns alice's user_id."""
    calls.track(identity="alice", timestamp=at(-3000))
    alice_id = calls.user_by_identity("alice").json()["user_id"]
    calls.track(user_id="5020", timestamp=at(0), **session)
    assert calls.identify("5020", "alice").json()["user_id"] == alice_id
    calls.track(user_id=alice_id, timestamp=at(5), **session)
    calls.track(user_id="5020", timestamp=at(6), **session)  # a late call with the old user_id
    return alice_id


@pytest.mark.parametrize("session", [{"session_id": "tab-1"}, {}], ids=["session_id", "server"])
def test_a_visit_continues_as_one_session_across_identify(calls, session):
    alice_id = visitor_logs_in(calls, **session)
    assert calls.user(alice_id).json()["session_count"] == 2  # the old one and this visit
    assert Session.objects.count() == 2
    for merge_id in MergeRecord.objects.values_list("pk", flat=True):
        merge_apply(merge_id=merge_id)
    assert calls.user(alice_id).json()["session_count"] == 2
    visit = Session.objects.get(started_at__gt=at(-1))
    assert (visit.started_at.isoformat(), visit.ended_at.isoformat(), visit.events.count()) == (at(0), at(6), 3)
