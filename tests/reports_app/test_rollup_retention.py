"""Retention read from the rollups (issue #15's speed) gives the numbers of the events: after ingest (part of the
events counted by the catch-up, part still above the watermark), late and out-of-order events that move a cohort
or add a return, merges pending and done, undo, deleting a person, and a retention pass. The references are the
PostgreSQL statement over the events and the Python walk (the one tests/reports_app/test_retention.py checks
against hand-computed numbers), which every case must match cohort for cohort. The activity rollup's own cases
(edge_world) also check hand-computed cohorts and the rows' bits: range edges inside a 63-day chunk, a chunk
boundary, late events above and below the watermark, a retention pass inside a chunk, the migration's backfill.

The world is reports_app/conftest.py's (alice + 501 pending, bob + 502 done, carol, dave, 503), with its accounts.
A funnel has no rollup path: its window is in seconds, which per-day rows cannot answer exactly."""

import importlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection

from events_app.defined_events.services import defined_event_create
from events_app.models import Event, PersonActivityRollup, RollupWatermark
from events_app.rollups.catch_up import rollups_catch_up
from reports_app.query import PropertyRef, ReportQuery, filter_parse
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors import report_retention
from reports_app.selectors.person_steps import PYTHON_PATH
from reports_app.selectors.series import POSTGRESQL_PATH, ROLLUP_PATH
from tests.builders import set_properties, track
from tests.reports_app.test_rollup_reports import a_device_merged_and_undone
from users_app.deletion.person import person_delete
from users_app.deletion.retention import environment_retention_apply
from users_app.models import Profile

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="rollups are kept on PostgreSQL only"),
]

# (start event, return event): a person's own return of another name, the start event coming back, and a name
# only dave has (before and after the range).
EVENT_PAIRS = [("Sign Up", "pageview"), ("pageview", "pageview"), ("pageview", "Sign Up"), ("Upgrade", "Upgrade")]
GROUPS = [None, "user.plan", "account.tier"]
FILTERS = [[], ["user.plan!=Free"], ["account.tier=Enterprise"], ["user.plan=*", "account.tier!=*"]]
# (interval, periods, first day): the last, of 83 days by day, is too many buckets for a person's bigint of
# return buckets (retention_sql.MASK_BUCKETS): its (person, bucket) pairs are made distinct instead.
INTERVALS = [("day", 10, date(2026, 10, 26)), ("week", 3, date(2026, 10, 26)), ("month", 2, date(2026, 10, 26))]
INTERVALS += [("day", 20, date(2026, 9, 1))]


def retention_query(
    start_event, return_event, *, interval="week", periods=3, group_by=None, where=(), date_from=date(2026, 10, 26)
):
    """Up to 2026-11-22, by default from 2026-10-26: a week before the world's range (dave's first Upgrade) and one
    after."""
    base = ReportQuery(
        group_by=PropertyRef(*group_by.split(".", 1)) if group_by else None,
        filters=tuple(filter_parse(text) for text in where),
        date_from=date_from,
        date_to=date(2026, 11, 22),
        range="custom",
        interval=interval,
    )
    return RetentionQuery(
        start_event=start_event, return_event=return_event, interval=interval, periods=periods, base=base
    )


def every_retention_agrees(environment, *, full: bool = False) -> int:
    """Every combination (`full`: with every filter and group), on the rollups, against the events' statement and
    the Python walk. Returns how many reports had a cohort (so a world that lost its events cannot pass empty)."""
    nonempty = 0
    for start_event, return_event in EVENT_PAIRS:
        for group_by in GROUPS if full else GROUPS[:2]:
            for where in FILTERS if full else FILTERS[:2]:
                for interval, periods, date_from in INTERVALS if (group_by, where) == (None, []) else INTERVALS[1:2]:
                    query = retention_query(
                        start_event,
                        return_event,
                        interval=interval,
                        periods=periods,
                        group_by=group_by,
                        where=where,
                        date_from=date_from,
                    )
                    rolled = report_retention(environment=environment, query=query)
                    assert rolled.explain["path"] == ROLLUP_PATH, query
                    events = report_retention(environment=environment, query=query, path=POSTGRESQL_PATH)
                    walked = report_retention(environment=environment, query=query, path=PYTHON_PATH)
                    assert rolled.as_dict() == events.as_dict() == walked.as_dict(), query
                    nonempty += bool(rolled.cohorts)
    return nonempty


