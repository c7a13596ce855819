"""Races identify must survive without a savepoint or an out-of-order lock (users_app/services/identify.py,
_StartAgain): the same unseen device identified by several requests at once; and calls that wait for the lock
of a profile an identify is merging (users_app/services/locks.py, owners_lock).

Real HTTP against the live server: every request thread has its own PostgreSQL connection and transaction."""

import os
import threading

import pytest
from django.db import connection

from events_app.models import Event
from tests.builders import locked_or_done, post_json, user_build
from tests.conftest import wait_for
from users_app.models import MergeRecord, Profile

REQUESTS = 10

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks need PostgreSQL"
)


def identify_at_once(live_server, environment, user_id: str, identity: str) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(REQUESTS)
    answers = []

    def one() -> None:
        barrier.wait()
        answers.append(
            post_json(
                f"{live_server.url}/api/v1/identify",
                {"app_id": environment.app_id, "user_id": user_id, "identity": identity},
            )
        )

    threads = [threading.Thread(target=one) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == REQUESTS
    assert {status for status, _ in answers} == {200}, answers
    return answers


def test_an_unseen_device_identified_as_an_existing_identity_by_many_requests_at_once_merges_once(
    transactional_db, live_server, environment, calls, empty_broker_afterwards
):
    assert connection.vendor == "postgresql"
    calls.track(identity="alice")
    alice = Profile.objects.get(identity="alice")

    answers = identify_at_once(live_server, environment, "8400", "alice")

    assert {body["user_id"] for _, body in answers} == {str(alice.user_id)}
    assert Profile.objects.get(user_id=8400).merged_into_id == alice.pk
    assert MergeRecord.objects.filter(source__user_id=8400).count() == 1
    # The call that merged names the record; the later ones found the device already alice's (case 2).
    assert [body["merge"]["id"] for _, body in answers if body["merge"]] == [MergeRecord.objects.get().pk]


def test_an_unseen_device_identified_as_a_new_identity_by_many_requests_at_once_takes_it_once(
    transactional_db, live_server, environment, empty_broker_afterwards
):
    answers = identify_at_once(live_server, environment, "8500", "bob")

    assert {body["user_id"] for _, body in answers} == {"8500"}
    assert {body["merge"] for _, body in answers} == {None}
    assert Profile.objects.get(identity="bob").user_id == 8500
    assert Profile.objects.filter(environment=environment).count() == 1
    assert not MergeRecord.objects.exists()


def in_thread(work) -> threading.Thread:
    """A thread doing `work` on its own database connection (closed when it ends)."""

    def run():
        try:
            work()
        finally:
            connection.close()

    return threading.Thread(target=run)


def late_call_during_a_merge(environment, calls, monkeypatch, late) -> None:
    """identify(8100 -> alice) pauses after locking both profiles, before it writes the tombstone; `late`
    (a call for user 8100) runs meanwhile, reads 8100 as live and waits for its lock; then identify goes on."""
    from users_app.services import identify as identify_module

    calls.track(identity="alice")
    calls.track(user_id="8100")
    locked, release = threading.Event(), threading.Event()
    original = identify_module.merge_request

    def paused_merge_request(**kwargs):
        locked.set()
        release.wait(30)
        return original(**kwargs)

    monkeypatch.setattr(identify_module, "merge_request", paused_merge_request)

    merging = in_thread(
        lambda: identify_module.profile_identify(environment=environment, user_id=8100, identity="alice")
    )
    merging.start()
    assert locked.wait(30)
    waiting = in_thread(late)
    waiting.start()
    wait_for(lambda: locked_or_done(waiting), timeout=30, interval=0.05)
    release.set()
    merging.join(30)
    waiting.join(30)


def test_a_track_waiting_for_a_merging_profile_lands_on_the_destination(
    transactional_db, environment, calls, empty_broker_afterwards, monkeypatch
):
    from events_app.services.ingest import track_ingest

    late_call_during_a_merge(
        environment,
        calls,
        monkeypatch,
        lambda: track_ingest(environment=environment, items=[{"user_id": "8100", "event": "Late"}]),
    )

    late_event = Event.objects.get(name="Late")
    alice = Profile.objects.get(identity="alice")
    assert Profile.objects.get(user_id=8100).merged_into_id == alice.pk
    assert late_event.profile_id == alice.pk and late_event.session.profile_id == alice.pk
    assert alice.last_seen >= late_event.timestamp


def test_properties_waiting_for_a_merging_profile_land_on_the_destination(
    transactional_db, environment, calls, empty_broker_afterwards, monkeypatch
):
    from events_app.services.ingest import user_properties_ingest

    late_call_during_a_merge(
        environment,
        calls,
        monkeypatch,
        lambda: user_properties_ingest(
            environment=environment, items=[{"user_id": "8100", "properties": {"plan": "Growth"}}]
        ),
    )

    alice = Profile.objects.get(identity="alice")
    assert dict(alice.properties.values_list("key", "value"))["plan"] == "Growth"
    assert not Profile.objects.get(user_id=8100).properties.filter(key="plan").exists()


def test_an_identify_waiting_for_an_undo_of_its_devices_merge_sees_the_device_as_its_own_user_again(
    transactional_db, environment, calls, empty_broker_afterwards, monkeypatch
):
    """identify(8200 -> bob) resolves device 8200 through its tombstone to alice and waits for alice's lock,
    held by an admin undoing 8200's merge. Once the undo commits, 8200 is its own anonymous user again: the
    call must take bob for it (SPEC 2 rule 3), not treat alice as the device (which would create a new
    profile for bob and switch the client to it)."""
    from users_app.merges import undo
    from users_app.merges.apply import merge_apply
    from users_app.services.identify import profile_identify

    admin = user_build("root", password="x", is_staff=True)
    calls.track(identity="alice")
    calls.track(user_id="8200")
    record = profile_identify(environment=environment, user_id=8200, identity="alice").merge
    merge_apply(merge_id=record.pk)
    locked, release = threading.Event(), threading.Event()
    original_refusals = undo._undo_refusals

    def paused_refusals(*args):  # runs with both profiles locked
        locked.set()
        release.wait(30)
        return original_refusals(*args)

    monkeypatch.setattr(undo, "_undo_refusals", paused_refusals)
    answers = []

    undoing = in_thread(lambda: undo.merge_undo(merge_id=record.pk, actor=admin))
    undoing.start()
    assert locked.wait(30)
    waiting = in_thread(lambda: answers.append(profile_identify(environment=environment, user_id=8200, identity="bob")))
    waiting.start()
    wait_for(lambda: locked_or_done(waiting), timeout=30, interval=0.05)
    release.set()
    undoing.join(30)
    waiting.join(30)

    assert MergeRecord.objects.get(pk=record.pk).status == "reverted"
    device = Profile.objects.get(user_id=8200)
    assert (device.merged_into_id, device.identity) == (None, "bob")
    assert answers[0].profile.pk == device.pk and answers[0].merge is None
    assert Profile.objects.filter(environment=environment).count() == 2
