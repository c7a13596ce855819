"""SPEC 2 through the HTTP API: the six identify cases, tombstones, the merge rules, properties."""

import pytest

from events_app.models import Event, Session
from tests.builders import ago, apply_pending_merges, identified
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord, Profile

pytestmark = pytest.mark.django_db


def assert_identify_answer(answer, user_id: str, identity: str, merge: str | None) -> dict:
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert set(body) == {"user_id", "identity", "merge"}
    assert body["user_id"] == user_id
    assert body["identity"] == identity
    if merge is None:
        assert body["merge"] is None
    else:
        assert set(body["merge"]) == {"id", "status"}
        assert body["merge"]["status"] == merge
        assert isinstance(body["merge"]["id"], int)
    return body


# ---- case 1: invalid identities ----------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["", "   ", "x" * 256, True, {"id": "alice"}, ["alice"], 1.5e400])
def test_case1_invalid_identity_is_refused_and_nothing_changes(calls, identity):
    calls.track(user_id="11")
    answer = calls.identify("11", identity)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_identity"
    assert answer.json()["error"]["field"] == "identity"
    assert Profile.objects.get().identity is None
    assert not MergeRecord.objects.exists()


@pytest.mark.parametrize("missing", ["identity", "user_id"])
@pytest.mark.parametrize("absent", [True, False], ids=["absent", "null"])
def test_case1_a_missing_field_is_named_and_nothing_changes(calls, missing, absent):
    calls.track(user_id="11")
    body = {"app_id": calls.app_id, "user_id": "11", "identity": "alice"}
    if absent:
        del body[missing]
    else:
        body[missing] = None
    answer = calls.api.post("/api/v1/identify", body)
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "missing_field",
        "message": f"`{missing}` is required.",
        "field": missing,
    }
    assert Profile.objects.get().identity is None
    assert not MergeRecord.objects.exists()


# ---- cases 2 to 6 ------------------------------------------------------------------------------------


def test_case2_same_identity_again_changes_nothing(calls):
    calls.track(user_id="21")
    assert_identify_answer(calls.identify("21", "alice"), "21", "alice", None)
    assert_identify_answer(calls.identify("21", "alice"), "21", "alice", None)
    assert Profile.objects.count() == 1
    assert not MergeRecord.objects.exists()


def test_case3_anonymous_profile_takes_new_identity_with_its_history(calls):
    calls.track(user_id="31", event="Sign Up")
    calls.track(user_id="31", event="pageview")
    assert_identify_answer(calls.identify("31", "alice"), "31", "alice", None)
    user = calls.user_by_identity("alice").json()
    assert user["user_id"] == "31"
    assert user["event_count"] == 2
    assert user["merged_into"] is None
    assert not MergeRecord.objects.exists()


def test_case3_identify_of_an_unseen_user_id_creates_it_identified(calls):
    assert_identify_answer(calls.identify(32, "alice"), "32", "alice", None)
    assert calls.user("32").json()["identity"] == "alice"


def test_case4_anonymous_profile_merges_into_the_owner_of_the_identity(calls):
    owner_id = identified(calls, "alice", events=2)
    calls.track(user_id="41", event="Sign Up")
    body = assert_identify_answer(calls.identify("41", "alice"), owner_id, "alice", "pending")
    record = MergeRecord.objects.get(pk=body["merge"]["id"])
    assert (str(record.source.user_id), str(record.destination.user_id)) == ("41", owner_id)
    # Before the task: the owner already counts the merged history, the source is a tombstone.
    assert calls.user(owner_id).json()["event_count"] == 3
    assert calls.user("41").json()["merged_into"] == owner_id

    apply_pending_merges()
    record.refresh_from_db()
    assert record.status == "done"
    assert record.events_moved == 1
    assert Event.objects.filter(profile__user_id=int(owner_id)).count() == 3
    assert calls.user(owner_id).json()["event_count"] == 3


def test_case4_repeated_identify_after_a_merge_changes_nothing(calls):
    owner_id = identified(calls, "alice")
    calls.track(user_id="42")
    assert_identify_answer(calls.identify("42", "alice"), owner_id, "alice", "pending")
    # The client retries with the old user_id: it resolves to the owner, which already has the identity.
    assert_identify_answer(calls.identify("42", "alice"), owner_id, "alice", None)
    assert MergeRecord.objects.count() == 1


def test_case5_identified_profile_switches_to_the_other_owner_without_merging(calls):
    calls.track(user_id="51", event="Sign Up")
    calls.identify("51", "alice")
    bob_id = identified(calls, "bob", events=2)
    assert_identify_answer(calls.identify("51", "bob"), bob_id, "bob", None)
    assert not MergeRecord.objects.exists()
    alice = calls.user("51").json()
    assert (alice["identity"], alice["event_count"], alice["merged_into"]) == ("alice", 1, None)
    # The client now sends bob's user_id: later activity lands on bob.
    calls.track(user_id=bob_id, event="Upgrade")
    assert calls.user(bob_id).json()["event_count"] == 3
    assert calls.user("51").json()["event_count"] == 1