def test_half_caught_up_late_and_out_of_order(accounts):
    assert every_retention_agrees(accounts, full=True) > 40  # nothing counted yet: all above the watermark
    rollups_catch_up()
    assert every_retention_agrees(accounts, full=True) > 40
    # Late events, older than what is counted: carol's Sign Up moves her cohort a week back, 503 comes back the
    # week after its Sign Up, and dave gets a pageview on a day nobody had.
    track(accounts, identity="carol", event="Sign Up", timestamp="2026-10-28T10:00:00Z", session_id="c0")
    track(accounts, user_id="503", event="pageview", timestamp="2026-11-17T09:00:00Z", session_id="z2")
    track(accounts, identity="dave", event="pageview", timestamp="2026-10-27T23:59:59Z", session_id="d0")
    counted = rollups_catch_up().through_event_id
    track(accounts, identity="alice", event="pageview", timestamp="2026-11-21T12:00:00Z", session_id="a3")
    assert Event.objects.filter(pk__gt=counted).count() == 1
    every_retention_agrees(accounts)
    cohorts = report_retention(environment=accounts, query=retention_query("Sign Up", "pageview")).cohorts
    assert [(cohort.start, cohort.size) for cohort in cohorts] == [
        (date(2026, 10, 26), 1),  # carol, now
        (date(2026, 11, 2), 2),  # alice, bob (with their merged devices)
        (date(2026, 11, 9), 1),  # 503
    ]
    assert cohorts[2].returned == [1, 1]  # 503's late pageview of 11-17


def test_merges_pending_done_and_undone(accounts):
    # carol's other device signs up the day before her and comes back: her returns move with the merge.
    events = [("Sign Up", "2026-11-03T10:00:00Z"), ("pageview", "2026-11-12T10:01:00Z")]
    assert a_device_merged_and_undone(accounts, every_retention_agrees, events) > 20


def test_deleting_a_person(accounts):
    rollups_catch_up()
    person_delete(person_pk=Profile.objects.get(environment=accounts, identity="bob").pk)
    assert every_retention_agrees(accounts) > 20


def test_a_retention_pass(accounts):
    rollups_catch_up()
    cutoff = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # inside carol's Sign Up day (15:00): the day keeps part
    track(accounts, identity="carol", event="pageview", timestamp="2026-11-04T09:00:00Z", session_id="c2")
    rollups_catch_up()
    accounts.event_retention_days = 30
    accounts.save()
    result = environment_retention_apply(environment=accounts, now=cutoff + timedelta(days=30))
    assert result.events_deleted > 0
    assert every_retention_agrees(accounts) > 10


def test_what_the_rollups_cannot_answer_reads_the_events(accounts, api):
    rollups_catch_up()
    by_path = retention_query("Sign Up", "pageview", where=["event.path=/pricing"])
    assert report_retention(environment=accounts, query=by_path).explain == {"path": POSTGRESQL_PATH}
    defined_event_create(environment=accounts, name="Signed up", rules=[{"event": "Sign Up"}])
    defined = retention_query("Signed up", "pageview")
    assert report_retention(environment=accounts, query=defined).explain["path"] == POSTGRESQL_PATH
    params = {"start_event": "Sign Up", "return_event": "pageview", "from": "2026-11-02", "to": "2026-11-15"}
    answer = api.get("/api/v1/reports/retention", **params, explain="1").json()
    assert answer["explain"]["path"] == ROLLUP_PATH
    assert answer["explain"]["rollups_through_event_id"] == Event.objects.order_by("-pk").first().pk
    assert "explain" not in api.get("/api/v1/reports/retention", **params).json()
    funnel = api.get("/api/v1/reports/funnel", step=["Sign Up", "pageview"], explain="true").json()
    assert funnel["explain"] == {"path": POSTGRESQL_PATH}
    bad = api.get("/api/v1/reports/retention", **params, explain="maybe")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "explain"


# Chunk 11744 of PersonActivityRollup holds 2026-09-14 .. 2026-11-15 (bit 62), chunk 11745 starts on 2026-11-16
# (2026-11-15 is day 739934 since 0001-01-01, 739934 = 11744 * 63 + 62): worked out by hand, not by the code.
CHUNK = 11744
EDGES = {"from": date(2026, 11, 10), "to": date(2026, 11, 20)}


