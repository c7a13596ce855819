"""Account reports (SPEC 11): `account.<property>` as a group-by and a filter, and the measure `unique_accounts`,
against hand-computed numbers on the world of conftest.py with these accounts:

person            company_id   its account's properties
alice (+ 501)     acme         tier Enterprise, industry Software   (501's events: merge pending, count as alice)
bob (+ 502)       acme                                              (502's events: merge done)
carol             initech      tier Free
user 503          (none)
"""

import csv
import io

import pytest

from reports_app.selectors import report_series
from tests.builders import set_properties
from tests.reports_app.test_report_series import as_table, report, series
from users_app.services.accounts import account_properties_set

pytestmark = pytest.mark.django_db

RANGE = {"from": "2026-11-02", "to": "2026-11-15", "interval": "week"}


@pytest.fixture
def accounts(world):
    world.account_id_property = "company_id"
    world.save()
    set_properties(world, identity="alice", company_id="acme")
    set_properties(world, identity="bob", company_id="acme")
    set_properties(world, identity="carol", company_id="initech")
    account_properties_set(
        environment=world,
        updates=[("acme", {"tier": "Enterprise", "industry": "Software"}), ("initech", {"tier": "Free"})],
    )
    return world


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
