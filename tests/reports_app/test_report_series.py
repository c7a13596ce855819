"""report_series against hand-computed numbers on the world of conftest.py."""

from datetime import date

import pytest

from events_app.services.ingest import track_ingest
from reports_app.query import PropertyRef, ReportQuery, filter_parse
from reports_app.selectors import report_series
from tests.builders import set_properties, track

pytestmark = pytest.mark.django_db

WEEKS = ["2026-11-02", "2026-11-09"]
FROM, TO = date(2026, 11, 2), date(2026, 11, 15)


def report(**kwargs) -> ReportQuery:
    """A ReportQuery over the world's range; `group_by="user.plan"` and `where=[...]` as strings."""
    group_by = kwargs.pop("group_by", None)
    where = kwargs.pop("where", [])
    kwargs.setdefault("date_from", FROM)
    kwargs.setdefault("date_to", TO)
    kwargs.setdefault("interval", "week")
    kwargs.setdefault("range", "custom")
    if group_by:
        scope, _, key = group_by.partition(".")
        kwargs["group_by"] = PropertyRef(scope, key)
    return ReportQuery(filters=tuple(filter_parse(text) for text in where), **kwargs)


def as_table(result) -> dict:
    return {series.group: (series.values, series.total) for series in result.series}


def series(environment, **kwargs):
    return report_series(environment=environment, query=report(**kwargs))


def test_sign_ups_per_week_by_plan(world):
    result = series(world, event="Sign Up", group_by="user.plan")
    assert result.bucket_labels == WEEKS
    # Bob signed up on Sunday 23:50: still the first week (weeks start on Monday, UTC).
    assert as_table(result) == {
        "Startup": ([1, 0], 1),
        "Free": ([1, 0], 1),
        "(none)": ([1, 0], 1),
        "Growth": ([0, 1], 1),
    }
    # Equal totals are ordered by name.
    assert [item.group for item in result.series] == ["(none)", "Free", "Growth", "Startup"]


def test_unique_users_count_merged_people_once_pending_or_done(world):
    result = series(world, measure="unique_users", group_by="user.plan")
    # Week 1: alice (own events and user 501's, merge pending), bob (own and user 502's, merge done), carol.
    # The tombstone 501 had plan Enterprise: its events take alice's plan, so no Enterprise group.
    # Totals count each person once over the range, not the sum of the weeks.
    assert as_table(result) == {
        "Startup": ([1, 1], 1),
        "Free": ([1, 1], 1),
        "(none)": ([1, 0], 1),
        "Growth": ([0, 1], 1),
    }


def test_unique_users_without_group(world):
    result = series(world, measure="unique_users")
    # alice, bob, carol in week 1; alice, bob, 503 in week 2; four people in all.
    assert as_table(result) == {"All": ([3, 3], 4)}


def test_event_counts_by_plan(world):
    result = series(world, group_by="user.plan")
    assert as_table(result) == {
        "Startup": ([3, 1], 4),
        "Free": ([2, 1], 3),
        "(none)": ([1, 0], 1),
        "Growth": ([0, 1], 1),
    }
    assert [item.group for item in result.series][:2] == ["Startup", "Free"]


def test_sessions_by_plan_count_a_session_once_over_the_range(world):
    result = series(world, measure="sessions", group_by="user.plan")
    # Bob's session b1 runs from Sunday 23:50 into Monday: in both weeks, once in the total.
    assert as_table(result) == {
        "Startup": ([2, 1], 3),
        "Free": ([2, 1], 2),
        "(none)": ([1, 0], 1),
        "Growth": ([0, 1], 1),
    }


def test_page_views_grouped_by_an_event_property(world):
    result = series(world, event="pageview", group_by="event.path")
    assert as_table(result) == {"/pricing": ([2, 1], 3), "/docs": ([0, 1], 1), "/": ([1, 0], 1)}
    users = series(world, event="pageview", group_by="event.path", measure="unique_users")
    # /pricing: alice (also as user 501) in week 1, bob in week 2: two people.
    assert as_table(users) == {"/pricing": ([1, 1], 2), "/docs": ([0, 1], 1), "/": ([1, 0], 1)}


def test_missing_event_property_groups_as_none(world):
    result = series(world, event="Sign Up", group_by="event.source")
    assert as_table(result) == {"(none)": ([1, 1], 2), "ads": ([1, 0], 1), "seo": ([1, 0], 1)}


def test_hour_buckets(world):
    result = series(world, date_from=date(2026, 11, 2), date_to=date(2026, 11, 2), interval="hour")
    assert len(result.buckets) == 24
    assert result.bucket_labels[9] == "2026-11-02T09:00:00Z"
    values, total = as_table(result)["All"]
    assert values[9] == 2 and sum(values) == 2 == total


def test_day_buckets_and_distinct_total(world):
    result = series(
        world,
        measure="unique_users",
        date_from=date(2026, 11, 8),
        date_to=date(2026, 11, 9),
        interval="day",
        group_by="user.plan",
    )
    assert result.bucket_labels == ["2026-11-08", "2026-11-09"]
    assert as_table(result) == {"Free": ([1, 1], 1)}


def test_month_buckets_start_on_the_first(world):
    result = series(world, date_from=date(2026, 10, 31), date_to=date(2026, 11, 15), interval="month")
    assert result.bucket_labels == ["2026-10-01", "2026-11-01"]
    assert as_table(result) == {"All": ([1, 9], 10)}


def test_to_is_inclusive_and_edges_are_utc_midnight(world):
    inside = series(world, event="Upgrade", date_from=date(2026, 11, 15), date_to=date(2026, 11, 16), interval="day")
    assert as_table(inside) == {"All": ([0, 1], 1)}
    before = series(world, event="Upgrade", date_from=date(2026, 11, 1), date_to=date(2026, 11, 15), interval="day")
    assert before.series == []  # 10-31 23:59:59 and 11-16 00:00 are both outside
    assert len(before.buckets) == 15