def test_case6_identified_profile_gets_a_new_profile_for_a_new_identity(calls):
    calls.track(user_id="61")
    calls.identify("61", "alice")
    answer = calls.identify("61", "carol")
    assert answer.status_code == 200
    body = answer.json()
    assert body["identity"] == "carol" and body["merge"] is None
    assert body["user_id"] != "61" and body["user_id"].isdigit()
    assert 0 <= int(body["user_id"]) < 2**53
    carol = calls.user(body["user_id"]).json()
    assert (carol["identity"], carol["event_count"]) == ("carol", 0)
    alice = calls.user("61").json()
    assert (alice["identity"], alice["event_count"]) == ("alice", 1)
    assert not MergeRecord.objects.exists()


def test_identity_sent_as_a_number_is_stored_as_a_string(calls):
    calls.track(user_id="71")
    assert_identify_answer(calls.identify("71", 12345), "71", "12345", None)
    assert Profile.objects.get(user_id=71).identity == "12345"
    # The same person identified with the string form is the same identity.
    calls.track(user_id="72")
    assert_identify_answer(calls.identify("72", "12345"), "71", "12345", "pending")


def test_identity_is_case_sensitive_and_trimmed(calls):
    calls.identify("81", "  Alice ")
    assert Profile.objects.get(user_id=81).identity == "Alice"
    calls.track(user_id="82")
    assert_identify_answer(calls.identify("82", "alice"), "82", "alice", None)


# ---- tombstones --------------------------------------------------------------------------------------


def test_late_calls_with_a_merged_away_user_id_land_in_the_destination(calls):
    owner_id = identified(calls, "alice")
    calls.track(user_id="91")
    calls.identify("91", "alice")
    apply_pending_merges()
    assert calls.track(user_id="91", event="Late").json()["user_id"] == owner_id
    assert calls.add_properties({"plan": "Growth"}, user_id="91").status_code == 200
    owner = calls.user(owner_id).json()
    assert owner["event_count"] == 3
    assert owner["properties"]["plan"]["value"] == "Growth"
    late = Event.objects.get(name="Late")
    assert late.profile.user_id == int(owner_id)
    assert late.original_profile.user_id == 91  # kept for undo
    assert not Profile.objects.get(user_id=91).properties.exists()


def test_late_identify_with_a_merged_away_user_id_follows_the_tombstone(calls):
    alice_id = identified(calls, "alice")
    calls.track(user_id="92")
    calls.identify("92", "alice")
    bob_id = identified(calls, "bob")
    # 92 is alice now: alice is identified, so this is case 5 (switch to bob), never a merge of alice.
    assert_identify_answer(calls.identify("92", "bob"), bob_id, "bob", None)
    assert MergeRecord.objects.count() == 1
    assert calls.user(alice_id).json()["identity"] == "alice"


def test_late_identify_with_a_merged_away_user_id_and_a_new_identity_is_case_6(calls):
    alice_id = identified(calls, "alice")
    calls.track(user_id="93")
    calls.identify("93", "alice")
    # 93 is alice now: a new identity gets a new profile; neither alice nor the tombstone changes.
    body = calls.identify("93", "carol").json()
    carol = Profile.objects.get(identity="carol")
    assert body == {"user_id": str(carol.user_id), "identity": "carol", "merge": None}
    assert carol.user_id not in (93, int(alice_id)) and carol.merged_into_id is None
    assert calls.user(alice_id).json()["identity"] == "alice"
    assert Profile.objects.get(user_id=93).identity is None
    assert MergeRecord.objects.count() == 1


# ---- merge rules -------------------------------------------------------------------------------------


def test_merge_rules_properties_first_and_last_seen_identity(calls):
    # The anonymous visitor came first (10 days ago); alice's own history is from 2 days ago.
    calls.track(user_id="101", timestamp=ago(days=10))
    alice_id = identified(calls, "alice", timestamp=ago(days=2))
    calls.add_properties({"plan": "Free", "Initial Referrer": "visitor.example", "color": "red"}, user_id="101")
    calls.add_properties({"plan": "Startup", "Initial Referrer": "alice.example", "segment": "old"}, identity="alice")
    calls.add_properties({"segment": "new"}, user_id="101")
    segment_set_at = calls.user("101").json()["properties"]["segment"]["set_at"]
    alice_before = calls.user(alice_id).json()

    calls.identify("101", "alice")
    alice = calls.user(alice_id).json()
    values = {key: item["value"] for key, item in alice["properties"].items()}
    assert values == {
        "plan": "Startup",  # set last on alice
        "segment": "new",  # set last on the visitor
        "color": "red",  # only the visitor had it
        "Initial Referrer": "visitor.example",  # from the earlier profile, although set before alice's
    }
    assert alice["properties"]["segment"]["set_at"] == segment_set_at
    visitor = calls.user("101").json()
    assert alice["first_seen"] == visitor["first_seen"] < alice_before["first_seen"]  # the earlier
    assert alice["last_seen"] == alice_before["last_seen"] > visitor["last_seen"]  # the later
    assert alice["identity"] == "alice"

    apply_pending_merges()  # the task moves history; it does not change what was already resolved
    assert calls.user(alice_id).json()["properties"] == alice["properties"]


