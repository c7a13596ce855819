"""Browser, device type and location of a request, for a new session."""

from functools import lru_cache

from django.conf import settings
from user_agents import parse as parse_user_agent


def _geoip_reader():
    return _geoip_reader_for(settings.GEOIP_PATH) if settings.GEOIP_PATH else None


@lru_cache(maxsize=4)
def _geoip_reader_for(path: str):
    # One reader per database path (opened once: the file is memory-mapped and shared by requests).
    import geoip2.database

    return geoip2.database.Reader(path)


def location_of(context) -> tuple[str, str]:
    """(country, city): from the GeoIP2 database when configured, else the trusted proxy headers."""
    reader = _geoip_reader()
    if reader is not None and context.ip:
        import geoip2.errors

        try:
            answer = reader.city(context.ip)
        except (geoip2.errors.GeoIP2Error, ValueError, TypeError, OSError):
            # Not in the database (AddressNotFoundError), not an IP address, or not a City database.
            return "", ""
        return (answer.country.name or "")[:200], (answer.city.name or "")[:200]
    return context.country[:200], context.city[:200]


@lru_cache(maxsize=512)
def _agent_describe(user_agent: str) -> tuple[str, str]:
    """(browser, device type). Cached: parsing is slow (docs/benchmarks.md), a bulk call starts many sessions for
    one request's agent, and a site sees a few hundred distinct agents."""
    agent = parse_user_agent(user_agent)
    if agent.is_bot:
        device_type = "Bot"
    elif agent.is_tablet:
        device_type = "Tablet"
    elif agent.is_mobile:
        device_type = "Mobile"
    else:
        device_type = "Desktop"
    return (agent.browser.family or "")[:200], device_type


def device_describe(context) -> dict[str, str]:
    attributes = {}
    if context.user_agent:
        attributes["browser"], attributes["device_type"] = _agent_describe(context.user_agent[:1024])
    attributes["country"], attributes["city"] = location_of(context)
    return attributes