def edge_world(environment):
    """Four people around the range 11-10 .. 11-20, which begins inside chunk 11744 and ends inside 11745:
    p1 signs up before the range (11-09, masked out) and in it (11-12), comes back 11-13, 11-16 (the next chunk's
    bit 0), 11-19; p2 signs up on 11-15 (bit 62), comes back the same day (no return), 11-16 and 11-22 (after the
    returns' end); p3 signs up after the range and has only a pageview in it; p4 signs up on the last day and comes
    back the next (a bucket after `to`). Plans: p1 Free, p2 Growth, p3 and p4 none."""
    set_properties(environment, identity="p1", plan="Free")
    set_properties(environment, identity="p2", plan="Growth")
    who_when = [
        ("p1", "Sign Up", "2026-11-09T10:00:00Z"),
        ("p1", "Sign Up", "2026-11-12T10:00:00Z"),
        ("p1", "pageview", "2026-11-13T09:00:00Z"),
        ("p1", "pageview", "2026-11-16T00:00:00Z"),
        ("p1", "pageview", "2026-11-19T23:59:59Z"),
        ("p2", "Sign Up", "2026-11-15T23:00:00Z"),
        ("p2", "pageview", "2026-11-15T23:30:00Z"),
        ("p2", "pageview", "2026-11-16T08:00:00Z"),
        ("p2", "pageview", "2026-11-22T08:00:00Z"),
        ("p3", "Sign Up", "2026-11-21T08:00:00Z"),
        ("p3", "pageview", "2026-11-16T09:00:00Z"),
        ("p4", "Sign Up", "2026-11-20T08:00:00Z"),
        ("p4", "pageview", "2026-11-21T08:00:00Z"),
    ]
    return [
        track(environment, identity=who, event=event, timestamp=timestamp, session_id=f"{who}-{timestamp[:10]}")
        for who, event, timestamp in who_when
    ]


def edge_cohorts(environment, interval, periods, group_by=None) -> list[tuple]:
    """(start, group, returned) per cohort on the rollups, after checking that the three paths agree."""
    query = retention_query(
        "Sign Up", "pageview", interval=interval, periods=periods, group_by=group_by, date_from=EDGES["from"]
    )
    query = RetentionQuery(**{**query.__dict__, "base": replace(query.base, date_to=EDGES["to"])})
    rolled = report_retention(environment=environment, query=query)
    assert rolled.explain["path"] == ROLLUP_PATH
    for path in (POSTGRESQL_PATH, PYTHON_PATH):
        assert report_retention(environment=environment, query=query, path=path).as_dict() == rolled.as_dict()
    return [(cohort.start.isoformat(), cohort.group, cohort.returned) for cohort in rolled.cohorts]


# Worked out by hand from edge_world's list.
EDGE_COHORTS = {
    ("day", 7): [
        ("2026-11-12", "All", [1, 1, 0, 0, 1, 0, 0, 1]),  # p1: 11-13, 11-16, 11-19; 11-09 is before the range
        ("2026-11-15", "All", [1, 1, 0, 0, 0, 0]),  # p2: 11-16; buckets up to 11-20 only
        ("2026-11-20", "All", [1]),  # p4: 11-21 begins after `to`
    ],
    ("week", 3): [("2026-11-09", "All", [2, 2]), ("2026-11-16", "All", [1])],  # p1 and p2 in week 11-16
    ("month", 2): [("2026-11-01", "All", [3])],
}


def test_range_edges_inside_chunks_and_a_chunk_boundary(environment):
    edge_world(environment)
    for (interval, periods), expected in EDGE_COHORTS.items():
        assert edge_cohorts(environment, interval, periods) == expected  # all above the watermark
    rollups_catch_up()
    days = {
        (name, profile.identity, chunk): bits
        for name, profile, chunk, bits in (
            (row.name, row.original_profile, row.chunk, row.days)
            for row in PersonActivityRollup.objects.select_related("original_profile")
        )
    }
    assert days == {
        ("Sign Up", "p1", CHUNK): 1 << 56 | 1 << 59,
        ("pageview", "p1", CHUNK): 1 << 60,
        ("pageview", "p1", CHUNK + 1): 1 << 0 | 1 << 3,
        ("Sign Up", "p2", CHUNK): 1 << 62,
        ("pageview", "p2", CHUNK): 1 << 62,
        ("pageview", "p2", CHUNK + 1): 1 << 0 | 1 << 6,
        ("Sign Up", "p3", CHUNK + 1): 1 << 5,
        ("pageview", "p3", CHUNK + 1): 1 << 0,
        ("Sign Up", "p4", CHUNK + 1): 1 << 4,
        ("pageview", "p4", CHUNK + 1): 1 << 5,
    }
    for (interval, periods), expected in EDGE_COHORTS.items():
        assert edge_cohorts(environment, interval, periods) == expected
    assert [row[:2] for row in edge_cohorts(environment, "week", 3, "user.plan")] == [
        ("2026-11-09", "Free"),
        ("2026-11-09", "Growth"),
        ("2026-11-16", "(none)"),
    ]


