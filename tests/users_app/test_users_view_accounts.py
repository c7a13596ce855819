"""The Users view's account filters and columns (`f0=account.<prop>`, `col=account.<prop>`, SPEC 11) on the page
and through GET /api/v1/users/search, with the reports' meaning: a person's account is their current value of the
environment's account id property, merges carry it, and a person without an account has none of its properties."""

import re

import pytest

from tests.builders import HOSTILE_IMG, HOSTILE_SCRIPT, days_ago, identify, person
from users_app.environment_pages import account_url
from users_app.services.accounts import account_properties_set

pytestmark = pytest.mark.django_db


def listed(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return re.findall(r'class="user-link">([^<]*)</a>', html[html.index('id="users-table"') :])


def found(api, **params) -> list[str]:
    answer = api.get("/api/v1/users/search", **params)
    assert answer.status_code == 200, answer.json()
    return [row["display_name"] for row in answer.json()["results"]]


@pytest.fixture
def b2b(environment):
    environment.account_id_property = "company_id"
    environment.save()
    person(environment, 2001, identity="alice", company_id="acme", at=days_ago(1))
    person(environment, 2002, identity="bob", company_id="globex", at=days_ago(2))
    person(environment, 2003, identity="carol", company_id="initech", at=days_ago(3))  # an account with no tier
    # No account; a user property whose own key reads like an account property's.
    person(environment, 2004, identity="dave", plan="Startup", at=days_ago(4), **{"account.tier": "Enterprise"})
    # An anonymous visitor of acme merged into frank (no account of his own): frank takes acme with him at once,
    # before the merge task has run.
    person(environment, 2005, identity="frank", at=days_ago(5))
    person(environment, 2006, company_id="acme", at=days_ago(6))
    identify(environment, 2006, "frank")
    account_properties_set(
        environment=environment,
        updates=[
            ("acme", {"tier": "Enterprise", "seats": 40}),
            ("globex", {"tier": "Free"}),
            ("initech", {"industry": "Retail"}),
            ("umbrella", {"tier": "Enterprise", "region": "EU"}),  # an account nobody has yet
        ],
    )
    return environment


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"f0": "account.tier", "f0_op": "eq", "f0_v": "Enterprise"}, ["alice", "frank"]),
        ({"f0": "account.tier", "f0_op": "in", "f0_v": ["Free", "Enterprise"]}, ["alice", "bob", "frank"]),
        ({"f0": "account.tier", "f0_op": "set"}, ["alice", "bob", "frank"]),
        # Not set: carol's account has no tier, dave has no account (his own `account.tier` is a user property).
        ({"f0": "account.tier", "f0_op": "notset"}, ["carol", "dave"]),
        ({"f0": "account.seats", "f0_v": "40"}, ["alice", "frank"]),  # numbers compare as their text
        ({"f0": "account.industry", "f0_op": "eq", "f0_v": "retail"}, []),  # case-sensitive, as user properties
        # The user property named `account.tier`, spelled out.
        ({"f0": "user.account.tier", "f0_v": "Enterprise"}, ["dave"]),
        ({"f0": "user.account.tier", "f0_op": "notset"}, ["alice", "bob", "carol", "frank"]),
        # `user.plan` is `plan`; filters combine across scopes.
        ({"f0": "user.plan", "f0_v": "Startup"}, ["dave"]),
        ({"f0": "company_id", "f0_v": "acme", "f1": "account.tier", "f1_v": "Enterprise"}, ["alice", "frank"]),
        ({"f0": "plan", "f0_op": "set", "f1": "account.tier", "f1_op": "set"}, []),
    ],
)
def test_account_filters_on_the_page_and_the_api_agree(b2b, viewer, api, params, names):
    params = {"period": "30d", **params}
    assert listed(viewer.get("/users/", params)) == names
    assert found(api, **params) == names
    count = viewer.get("/users/count/", params).json()
    assert count["value"] == len(names)


def test_an_environment_without_an_account_id_property_has_no_accounts(b2b, viewer):
    b2b.account_id_property = ""
    b2b.save()
    everyone = ["alice", "bob", "carol", "dave", "frank"]
    assert listed(viewer.get("/users/", {"f0": "account.tier", "f0_v": "Enterprise", "period": "30d"})) == []
    assert listed(viewer.get("/users/", {"f0": "account.tier", "f0_op": "notset", "period": "30d"})) == everyone
    # Nothing to suggest; a column of an account property is empty.
    page = viewer.get("/users/", {"col": "account.tier", "period": "30d"})
    assert [option["name"] for option in page.context["known_keys"] if option["scope"] == "account"] == ["account.tier"]
    assert "account-link" not in page.content.decode()


