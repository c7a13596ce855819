"""HTTPS behind a proxy, in-process (tests/test_production.py runs the whole recipe under gunicorn)."""

import pytest


@pytest.fixture
def https_on(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_plain_http_is_redirected_to_https(client, db, https_on):
    answer = client.get("/accounts/login/")
    assert answer.status_code == 301 and answer["Location"] == "https://testserver/accounts/login/"


def test_a_request_the_proxy_received_over_https_is_served(client, db, https_on):
    assert client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_the_health_check_answers_a_plain_http_probe(client, db, https_on):
    # Load balancers probe the process directly, over http: a redirect would read as "down".
    assert client.get("/healthz").status_code == 200


def test_the_favicon_is_served_not_a_404(client, db):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"].endswith("cairn/favicon.svg")