def test_late_events_below_and_above_the_watermark(environment):
    edge_world(environment)
    rollups_catch_up()
    # Late and older than what is counted, above the watermark: p2 signs up on 11-11, so her pageview of 11-15
    # becomes a return; p3 signs up on 11-14 and joins the first week.
    track(environment, identity="p2", event="Sign Up", timestamp="2026-11-11T07:00:00Z", session_id="p2-late")
    track(environment, identity="p3", event="Sign Up", timestamp="2026-11-14T07:00:00Z", session_id="p3-late")
    late = Event.objects.order_by("-pk").first().pk
    assert RollupWatermark.objects.get().through_event_id == late - 2
    expected_days = [
        ("2026-11-11", "All", [1, 0, 0, 0, 1, 1, 0, 0]),  # p2: 11-15, 11-16
        ("2026-11-12", "All", [1, 1, 0, 0, 1, 0, 0, 1]),  # p1
        ("2026-11-14", "All", [1, 0, 1, 0, 0, 0, 0]),  # p3: 11-16
        ("2026-11-20", "All", [1]),  # p4
    ]
    expected_weeks = [("2026-11-09", "All", [3, 3]), ("2026-11-16", "All", [1])]
    for _ in range(2):  # above the watermark, then counted
        assert edge_cohorts(environment, "day", 7) == expected_days
        assert edge_cohorts(environment, "week", 3) == expected_weeks
        rollups_catch_up()
    assert RollupWatermark.objects.get().through_event_id == late


def test_a_retention_pass_inside_a_chunk_keeps_its_later_days(environment):
    edge_world(environment)
    track(environment, identity="p1", event="pageview", timestamp="2026-11-13T18:00:00Z", session_id="p1-late")
    rollups_catch_up()
    cutoff = datetime(2026, 11, 13, 12, 0, tzinfo=UTC)  # deletes p1's Sign Ups and 11-13 09:00, keeps 18:00
    environment.event_retention_days = 30
    environment.save()
    environment_retention_apply(environment=environment, now=cutoff + timedelta(days=30))
    p1 = Profile.objects.get(environment=environment, identity="p1")
    assert dict(PersonActivityRollup.objects.filter(original_profile=p1).values_list("chunk", "days")) == {
        CHUNK: 1 << 60,  # only the pageview 11-13 18:00 (no Sign Up row left)
        CHUNK + 1: 1 << 0 | 1 << 3,  # untouched
    }
    assert not PersonActivityRollup.objects.filter(original_profile=p1, name="Sign Up").exists()
    # p2's Sign Up and pageviews of 11-15 keep their bit 62 (after the cutoff's day, same chunk).
    p2 = Profile.objects.get(environment=environment, identity="p2")
    assert PersonActivityRollup.objects.get(original_profile=p2, name="Sign Up").days == 1 << 62
    assert edge_cohorts(environment, "week", 3) == [("2026-11-09", "All", [1, 1]), ("2026-11-16", "All", [1])]


def test_the_migration_backfills_what_the_watermark_counts(environment):
    edge_world(environment)
    rollups_catch_up()
    track(environment, identity="p4", event="pageview", timestamp="2026-11-23T08:00:00Z", session_id="p4-late")
    counted = set(PersonActivityRollup.objects.values_list("name", "chunk", "original_profile_id", "days"))
    PersonActivityRollup.objects.all().delete()
    backfill = importlib.import_module("events_app.migrations.0009_activity_rollup").activity_backfill
    backfill(django_apps, SimpleNamespace(connection=connection))
    # Exactly the rows the catch-up made, not the event above the watermark.
    assert set(PersonActivityRollup.objects.values_list("name", "chunk", "original_profile_id", "days")) == counted
