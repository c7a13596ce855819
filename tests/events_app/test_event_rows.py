"""Events carry no foreign-key constraints in the database (events_app/models.py says why): deleting through
the ORM must still take an environment's events and sessions with it, and leave other environments alone."""

import pytest
from django.db import connection

from events_app.models import Event, Session
from users_app.models import Profile

pytestmark = pytest.mark.django_db


def test_the_event_table_has_no_foreign_key_constraints():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Event._meta.db_table)
    assert [name for name, details in constraints.items() if details["foreign_key"]] == []


def test_deleting_an_environment_deletes_its_events_and_sessions(calls, environment, other_environment, api):
    assert calls.track(user_id="1", event="Sign Up").status_code == 200
    assert calls.identify("1", "alice").status_code == 200
    api.post("/api/track", {"app_id": other_environment.app_id, "user_id": "1", "event": "pageview"})
    assert Event.objects.filter(environment=environment).exists()

    environment.delete()

    assert not Event.objects.filter(environment_id=environment.pk).exists()
    assert not Session.objects.filter(environment_id=environment.pk).exists()
    assert not Profile.objects.filter(environment_id=environment.pk).exists()
    assert Event.objects.filter(environment=other_environment).count() == 1
