"""Reports read from the rollups give the numbers of a full scan (issue #16): after ingest (part of the events
counted by the catch-up, part still above the watermark), events that arrive late and out of order, merges pending
and done, undo, deleting a person, and a retention pass. The reference is the ORM's GROUP BY over the events
(ORM_PATH), which every path must match number for number, groups, order and totals included.

The world is reports_app/conftest.py's (alice + 501 pending, bob + 502 done, carol, dave, 503), with its accounts."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from events_app.models import Event, PersonActivityRollup, PersonDayNameRollup, PersonDayRollup, RollupWatermark
from events_app.rollups.catch_up import rollups_catch_up
from reports_app.selectors import report_series
from reports_app.selectors.series import ORM_PATH, POSTGRESQL_PATH, ROLLUP_PATH
from tests.builders import identify, profile_build, track
from tests.reports_app.test_report_series import report
from users_app.deletion.person import person_delete
from users_app.deletion.retention import environment_retention_apply
from users_app.merges.apply import merge_apply
from users_app.merges.undo import merge_undo
from users_app.models import MergeRecord, Profile

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="rollups are kept on PostgreSQL only"),
]

MEASURES = ["events", "unique_users", "unique_accounts"]
EVENTS = [None, "pageview", "Sign Up", "Upgrade"]
GROUPS = [None, "user.plan", "account.tier"]
FILTERS = [[], ["user.plan!=Free"], ["account.tier=Enterprise"], ["user.plan=*", "account.tier!=*"]]
INTERVALS = ["day", "week", "month"]


def every_report_agrees(environment, *, full: bool = False) -> int:
    """Every combination the rollups answer (`full`: with every filter too), on the rollups and on the events,
    against the ORM's numbers. Returns how many reports had something to count (so a world that lost its events
    cannot pass by being empty)."""
    nonempty = 0
    for measure in MEASURES:
        for event in EVENTS:
            for group_by in GROUPS:
                if measure == "unique_accounts" and group_by == "user.plan":
                    continue  # left to the events (rollups_answer)
                for where in FILTERS if full else FILTERS[:2]:
                    for interval in INTERVALS if (group_by, where) == (None, []) else ["week"]:
                        query = report(measure=measure, event=event, group_by=group_by, where=where, interval=interval)
                        reference = report_series(environment=environment, query=query, path=ORM_PATH).as_dict()
                        rolled = report_series(environment=environment, query=query)
                        assert rolled.path == ROLLUP_PATH, query
                        assert rolled.as_dict() == reference, query
                        events_pass = report_series(environment=environment, query=query, path=POSTGRESQL_PATH)
                        assert events_pass.as_dict() == reference, query
                        nonempty += any(item["total"] for item in reference["series"])
    return nonempty


def counted_through() -> int:
    # A transactional test's flush removes the migration's row; the catch-up makes it again.
    return RollupWatermark.objects.values_list("through_event_id", flat=True).first() or 0


def test_half_caught_up_late_and_out_of_order(accounts):
    caught = rollups_catch_up()
    assert caught.stopped is None and counted_through() == Event.objects.order_by("-pk").first().pk
    assert PersonDayRollup.objects.exists() and PersonDayNameRollup.objects.filter(name="Sign Up").exists()
    assert every_report_agrees(accounts, full=True) > 50
    # Late events, older than what is counted, and one on a day nobody had: above the watermark, read from events.
    track(accounts, identity="alice", event="pageview", timestamp="2026-11-02T10:00:00Z", session_id="a1")
    track(accounts, identity="carol", event="Upgrade", timestamp="2026-11-13T03:00:00Z", session_id="c9")
    track(accounts, user_id="503", event="Sign Up", timestamp="2026-11-03T01:00:00Z", session_id="z0")
    assert Event.objects.filter(pk__gt=counted_through()).count() == 3
    every_report_agrees(accounts)
    # Counted now: a rollup row of alice's day grows, carol's and 503's days appear.
    rollups_catch_up()
    assert not Event.objects.filter(pk__gt=counted_through()).exists()
    assert every_report_agrees(accounts, full=True) > 50


def a_device_merged_and_undone(environment, agrees, events: list[tuple[str, str]]) -> int:
    """A new device with history (`events`: (name, timestamp)), counted in the rollups under its own profile, then
    identified as carol: `agrees(environment)` with the merge pending, done and undone; returns its last count.
    Retention's rollups go through the same (tests/reports_app/test_rollup_retention.py)."""
    rollups_catch_up()
    for name, timestamp in events:
        track(environment, user_id="777", event=name, timestamp=timestamp, session_id="n1")
    rollups_catch_up()
    pending = identify(environment, 777, "carol").merge
    assert pending.status == MergeRecord.Status.PENDING
    agrees(environment)
    merge_apply(merge_id=pending.pk)
    agrees(environment)
    merge_undo(merge_id=pending.pk, actor=None)
    assert MergeRecord.objects.get(pk=pending.pk).status == MergeRecord.Status.REVERTED
    return agrees(environment)


