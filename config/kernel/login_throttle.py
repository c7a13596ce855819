"""Login throttling is django-axes (config/settings.py, "Hardening"): this is the one piece of it that is Cairn's,
the client address it counts failures by."""

import ipaddress

from config.kernel.api import client_ip


def _ip_or_none(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def login_client_ip(request) -> str | None:
    """The visitor's address behind CAIRN_TRUSTED_PROXY_COUNT proxies, as GeoIP sees it (AXES_CLIENT_IP_CALLABLE).

    Axes stores it in a GenericIPAddressField (`inet` on PostgreSQL), so what X-Forwarded-For holds must be an
    address or the failed login would be a 500: anything else (a port suffix, "unknown", junk a client wrote
    when it skipped a proxy) falls back to the nearest peer, REMOTE_ADDR."""
    return _ip_or_none(client_ip(request)) or _ip_or_none(request.META.get("REMOTE_ADDR", ""))


# Axes stores the username it counts by in a varchar(255): longer text, typed into the sign-in form, would be a
# 500 on PostgreSQL. No Django user has a longer username, so its first 255 characters count for it.
USERNAME_MAX_LENGTH = 255


def login_username(request, credentials: dict | None) -> str | None:
    """The username a failure counts against (AXES_USERNAME_CALLABLE), bounded to what axes can store."""
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "data", request.POST).get("username")
    return username[:USERNAME_MAX_LENGTH] if isinstance(username, str) else username
