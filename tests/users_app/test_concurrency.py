"""SPEC 2: concurrent identifies of one new identity end with one owner and everyone else merged into it.

Real HTTP against the live server: every request thread has its own PostgreSQL connection and transaction.
"""

import os
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from events_app.models import Event, Session
from tests.builders import locked_or_done, post_json
from tests.conftest import wait_for
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord, Profile

DEVICES = 20
EVENTS_PER_DEVICE = 3

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks need PostgreSQL"
)


def test_twenty_devices_identify_the_same_new_identity_at_once(
    transactional_db, live_server, environment, calls, empty_broker_afterwards
):
    assert connection.vendor == "postgresql"
    user_ids = [str(8_000_000 + device) for device in range(DEVICES)]
    answer = calls.track_bulk(
        [
            {"user_id": user_id, "event": f"e{n}", "session_id": f"tab-{user_id}"}
            for user_id in user_ids
            for n in range(EVENTS_PER_DEVICE)
        ]
    )
    assert answer.json()["accepted"] == DEVICES * EVENTS_PER_DEVICE

    barrier = threading.Barrier(DEVICES)
    answers: dict[str, tuple[int, dict]] = {}

    def device(user_id: str) -> None:
        barrier.wait()
        answers[user_id] = post_json(
            f"{live_server.url}/api/v1/identify",
            {"app_id": environment.app_id, "user_id": user_id, "identity": "shared@x.io"},
        )

    threads = [threading.Thread(target=device, args=(user_id,)) for user_id in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(answers) == DEVICES
    assert {status for status, _ in answers.values()} == {200}, answers
    # Exactly one profile owns the identity; every device is told to use its user_id.
    owner = Profile.objects.get(identity="shared@x.io")
    assert {body["user_id"] for _, body in answers.values()} == {str(owner.user_id)}
    assert str(owner.user_id) in user_ids
    assert sum(body["merge"] is None for _, body in answers.values()) == 1
    merges = MergeRecord.objects.all()
    assert merges.count() == DEVICES - 1
    assert {m.destination_id for m in merges} == {owner.pk}
    assert len({m.source_id for m in merges}) == DEVICES - 1
    assert Profile.objects.filter(merged_into=owner).count() == DEVICES - 1

    # Reads are right before the merge tasks run.
    total = DEVICES * EVENTS_PER_DEVICE
    user = calls.user(owner.user_id).json()
    assert (user["event_count"], user["session_count"]) == (total, DEVICES)

    for merge in merges:
        merge_apply(merge_id=merge.pk)
    merges = list(MergeRecord.objects.all())
    assert {m.status for m in merges} == {"done"}
    assert sorted({m.events_moved for m in merges}) == [EVENTS_PER_DEVICE]
    assert Event.objects.count() == total
    assert Event.objects.filter(profile=owner).count() == total
    assert Event.objects.values("original_profile", "name").distinct().count() == total
    assert Session.objects.filter(profile=owner).count() == DEVICES
    user = calls.user(owner.user_id).json()
    assert (user["event_count"], user["session_count"]) == (total, DEVICES)


@pytest.mark.parametrize("call", ["add_user_properties", "track"])
def test_calls_made_while_a_merge_of_their_profile_commits_land_on_the_destination(
    transactional_db, environment, calls, empty_broker_afterwards, call
):
    """A server call with the anonymous user_id arrives while identify merges that profile: it waits for the
    merge to commit (the profile upsert meets the merge's row lock) and then lands on the destination, so
    the value or event belongs to the person, not to the tombstone."""
    from django.db import transaction

    from events_app.services.ingest import track_ingest, user_properties_ingest
    from users_app.services.identify import profile_identify

    calls.track(identity="alice")
    calls.track(user_id="8100")
    identify_open, release = threading.Event(), threading.Event()

    def identify_and_hold() -> None:
        try:
            with transaction.atomic():
                profile_identify(environment=environment, user_id=8100, identity="alice")
                identify_open.set()
                release.wait(30)
        finally:
            connection.close()

    def late_call() -> None:
        try:
            if call == "track":
                track_ingest(environment=environment, items=[{"user_id": "8100", "event": "Late"}])
            else:
                user_properties_ingest(
                    environment=environment, items=[{"user_id": "8100", "properties": {"plan": "Growth"}}]
                )
        finally:
            connection.close()

    identifier = threading.Thread(target=identify_and_hold)
    identifier.start()
    assert identify_open.wait(30)
    caller = threading.Thread(target=late_call)
    caller.start()
    wait_for(lambda: locked_or_done(caller), timeout=30, interval=0.05)
    release.set()
    identifier.join(30)
    caller.join(30)

    alice = calls.user_by_identity("alice").json()
    if call == "track":
        assert Event.objects.get(name="Late").profile.identity == "alice"
        assert alice["event_count"] == 3
    else:
        assert alice["properties"]["plan"]["value"] == "Growth"
        assert calls.user("8100").json()["properties"] == {}


@pytest.mark.parametrize("session", [{}, {"session_id": "tab-1"}], ids=["server", "session_id"])
def test_concurrent_calls_for_one_user_make_one_session(transactional_db, live_server, environment, calls, session):
    """Several web workers send one user's events at the same moment (a page load firing server calls):
    one visit, one session, every event stored."""
    calls.track(user_id="8200", event="yesterday", timestamp=(timezone.now() - timedelta(days=1)).isoformat())
    calls_at_once = 10
    barrier = threading.Barrier(calls_at_once)
    statuses = []

    def send(n: int) -> None:
        barrier.wait()
        status, _ = post_json(
            f"{live_server.url}/api/track",
            {"app_id": environment.app_id, "user_id": "8200", "event": f"e{n}", **session},
        )
        statuses.append(status)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(calls_at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * calls_at_once
    assert Event.objects.count() == calls_at_once + 1
    assert Session.objects.count() == 2  # yesterday's and this visit
    visit = Session.objects.exclude(events__name="yesterday").get()
    assert visit.events.count() == calls_at_once


def test_identify_waiting_for_a_merge_of_its_profile_follows_the_tombstone(
    transactional_db, environment, calls, empty_broker_afterwards
):
    """One device sends identify(alice) and identify(bob) at once; alice wins the profile's lock and merges
    it. The bob call must then treat the device as alice (identified: case 6, a new profile for bob), not
    give the tombstone an identity."""
    from django.db import transaction

    from users_app.services.identify import profile_identify

    calls.track(identity="alice")
    calls.track(user_id="8300")
    alice_open, release = threading.Event(), threading.Event()
    results = {}

    def identify_alice_and_hold() -> None:
        try:
            with transaction.atomic():
                profile_identify(environment=environment, user_id=8300, identity="alice")
                alice_open.set()
                release.wait(30)
        finally:
            connection.close()

    def identify_bob() -> None:
        try:
            results["bob"] = profile_identify(environment=environment, user_id=8300, identity="bob")
        finally:
            connection.close()

    first = threading.Thread(target=identify_alice_and_hold)
    first.start()
    assert alice_open.wait(30)
    second = threading.Thread(target=identify_bob)
    second.start()
    wait_for(lambda: locked_or_done(second), timeout=30, interval=0.05)
    release.set()
    first.join(30)
    second.join(30)

    tombstone = Profile.objects.get(user_id=8300)
    assert tombstone.identity is None
    assert tombstone.merged_into.identity == "alice"
    bob = Profile.objects.get(identity="bob")
    assert results["bob"].profile.pk == bob.pk and results["bob"].merge is None
    assert bob.merged_into_id is None and bob.user_id != 8300
    assert MergeRecord.objects.count() == 1


def test_calls_touching_both_people_during_identify_never_deadlock(
    transactional_db, live_server, environment, calls, empty_broker_afterwards
):
    """At the moment a visitor logs in, the server also sends bulk calls that name both the visitor's
    user_id and the identity (in either order). Every call answers 200: no deadlock between identify's row
    locks and the rows the other calls write (before row locks were taken in one order, about half of
    these rounds ended in a `deadlock detected` 500)."""
    calls.track(identity="alice")
    failures = []
    for round_number in range(12):
        visitor = str(8_400_000 + round_number)
        calls.track(user_id=visitor)
        requests = [
            ("/api/v1/identify", {"user_id": visitor, "identity": "alice"}),
            ("/api/track", {"events": [{"user_id": visitor, "event": "a"}, {"identity": "alice", "event": "b"}]}),
            (
                "/api/track",
                {
                    "events": [
                        {"identity": "alice", "event": "c", "session_id": f"s{visitor}"},
                        {"user_id": visitor, "event": "d", "session_id": f"t{visitor}"},
                    ]
                },
            ),
            (
                "/api/add_user_properties",
                {
                    "users": [
                        {"user_id": visitor, "properties": {"n": round_number}},
                        {"identity": "alice", "properties": {"plan": "Growth"}},
                    ]
                },
            ),
        ]
        barrier = threading.Barrier(len(requests))

        def send(path: str, body: dict, barrier: threading.Barrier) -> None:
            barrier.wait()
            status, answer = post_json(f"{live_server.url}{path}", {"app_id": environment.app_id, **body})
            if status != 200:
                failures.append((path, status, answer))

        threads = [threading.Thread(target=send, args=(*request, barrier)) for request in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    alice = Profile.objects.get(identity="alice")
    assert Profile.objects.filter(merged_into=alice).count() == 12
    assert Event.objects.count() == 1 + 12 * 5
    assert calls.user(alice.user_id).json()["event_count"] == 1 + 12 * 5
