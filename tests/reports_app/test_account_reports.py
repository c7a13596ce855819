"""Account reports (SPEC 11): `account.<property>` as a group-by and a filter, and the measure `unique_accounts`,
against hand-computed numbers on the world of conftest.py with these accounts:

person            company_id   its account's properties
alice (+ 501)     acme         tier Enterprise, industry Software   (501's events: merge pending, count as alice)
bob (+ 502)       acme                                              (502's events: merge done)
carol             initech      tier Free
user 503          (none)

On PostgreSQL report_series reads the rollups where they answer (ROLLUP_PATH) and takes its hand-written pass over
the events otherwise (POSTGRESQL_PATH); the ORM's GROUP BY (ORM_PATH, SQLite's path) is the reference both must
match number for number.
"""

import csv
import io

import pytest
from django.db import connection
from django.utils import timezone

from reports_app.selectors import report_series
from reports_app.selectors.series import ORM_PATH, POSTGRESQL_PATH, ROLLUP_PATH
from tests.builders import set_properties, track
from tests.reports_app.test_report_series import as_table, report, series
from users_app.models import ACCOUNT_ID_MAX_LENGTH, Profile, UserProperty, property_key_hash
from users_app.selectors.accounts import account_of
from users_app.services.accounts import account_properties_set

pytestmark = pytest.mark.django_db

RANGE = {"from": "2026-11-02", "to": "2026-11-15", "interval": "week"}


def test_sign_ups_per_week_by_account_tier(accounts):
    result = series(accounts, event="Sign Up", group_by="account.tier")
    # alice and bob are acme's (Enterprise), carol initech's (Free); user 503 has no account.
    assert as_table(result) == {"Enterprise": ([2, 0], 2), "Free": ([1, 0], 1), "(none)": ([0, 1], 1)}


def test_unique_accounts_counts_each_account_once_merged_people_included(accounts):
    result = series(accounts, measure="unique_accounts")
    # Week 1: acme (alice, 501 as alice, bob, 502 as bob) and initech (carol); week 2: acme (alice, bob); user
    # 503 has no account and counts for none. The total counts acme once over the range.
    assert as_table(result) == {"All": ([2, 1], 2)}
    by_tier = series(accounts, measure="unique_accounts", group_by="account.tier")
    assert as_table(by_tier) == {"Enterprise": ([1, 1], 1), "Free": ([1, 0], 1), "(none)": ([0, 0], 0)}


def test_unique_users_by_account_count_a_merged_person_once(accounts):
    result = series(accounts, measure="unique_users", event="pageview", group_by="account.industry")
    # Pageviews: alice 11-02, 11-10, 501 (pending, alice's) 11-03; bob 11-09, 502 (done, bob's) 11-05.
    assert as_table(result) == {"Software": ([2, 2], 2)}


def test_account_filters(accounts):
    assert as_table(series(accounts, event="Sign Up", where=["account.tier=Free"])) == {"All": ([1, 0], 1)}
    # "is not Enterprise" includes people without an account (user 503), as user filters do.
    assert as_table(series(accounts, event="Sign Up", where=["account.tier!=Enterprise"])) == {"All": ([1, 1], 2)}
    assert as_table(series(accounts, measure="unique_users", where=["account.industry=*"])) == {"All": ([2, 2], 2)}


def test_an_account_property_changed_later_applies_to_all_of_its_events(accounts):
    account_properties_set(environment=accounts, updates=[("initech", {"tier": "Enterprise"})])
    result = report_series(environment=accounts, query=report(event="Sign Up", group_by="account.tier"))
    assert as_table(result) == {"Enterprise": ([3, 0], 3), "(none)": ([0, 1], 1)}


