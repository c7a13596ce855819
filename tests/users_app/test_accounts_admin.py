"""Accounts in the admin (SPEC 11), read-only, for staff: one row per account of an environment with its property
count, last set and users, searchable by account id, its page with its properties and links to the dashboard;
viewers are refused, nothing can be changed, and every attacker-controlled value is escaped."""

import re
from datetime import UTC, datetime

import pytest

from tests.builders import HOSTILE_IMG, HOSTILE_SCRIPT, identify, person
from users_app.environment_pages import account_url
from users_app.models import AccountProperty
from users_app.services.accounts import account_properties_set

ACCOUNTS = "/admin/users_app/accountproperty/"
EARLIER, LATER = datetime(2026, 11, 1, 9, 30, tzinfo=UTC), datetime(2026, 11, 20, 17, 5, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def b2b(environment, other_environment):
    environment.account_id_property = "company_id"
    environment.save()
    person(environment, 1, identity="alice", company_id="acme")
    person(environment, 2, identity="bob", company_id="acme")
    person(environment, 3, company_id="acme")
    identify(environment, 3, "alice")  # merged into alice: one person
    account_properties_set(environment=environment, updates=[("acme", {"tier": "Enterprise"})], set_at=EARLIER)
    account_properties_set(environment=environment, updates=[("acme", {"seats": 40})], set_at=LATER)
    account_properties_set(environment=environment, updates=[("acme-labs", {"tier": "Free"})], set_at=EARLIER)
    account_properties_set(
        environment=environment, updates=[(HOSTILE_SCRIPT, {HOSTILE_IMG: HOSTILE_SCRIPT})], set_at=EARLIER
    )
    account_properties_set(environment=other_environment, updates=[("acme", {"tier": "Free"})], set_at=EARLIER)
    return environment


def rows(response) -> list[list[str]]:
    """The changelist's rows, as the text of their cells."""
    assert response.status_code == 200, response.content[:300]
    html = response.content.decode()
    if 'id="result_list"' not in html:
        return []  # Django's "0 account properties" page has no table
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(
            r"<tr[^>]*>(.*?)</tr>", html.split('id="result_list"', 1)[1].split("</thead>", 1)[1], re.S
        )
    ]


def test_the_list_has_one_row_per_account_of_each_environment(b2b, other_environment, staff):
    listed = rows(staff.get(ACCOUNTS, {"environment__id__exact": b2b.pk}))
    by_id = {row[0]: row for row in listed}
    assert set(by_id) == {"acme", "acme-labs", HOSTILE_SCRIPT.replace("<", "&lt;").replace(">", "&gt;")}
    account_id, environment, properties, last_set, users, page = by_id["acme"]
    assert environment == b2b.name and properties == "2" and users == "2"  # alice (with user 3) and bob
    assert "Nov. 20, 2026" in last_set and page == "open"
    assert by_id["acme-labs"][4] == "0"  # nobody has it yet
    # Every environment's accounts, each in its own row.
    assert sorted(row[1] for row in rows(staff.get(ACCOUNTS)) if row[0] == "acme") == sorted(
        [b2b.name, other_environment.name]
    )
    assert "3 accounts" in staff.get(ACCOUNTS, {"environment__id__exact": b2b.pk}).content.decode()


def test_search_by_account_id_exact_or_prefix(b2b, staff):
    assert sorted(row[0] for row in rows(staff.get(ACCOUNTS, {"q": "acme", "environment__id__exact": b2b.pk}))) == [
        "acme",
        "acme-labs",
    ]
    assert [row[0] for row in rows(staff.get(ACCOUNTS, {"q": "acme-", "environment__id__exact": b2b.pk}))] == [
        "acme-labs"
    ]
    assert rows(staff.get(ACCOUNTS, {"q": "x" * 300})) == []
    assert rows(staff.get(ACCOUNTS, {"q": "globex"})) == []


def test_ordering_by_property_count_and_last_set(b2b, staff):
    by_count = [row[0] for row in rows(staff.get(ACCOUNTS, {"environment__id__exact": b2b.pk, "o": "-2"}))]
    assert by_count[0] == "acme"
    by_last_set = [row[0] for row in rows(staff.get(ACCOUNTS, {"environment__id__exact": b2b.pk, "o": "-3"}))]
    assert by_last_set[0] == "acme"


def test_the_account_page_shows_its_properties_and_links_to_the_dashboard(b2b, staff):
    first_row = AccountProperty.objects.filter(environment=b2b, account_id="acme").order_by("pk").first()
    page = staff.get(f"{ACCOUNTS}{first_row.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('id="account-properties"') :]
    cells = re.findall(r'<tr class="account-property"><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>', table)
    assert cells == [("seats", "40", LATER.isoformat()), ("tier", "Enterprise", EARLIER.isoformat())]
    assert account_url(b2b, "acme").replace("&", "&amp;") in html
    # The page is the account's, not its first property row's.
    assert "<h2>acme</h2>" in html and "acme: tier" not in html and "Accounts</a>" in html
    assert "its users in the Users view" in html and "f0=company_id" in html
    # Read-only: no save button, and a change is refused.
    assert 'name="_save"' not in html
    assert staff.post(f"{ACCOUNTS}{first_row.pk}/change/", {"account_id": "evil"}).status_code == 403
    assert staff.get(f"{ACCOUNTS}add/").status_code == 403
    assert staff.post(f"{ACCOUNTS}{first_row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AccountProperty.objects.filter(environment=b2b, account_id="acme").count() == 2


def test_hostile_account_ids_keys_and_values_are_escaped(b2b, staff):
    hostile = AccountProperty.objects.get(environment=b2b, account_id=HOSTILE_SCRIPT)
    for response in (staff.get(ACCOUNTS), staff.get(f"{ACCOUNTS}{hostile.pk}/change/")):
        html = response.content.decode()
        assert response.status_code == 200
        assert HOSTILE_SCRIPT not in html and HOSTILE_IMG not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_viewers_are_refused_and_the_admin_index_lists_accounts_for_staff(b2b, viewer, staff):
    first_row = AccountProperty.objects.filter(environment=b2b).order_by("pk").first()
    assert viewer.get(ACCOUNTS).status_code == 403
    assert viewer.get(f"{ACCOUNTS}{first_row.pk}/change/").status_code == 403
    assert ACCOUNTS in staff.get("/admin/").content.decode()


def test_only_offered_lookups_reach_the_database(b2b, staff):
    assert staff.get(ACCOUNTS, {"account_id__regex": "("}).status_code == 400
    assert staff.get(ACCOUNTS, {"value__contains": "x"}).status_code == 400
    assert staff.get(ACCOUNTS, {"environment__id__exact": "x"}).status_code in (200, 302, 400)
