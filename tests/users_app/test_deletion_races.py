"""Calls that race the deletion of a person (SPEC 12; docs/identity.md, "Calls that race a deletion").

An ingest call that resolved the person's profile before the deletion's last step lands either before it (and
is deleted with the person) or after it (a new profile, as for a user_id or identity Cairn never saw): never
rows of a deleted profile, never a 500. An identify racing the last step answers as it would before or after
the deletion. Real HTTP against the live server: each call has its own PostgreSQL connection and transaction;
the pause points are injected with monkeypatch."""

import os
import threading

import pytest
from django.db import connection

from events_app.models import Event, Session
from tests.builders import apply_pending_merges, locked_or_done, post_json
from tests.conftest import wait_for
from tests.users_app.test_deletion import every_text_cell_containing
from users_app.deletion import person as person_module
from users_app.deletion.person import person_delete
from users_app.merges import request as merge_request_module
from users_app.merges.actions import merge_approve
from users_app.models import MergeAction, MergeRecord, Profile, UserProperty
from users_app.services import locks
from users_app.services.identify import profile_identify

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks need PostgreSQL"
)

IDENTITY = "wren.t5@example.org"
PLAN = "Plan-Wr3n-Secret"
DEVICE = "5551"
BOB = "777"


def a_person_with_a_merged_device(calls) -> dict:
    """Wren: device 5551 seen first, then her identified profile (so the device's primary key is the lower one),
    the device merged into her (done); and Bob, who must survive."""
    assert calls.track(user_id=DEVICE, event="pageview").status_code == 200
    assert calls.add_properties({"plan": PLAN}, identity=IDENTITY).status_code == 200
    assert calls.track(identity=IDENTITY, event="signup").status_code == 200
    assert calls.identify(DEVICE, IDENTITY).status_code == 200
    apply_pending_merges()
    assert calls.track(user_id=BOB, event="pageview").status_code == 200
    person, device = Profile.objects.get(identity=IDENTITY), Profile.objects.get(user_id=int(DEVICE))
    assert device.merged_into_id == person.pk and device.pk < person.pk
    return {"person": person, "old_pks": {person.pk, device.pk}}


def in_thread(work, errors: list) -> threading.Thread:
    """`work` on a thread of its own (its own database connection, closed at the end); exceptions kept."""

    def run():
        try:
            work()
        except Exception as error:  # noqa: BLE001 - the test asserts there were none
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def no_orphan_rows() -> None:
    """Every event, session and user property belongs to a profile that exists (events have no foreign key)."""
    profiles = set(Profile.objects.values_list("pk", flat=True))
    for model in (Event, Session):
        for owner, original in model.objects.values_list("profile_id", "original_profile_id"):
            assert {owner, original} <= profiles, model.__name__
    assert set(UserProperty.objects.values_list("profile_id", flat=True)) <= profiles


LATE_CALLS = {
    "track": ("/api/track", {"user_id": DEVICE, "event": "Late"}),
    "bulk track": ("/api/track", {"events": [{"user_id": DEVICE, "event": "Late"}, {"user_id": BOB, "event": "Late"}]}),
    "browser batch": (
        "/api/v1/browser",
        {"user_id": DEVICE, "session_id": "tab-9", "calls": [{"type": "track", "event": "Late"}]},
    ),
    "properties by user_id": ("/api/add_user_properties", {"user_id": DEVICE, "properties": {"plan": "Late"}}),
    "properties by identity": ("/api/add_user_properties", {"identity": IDENTITY, "properties": {"plan": "Late"}}),
}


def send_late_call(live_server, environment, name: str, answers: list):
    path, body = LATE_CALLS[name]
    return lambda: answers.append(post_json(f"{live_server.url}{path}", {"app_id": environment.app_id, **body}))


def pause_ingest_at_its_owner_lock(monkeypatch, *, after_lock: bool) -> tuple[threading.Event, threading.Event]:
    """The first owners_lock of an ingest call pauses (before or after taking its row locks) until released."""
    paused, release = threading.Event(), threading.Event()
    real_lock = locks.profiles_lock

    def pausing_lock(profile_pks):
        first = not paused.is_set()
        if first and not after_lock:
            paused.set()
            release.wait(30)
        locked = real_lock(profile_pks)
        if first and after_lock:
            paused.set()
            release.wait(30)
        return locked

    monkeypatch.setattr(locks, "profiles_lock", pausing_lock)  # owners_lock calls it; deletion has its own name
    return paused, release