def test_empty_weeks_are_zero_and_a_week_starting_before_from_is_kept(world):
    # From a Wednesday: the first bucket is the Monday before, holding only what is in range.
    result = series(world, event="Sign Up", date_from=date(2026, 11, 4), date_to=date(2026, 11, 22))
    assert result.bucket_labels == ["2026-11-02", "2026-11-09", "2026-11-16"]
    # carol (11-04), bob (11-08); alice's 11-02 sign-up is before `from`; 503 on 11-15.
    assert as_table(result) == {"All": ([2, 1, 0], 3)}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (["user.plan=Startup"], 4),
        (["user.plan!=Startup"], 5),  # Free 3, Growth 1 and carol, who has no plan
        (["user.plan=in:Free,Growth"], 4),
        (["user.plan!=in:Free,Growth"], 5),
        (["user.plan=contains:TART"], 4),  # case-insensitive
        (["user.plan!=contains:ee"], 6),  # not Free: Startup 4, Growth 1, carol 1
        (["user.plan=*"], 8),
        (["user.plan!=*"], 1),
        (["user.plan=Enterprise"], 0),  # the tombstone's own value is not the person's
        (["event.path=/pricing"], 3),
        (["event.source=*"], 2),
        (["event.source!=*"], 7),
        (["event.path=in:/,/docs", "user.plan=Startup"], 1),
        (["user.plan=eq:*"], 0),
    ],
)
def test_filter_operators(world, where, expected):
    result = series(world, where=where)
    assert sum(item.total for item in result.series) == expected


def test_filter_and_group_on_the_same_property(world):
    result = series(world, group_by="user.plan", where=["user.plan=in:Startup,Growth"], measure="unique_users")
    assert as_table(result) == {"Startup": ([1, 1], 1), "Growth": ([0, 1], 1)}


def test_beyond_ten_groups_the_rest_is_other(environment):
    for index in range(12):
        who = {"user_id": str(700 + index)}
        set_properties(environment, **who, plan=f"plan-{index:02d}")
        track_ingest(
            environment=environment,
            items=[{**who, "event": "Ping", "timestamp": "2026-11-03T10:00:00Z"} for _ in range(index + 1)],
        )
    result = series(environment, group_by="user.plan")
    groups = [item.group for item in result.series]
    assert groups == [f"plan-{index:02d}" for index in range(11, 1, -1)] + ["Other"]
    assert as_table(result)["Other"] == ([3, 0], 3)
    users = series(environment, group_by="user.plan", measure="unique_users")
    assert as_table(users)["Other"] == ([2, 0], 2)


def test_other_counts_a_person_once_when_grouped_by_an_event_property(environment):
    track_ingest(
        environment=environment,
        items=[
            {"identity": "erin", "event": "Click", "timestamp": "2026-11-03T10:00:00Z", "properties": {"v": index}}
            for index in range(12)
        ],
    )
    result = series(environment, group_by="event.v", measure="unique_users")
    assert len(result.series) == 11
    # Ten groups of one person each, then the same person once in Other (not 2).
    assert as_table(result)["Other"] == ([1, 0], 1)
    assert all(item.total == 1 for item in result.series)
    events = series(environment, group_by="event.v")
    assert as_table(events)["Other"] == ([2, 0], 2)


def test_numbers_group_as_text(environment):
    track(environment, identity="x", event="Buy", timestamp="2026-11-03T10:00:00Z", properties={"price": 12.5})
    track(environment, identity="x", event="Buy", timestamp="2026-11-03T11:00:00Z", properties={"price": 3})
    result = series(environment, group_by="event.price", where=["event.price=3"])
    assert as_table(result) == {"3": ([1, 0], 1)}


def test_other_environments_are_invisible(world, other_environment):
    track(other_environment, identity="alice", event="Sign Up", timestamp="2026-11-03T10:00:00Z")
    set_properties(other_environment, identity="alice", plan="Startup")
    assert as_table(series(other_environment, event="Sign Up", group_by="user.plan")) == {"Startup": ([1, 0], 1)}
    assert as_table(series(world, event="Sign Up", group_by="user.plan"))["Startup"] == ([1, 0], 1)


def test_property_values_are_data_not_sql(environment):
    hostile = "x' OR 'a'<>'b'; DROP TABLE events_app_event; --"  # no '=': it ends a where key
    set_properties(environment, identity="mallory", **{hostile: hostile})
    track(
        environment,
        identity="mallory",
        event="Sign Up",
        timestamp="2026-11-03T10:00:00Z",
        properties={hostile: "<b>hi</b>"},
    )
    result = series(environment, group_by=f"user.{hostile}", where=[f"event.{hostile}=<b>hi</b>"])
    assert as_table(result) == {hostile: ([1, 0], 1)}


def test_event_property_names_that_look_like_numbers_are_names_not_array_indexes(environment):
    # Django's JSON key lookup reads "12" as `->> 12` (an array index, so always missing) and a key beyond
    # 2**31 as `->> bigint`, which PostgreSQL does not have (a 500 for group_by=event.9007199254740992).
    track(
        environment,
        identity="x",
        event="Buy",
        timestamp="2026-11-03T10:00:00Z",
        properties={"12": "dozen", "9007199254740992": "big"},
    )
    assert as_table(series(environment, group_by="event.12", where=["event.12=dozen"])) == {"dozen": ([1, 0], 1)}
    assert as_table(series(environment, group_by="event.9007199254740992")) == {"big": ([1, 0], 1)}
    assert as_table(series(environment, group_by="event. 12")) == {"(none)": ([1, 0], 1)}