def test_account_columns_show_the_persons_account_values_linked_to_the_account_page(b2b, viewer, api):
    params = {"period": "30d", "col": ["company_id", "account.tier", "user.account.tier", "user.plan", "plan"]}
    page = viewer.get("/users/", params)
    html = page.content.decode()
    # `user.plan` and `plan` are one column.
    assert re.findall(r"<th>([^<]*)</th>", html)[4:] == ["company_id", "account.tier", "user.account.tier", "plan"]
    row = re.search(r">frank</a>.*?</tr>", html, re.S).group(0)
    assert re.findall(r'class="account-link">([^<]*)</a>', row) == ["acme", "Enterprise"]
    assert html.count(account_url(b2b, "acme").replace("&", "&amp;")) == 4  # alice's and frank's two cells
    rows = {
        row["display_name"]: row["properties"] for row in api.get("/api/v1/users/search", **params).json()["results"]
    }
    assert rows["frank"] == {
        "company_id": "acme",
        "account.tier": "Enterprise",
        "user.account.tier": None,
        "plan": None,
    }
    assert rows["dave"] == {
        "company_id": None,
        "account.tier": None,
        "user.account.tier": "Enterprise",
        "plan": "Startup",
    }
    assert rows["carol"]["account.tier"] is None
    assert api.get("/api/v1/users/search", col="account.seats", period="30d").json()["results"][0]["properties"] == {
        "account.seats": 40  # typed, as the account's own API answers it
    }


def test_the_pickers_suggest_account_properties_and_spell_names_back(b2b, viewer):
    page = viewer.get(
        "/users/", {"f0": "user.account.tier", "f0_v": "Enterprise", "f1": "account.region", "f1_op": "set"}
    )
    options = {(option["name"], option["scope"]) for option in page.context["known_keys"]}
    # Every account property key of the environment, those of accounts nobody has yet included.
    assert {("account.tier", "account"), ("account.seats", "account"), ("account.region", "account")} <= options
    assert ("user.account.tier", "user") in options and ("account.tier", "user") not in options
    html = page.content.decode()
    assert '<option value="account.industry" label="account property">' in html
    assert 'name="f0" value="user.account.tier"' in html and 'name="f1" value="account.region"' in html


def test_hostile_account_keys_and_values_are_escaped(b2b, viewer):
    account_properties_set(environment=b2b, updates=[("acme", {HOSTILE_IMG: HOSTILE_SCRIPT})])
    html = viewer.get("/users/", {"period": "30d", "col": f"account.{HOSTILE_IMG}"}).content.decode()
    assert HOSTILE_SCRIPT not in html and HOSTILE_IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    listed_html = viewer.get(
        "/users/", {"period": "30d", "f0": f"account.{HOSTILE_IMG}", "f0_v": HOSTILE_SCRIPT}
    ).content.decode()
    assert HOSTILE_IMG not in listed_html and "<img" not in listed_html


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"f0": "account.", "f0_v": "x"}, "f0"),
        ({"f2": "user.", "f2_op": "set"}, "f2"),
        ({"col": "account."}, "col"),
        ({"f0": "account." + "k" * 1025, "f0_op": "set"}, "f0"),
    ],
)
def test_a_scope_without_a_key_is_a_400_naming_the_field(b2b, viewer, api, params, field):
    page = viewer.get("/users/", params)
    assert page.status_code == 400
    answer = api.get("/api/v1/users/search", **params)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field


def test_a_long_key_spelled_out_is_still_reachable(b2b, viewer, api):
    key = "account." + "k" * 1016  # 1024 characters: the longest user property key
    person(b2b, 2010, identity="grace", at=days_ago(1), **{key: "yes"})
    assert found(api, f0=f"user.{key}", f0_v="yes") == ["grace"]


@pytest.mark.parametrize("as_values", [10, 0])  # the accounts as values in the query, or as a subquery
def test_filters_naming_many_accounts_scan_bounded_windows_and_lose_nobody(b2b, api, monkeypatch, as_values):
    from users_app.selectors import user_filters, user_search

    monkeypatch.setattr(user_filters, "ACCOUNTS_INDEXED", 0)
    monkeypatch.setattr(user_filters, "ACCOUNTS_AS_VALUES", as_values)
    monkeypatch.setattr(user_search, "SCAN_WINDOW", 2)
    monkeypatch.setattr(user_search, "SCAN_WINDOWS_PER_PAGE", 1)
    params = {"period": "30d", "f0": "account.tier", "f0_op": "in", "f0_v": ["Enterprise", "Free"]}
    names, pages = [], 0
    while True:
        answer = api.get("/api/v1/users/search", **params).json()
        names += [row["display_name"] for row in answer["results"]]
        pages += 1
        if not answer["next"]:
            break
        assert answer["searched_until"]  # a bounded window, said so
        params["cursor"] = answer["next"]
    assert names == ["alice", "bob", "frank"] and pages > 1
    assert api.get("/api/v1/users/search", **{**params, "cursor": ""}).json()["count"]["value"] == 3
