"""Login throttling (django-axes): too many wrong passwords for one username from one address lock that pair out
with a 429 page, even for the right password, until the cool-off or an admin's unlock."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-123"


@pytest.fixture
def viewer():
    return get_user_model().objects.create_user("viewer", password=PASSWORD)


def sign_in(client: Client, username: str, password: str, path: str = "/accounts/login/", **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail_until_locked(client: Client, username: str, path: str = "/accounts/login/", **extra):
    limit = django_settings.AXES_FAILURE_LIMIT
    for attempt in range(1, limit):
        answer = sign_in(client, username, f"wrong-{attempt}", path, **extra)
        assert answer.status_code == 200, attempt  # the form again, with its error
    return sign_in(client, username, "wrong-last", path, **extra)


def test_the_defaults_are_ten_failures_and_fifteen_minutes():
    assert django_settings.AXES_FAILURE_LIMIT == 10
    assert django_settings.AXES_COOLOFF_TIME == timedelta(minutes=15)


def test_wrong_passwords_lock_the_username_out_even_for_the_right_password(viewer, client):
    locked = fail_until_locked(client, "viewer")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many sign-in attempts" in page and "viewer" in page and "15 minutes" in page

    right = sign_in(client, "viewer", PASSWORD)
    assert right.status_code == 429 and not signed_in(client)
    assert client.get("/users/").status_code == 302  # still sent to the login page


def test_another_username_or_another_address_is_not_locked(viewer, client):
    get_user_model().objects.create_user("colleague", password=PASSWORD)
    assert fail_until_locked(client, "viewer").status_code == 429

    assert sign_in(client, "colleague", PASSWORD).status_code == 302 and signed_in(client)
    elsewhere = Client()
    assert sign_in(elsewhere, "viewer", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 302
    assert signed_in(elsewhere)


def test_the_cool_off_ends_the_lockout(viewer, client):
    fail_until_locked(client, "viewer")
    assert sign_in(client, "viewer", PASSWORD).status_code == 429
    # As if the cool-off had passed since the last attempt.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(client, "viewer", PASSWORD).status_code == 302 and signed_in(client)


def test_a_successful_login_clears_earlier_failures(viewer, client):
    limit = django_settings.AXES_FAILURE_LIMIT
    for attempt in range(limit - 1):
        sign_in(client, "viewer", f"wrong-{attempt}")
    assert sign_in(client, "viewer", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    # limit - 1 more failures would lock a count that had not been cleared.
    for attempt in range(limit - 1):
        assert sign_in(client, "viewer", f"wrong-again-{attempt}").status_code == 200
    assert sign_in(client, "viewer", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    assert fail_until_locked(client, "root", "/admin/login/").status_code == 429
    assert sign_in(client, "root", PASSWORD, "/admin/login/").status_code == 429 and not signed_in(client)


def test_an_admin_unlocks_in_the_admin(viewer, client):
    fail_until_locked(client, "viewer")
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", password=PASSWORD))
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "viewer" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="viewer")
    assert admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}).status_code == 302
    assert sign_in(client, "viewer", PASSWORD).status_code == 302 and signed_in(client)


def test_an_admin_unlocks_from_the_command_line(viewer, client):
    fail_until_locked(client, "viewer")
    call_command("axes_reset_username", "viewer")
    assert sign_in(client, "viewer", PASSWORD).status_code == 302


def test_behind_a_proxy_the_visitor_is_counted_not_the_proxy(viewer, client, settings):
    settings.CAIRN_TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    assert fail_until_locked(client, "viewer", HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy).status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.5"
    # The same user from another visitor behind the same load balancer still signs in.
    other = Client()
    assert sign_in(other, "viewer", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6", **proxy).status_code == 302


@pytest.mark.parametrize("forwarded", ["unknown", "203.0.113.5:443", "<script>", ""])
def test_a_forwarded_for_that_is_no_address_is_no_500(viewer, client, settings, forwarded):
    settings.CAIRN_TRUSTED_PROXY_COUNT = 1
    answer = sign_in(client, "viewer", "wrong", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.2")
    assert answer.status_code == 200
    assert AccessAttempt.objects.get().ip_address == "10.0.0.2"


def test_lockout_works_on_the_embedded_sqlite_default(tmp_path):
    from tests.test_demo_path import run_manage

    database = tmp_path / "throttle.sqlite3"
    run_manage("migrate", "-v0", database=database)
    script = (
        "from django.contrib.auth import get_user_model; from django.test import Client; "
        "get_user_model().objects.create_user('viewer', password='right-password-123'); c = Client(); "
        "codes = [c.post('/accounts/login/', {'username': 'viewer', 'password': 'wrong'}).status_code "
        "for _ in range(10)]; "
        "right = {'username': 'viewer', 'password': 'right-password-123'}; "
        "codes.append(c.post('/accounts/login/', right).status_code); "
        "print(codes)"
    )
    output = run_manage("shell", "-c", script, database=database)
    assert output.strip().splitlines()[-1] == str([200] * 9 + [429, 429])


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_an_overlong_username_is_a_failed_sign_in_not_a_server_error(client, path):
    # Axes keeps the username it counts by in a varchar(255); the form itself sets no length limit.
    answer = sign_in(client, "x" * 5000, "wrong", path)
    assert answer.status_code == 200 and not signed_in(client)
    assert AccessAttempt.objects.get().username == "x" * 255
