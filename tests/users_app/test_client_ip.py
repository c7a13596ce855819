"""The visitor's address behind trusted proxies (GeoIP and login throttling must see the visitor, not the proxy)."""

import pytest
from django.test import RequestFactory

from config.kernel.api import client_ip


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_a_forged_forwarded_header_is_ignored(settings):
    settings.CAIRN_TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from("203.0.113.7", "1.2.3.4")) == "203.0.113.7"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "198.51.100.20", "198.51.100.20"),
        # The visitor forged "1.2.3.4"; the load balancer appended the address it really saw.
        (1, "1.2.3.4, 198.51.100.20", "198.51.100.20"),
        # CDN then load balancer: the CDN appended the visitor, the load balancer appended the CDN.
        (2, "1.2.3.4, 198.51.100.20, 192.0.2.5", "198.51.100.20"),
    ],
)
def test_the_visitor_is_read_that_many_entries_from_the_right(settings, proxies, forwarded, expected):
    settings.CAIRN_TRUSTED_PROXY_COUNT = proxies
    assert client_ip(request_from("10.0.0.2", forwarded)) == expected


def test_a_request_that_skipped_the_proxy_falls_back_to_the_nearest_sender(settings):
    settings.CAIRN_TRUSTED_PROXY_COUNT = 2
    assert client_ip(request_from("10.0.0.2", "198.51.100.20")) == "198.51.100.20"
    assert client_ip(request_from("10.0.0.2")) == "10.0.0.2"