def test_page_csv_and_api_agree_on_an_account_report(accounts, api, signed_in):
    params = {"measure": "unique_accounts", "group_by": "account.tier", **RANGE}
    from_api = api.get("/api/v1/reports/query", **params)
    assert from_api.status_code == 200
    expected = {"Enterprise": ([1, 1], 1), "Free": ([1, 0], 1), "(none)": ([0, 0], 0)}
    assert {item["group"]: (item["values"], item["total"]) for item in from_api.json()["series"]} == expected
    page = signed_in.get("/reports/", {**params, "env": accounts.app_id})
    assert page.status_code == 200
    assert page.context["result"].as_dict() == from_api.json()
    assert page.context["result"].path == (ROLLUP_PATH if connection.vendor == "postgresql" else ORM_PATH)
    assert "account.tier" in page.context["group_choices"]
    exported = signed_in.get("/reports/export.csv", {**params, "env": accounts.app_id})
    table = list(csv.reader(io.StringIO(exported.content.decode())))
    assert table[0] == ["bucket", "Enterprise", "Free", "(none)"]
    assert table[-1] == ["Total", "1", "1", "0"]


def test_an_environment_without_an_account_property_has_no_accounts(world, api):
    answer = api.get("/api/v1/reports/query", measure="unique_accounts", **RANGE).json()
    assert answer["series"] and all(item["total"] == 0 for item in answer["series"])
    answer = api.get("/api/v1/reports/query", event="Sign Up", group_by="account.tier", **RANGE).json()
    assert [(item["group"], item["total"]) for item in answer["series"]] == [("(none)", 4)]


def both_paths(environment, **kwargs) -> dict:
    """The report on the database's own paths (the rollups, half caught up, where they answer; the hand-written
    pass over the events) and on the ORM's; they must agree (groups, order, values, totals)."""
    fast = series(environment, **kwargs)
    reference = report_series(environment=environment, query=report(**kwargs), path=ORM_PATH)
    assert reference.path == ORM_PATH
    assert fast.as_dict() == reference.as_dict(), kwargs
    if connection.vendor == "postgresql":
        assert fast.path in (ROLLUP_PATH, POSTGRESQL_PATH)
        events_pass = report_series(environment=environment, query=report(**kwargs), path=POSTGRESQL_PATH)
        assert events_pass.as_dict() == reference.as_dict(), kwargs
    return as_table(fast)


GROUPS = [None, "account.tier", "account.industry", "account.nobody_has_this", "user.plan", "event.path"]
FILTERS = [
    [],
    ["account.tier=Enterprise"],
    ["account.tier!=Enterprise"],
    ["account.industry=*"],
    ["account.industry!=*"],
    ["account.tier=in:Free,Startup"],
    ["account.tier!=contains:PRISE", "user.plan!=Growth"],
]


@pytest.mark.parametrize("measure", ["events", "unique_users", "sessions", "unique_accounts"])
def test_the_postgresql_pass_gives_the_orm_numbers(accounts, measure):
    for group_by in GROUPS:
        for where in FILTERS:
            both_paths(accounts, measure=measure, group_by=group_by, where=where)
    for interval in ("hour", "day", "month"):
        both_paths(accounts, measure=measure, group_by="account.tier", interval=interval)


def test_account_reports_by_hand_on_both_paths(accounts):
    # Week 1: alice 2 + 501 (pending, alice's) 1 + bob 1 + 502 (done, bob's) 1 are acme's (Software); carol's
    # account initech has no industry. Week 2: alice 1, bob 1; user 503 has no account.
    assert both_paths(accounts, group_by="account.industry") == {"Software": ([5, 2], 7), "(none)": ([1, 1], 2)}
    # Sessions a1, x1, b1, y1 | a2, b1 (b1 spans the week edge: once in the total); c1 | ; | z1.
    assert both_paths(accounts, measure="sessions", group_by="account.tier") == {
        "Enterprise": ([4, 2], 5),
        "Free": ([1, 0], 1),
        "(none)": ([0, 1], 1),
    }
    # acme is in two plans' groups (alice Startup, bob Free); 503 (Growth) has no account: 0.
    assert both_paths(accounts, measure="unique_accounts", group_by="user.plan") == {
        "Startup": ([1, 1], 1),
        "Free": ([1, 1], 1),
        "(none)": ([1, 0], 1),
        "Growth": ([0, 0], 0),
    }
    # Two people (four profiles) of one account over two weeks: acme once in the total, initech once.
    assert both_paths(accounts, measure="unique_accounts") == {"All": ([2, 1], 2)}
    assert both_paths(accounts, event="Sign Up", where=["account.industry!=*"]) == {"All": ([1, 1], 2)}
    assert both_paths(accounts, event="Sign Up", where=["account.tier=contains:PRISE"]) == {"All": ([2, 0], 2)}
    assert both_paths(accounts, event="Sign Up", where=["account.tier!=contains:prise"]) == {"All": ([1, 1], 2)}
    assert both_paths(accounts, measure="unique_users", where=["account.tier=in:Free,Enterprise"]) == {
        "All": ([3, 2], 3)
    }