def test_merges_pending_done_and_undone(accounts):
    events = [("pageview", "2026-11-12T10:00:00Z"), ("Sign Up", "2026-11-12T10:01:00Z")]
    assert a_device_merged_and_undone(accounts, every_report_agrees, events) > 50


def test_deleting_a_person_leaves_no_rollup_rows(accounts):
    rollups_catch_up()
    alice = Profile.objects.get(environment=accounts, identity="alice")
    members = {alice.pk, *Profile.objects.filter(merged_into=alice).values_list("pk", flat=True)}
    assert PersonDayRollup.objects.filter(original_profile_id__in=members).exists()
    assert PersonActivityRollup.objects.filter(original_profile_id__in=members).exists()
    person_delete(person_pk=alice.pk)
    assert not PersonDayRollup.objects.filter(original_profile_id__in=members).exists()
    assert not PersonDayNameRollup.objects.filter(original_profile_id__in=members).exists()
    assert not PersonActivityRollup.objects.filter(original_profile_id__in=members).exists()
    assert every_report_agrees(accounts) > 30


def test_a_retention_pass_cuts_the_rollups_at_its_cutoff(accounts):
    rollups_catch_up()
    # The cutoff falls inside 2026-11-09, between bob's Sign Up (11-08 23:50) and his pageview (11-09 00:10), and
    # after 11-09 00:10 nothing else that day: the day keeps part of its events.
    track(accounts, identity="bob", event="pageview", timestamp="2026-11-09T18:00:00Z", session_id="b2")
    rollups_catch_up()
    cutoff = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
    accounts.event_retention_days = 30
    accounts.save()
    result = environment_retention_apply(environment=accounts, now=cutoff + timedelta(days=30))
    assert result.events_deleted > 0 and not Event.objects.filter(timestamp__lt=cutoff).exists()
    assert not PersonDayRollup.objects.filter(environment=accounts, day__lt=cutoff.date()).exists()
    assert PersonDayRollup.objects.filter(environment=accounts, day=cutoff.date()).get().events == 1
    assert every_report_agrees(accounts) > 20


def test_a_report_names_its_path_in_the_api(accounts, api):
    params = {"measure": "unique_users", "group_by": "user.plan", "from": "2026-11-02", "to": "2026-11-15"}
    answer = api.get("/api/v1/reports/query", **params, explain="1").json()
    assert answer["explain"]["path"] == ROLLUP_PATH
    assert answer["explain"]["rollups_through_event_id"] == counted_through()
    by_path = api.get("/api/v1/reports/query", **{**params, "group_by": "event.path"}, explain="1").json()
    assert by_path["explain"]["path"] == POSTGRESQL_PATH
    assert "explain" not in api.get("/api/v1/reports/query", **params).json()


def test_a_bad_explain_is_a_clear_error(accounts, api):
    answer = api.get("/api/v1/reports/query", explain="maybe")
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "explain"


@pytest.mark.django_db(transaction=True)
def test_the_watermark_never_passes_an_uncommitted_event(environment, settings):
    """An ingest transaction holding a smaller event id than one already committed: the catch-up must not move past
    it, or that event would never be counted."""
    settings.CAIRN_ROLLUP_LOCK_TIMEOUT_MS = 200
    someone = profile_build(environment, user_id="900")
    written, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                Event.objects.create(
                    environment=environment,
                    profile=someone,
                    original_profile=someone,
                    name="Slow",
                    timestamp=datetime(2026, 11, 3, tzinfo=UTC),
                )
                written.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert written.wait(10)
        fast = Event.objects.create(
            environment=environment,
            profile=someone,
            original_profile=someone,
            name="Fast",
            timestamp=datetime(2026, 11, 4, tzinfo=UTC),
        )
        assert rollups_catch_up().stopped == "busy"
        assert counted_through() < fast.pk
    finally:
        release.set()
        writer.join(10)
    assert rollups_catch_up().stopped is None
    assert counted_through() >= fast.pk
    query = report(measure="events", date_from=date(2026, 11, 2), date_to=date(2026, 11, 8), interval="day")
    rolled = report_series(environment=environment, query=query)
    assert rolled.path == ROLLUP_PATH and sum(rolled.series[0].values) == 2
    assert PersonDayRollup.objects.filter(environment=environment).count() == 2
    assert connection.vendor == "postgresql"


def test_a_report_leaves_the_planner_settings_of_its_caller_as_they_were(accounts):
    """The report's statement plans with its own settings (series_sql.counted_rows); inside a caller's
    transaction (this test's), the settings after it are the caller's again, for every measure."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '5MB'")
        for measure in MEASURES:
            rolled = report_series(environment=accounts, query=report(measure=measure, group_by="account.tier"))
            assert rolled.path == ROLLUP_PATH and rolled.series
            cursor.execute("SELECT current_setting('enable_sort'), current_setting('work_mem')")
            assert cursor.fetchone() == ("on", "5MB"), measure
