"""SPEC 4: identities that are not unique to one person are refused with `identity_blocked`."""

import pytest

from events_app.models import Event
from users_app.models import MergeRecord, Profile, UserProperty
from users_app.services.environments import environment_create
from users_app.services.identity_guard import BUILTIN_BLOCKED_IDENTITIES

pytestmark = pytest.mark.django_db

SPEC_BLOCK_LIST = [
    "anonymous",
    "guest",
    "guest_user",
    "visitor",
    "user",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "null",
    "none",
    "nan",
    "true",
    "false",
    "0",
    "-1",
    "[object object]",
]


def variants(identity: str) -> list[str]:
    return [
        identity,
        f"  {identity}\t",
        identity.upper(),
        f'"{identity}"',
        f"'{identity}'",
        f' " {identity.title()} " ',
        f"`{identity}`",
    ]


def assert_blocked(answer) -> None:
    assert answer.status_code == 400, answer.content
    error = answer.json()["error"]
    assert error["code"] == "identity_blocked"
    assert error["field"] == "identity"


def test_builtin_list_is_the_specs():
    assert BUILTIN_BLOCKED_IDENTITIES == set(SPEC_BLOCK_LIST)


@pytest.mark.parametrize("identity", [v for entry in SPEC_BLOCK_LIST for v in variants(entry)])
def test_identify_with_a_blocked_identity_is_refused_and_nothing_changes(calls, identity):
    calls.track(user_id="2001")
    assert_blocked(calls.identify("2001", identity))
    profile = Profile.objects.get()
    assert profile.identity is None and profile.user_id == 2001
    assert not MergeRecord.objects.exists()


@pytest.mark.parametrize("identity", [0, -1, 0.0])
def test_blocked_identities_sent_as_numbers(calls, identity):
    assert_blocked(calls.identify("2002", identity))
    assert not Profile.objects.exists()


@pytest.mark.parametrize("identity", ["guest", " Undefined ", '"null"', "[Object Object]"])
def test_server_calls_with_a_blocked_identity_are_refused(calls, identity):
    assert_blocked(calls.track(identity=identity))
    assert_blocked(calls.add_properties({"plan": "Free"}, identity=identity))
    assert not Profile.objects.exists()
    assert not Event.objects.exists()


def test_bulk_call_refuses_only_the_blocked_items(calls):
    answer = calls.track_bulk(
        [{"identity": "alice", "event": "a"}, {"identity": "GUEST", "event": "b"}, {"user_id": "2003", "event": "c"}]
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in body["rejected"]] == [(1, "identity_blocked")]
    assert sorted(Event.objects.values_list("name", flat=True)) == ["a", "c"]


def test_an_environments_own_block_list(calls, environment, api, other_environment):
    environment.blocked_identities = ["test@example.com", "  'Demo' "]
    environment.save()
    calls.add_properties({"plan": "Free"}, user_id="2004")
    for identity in ("test@example.com", " TEST@Example.com ", '"test@example.com"', "demo", "DEMO"):
        assert_blocked(calls.identify("2004", identity))
    assert_blocked(calls.track(identity="Test@Example.com"))
    assert Profile.objects.get(environment=environment).identity is None
    # Another environment's list does not apply.
    answer = api.post(
        "/api/v1/identify", {"app_id": other_environment.app_id, "user_id": "2004", "identity": "test@example.com"}
    )
    assert answer.status_code == 200


@pytest.mark.parametrize("identity", ["guests", "user1", "guest@example.com", "null-island", "0x0", "10"])
def test_identities_that_only_contain_a_blocked_word_are_fine(calls, identity):
    calls.track(user_id="2005")
    answer = calls.identify("2005", identity)
    assert answer.status_code == 200
    assert answer.json()["identity"] == identity


def test_a_hundred_visitors_identified_as_guest_stay_a_hundred_people(calls):
    """The seed's pitfall: `guest` would merge every visitor into one profile."""
    user_ids = [str(3_000_000 + n) for n in range(100)]
    answer = calls.track_bulk(
        [{"user_id": user_id, "event": name} for user_id in user_ids for name in ("pageview", "Add To Cart")]
    )
    assert answer.json() == {"accepted": 200, "rejected": []}
    calls.add_properties({"plan": "Free"}, user_id=user_ids[0])
    for user_id in user_ids:
        assert_blocked(calls.identify(user_id, "guest"))

    assert Profile.objects.count() == 100
    assert not Profile.objects.filter(identity__isnull=False).exists()
    assert not Profile.objects.filter(merged_into__isnull=False).exists()
    assert not MergeRecord.objects.exists()
    assert UserProperty.objects.count() == 1
    assert calls.user_by_identity("guest").status_code == 404
    for user_id in user_ids:
        user = calls.user(user_id).json()
        assert (user["identity"], user["merged_into"], user["event_count"]) == (None, None, 2)
    assert Event.objects.count() == 200


def test_new_environments_start_with_the_configured_hold_threshold(db, settings, admin_client):
    settings.CAIRN_MERGE_HOLD_THRESHOLD = 3
    assert environment_create(name="Shop").environment.merge_hold_threshold == 3
    add_form = admin_client.get("/admin/users_app/environment/add/")
    assert add_form.status_code == 200
    assert 'name="merge_hold_threshold" value="3"' in add_form.content.decode()
