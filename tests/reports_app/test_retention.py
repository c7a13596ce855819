"""report_retention against hand-computed numbers, on both paths (PostgreSQL's statement and the Python walk).

Weekly, 2026-11-02 (Monday) .. 2026-11-22 (Sunday): weeks of 11-02, 11-09, 11-16; the week of 11-23 begins
after `to`. start_event Sign Up, return_event pageview, periods 3.

person  plan now   Sign Up (cohort)                       pageviews                                   returns in weeks
alice   Startup    11-03, again 11-11 (still 11-02)       11-03 (its own week: no), 11-10, 11-17,     1, 2
                                                          11-24 (week 3 has not begun by `to`)
bob     Free       11-04 (11-02)                          user 701's 11-12: merge PENDING, bob's      1
carol   Growth     11-08 23:59 Sunday (11-02)             11-09 00:00 Monday                          1
                   (Free when she signed up)
dave    (none)     11-01 (before the range), 11-10        11-16                                       1 (of 11-09)
                   (11-09)
erin    Growth     11-20 (11-16)                          11-23 (after `to`: its week is left out)    -
gina    Enterprise user 702's 11-05 (11-02), merge DONE   11-20                                       2
"""

from datetime import date

import pytest

from reports_app.query import PropertyRef, ReportQuery, filter_parse
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors import report_retention
from tests.builders import identify, set_properties, track
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord

pytestmark = pytest.mark.django_db

FROM, TO = date(2026, 11, 2), date(2026, 11, 22)


@pytest.fixture
def world(environment, both_paths):
    for name, plan in [("alice", "Startup"), ("bob", "Free"), ("carol", "Free"), ("erin", "Growth")]:
        set_properties(environment, identity=name, plan=plan)
    set_properties(environment, identity="gina", plan="Enterprise")
    set_properties(environment, identity="dave", seen="yes")
    for who, event, timestamp in [
        ({"identity": "alice"}, "Sign Up", "2026-11-03T10:00:00Z"),
        ({"identity": "alice"}, "Sign Up", "2026-11-11T10:00:00Z"),
        ({"identity": "alice"}, "pageview", "2026-11-03T11:00:00Z"),
        ({"identity": "alice"}, "pageview", "2026-11-10T11:00:00Z"),
        ({"identity": "alice"}, "pageview", "2026-11-17T11:00:00Z"),
        ({"identity": "alice"}, "pageview", "2026-11-24T11:00:00Z"),
        ({"identity": "bob"}, "Sign Up", "2026-11-04T10:00:00Z"),
        ({"user_id": "701"}, "pageview", "2026-11-12T10:00:00Z"),
        ({"identity": "carol"}, "Sign Up", "2026-11-08T23:59:00Z"),
        ({"identity": "carol"}, "pageview", "2026-11-09T00:00:00Z"),
        ({"identity": "dave"}, "Sign Up", "2026-11-01T10:00:00Z"),
        ({"identity": "dave"}, "Sign Up", "2026-11-10T10:00:00Z"),
        ({"identity": "dave"}, "pageview", "2026-11-16T10:00:00Z"),
        ({"identity": "erin"}, "Sign Up", "2026-11-20T10:00:00Z"),
        ({"identity": "erin"}, "pageview", "2026-11-23T10:00:00Z"),
        ({"user_id": "702"}, "Sign Up", "2026-11-05T10:00:00Z"),
        ({"identity": "gina"}, "pageview", "2026-11-20T10:00:00Z"),
    ]:
        track(environment, **who, event=event, timestamp=timestamp)
    set_properties(environment, identity="carol", plan="Growth")  # after her events: the current value wins
    pending = identify(environment, 701, "bob").merge
    done = identify(environment, 702, "gina").merge
    merge_apply(merge_id=done.pk)
    pending.refresh_from_db()
    done.refresh_from_db()
    assert (pending.status, done.status) == (MergeRecord.Status.PENDING, MergeRecord.Status.DONE)
    return environment


def retention(environment, *, interval="week", periods=3, group_by=None, where=(), date_from=FROM, date_to=TO):
    base = ReportQuery(
        group_by=PropertyRef(*group_by.split(".", 1)) if group_by else None,
        filters=tuple(filter_parse(text) for text in where),
        date_from=date_from,
        date_to=date_to,
        range="custom",
        interval=interval,
    )
    query = RetentionQuery(
        start_event="Sign Up", return_event="pageview", interval=interval, periods=periods, base=base
    )
    return report_retention(environment=environment, query=query)


def rows(result) -> list[tuple]:
    return [(cohort.start.isoformat(), cohort.group, cohort.size, cohort.returned) for cohort in result.cohorts]


