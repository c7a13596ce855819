"""Defined events: create, list, delete (SPEC 13). Each write bumps the environment's `defined_events_version`, so
ingest in every process picks the new rules up (cache.py), and creating one queues its backfill on commit."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from config.kernel.errors import InvalidInput, NotFound
from events_app.defined_events.queue import backfill_queue_on_commit
from events_app.defined_events.rules import name_parse, rules_parse
from events_app.models import DefinedEvent, DefinedEventMatch
from users_app.models import Environment
from users_app.services.environments import environment_cache_invalidate

# Every definition costs ingest a little for the events its rules name: a bound keeps a runaway script harmless.
MAX_DEFINED_EVENTS = 500


def _definitions_changed(environment: Environment) -> None:
    """A new version for ingest's cache, seen by every process: the environment cache starts a new generation now
    and again once this transaction commits (as a save of the Environment row does)."""
    Environment.objects.filter(pk=environment.pk).update(defined_events_version=F("defined_events_version") + 1)
    environment_cache_invalidate()
    transaction.on_commit(environment_cache_invalidate)


def _duplicate(name: str) -> InvalidInput:
    return InvalidInput("duplicate_name", f"A defined event named {name!r} exists already.", "name", status=409)


def defined_event_create(*, environment: Environment, name, rules) -> DefinedEvent:
    """Validate (400 naming the field; 409 for a name taken), store, and queue the backfill of past events."""
    name, rules = name_parse(name), rules_parse(rules)
    with transaction.atomic():
        if DefinedEvent.objects.filter(environment=environment, name=name).exists():
            raise _duplicate(name)
        if DefinedEvent.objects.filter(environment=environment).count() >= MAX_DEFINED_EVENTS:
            raise InvalidInput("too_many", f"An environment has at most {MAX_DEFINED_EVENTS} defined events.", "name")
        try:
            with transaction.atomic():
                defined = DefinedEvent.objects.create(environment=environment, name=name, rules=rules)
        except IntegrityError as error:  # the same name, created concurrently
            raise _duplicate(name) from error
        _definitions_changed(environment)
        backfill_queue_on_commit(defined_event_id=defined.pk)
    return defined


def defined_event_delete(*, environment: Environment, defined_event_id: int) -> None:
    """Delete a definition and its match rows (the events stay). A backfill still running stops at its next batch."""
    with transaction.atomic():
        defined = DefinedEvent.objects.filter(environment=environment, pk=defined_event_id).first()
        if defined is None:
            raise NotFound("No such defined event in this environment.", field="id")
        DefinedEventMatch.objects.filter(defined_event=defined).delete()
        defined.delete()
        _definitions_changed(environment)


def defined_event_as_dict(defined: DefinedEvent) -> dict:
    return {
        "id": defined.pk,
        "name": defined.name,
        "rules": defined.rules,
        "created_at": defined.created_at.isoformat(),
        "backfill": defined.backfill_status,
    }


def defined_event_list(*, environment: Environment) -> list[DefinedEvent]:
    return list(DefinedEvent.objects.filter(environment=environment).order_by("name", "pk"))


def defined_event_counts(*, environment: Environment, days: int = 30) -> dict[int, int]:
    """{definition pk: its matched events of the last `days` days}, one pass over the (defined event, time) index.
    Raw events that share a definition's name are not in these counts (a report on the name includes them)."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        DefinedEventMatch.objects.filter(defined_event__environment=environment, timestamp__gte=since)
        .values("defined_event_id")
        .annotate(events=Count("event_id"))
        .order_by()
        .values_list("defined_event_id", "events")
    )
    return dict(rows)
