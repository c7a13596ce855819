"""Which rows a graph report counts: the environment's events of the range, those called the report's event (raw or
defined, events_app.models `Event.objects.named`), or a defined event's match rows standing for its events."""

from django.db.models import QuerySet

from events_app.models import DefinedEvent, DefinedEventMatch, Event
from reports_app.query import ReportQuery
from reports_app.selectors.buckets import time_range
from users_app.models import Environment


def report_rows(
    environment: Environment, query: ReportQuery, defined_event: DefinedEvent | None
) -> tuple[QuerySet, bool]:
    """The rows the report counts, and whether they are a defined event's match rows. `defined_event`: the
    environment's defined event of the report's event name, or None (report_series reads it once). A report on an
    event name counts Event.objects.named (raw events of the name, and the events a defined event of that name
    matches). When that is a defined event and no raw event shares its name in the range: if the report needs of
    each event only its time and its person (no event property, no sessions), its match rows stand for the
    events, one index-only range instead of an event row per match; else its events are read as
    Event.objects.matched_by (its rules' raw names semi-joined with the match rows), which keeps such reports as
    fast as one on a raw name (docs/benchmarks.md, "Defined events")."""
    start, end = time_range(query)
    if query.event is None:
        return Event.objects.filter(environment=environment, timestamp__gte=start, timestamp__lt=end), False
    if defined_event is not None:
        matches = DefinedEventMatch.objects.standing_for(defined_event, start=start, end=end)
        if matches is not None:
            props = [item.prop for item in query.filters] + ([query.group_by] if query.group_by else [])
            if query.measure != "sessions" and all(prop.scope != "event" for prop in props):
                return matches, True
            return Event.objects.matched_by(defined_event, start=start, end=end), False
    events = Event.objects.named(environment, query.event, start=start, end=end, defined_event=defined_event)
    return events, False
