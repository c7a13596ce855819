"""report_funnel against hand-computed numbers, on both paths (PostgreSQL's statement and the Python walk), on
conftest.py's `funnel_world`."""

from datetime import date

import pytest

from reports_app.query import PropertyRef, ReportQuery, filter_parse
from reports_app.query_funnels import FunnelQuery
from reports_app.selectors import report_funnel
from tests.builders import set_properties, track
from users_app.services.accounts import account_properties_set

pytestmark = pytest.mark.django_db

STEPS = ("Sign Up", "Activate", "Upgrade")
FROM, TO = date(2026, 11, 2), date(2026, 11, 15)


def funnel(environment, steps=STEPS, window="1d", group_by=None, where=(), date_from=FROM, date_to=TO):
    base = ReportQuery(
        group_by=PropertyRef(*group_by.split(".", 1)) if group_by else None,
        filters=tuple(filter_parse(text) for text in where),
        date_from=date_from,
        date_to=date_to,
        range="custom",
    )
    return report_funnel(environment=environment, query=FunnelQuery(steps=tuple(steps), window=window, base=base))


def table(result) -> dict:
    return {item.group: (item.counts, item.median_seconds_to_convert) for item in result.series}


def test_every_rule_of_the_funnel_at_once(funnel_world):
    result = funnel(funnel_world)
    # 10 people start in range (not dave); 7 activate within a day; 4 upgrade (alice at exactly 1 day, erin
    # after `to`, gina, jack's second attempt). Medians: step 2 of 0, 1800, 3600 x 3, 7200, 10800; step 3 of
    # 1800, 3600, 5400, 82800 -> the mean of the middle two.
    assert table(result) == {"All": ([10, 7, 4], [None, 3600.0, 4500.0])}
    assert result.as_dict() == {
        "steps": list(STEPS),
        "window_seconds": 86400,
        "series": [{"group": "All", "counts": [10, 7, 4], "median_seconds_to_convert": [None, 3600.0, 4500.0]}],
    }


def test_by_plan_merged_people_count_as_one_with_the_current_value(funnel_world):
    result = funnel(funnel_world, group_by="user.plan")
    # frank's Sign Up is on user 601 (merge pending, own plan Enterprise): frank's Startup; ivy is Growth now.
    assert table(result) == {
        "Startup": ([4, 4, 2], [None, 3600.0, 44100.0]),
        "Free": ([2, 0, 0], [None, None, None]),
        "Growth": ([2, 1, 1], [None, 7200.0, 3600.0]),
        "(none)": ([1, 1, 0], [None, 0.0, None]),
        "Enterprise": ([1, 1, 1], [None, 1800.0, 1800.0]),
    }
    # Largest first, then by name.
    assert [item.group for item in result.series] == ["Startup", "Free", "Growth", "(none)", "Enterprise"]
    assert result.series[0].conversion_rates == [1.0, 1.0, 0.5]
    assert result.series[0].step_rates == [1.0, 1.0, 0.5]


def test_the_window_edge_by_hours(funnel_world):
    # alice's Upgrade is 24 h after her Sign Up: in a 24h window, not in a 23h one; bob's Activate is 24h and 1 s
    # after his Sign Up: in no 24h window.
    assert table(funnel(funnel_world, window="24h"))["All"][0] == [10, 7, 4]
    counts = table(funnel(funnel_world, window="23h"))["All"][0]
    assert counts == [10, 7, 3]
    assert table(funnel(funnel_world, window="2d"))["All"][0] == [10, 8, 4]  # bob now activates


def test_a_step_before_the_range_starts_no_attempt(funnel_world):
    # Only dave signs up before 11-02; from 11-01 on, his attempt counts (Activate 2 hours later).
    assert table(funnel(funnel_world, date_from=date(2026, 11, 1)))["All"][0] == [11, 8, 4]