@pytest.mark.parametrize("late_call", list(LATE_CALLS))
def test_an_ingest_call_that_resolved_the_person_before_the_deletion_lands_after_it_on_a_new_profile(
    transactional_db, live_server, environment, calls, monkeypatch, empty_broker_afterwards, late_call
):
    wren = a_person_with_a_merged_device(calls)
    paused, release = pause_ingest_at_its_owner_lock(monkeypatch, after_lock=False)
    answers, errors = [], []

    late = in_thread(send_late_call(live_server, environment, late_call, answers), errors)
    assert paused.wait(30)  # the call has resolved Wren's profile (through the device's tombstone, or her identity)
    person_delete(person_pk=wren["person"].pk)
    release.set()
    late.join(60)

    assert errors == [] and [status for status, _ in answers] == [200], answers
    assert not Profile.objects.filter(pk__in=wren["old_pks"]).exists()
    no_orphan_rows()
    assert every_text_cell_containing(PLAN) == []
    # The call landed after the deletion: on a new profile, as for a user_id or an identity never seen.
    if "identity" in late_call:
        again = Profile.objects.get(identity=IDENTITY)
        assert dict(again.properties.values_list("key", "value")) == {"plan": "Late"}
        assert not Event.objects.filter(profile=again).exists()
    else:
        again = Profile.objects.get(user_id=int(DEVICE))
        assert (again.identity, again.merged_into_id) == (None, None)
        if "properties" in late_call:
            assert dict(again.properties.values_list("key", "value")) == {"plan": "Late"}
        else:
            assert list(Event.objects.filter(profile=again).values_list("name", flat=True)) == ["Late"]
    assert again.pk not in wren["old_pks"]
    assert Profile.objects.filter(user_id=int(BOB)).exists()


@pytest.mark.parametrize("late_call", ["track", "properties by user_id", "properties by identity"])
def test_an_ingest_call_holding_the_persons_lock_lands_before_the_last_step_and_goes_with_the_person(
    transactional_db, live_server, environment, calls, monkeypatch, empty_broker_afterwards, late_call
):
    wren = a_person_with_a_merged_device(calls)
    paused, release = pause_ingest_at_its_owner_lock(monkeypatch, after_lock=True)
    answers, errors = [], []

    late = in_thread(send_late_call(live_server, environment, late_call, answers), errors)
    assert paused.wait(30)
    deleting = in_thread(lambda: person_delete(person_pk=wren["person"].pk), errors)
    wait_for(lambda: locked_or_done(deleting), timeout=30, interval=0.05)  # the last step waits for the call
    release.set()
    late.join(60)
    deleting.join(60)

    assert errors == [] and [status for status, _ in answers] == [200], answers
    assert not Profile.objects.filter(pk__in=wren["old_pks"]).exists()
    assert not Profile.objects.filter(user_id=int(DEVICE)).exists() and not Profile.objects.filter(identity=IDENTITY)
    assert not Event.objects.filter(name="Late").exists() and not UserProperty.objects.filter(value="Late").exists()
    no_orphan_rows()


def pause_the_last_step_at_the_persons_lock(monkeypatch, person_pk: int) -> tuple[threading.Event, threading.Event]:
    """The deletion's last step pauses once it holds its first row lock (the person's), until released."""
    paused, release = threading.Event(), threading.Event()
    real_lock = person_module.profiles_lock

    def pausing_lock(profile_pks):
        locked = real_lock(profile_pks)
        at_last_step = not Event.objects.filter(profile_id=person_pk).exists()  # the batches are done
        if at_last_step and not paused.is_set():
            paused.set()
            release.wait(30)
        return locked

    monkeypatch.setattr(person_module, "profiles_lock", pausing_lock)
    return paused, release


def test_an_identify_of_the_persons_device_during_the_last_step_lands_before_it(
    transactional_db, live_server, environment, calls, monkeypatch, empty_broker_afterwards
):
    """The device's identify locks the device's tombstone and then its person (primary-key order) while the last
    step holds the person. The last step used to wait for the tombstone then, and the two deadlocked (PostgreSQL
    aborted the identify: a 500). Now the last step lets go, the identify answers (SPEC 2 rule 2: the person's
    user_id), and the last step starts again and deletes everything."""
    wren = a_person_with_a_merged_device(calls)
    paused, release = pause_the_last_step_at_the_persons_lock(monkeypatch, wren["person"].pk)
    answers, errors = [], []

    deleting = in_thread(lambda: person_delete(person_pk=wren["person"].pk), errors)
    assert paused.wait(30)  # the last step holds the person's row lock
    body = {"app_id": environment.app_id, "user_id": DEVICE, "identity": IDENTITY}
    identify = in_thread(lambda: answers.append(post_json(f"{live_server.url}/api/v1/identify", body)), errors)
    wait_for(lambda: locked_or_done(identify), timeout=30, interval=0.05)
    release.set()
    deleting.join(60)
    identify.join(60)

    assert errors == [] and [status for status, _ in answers] == [200], answers
    assert answers[0][1]["user_id"] == str(wren["person"].user_id) and answers[0][1]["merge"] is None
    assert list(Profile.objects.values_list("user_id", flat=True)) == [int(BOB)]
    no_orphan_rows()


