"""Event retention (SPEC 12): each environment may keep events for `event_retention_days`; a periodic task
(users_app/tasks.py `event_retention_task`, on beat) removes older events, then the sessions they left empty.

In batches of CAIRN_RETENTION_BATCH_SIZE rows, each its own short transaction, found on the (environment,
timestamp) index: no long lock, and ingest (which writes new rows, far from the cutoff) is never blocked. Every
batch commits whole, so a report or count sees each event either there or gone, never half a batch; a session
goes only after its last event, so a session count never includes a session whose events are gone. Idempotent:
a pass that dies is finished by the next one.

On PostgreSQL, where events are partitioned by month (events_app/partitions.py), a month whose rows all belong to
environments that expired the whole month is dropped first, partition and all (with its events' matches and keys,
in one transaction); the batched DELETE then takes the rest, and each environment's rollups and empty sessions are
corrected as after it."""

from dataclasses import dataclass
from datetime import UTC, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from events_app.models import Event, Session, event_side_rows_delete, expired_partitions_drop, rollups_rebuild_until
from users_app.models import Environment

RETENTION_BATCH_SIZE = 5000


@dataclass
class RetentionResult:
    environments: int = 0
    events_deleted: int = 0
    sessions_deleted: int = 0


def _batch_size() -> int:
    return max(1, int(getattr(settings, "CAIRN_RETENTION_BATCH_SIZE", RETENTION_BATCH_SIZE)))


def _delete_batches(queryset, model) -> int:
    total, batch_size = 0, _batch_size()
    while True:
        with transaction.atomic():
            pks = list(queryset.values_list("pk", flat=True)[:batch_size])
            if not pks:
                return total
            if model is Event:  # their matches and keys, keyed by event id (no foreign key to cascade)
                event_side_rows_delete(pks)
            total += model.objects.filter(pk__in=pks).delete()[1].get(model._meta.label, 0)


def _cutoff(environment: Environment, now) -> object:
    """Events before this time are past the environment's retention."""
    return (now or timezone.now()) - timedelta(days=environment.event_retention_days)


def environment_retention_apply(*, environment: Environment, now=None) -> RetentionResult:
    """Remove the environment's events older than its retention, then its sessions left without events that
    ended before the cutoff. Nothing if the environment keeps events forever."""
    result = RetentionResult()
    if not environment.event_retention_days:
        return result
    cutoff = _cutoff(environment, now)
    result.environments = 1
    result.events_deleted = _delete_batches(
        Event.objects.filter(environment=environment, timestamp__lt=cutoff).order_by(), Event
    )
    # The days before the cutoff drop out of the rollups, and the cutoff's day keeps only its remaining events.
    rollups_rebuild_until(environment_id=environment.pk, last_day=cutoff.astimezone(UTC).date())
    empty_sessions = (
        Session.objects.filter(environment=environment, started_at__lt=cutoff, ended_at__lt=cutoff)
        .filter(~Exists(Event.objects.filter(session_id=OuterRef("pk"))))
        .order_by()
    )
    result.sessions_deleted = _delete_batches(empty_sessions, Session)
    return result


def event_retention_sweep(*, now=None) -> RetentionResult:
    """One pass over every environment with a retention (the periodic task's work)."""
    total = RetentionResult()
    environments = list(Environment.objects.filter(event_retention_days__isnull=False, event_retention_days__gt=0))
    now = now or timezone.now()
    # Whole months first (PostgreSQL partitions); then each environment's batched DELETE of the rest, its rollups and
    # empty sessions.
    dropped = expired_partitions_drop({environment.pk: _cutoff(environment, now) for environment in environments})
    total.events_deleted = sum(partition.events for partition in dropped)
    for environment in environments:
        result = environment_retention_apply(environment=environment, now=now)
        total.environments += result.environments
        total.events_deleted += result.events_deleted
        total.sessions_deleted += result.sessions_deleted
    return total