def test_merge_keeps_the_destinations_initial_properties_when_it_was_first(calls):
    alice_id = identified(calls, "alice", timestamp=ago(days=9))
    calls.track(user_id="102", timestamp=ago(days=1))
    calls.add_properties({"Initial Referrer": "alice.example"}, identity="alice")
    calls.add_properties({"Initial Referrer": "visitor.example"}, user_id="102")
    calls.identify("102", "alice")
    alice = calls.user(alice_id).json()
    assert alice["properties"]["Initial Referrer"]["value"] == "alice.example"
    assert alice["first_seen"] < alice["last_seen"] == calls.user("102").json()["last_seen"]


def test_every_merge_leaves_a_record(calls):
    alice_id = identified(calls, "alice")
    for user_id in ("111", "112", "113"):
        calls.track(user_id=user_id)
        calls.identify(user_id, "alice")
    merges = calls.merges(identity="alice").json()["results"]
    assert sorted(m["source_user_id"] for m in merges) == ["111", "112", "113"]
    assert {m["destination_user_id"] for m in merges} == {alice_id}
    assert Profile.objects.filter(merged_into__user_id=int(alice_id)).count() == 3


def test_merge_moves_sessions_and_events_exactly_once(calls):
    alice_id = identified(calls, "alice", events=2)
    calls.track_bulk(
        [
            {"user_id": "121", "event": "pageview", "session_id": "s1"},
            {"user_id": "121", "event": "click", "session_id": "s1"},
            {"user_id": "121", "event": "pageview", "session_id": "s2"},
        ]
    )
    calls.identify("121", "alice")
    apply_pending_merges()
    for merge_id in MergeRecord.objects.values_list("pk", flat=True):
        merge_apply(merge_id=merge_id)  # a redelivered task changes nothing
    record = MergeRecord.objects.get()
    assert (record.status, record.events_moved, record.sessions_moved) == ("done", 3, 2)
    assert Event.objects.count() == 5
    assert set(Event.objects.values_list("profile__user_id", flat=True)) == {int(alice_id)}
    assert Session.objects.filter(profile__user_id=int(alice_id)).count() == 3
    alice = calls.user(alice_id).json()
    assert (alice["event_count"], alice["session_count"]) == (5, 3)


# ---- add_user_properties -----------------------------------------------------------------------------


def test_properties_by_identity_create_an_identified_profile_a_later_identify_merges_into(calls):
    answer = calls.add_properties({"plan": "Premium", "seats": 12}, identity="dana@example.com")
    assert answer.status_code == 200
    dana = calls.user_by_identity("dana@example.com").json()
    assert (dana["event_count"], dana["session_count"]) == (0, 0)
    assert dana["properties"]["plan"]["value"] == "Premium"
    assert dana["properties"]["seats"]["value"] == 12

    calls.track(user_id="131", event="Sign Up")
    assert_identify_answer(calls.identify("131", "dana@example.com"), dana["user_id"], "dana@example.com", "pending")
    assert calls.user(dana["user_id"]).json()["event_count"] == 1


def test_legacy_identify_endpoint_adds_properties(calls, api):
    answer = api.post("/api/identify", {"app_id": calls.app_id, "identity": "erin", "properties": {"plan": "Free"}})
    assert answer.status_code == 200
    assert calls.user_by_identity("erin").json()["properties"]["plan"]["value"] == "Free"


def test_null_removes_a_property_and_values_keep_their_set_time(calls):
    calls.add_properties({"plan": "Free", "company": "Acme"}, user_id="141")
    first = calls.user("141").json()["properties"]
    calls.add_properties({"plan": None, "company": "Acme Inc"}, user_id="141")
    properties = calls.user("141").json()["properties"]
    assert set(properties) == {"company"}
    assert properties["company"]["value"] == "Acme Inc"
    assert properties["company"]["set_at"] > first["company"]["set_at"]
    # Removing a property that does not exist is fine.
    assert calls.add_properties({"missing": None}, user_id="141").status_code == 200


@pytest.mark.parametrize("key", ["user_id", "id"])
def test_reserved_property_keys_are_refused_naming_the_key(calls, key):
    answer = calls.add_properties({"plan": "Free", key: "42"}, user_id="151")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "reserved_property"
    assert key in error["field"] and f"`{key}`" in error["message"]
    assert not Profile.objects.filter(user_id=151).exists()