def test_a_merged_away_profiles_own_account_has_no_say(accounts):
    # The tombstone 501 (merge pending) keeps a stale account id of its own; its pageview (11-03) is alice's, so
    # acme's: pageviews alice, 501, 502 (bob's) | bob, alice.
    tombstone = Profile.objects.get(environment=accounts, user_id=501)
    UserProperty.objects.create(
        profile=tombstone,
        key="company_id",
        key_hash=property_key_hash("company_id"),
        value="initech",
        set_at=timezone.now(),
    )
    assert both_paths(accounts, measure="unique_accounts", group_by="account.tier") == {
        "Enterprise": ([1, 1], 1),
        "Free": ([1, 0], 1),
        "(none)": ([0, 0], 0),
    }
    assert both_paths(accounts, event="pageview", group_by="account.tier") == {"Enterprise": ([3, 2], 5)}
    assert account_of(tombstone) == "acme"


def test_a_value_too_long_for_an_account_id_is_no_account(accounts):
    # A user property may hold 1,024 characters, an account id 255: the account page and reports agree.
    longest = set_properties(accounts, user_id="503", company_id="y" * ACCOUNT_ID_MAX_LENGTH)
    assert account_of(longest) == "y" * ACCOUNT_ID_MAX_LENGTH
    assert both_paths(accounts, measure="unique_accounts") == {"All": ([2, 2], 3)}
    too_long = set_properties(accounts, user_id="503", company_id="y" * (ACCOUNT_ID_MAX_LENGTH + 1))
    assert account_of(too_long) is None
    assert both_paths(accounts, measure="unique_accounts") == {"All": ([2, 1], 2)}
    assert both_paths(accounts, event="Sign Up", where=["account.tier!=*"]) == {"All": ([0, 1], 1)}


def test_without_an_account_property_both_paths_have_no_accounts(world):
    assert both_paths(world, measure="unique_accounts", group_by="account.tier") == {"(none)": ([0, 0], 0)}
    assert both_paths(world, event="Sign Up", group_by="account.tier", where=["account.tier!=Free"]) == {
        "(none)": ([3, 1], 4)
    }
    assert both_paths(world, event="Sign Up", where=["account.tier=*"]) == {}


def test_other_counts_an_account_once_across_user_groups_and_account_groups(environment):
    # Twelve people, each with a plan of their own and one account each, but the last two share acme. Every group
    # has one account, so the top ten are the first by name and Other holds plan-10 and plan-11: acme, once.
    environment.account_id_property = "company_id"
    environment.save()
    for index in range(12):
        who = {"user_id": str(700 + index)}
        company = "acme" if index >= 10 else f"company-{index:02d}"
        set_properties(environment, **who, plan=f"plan-{index:02d}", company_id=company)
        account_properties_set(environment=environment, updates=[(company, {"tier": f"tier-{index:02d}"})])
        for _ in range(index + 1):
            track(environment, **who, event="Ping", timestamp="2026-11-03T10:00:00Z")
    by_plan = both_paths(environment, measure="unique_accounts", group_by="user.plan")
    assert len(by_plan) == 11 and by_plan["Other"] == ([1, 0], 1)
    # acme's tier is the one set last (tier-11); eleven tiers, one account each: tier-11 is the one in Other.
    by_tier = both_paths(environment, measure="unique_accounts", group_by="account.tier")
    assert "tier-10" not in by_tier and by_tier["Other"] == ([1, 0], 1)
    assert both_paths(environment, group_by="account.tier")["tier-11"] == ([23, 0], 23)