def test_weekly_cohorts_and_the_periods_not_begun(world):
    result = retention(world)
    # 11-02: alice, bob (with user 701's pageview, merge pending), carol, gina (user 702's Sign Up, merge done).
    # Week 1: alice, bob, carol; week 2: alice, gina; week 3 (11-23) has not begun by `to`: left out.
    assert rows(result) == [
        ("2026-11-02", "All", 4, [4, 3, 2]),
        ("2026-11-09", "All", 1, [1, 1]),
        ("2026-11-16", "All", 1, [1]),
    ]
    assert result.as_dict() == {
        "interval": "week",
        "cohorts": [
            {"start": "2026-11-02", "group": "All", "size": 4, "returned": [4, 3, 2], "partial_periods": []},
            {"start": "2026-11-09", "group": "All", "size": 1, "returned": [1, 1], "partial_periods": []},
            {"start": "2026-11-16", "group": "All", "size": 1, "returned": [1], "partial_periods": []},
        ],
    }
    # Every week of 2026-11 is over: nothing is partial (tests/reports_app/test_partial_buckets.py: this week).
    assert result.cohorts[0].rates == [1.0, 0.75, 0.5]


def test_by_plan_with_the_current_value_and_merged_people(world):
    result = retention(world, group_by="user.plan")
    # Growth has two people (carol, erin): first; the others one each, by name.
    assert rows(result) == [
        ("2026-11-02", "Growth", 1, [1, 1, 0]),
        ("2026-11-02", "Enterprise", 1, [1, 0, 1]),
        ("2026-11-02", "Free", 1, [1, 1, 0]),
        ("2026-11-02", "Startup", 1, [1, 1, 1]),
        ("2026-11-09", "(none)", 1, [1, 1]),
        ("2026-11-16", "Growth", 1, [1]),
    ]


def test_fewer_periods_and_a_filter(world):
    result = retention(world, periods=1, where=["user.plan!=Startup"])
    # Without alice (Startup); one period after each cohort at most.
    assert rows(result) == [
        ("2026-11-02", "All", 3, [3, 2]),
        ("2026-11-09", "All", 1, [1, 1]),
        ("2026-11-16", "All", 1, [1]),
    ]


def test_daily(world):
    result = retention(world, interval="day", periods=2, date_from=date(2026, 11, 8), date_to=date(2026, 11, 10))
    # Sign Ups in 11-08 .. 11-10: carol 11-08 23:59 (her pageview 11-09 00:00 is the next day) and dave 11-10
    # (`to`: the days after it have not begun). alice's are on 11-03 and 11-11, outside the range.
    assert rows(result) == [("2026-11-08", "All", 1, [1, 1, 0]), ("2026-11-10", "All", 1, [1])]


def test_monthly_counts_a_begun_period_to_its_end(environment, both_paths):
    track(environment, identity="olga", event="Sign Up", timestamp="2026-06-15T10:00:00Z")
    track(environment, identity="olga", event="pageview", timestamp="2026-07-31T10:00:00Z")
    track(environment, identity="olga", event="pageview", timestamp="2026-08-20T10:00:00Z")  # after `to`
    track(environment, identity="pete", event="Sign Up", timestamp="2026-07-01T00:00:00Z")
    track(environment, identity="pete", event="pageview", timestamp="2026-09-02T00:00:00Z")
    result = retention(environment, interval="month", periods=3, date_from=date(2026, 6, 1), date_to=date(2026, 8, 10))
    # August has begun by `to` (08-10): olga's 08-20 counts; September has not: pete's row stops at August.
    assert rows(result) == [("2026-06-01", "All", 1, [1, 1, 1]), ("2026-07-01", "All", 1, [1, 0])]


def test_groups_beyond_the_top_ten_are_other(environment, both_paths):
    for number in range(12):
        who = {"identity": f"person-{number}"}
        set_properties(environment, **who, plan=f"p{number:02d}")
        track(environment, **who, event="Sign Up", timestamp="2026-11-03T10:00:00Z")
        if number >= 10:
            track(environment, **who, event="pageview", timestamp="2026-11-10T10:00:00Z")
    result = retention(environment, periods=1)
    assert rows(result) == [("2026-11-02", "All", 12, [12, 2])]
    grouped = retention(environment, periods=1, group_by="user.plan")
    assert [cohort.group for cohort in grouped.cohorts] == [f"p{number:02d}" for number in range(10)] + ["Other"]
    assert rows(grouped)[-1] == ("2026-11-02", "Other", 2, [2, 2])


def test_nobody_started(environment, both_paths):
    assert retention(environment).as_dict() == {"interval": "week", "cohorts": []}
