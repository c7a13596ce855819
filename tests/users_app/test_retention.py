"""Event retention (SPEC 12): events older than an environment's retention go, with the sessions they leave
empty, in batches; environments without a retention keep everything; the periodic task is on beat."""

from datetime import timedelta

from django.conf import settings as django_settings
from django.utils import timezone

from events_app.models import Event, Session
from tests.builders import track
from users_app.deletion.retention import event_retention_sweep
from users_app.models import Profile
from users_app.services.environments import environment_create
from users_app.tasks import event_retention_task


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def test_events_past_the_retention_go_with_the_sessions_left_empty(environment, other_environment, settings, api):
    settings.CAIRN_RETENTION_BATCH_SIZE = 3
    environment.event_retention_days = 30
    environment.save()
    for index in range(7):
        track(environment, user_id=11, event="old", at=days_ago(40) + timedelta(seconds=index), session_id="s-old")
    track(environment, user_id=11, event="recent", at=days_ago(2), session_id="s-new")
    # A session that started before the cutoff and goes on after it keeps its recent event.
    track(environment, user_id=12, event="old", at=days_ago(30.01), session_id="s-both")
    track(environment, user_id=12, event="recent", at=days_ago(29.99), session_id="s-both")
    track(other_environment, user_id=11, event="old", at=days_ago(400))  # no retention there: kept forever

    result = event_retention_sweep()

    assert (result.environments, result.events_deleted, result.sessions_deleted) == (1, 8, 1)
    assert sorted(Event.objects.filter(environment=environment).values_list("name", flat=True)) == ["recent"] * 2
    assert sorted(Session.objects.filter(environment=environment).values_list("session_key", flat=True)) == [
        "s-both",
        "s-new",
    ]
    assert Event.objects.filter(environment=other_environment).count() == 1
    # The person stays (with what is left); counts agree with the rows.
    user = api.get("/api/v1/users/11").json()
    assert (user["event_count"], user["session_count"]) == (1, 1)
    assert Profile.objects.filter(environment=environment).count() == 2
    # A second pass finds nothing more.
    assert event_retention_sweep().events_deleted == 0


def test_the_periodic_task_is_on_beat_and_runs_the_pass(environment):
    environment.event_retention_days = 1
    environment.save()
    track(environment, user_id=11, event="old", at=days_ago(3))

    assert event_retention_task.apply().get() == 1

    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"cairn.event_retention", "cairn.deletion_sweep"} <= scheduled


def test_environment_create_takes_the_retention(db):
    created = environment_create(name="Short memory", event_retention_days=7)
    assert created.environment.event_retention_days == 7
    assert environment_create(name="Forever").environment.event_retention_days is None