def test_an_identify_repeating_a_held_merge_while_the_deletion_removes_it_answers_a_held_merge(
    transactional_db, live_server, environment, calls, monkeypatch, empty_broker_afterwards
):
    """identify read the device's held merge into the person; the deletion's first step deleted that record
    before identify fetched it (identify used to answer a 500: MergeRecord.DoesNotExist)."""
    environment.merge_hold_threshold = 0
    environment.save()
    assert calls.track(identity=IDENTITY, event="signup").status_code == 200
    assert calls.track(user_id=DEVICE, event="pageview").status_code == 200
    assert calls.identify(DEVICE, IDENTITY).json()["merge"]["status"] == "held"
    person = Profile.objects.get(identity=IDENTITY)
    paused, release = threading.Event(), threading.Event()
    real_state = merge_request_module._merge_state

    def pausing_state(**kwargs):
        state = real_state(**kwargs)
        paused.set()
        release.wait(30)
        return state

    monkeypatch.setattr(merge_request_module, "_merge_state", pausing_state)
    answers, errors = [], []
    body = {"app_id": environment.app_id, "user_id": DEVICE, "identity": IDENTITY}

    identify = in_thread(lambda: answers.append(post_json(f"{live_server.url}/api/v1/identify", body)), errors)
    assert paused.wait(30)  # identify holds both row locks and has read the held merge
    deleting = in_thread(lambda: person_delete(person_pk=person.pk), errors)
    wait_for(lambda: locked_or_done(deleting), timeout=30, interval=0.05)
    release.set()
    identify.join(60)
    deleting.join(60)

    assert errors == [] and [status for status, _ in answers] == [200], answers
    assert answers[0][1]["merge"]["status"] == "held"
    assert not MergeRecord.objects.exists() and not Profile.objects.filter(pk=person.pk).exists()
    device = Profile.objects.get(user_id=int(DEVICE))  # held: never part of the person, so it stays
    assert device.identity is None and Event.objects.filter(profile=device).count() == 1
    assert every_text_cell_containing(IDENTITY) == []


def test_an_approve_of_a_held_merge_into_the_person_during_the_last_step_goes_through_and_the_device_goes_too(
    transactional_db, environment, calls, monkeypatch, empty_broker_afterwards, admin
):
    """A device's merge into the person is held while the deletion runs its batches; an admin approves it while
    the last step holds the person's lock. Approve holds the merge record's lock and waits for the profiles'; the
    last step used to wait for the record (to delete it) and the two deadlocked. Now the last step lets go, the
    approve goes through (the device becomes part of the person), and the device goes with the person."""
    environment.merge_hold_threshold = 0
    environment.save()
    assert calls.track(identity=IDENTITY, event="signup").status_code == 200
    assert calls.track(user_id=DEVICE, event="pageview").status_code == 200
    person = Profile.objects.get(identity=IDENTITY)
    held = []
    real_batches = person_module._delete_in_batches

    def batches_then_a_held_merge(model, *args):
        deleted = real_batches(model, *args)
        if model is UserProperty:  # the batches are done: the device identifies before the last step
            held.append(profile_identify(environment=environment, user_id=int(DEVICE), identity=IDENTITY).merge)
        return deleted

    monkeypatch.setattr(person_module, "_delete_in_batches", batches_then_a_held_merge)
    paused, release = pause_the_last_step_at_the_persons_lock(monkeypatch, person.pk)
    approved, errors = [], []

    deleting = in_thread(lambda: person_delete(person_pk=person.pk), errors)
    assert paused.wait(30) and held[0].status == "held"
    approving = in_thread(lambda: approved.append(merge_approve(merge_id=held[0].pk, actor=admin)), errors)
    wait_for(lambda: locked_or_done(approving), timeout=30, interval=0.05)
    release.set()
    approving.join(60)
    deleting.join(60)

    assert errors == [] and approved[0].status == "pending"
    assert not Profile.objects.exists() and not MergeRecord.objects.exists() and not MergeAction.objects.exists()
    no_orphan_rows()
    assert every_text_cell_containing(IDENTITY) == []
