"""Accounts (SPEC 11): the environment's account id property, add_account_properties (single and bulk, the same
value rules, rejections, access checks and rate limits as add_user_properties), GET /api/v1/accounts/<id>, and a
person's account through merges and undo."""

import io

import pytest
from django.core.management import call_command

from tests.builders import apply_pending_merges, identify, person, set_properties
from tests.conftest import API_KEY, OTHER_API_KEY, JsonClient
from users_app.merges.undo import merge_undo
from users_app.models import AccountProperty, Environment
from users_app.selectors.accounts import account_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def b2b(environment):
    environment.account_id_property = "company_id"
    environment.save()
    return environment


def add(api, body: dict, **headers):
    return api.post("/api/add_account_properties", body, **headers)


def stored(environment) -> dict:
    return {
        (row.account_id, row.key): row.typed_value for row in AccountProperty.objects.filter(environment=environment)
    }


def test_add_account_properties_stores_heaps_values_with_their_set_at(api, b2b):
    response = add(
        api,
        {"app_id": b2b.app_id, "account_id": "acme", "properties": {"tier": "Enterprise", "seats": 40}},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 1
    # The value rules are add_user_properties' (config/kernel/validation.py parse_properties), whatever they are.
    assert stored(b2b) == {("acme", "tier"): "Enterprise", ("acme", "seats"): 40}
    # A later call replaces a value and null removes one; a numeric account id is its decimal text.
    add(api, {"app_id": int(b2b.app_id), "account_id": "acme", "properties": {"tier": "Growth", "seats": None}})
    add(api, {"app_id": b2b.app_id, "account_id": 42, "properties": {"tier": "Free"}})
    assert stored(b2b) == {("acme", "tier"): "Growth", ("42", "tier"): "Free"}
    assert AccountProperty.objects.get(account_id="acme", key="tier").set_at is not None


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"properties": {"tier": "Free"}}, "missing_field", "account_id"),
        ({"account_id": "", "properties": {"tier": "Free"}}, "invalid_field", "account_id"),
        ({"account_id": "x" * 256, "properties": {"tier": "Free"}}, "invalid_field", "account_id"),
        ({"account_id": True, "properties": {"tier": "Free"}}, "invalid_type", "account_id"),
        ({"account_id": {"a": 1}, "properties": {"tier": "Free"}}, "invalid_type", "account_id"),
        ({"account_id": "acme"}, "missing_field", "properties"),
        ({"account_id": "acme", "properties": {"tier": {"a": 1}}}, None, "properties.tier"),
        ({"account_id": "acme", "properties": {"id": "x"}}, "reserved_property", "properties.id"),
        ({"account_id": "acme", "properties": {"tier": "x" * 1025}}, None, "properties.tier"),
    ],
)
def test_a_wrong_call_is_a_400_naming_the_field_and_stores_nothing(api, b2b, body, code, field):
    response = add(api, {"app_id": b2b.app_id, **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    if code:
        assert error["code"] == code
    assert not AccountProperty.objects.exists()


def test_bulk_keeps_the_valid_accounts_and_rejects_the_others_with_their_index(api, b2b):
    accounts = [
        {"account_id": "acme", "properties": {"tier": "Enterprise"}},
        {"account_id": "", "properties": {"tier": "Free"}},
        {"account_id": "globex", "properties": {"industry": "Energy"}},
        "not an object",
    ]
    response = add(api, {"app_id": b2b.app_id, "accounts": accounts})
    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert [item["index"] for item in response.json()["rejected"]] == [1, 3]
    assert stored(b2b) == {("acme", "tier"): "Enterprise", ("globex", "industry"): "Energy"}


def test_bulk_limits(api, b2b):
    too_many = [{"account_id": f"a{n}", "properties": {"n": n}} for n in range(1001)]
    assert add(api, {"app_id": b2b.app_id, "accounts": too_many}).json()["error"]["code"] == "too_many_items"
    assert add(api, {"app_id": b2b.app_id, "accounts": []}).json()["error"]["code"] == "empty_batch"
    response = add(api, {"app_id": b2b.app_id, "accounts": [{"account_id": ""}]})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "all_items_rejected")
    assert add(api, {"app_id": b2b.app_id, "accounts": too_many[:1000]}).json()["accepted"] == 1000


def test_unknown_app_id_disallowed_origin_and_required_key_store_nothing(api, b2b):
    body = {"app_id": "999", "account_id": "acme", "properties": {"tier": "Free"}}
    assert add(api, body).status_code == 404
    b2b.allowed_origins = ["https://shop.example.com"]
    b2b.server_calls_need_api_key = True
    b2b.save()
    body["app_id"] = b2b.app_id
    assert add(api, body, HTTP_ORIGIN="https://evil.example").status_code == 403
    assert add(api, body).status_code == 401
    assert add(api, body, HTTP_AUTHORIZATION=f"Bearer {OTHER_API_KEY}").status_code == 401
    assert not AccountProperty.objects.exists()
    assert add(api, body, HTTP_AUTHORIZATION=f"Bearer {API_KEY}").status_code == 200


def test_an_account_over_its_rate_limit_gets_429_and_the_others_are_kept(api, b2b, settings):
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = 2
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = 2
    accounts = [{"account_id": "acme", "properties": {"n": n}} for n in range(3)]
    accounts.append({"account_id": "globex", "properties": {"n": 9}})
    response = add(api, {"app_id": b2b.app_id, "accounts": accounts})
    assert response.status_code == 200 and response["Retry-After"]
    assert response.json()["accepted"] == 3
    assert [(item["index"], item["error"]["code"]) for item in response.json()["rejected"]] == [(2, "rate_limited")]
    single = add(api, {"app_id": b2b.app_id, "account_id": "acme", "properties": {"n": 5}})
    assert single.status_code == 429 and single["Retry-After"]
    assert stored(b2b) == {("acme", "n"): 1, ("globex", "n"): 9}


# ---- reading an account ------------------------------------------------------------------------------------------


def test_read_an_account_with_its_properties_and_people(api, b2b):
    add(api, {"app_id": b2b.app_id, "account_id": "acme", "properties": {"tier": "Enterprise", "seats": 40}})
    person(b2b, 1, identity="alice", company_id="acme")
    person(b2b, 2, identity="bob", company_id="acme")
    person(b2b, 3, identity="carol", company_id="globex")
    answer = api.get("/api/v1/accounts/acme").json()
    assert answer["account_id"] == "acme"
    assert answer["user_count"] == 2
    assert {key: item["value"] for key, item in answer["properties"].items()} == {"tier": "Enterprise", "seats": 40}
    assert answer["properties"]["tier"]["set_at"]
    # An account people have but nothing describes yet is known; one nobody names is 404.
    assert api.get("/api/v1/accounts/globex").json() == {"account_id": "globex", "properties": {}, "user_count": 1}
    missing = api.get("/api/v1/accounts/initech")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/accounts/" + "x" * 300).status_code == 404


def test_a_key_sees_only_its_own_environments_accounts(api, b2b, other_environment):
    add(api, {"app_id": b2b.app_id, "account_id": "acme", "properties": {"tier": "Enterprise"}})
    assert api.get("/api/v1/accounts/acme").status_code == 200
    assert JsonClient(api.client, OTHER_API_KEY).get("/api/v1/accounts/acme").status_code == 404
    assert api.get("/api/v1/accounts/acme", api_key="wrong-key-0123456789").status_code == 401
    assert api.get("/api/v1/accounts/acme", api_key="").status_code == 401


def test_a_merge_carries_the_persons_account_and_undo_puts_it_back(api, b2b, admin):
    alice = person(b2b, 10, identity="alice")
    visitor = person(b2b, 11, company_id="acme")  # the anonymous visitor said which company before signing in
    assert account_of(visitor) == "acme" and account_of(alice) is None
    merge = identify(b2b, 11, "alice").merge
    # From the moment identify returns, the account is the person's (before the task moves anything).
    assert account_of(visitor) == "acme" and account_of(alice) == "acme"
    assert api.get("/api/v1/accounts/acme").json()["user_count"] == 1
    apply_pending_merges()
    assert api.get("/api/v1/accounts/acme").json()["user_count"] == 1

    merge_undo(merge_id=merge.pk, actor=admin)
    alice.refresh_from_db()
    visitor.refresh_from_db()
    assert account_of(alice) is None and account_of(visitor) == "acme"
    assert api.get("/api/v1/accounts/acme").json()["user_count"] == 1


def test_an_account_changes_with_the_persons_property(api, b2b):
    profile = person(b2b, 20, identity="dana", company_id="acme")
    set_properties(b2b, identity="dana", company_id="globex")
    assert account_of(profile) == "globex"
    assert api.get("/api/v1/accounts/acme").status_code == 404
    set_properties(b2b, identity="dana", company_id=None)
    assert account_of(profile) is None


def test_no_account_id_property_means_no_accounts(api, environment):
    profile = person(environment, 30, company_id="acme")
    assert account_of(profile) is None
    assert api.get("/api/v1/accounts/acme").status_code == 404


# ---- the setting -------------------------------------------------------------------------------------------------


def test_create_environment_takes_the_account_property(db):
    out = io.StringIO()
    call_command("create_environment", "B2B", "--app-id", "5550001", "--account-property", "company_id", stdout=out)
    assert Environment.objects.get(app_id="5550001").account_id_property == "company_id"
    assert "account id property: company_id" in out.getvalue()


def test_the_admin_sets_the_account_property(staff):
    response = staff.post(
        "/admin/users_app/environment/add/",
        {"name": "B2B", "app_id": "5550002", "merge_hold_threshold": "25", "account_id_property": " org_id "},
    )
    assert response.status_code == 200, response.content[:500]
    environment = Environment.objects.get(app_id="5550002")
    assert environment.account_id_property == "org_id"
    page = staff.get(f"/admin/users_app/environment/{environment.pk}/change/")
    assert b'name="account_id_property"' in page.content
