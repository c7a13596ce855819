"""The merge task's work (users_app/merges/apply.py): large histories move in bounded batches on
parallel streams, every row exactly once, with counts that are right even when a run stops half-way.

These tests commit (transactional_db): the streams run on connections of their own, which would not see a
test transaction's rows. (A caller inside a transaction gets a single stream; the other merge tests cover it.)
"""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from events_app.models import Event, Session
from tests.builders import environment_build, profile_build
from users_app.merges import apply
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord, Profile
from users_app.services.identify import profile_identify

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def committed_environment(transactional_db):
    return environment_build(name="Merge site", app_id="1000000077", api_key="merge-history-key-0123456789")


def history(environment, user_id: int, events: int, sessions: int) -> Profile:
    # Several events share each timestamp, so the keyset walk's (time, id) tie-break is exercised.
    return profile_build(environment, user_id, events=events, sessions=sessions, events_per_second=3)


def merge_of(environment, source: Profile, identity: str = "alice") -> MergeRecord:
    Profile.objects.get_or_create(environment=environment, identity=identity, defaults={"user_id": 10**12})
    return profile_identify(environment=environment, user_id=source.user_id, identity=identity).merge


@pytest.mark.parametrize("streams", [1, 3])
def test_a_large_history_moves_every_row_exactly_once_in_batches(committed_environment, settings, streams):
    settings.CAIRN_MERGE_BATCH_SIZE = 700
    settings.CAIRN_MERGE_STREAMS = streams
    source = history(committed_environment, 5, events=6_001, sessions=1_500)
    event_ids = set(Event.objects.values_list("pk", flat=True))
    record = merge_of(committed_environment, source)

    record = merge_apply(merge_id=record.pk)

    alice = Profile.objects.get(identity="alice")
    assert (record.status, record.events_moved, record.sessions_moved) == ("done", 6_001, 1_500)
    assert set(Event.objects.filter(profile=alice).values_list("pk", flat=True)) == event_ids
    assert Session.objects.filter(profile=alice).count() == 1_500
    assert not Event.objects.filter(profile=source).exists()
    assert record.finished_at is not None and record.attempts == 1


def test_a_run_that_died_half_way_is_continued_and_counts_nothing_twice(committed_environment, settings, monkeypatch):
    settings.CAIRN_MERGE_BATCH_SIZE = 500
    settings.CAIRN_MERGE_STREAMS = 1  # one stream, so "half-way" is a known number of batches
    source = history(committed_environment, 6, events=3_000, sessions=10)
    record = merge_of(committed_environment, source)
    moves = []
    real_move = apply._move_range

    def dies_after_four_batches(model, key_range, **kwargs):
        if len(moves) == 4:
            raise OperationalError("the server closed the connection")
        moves.append(key_range)
        return real_move(model, key_range, **kwargs)

    monkeypatch.setattr(apply, "_move_range", dies_after_four_batches)
    with pytest.raises(OperationalError):
        merge_apply(merge_id=record.pk)
    monkeypatch.undo()  # the next run's worker is healthy
    record.refresh_from_db()
    half_way = Event.objects.filter(profile_id=record.destination_id).count()
    assert record.status == "running" and 0 < half_way < 3_000
    # What the record counted is exactly what moved: each batch counted in the transaction that moved it.
    assert record.events_moved == half_way
    assert record.sessions_moved == Session.objects.filter(profile_id=record.destination_id).count()

    record = merge_apply(merge_id=record.pk)

    assert (record.status, record.events_moved, record.sessions_moved, record.attempts) == ("done", 3_000, 10, 2)
    assert Event.objects.filter(profile_id=record.destination_id).count() == 3_000


def test_streams_stop_when_the_merge_stops_running(committed_environment, settings, monkeypatch):
    # Another worker finished it, or it was marked failed: a batch that finds the record no longer running is
    # rolled back, and no stream moves anything more.
    settings.CAIRN_MERGE_BATCH_SIZE = 400
    settings.CAIRN_MERGE_STREAMS = 2
    source = history(committed_environment, 7, events=4_000, sessions=4)
    record = merge_of(committed_environment, source)
    real_move = apply._move_range
    calls = []

    def marks_failed_after_two(model, key_range, **kwargs):
        calls.append(model)
        if len(calls) == 3:
            MergeRecord.objects.filter(pk=record.pk).update(status="failed", last_error="marked by the test")
        return real_move(model, key_range, **kwargs)

    monkeypatch.setattr(apply, "_move_range", marks_failed_after_two)
    result = merge_apply(merge_id=record.pk)
    monkeypatch.undo()

    assert result.status == "failed"
    still_on_source = Event.objects.filter(profile=source).count()
    assert still_on_source > 0
    assert result.events_moved == 4_000 - still_on_source
    # Retried, it finishes.
    MergeRecord.objects.filter(pk=record.pk).update(status="pending")
    assert merge_apply(merge_id=record.pk).events_moved == 4_000


