"""Matching a defined event against past events (the task cairn.defined_event_backfill): the state lives in the
DefinedEvent row, so a run that dies, or runs twice, ends the same.

1. **The backfill**: event ids from 1 to the largest id when it starts (`backfill_high_id`), in key ranges of
   CAIRN_DEFINED_EVENT_BATCH_IDS ids, each range one short transaction that reads the range's events of the rules'
   event names, matches them in Python (matching.py, the evaluator ingest uses) and inserts the match rows with
   ON CONFLICT DO NOTHING, then records its position. Events stored after the definition was committed are
   matched by ingest itself (cache.py).
2. **The re-sweep**, CAIRN_DEFINED_EVENT_RESWEEP_SECONDS later: an ingest transaction that read the environment
   before the definition existed and committed after the backfill passed its ids (or above them) was matched by
   neither. Those events were received around the definition's creation, so the re-sweep walks ids down from the
   newest until a whole range was received more than RESWEEP_MARGIN before the definition was created.

Reports call the defined event's numbers partial until step 1 is done (DefinedEvent.is_partial)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Greatest
from django.utils import timezone

from config.kernel.sql import rows_insert
from events_app.defined_events.matching import CompiledDefinitions
from events_app.defined_events.queue import backfill_publish
from events_app.models import DefinedEvent, DefinedEventMatch, Event
from events_app.services.event_rows import MATCH_COLUMNS

# Longer than an ingest transaction lasts and than the web hosts' clocks disagree.
RESWEEP_MARGIN = timedelta(minutes=10)


def _batch_ids() -> int:
    return max(1, int(settings.CAIRN_DEFINED_EVENT_BATCH_IDS))


def matches_insert(rows: list[tuple]) -> None:
    """MATCH_COLUMNS rows; those already stored are skipped."""
    rows_insert(DefinedEventMatch, MATCH_COLUMNS, rows, on_conflict="ON CONFLICT DO NOTHING")


def _match_range(defined: DefinedEvent, compiled: CompiledDefinitions, low: int, high: int) -> int:
    """Match the definition's environment's events with ids in (low, high]; how many matched."""
    events = Event.objects.filter(
        environment_id=defined.environment_id, pk__gt=low, pk__lte=high, name__in=compiled.event_names
    ).values_list("pk", "name", "timestamp", "properties", "original_profile_id")
    rows = [
        (defined.pk, pk, timestamp, original_profile_pk)
        for pk, name, timestamp, properties, original_profile_pk in events.order_by()
        if compiled.matching(name, properties)
    ]
    matches_insert(rows)
    return len(rows)


def _locked(defined_event_id: int) -> DefinedEvent | None:
    """The definition, row-locked for this batch's transaction; None once deleted (the run stops)."""
    return DefinedEvent.objects.select_for_update().filter(pk=defined_event_id).first()


def _backfill_pass(defined: DefinedEvent, compiled: CompiledDefinitions) -> bool:
    """Step 1 from the recorded position; False if the definition was deleted meanwhile."""
    if defined.backfill_status == DefinedEvent.Backfill.PENDING:
        with transaction.atomic():
            defined = _locked(defined.pk)
            if defined is None:
                return False
            if defined.backfill_status == DefinedEvent.Backfill.PENDING:
                defined.backfill_high_id = Event.objects.aggregate(top=Max("pk"))["top"] or 0
                defined.backfill_status = DefinedEvent.Backfill.RUNNING
                defined.backfill_heartbeat_at = timezone.now()
                defined.save(update_fields=["backfill_high_id", "backfill_status", "backfill_heartbeat_at"])
    position, high_id = defined.backfill_position, defined.backfill_high_id or 0
    while position < high_id:
        upper = min(position + _batch_ids(), high_id)
        with transaction.atomic():
            if _locked(defined.pk) is None:
                return False
            _match_range(defined, compiled, position, upper)
            # Greatest: a second run of the same task (a redelivery) never moves the position back.
            DefinedEvent.objects.filter(pk=defined.pk).update(
                backfill_position=Greatest("backfill_position", upper), backfill_heartbeat_at=timezone.now()
            )
        position = upper
    DefinedEvent.objects.filter(pk=defined.pk).update(
        backfill_status=DefinedEvent.Backfill.DONE, backfill_finished_at=timezone.now(), backfill_position=high_id
    )
    return True


def _resweep(defined: DefinedEvent, compiled: CompiledDefinitions) -> None:
    """Step 2: ids from the newest down, until a whole range was received before the definition (less a margin)."""
    cutoff = defined.created_at - RESWEEP_MARGIN
    position = Event.objects.aggregate(top=Max("pk"))["top"] or 0
    while position > 0:
        low = max(0, position - _batch_ids())
        with transaction.atomic():
            if _locked(defined.pk) is None:
                return
            _match_range(defined, compiled, low, position)
        # Every environment's events: their receipt times say how far back in time the range lies.
        newest = Event.objects.filter(pk__gt=low, pk__lte=position).aggregate(newest=Max("received_at"))["newest"]
        if newest is not None and newest < cutoff:
            break
        position = low
    DefinedEvent.objects.filter(pk=defined.pk).update(resweep_done_at=timezone.now())


def defined_event_backfill(*, defined_event_id: int) -> str:
    """The task's work: whichever step the row says is next. Returns the state reached."""
    defined = DefinedEvent.objects.filter(pk=defined_event_id).first()
    if defined is None:
        return "deleted"
    compiled = CompiledDefinitions.of([(defined.pk, defined.rules)])
    if defined.backfill_status != DefinedEvent.Backfill.DONE:
        if not _backfill_pass(defined, compiled):
            return "deleted"
        backfill_publish(defined_event_id=defined.pk, resweep=True)
        return DefinedEvent.Backfill.DONE
    if defined.resweep_done_at is None:
        _resweep(defined, compiled)
        return "resweep done"
    return "nothing to do"


def defined_event_sweep() -> int:
    """Beat: queue again the backfills whose task was lost (never started, or no batch for a while, or the
    re-sweep never ran). Each may then run twice at worst: harmless, every step is idempotent."""
    stale = timezone.now() - timedelta(seconds=settings.CAIRN_DEFINED_EVENT_STALE_SECONDS)
    lost = DefinedEvent.objects.exclude(backfill_status=DefinedEvent.Backfill.DONE).filter(created_at__lt=stale)
    lost = lost.exclude(backfill_heartbeat_at__gte=stale)
    overdue = stale - timedelta(seconds=settings.CAIRN_DEFINED_EVENT_RESWEEP_SECONDS)
    unswept = DefinedEvent.objects.filter(
        backfill_status=DefinedEvent.Backfill.DONE, resweep_done_at__isnull=True, backfill_finished_at__lt=overdue
    )
    queued = 0
    for defined_pk in [*lost.values_list("pk", flat=True), *unswept.values_list("pk", flat=True)]:
        if not backfill_publish(defined_event_id=defined_pk):
            break
        queued += 1
    return queued
