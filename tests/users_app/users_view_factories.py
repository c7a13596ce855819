"""Test data for the Users view, profile pages and admin, built through the services (so merges are real)."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from events_app.services.ingest import track_ingest, user_properties_ingest
from users_app.models import Profile
from users_app.services.identify import profile_identify

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = '"><img src=x onerror=alert(1)>'


def days_ago(days: float, hours: float = 0) -> datetime:
    return timezone.now() - timedelta(days=days, hours=hours)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def track(
    environment, *, user_id=None, identity=None, event="pageview", at=None, properties=None, session_id=None
) -> Profile:
    item = {"event": event, "timestamp": iso(at or timezone.now()), "properties": properties or {}}
    if user_id is not None:
        item["user_id"] = str(user_id)
    if identity is not None:
        item["identity"] = identity
    if session_id:
        item["session_id"] = session_id
    result = track_ingest(environment=environment, items=[item])
    assert result.accepted == 1, result.as_dict()
    return result.profile


def set_properties(environment, *, user_id=None, identity=None, **properties) -> Profile:
    item = {"properties": properties}
    if user_id is not None:
        item["user_id"] = str(user_id)
    if identity is not None:
        item["identity"] = identity
    result = user_properties_ingest(environment=environment, items=[item])
    assert result.accepted == 1, result.as_dict()
    return result.profile


def identify(environment, user_id, identity):
    return profile_identify(environment=environment, user_id=user_id, identity=identity)


def person(environment, user_id, *, identity=None, plan=None, at=None, **properties) -> Profile:
    """A user seen at `at` (default now) with one pageview, optionally identified and with a plan."""
    track(environment, user_id=user_id, at=at, properties={"path": "/pricing", "referrer": "https://google.com/"})
    if identity is not None:
        identify(environment, user_id, identity)
    if plan is not None:
        properties["plan"] = plan
    if properties:
        set_properties(environment, user_id=user_id, **properties)
    return Profile.objects.get(environment=environment, user_id=user_id).merged_into or Profile.objects.get(
        environment=environment, user_id=user_id
    )
