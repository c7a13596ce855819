"""The account page (SPEC 11): its properties and its users, every value escaped, linked from the profile page and
from the Users view's account column."""

import pytest

from tests.builders import HOSTILE_IMG, HOSTILE_SCRIPT, identify, person
from users_app.environment_pages import account_url
from users_app.services.accounts import account_properties_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def b2b(environment):
    environment.account_id_property = "company_id"
    environment.save()
    person(environment, 1, identity="alice", company_id="acme/€ & co")
    person(environment, 2, identity=HOSTILE_SCRIPT, company_id="acme/€ & co")
    person(environment, 3, company_id="acme/€ & co")
    identify(environment, 3, "alice")  # merged into alice: one person
    person(environment, 4, identity="carol", company_id="globex")
    account_properties_set(
        environment=environment, updates=[("acme/€ & co", {"tier": "Enterprise", HOSTILE_IMG: HOSTILE_SCRIPT})]
    )
    return environment


def test_the_account_page_shows_its_properties_and_its_people_escaped(b2b, signed_in):
    page = signed_in.get(account_url(b2b, "acme/€ & co"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Enterprise" in html and "alice" in html
    assert HOSTILE_SCRIPT not in html and HOSTILE_IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.context["account"].user_count == 2  # alice (with user 3 merged in) and the hostile identity
    assert sorted(profile.user_id for profile, _ in page.context["people"]) == [1, 2]
    assert "carol" not in html


def test_unknown_accounts_and_environments_are_404_and_the_page_needs_a_login(b2b, signed_in, client):
    assert signed_in.get(account_url(b2b, "initech")).status_code == 404
    assert signed_in.get("/users/account/", {"env": b2b.app_id}).status_code == 404
    assert signed_in.get("/users/account/", {"env": "nope", "id": "globex"}).status_code == 404
    assert signed_in.get("/users/account/", {"env": b2b.app_id, "id": "a\x00b"}).status_code == 404
    client.logout()
    assert client.get(account_url(b2b, "globex")).status_code == 302


def test_the_profile_page_links_to_the_persons_account(b2b, signed_in):
    page = signed_in.get("/users/1/", {"env": b2b.app_id})
    assert page.context["account_url"] == account_url(b2b, "acme/€ & co")
    assert 'id="account-link"' in page.content.decode()
    # A merged-away profile's page shows its person's account.
    assert signed_in.get("/users/3/", {"env": b2b.app_id}).context["account_id"] == "acme/€ & co"


def test_the_users_view_links_the_account_column_to_account_pages(b2b, signed_in):
    page = signed_in.get("/users/", {"env": b2b.app_id, "col": ["plan", "company_id"], "period": "all"})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="account-link"') == 3  # alice, the hostile identity, carol (user 3 is alice's)
    assert account_url(b2b, "globex").replace("&", "&amp;") in html