def test_two_steps_and_a_where_filter(funnel_world):
    result = funnel(funnel_world, steps=("Sign Up", "Activate"), where=["user.plan=in:Startup,Growth"])
    # Startup: alice, frank, jack, kim (all activate); Growth: erin (activates), ivy.
    assert table(result) == {"All": ([6, 5], [None, 3600.0])}


def test_wrong_order_does_not_count(funnel_world):
    # The funnel turned around. People with an Activate in range: alice, bob, carol, dave (11-02 01:00), frank,
    # gina, hank, jack, kim = 9 (erin's is after `to`). A Sign Up not earlier than it, within a day: carol
    # (09:00 after 08:00), hank (the same time) and kim (13:00 after 12:00); the others signed up before.
    result = funnel(funnel_world, steps=("Activate", "Sign Up"))
    assert table(result)["All"][0] == [9, 3]


def test_the_same_event_twice_needs_two_events(environment, both_paths):
    track(environment, identity="lee", event="View", timestamp="2026-11-03T10:00:00Z")
    for _ in range(2):  # two Views at the same time: the second is "not earlier" than the first
        track(environment, identity="mia", event="View", timestamp="2026-11-03T10:00:00Z")
    track(environment, identity="ned", event="View", timestamp="2026-11-03T10:00:00Z")
    track(environment, identity="ned", event="View", timestamp="2026-11-03T11:00:00Z")
    track(environment, identity="ned", event="Buy", timestamp="2026-11-03T11:00:00Z")
    assert table(funnel(environment, steps=("View", "View")))["All"] == ([3, 2], [None, 1800.0])
    # A -> B -> A: ned's Buy at 11:00 and his second View at 11:00 (a different event from the first).
    assert table(funnel(environment, steps=("View", "Buy", "View")))["All"] == ([3, 1, 1], [None, 3600.0, 0.0])
    assert table(funnel(environment, steps=("View", "View", "View")))["All"][0] == [3, 2, 0]


def test_groups_beyond_the_top_ten_are_other(environment, both_paths):
    # p00 has two people, p01..p11 one each: the top ten are p00..p09; p10 and p11 are Other.
    people = [("p00", 0), *((f"p{index:02d}", index) for index in range(12))]
    for number, (plan, index) in enumerate(people):
        who = {"identity": f"person-{number}"}
        set_properties(environment, **who, plan=plan)
        track(environment, **who, event="Sign Up", timestamp="2026-11-03T10:00:00Z")
        # p10's person converts in 100 s, p11's in 300 s: Other's median is 200 s.
        seconds = {10: 100, 11: 300}.get(index, 60)
        track(environment, **who, event="Activate", timestamp=f"2026-11-03T10:{seconds // 60:02d}:{seconds % 60:02d}Z")
    result = funnel(environment, steps=("Sign Up", "Activate"), group_by="user.plan")
    assert [item.group for item in result.series] == [f"p{index:02d}" for index in range(10)] + ["Other"]
    assert table(result)["p00"] == ([2, 2], [None, 60.0])
    assert table(result)["Other"] == ([2, 2], [None, 200.0])


def test_by_account_property(environment, both_paths):
    environment.account_id_property = "company_id"
    environment.save()
    account_properties_set(environment=environment, updates=[("acme", {"tier": "Gold"})])
    set_properties(environment, identity="olga", company_id="acme")
    set_properties(environment, identity="pete", company_id="other")
    for who in ("olga", "pete"):
        track(environment, identity=who, event="Sign Up", timestamp="2026-11-03T10:00:00Z")
    track(environment, identity="olga", event="Activate", timestamp="2026-11-03T10:05:00Z")
    result = funnel(environment, steps=("Sign Up", "Activate"), group_by="account.tier")
    assert table(result) == {"(none)": ([1, 0], [None, None]), "Gold": ([1, 1], [None, 300.0])}


def test_nobody_in_the_funnel(environment, both_paths):
    assert funnel(environment).as_dict()["series"] == []
