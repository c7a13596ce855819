"""The report builder's choices (event names, property names) and the saved reports of an environment."""

from django.db import connections
from django.db.models import QuerySet

from events_app.models import DefinedEvent, Event
from reports_app.models import SavedReport
from users_app.models import Environment, UserProperty
from users_app.selectors.accounts import account_property_keys

MAX_CHOICES = 200

# PostgreSQL reads DISTINCT over millions of rows in full; these walk the indexes instead ("loose index
# scan"), one probe per distinct value: event names through (environment, name, timestamp), user property
# keys through (key_hash, value prefix). Fixed SQL, values as parameters.
EVENT_NAMES_SQL = """
    WITH RECURSIVE names(name) AS (
        (SELECT name FROM events_app_event WHERE environment_id = %s ORDER BY name LIMIT 1)
        UNION ALL
        SELECT (SELECT e.name FROM events_app_event e WHERE e.environment_id = %s AND e.name > names.name
                ORDER BY e.name LIMIT 1)
        FROM names WHERE names.name IS NOT NULL
    )
    SELECT name FROM names WHERE name IS NOT NULL LIMIT %s"""
USER_KEYS_SQL = """
    WITH RECURSIVE hashes(key_hash) AS (
        (SELECT key_hash FROM users_app_userproperty ORDER BY key_hash LIMIT 1)
        UNION ALL
        SELECT (SELECT u.key_hash FROM users_app_userproperty u WHERE u.key_hash > hashes.key_hash
                ORDER BY u.key_hash LIMIT 1)
        FROM hashes WHERE hashes.key_hash IS NOT NULL
    )
    SELECT found.key FROM (
        SELECT (SELECT u.key FROM users_app_userproperty u JOIN users_app_profile p ON p.id = u.profile_id
                WHERE u.key_hash = hashes.key_hash AND p.environment_id = %s LIMIT 1) AS key
        FROM hashes WHERE hashes.key_hash IS NOT NULL LIMIT %s
    ) found WHERE found.key IS NOT NULL"""


def _is_postgresql() -> bool:
    return connections["default"].vendor == "postgresql"


def report_event_names(*, environment: Environment) -> list[str]:
    if _is_postgresql():
        with connections["default"].cursor() as cursor:
            cursor.execute(EVENT_NAMES_SQL, [environment.pk, environment.pk, MAX_CHOICES])
            return [row[0] for row in cursor.fetchall()]
    return list(
        Event.objects.filter(environment=environment)
        .values_list("name", flat=True)
        .distinct()
        .order_by("name")[:MAX_CHOICES]
    )


def report_defined_event_names(*, environment: Environment) -> list[str]:
    """The environment's defined events (SPEC 13): the builder lists them apart, marked, before the raw names."""
    names = DefinedEvent.objects.filter(environment=environment).order_by("name").values_list("name", flat=True)
    return list(names[:MAX_CHOICES])


def report_user_property_keys(*, environment: Environment) -> list[str]:
    if _is_postgresql():
        with connections["default"].cursor() as cursor:
            cursor.execute(USER_KEYS_SQL, [environment.pk, MAX_CHOICES * 5])
            return sorted(row[0] for row in cursor.fetchall())[:MAX_CHOICES]
    return list(
        UserProperty.objects.filter(profile__environment=environment)
        .values_list("key", flat=True)
        .distinct()
        .order_by("key")[:MAX_CHOICES]
    )


RECENT_EVENTS_SAMPLE = 2000


def report_property_choices(*, environment: Environment) -> dict[str, list[str]]:
    """Property names offered by the builder: user property keys, and event property keys seen in a sample
    of recent events (any other name can still be typed)."""
    recent = (
        Event.objects.filter(environment=environment)
        .order_by("-timestamp")
        .values_list("properties", flat=True)[:RECENT_EVENTS_SAMPLE]
    )
    event_keys = sorted({key for properties in recent if isinstance(properties, dict) for key in properties})
    return {
        "user": report_user_property_keys(environment=environment),
        "event": event_keys[:MAX_CHOICES],
        "account": account_property_keys(environment, limit=MAX_CHOICES),
    }


def saved_report_list(*, environment: Environment) -> QuerySet:
    return SavedReport.objects.filter(environment=environment).order_by("-pinned", "id")