def test_an_error_on_a_stream_reaches_the_task(committed_environment, settings, monkeypatch):
    settings.CAIRN_MERGE_BATCH_SIZE = 300
    settings.CAIRN_MERGE_STREAMS = 2
    source = history(committed_environment, 8, events=1_500, sessions=2)
    record = merge_of(committed_environment, source)
    real_move = apply._move_range

    def fails_on_events(model, key_range, **kwargs):
        if model is Event:
            raise OperationalError("deadlock detected")
        return real_move(model, key_range, **kwargs)

    monkeypatch.setattr(apply, "_move_range", fails_on_events)
    with pytest.raises(OperationalError, match="deadlock"):
        merge_apply(merge_id=record.pk)
    # The task's retry policy (users_app/tasks.py) decides what happens next; nothing was lost meanwhile.
    record.refresh_from_db()
    assert record.status == "running"
    assert Event.objects.filter(profile=source).count() == 1_500 - record.events_moved
    assert Event.objects.count() == 1_500


def test_a_caller_inside_a_transaction_gets_one_stream(committed_environment, settings):
    settings.CAIRN_MERGE_BATCH_SIZE = 200
    settings.CAIRN_MERGE_STREAMS = 4
    source = history(committed_environment, 9, events=900, sessions=3)
    record = merge_of(committed_environment, source)

    with transaction.atomic():
        assert connection.in_atomic_block
        record = merge_apply(merge_id=record.pk)
    assert (record.status, record.events_moved) == ("done", 900)


def test_a_session_continued_during_the_walk_still_moves(committed_environment, settings, monkeypatch):
    # A call for the tombstone continues one of its sessions while the merge runs: its ended_at jumps past
    # the walk's cursor, so the walk never meets it; the merge's last step moves it all the same.
    settings.CAIRN_MERGE_BATCH_SIZE = 3
    settings.CAIRN_MERGE_STREAMS = 1
    source = history(committed_environment, 10, events=12, sessions=10)
    record = merge_of(committed_environment, source)
    real_move = apply._move_range
    session_batches, continued = [], []

    def continues_a_session(model, key_range, **kwargs):
        if model is Session:
            session_batches.append(key_range)
            if len(session_batches) == 2:
                # The walk goes down ended_at and is past the top: continue the session it would reach last.
                last = Session.objects.filter(profile=source).order_by("ended_at").first()
                continued.append(last.pk)
                Session.objects.filter(pk=last.pk).update(ended_at=timezone.now() + timedelta(days=1))
        return real_move(model, key_range, **kwargs)

    monkeypatch.setattr(apply, "_move_range", continues_a_session)
    record = merge_apply(merge_id=record.pk)

    assert len(continued) == 1 and len(session_batches) >= 3
    assert (record.status, record.sessions_moved, record.events_moved) == ("done", 10, 12)
    assert not Session.objects.filter(profile=source).exists()


@pytest.mark.parametrize(("batch_size", "streams", "events"), [(1, 1, 60), (7, 1, 60), (7, 3, 60), (700, 3, 3_001)])
def test_the_batches_alone_move_a_quiet_history(
    committed_environment, settings, monkeypatch, batch_size, streams, events
):
    # Nobody writes for the tombstone meanwhile, so the last step (one UPDATE under the record's lock) must
    # find nothing left: every row was in exactly one key range.
    settings.CAIRN_MERGE_BATCH_SIZE = batch_size
    settings.CAIRN_MERGE_STREAMS = streams
    source = history(committed_environment, 11, events=events, sessions=20)
    record = merge_of(committed_environment, source)
    real_move_all, left_for_the_last_step = apply._move_all, []

    def then_counts_what_is_left(*args):
        still_running = real_move_all(*args)
        left_for_the_last_step.append(
            (Session.objects.filter(profile=source).count(), Event.objects.filter(profile=source).count())
        )
        return still_running

    monkeypatch.setattr(apply, "_move_all", then_counts_what_is_left)
    record = merge_apply(merge_id=record.pk)

    assert left_for_the_last_step == [(0, 0)]
    assert (record.status, record.sessions_moved, record.events_moved) == ("done", 20, events)
