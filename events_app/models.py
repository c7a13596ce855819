"""Sessions and events.

Both keep two profiles: `profile` is who owns the row now (it changes when a merge moves history) and
`original_profile` is the profile the row was first recorded on, so a merge can be undone exactly.
"""

from django.db import models
from django.db.models import QuerySet

from users_app.models import Environment, Profile

# Heap's server API takes event names of up to 1024 characters; Cairn's own browser tracker keeps 255 (SPEC 10).
EVENT_NAME_MAX_LENGTH = 1024
BROWSER_EVENT_NAME_MAX_LENGTH = 255
# Reports look events up by name through a B-tree index (event_by_name_time_cover), whose entries PostgreSQL caps
# at 2704 bytes (its two included ids take 16 of them): 1024 characters of a 3- or 4-byte script (CJK, emoji)
# would not fit, and the insert would fail.
# So a name is also at most this many bytes in UTF-8 (every 1024-character name in a 1- or 2-byte script).
EVENT_NAME_MAX_BYTES = 2600
PAGEVIEW_EVENT = "pageview"


# Foreign keys carry db_index=False where a composite index below already leads with the column: every
# index is rewritten when a merge moves rows, so a redundant one costs merges and ingest for nothing.


class Session(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    original_profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="original_sessions", db_index=False
    )
    # The tracker's session id, or one Cairn made for server calls without one.
    session_key = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    landing_page = models.TextField(blank=True)
    referrer = models.TextField(blank=True)
    utm_source = models.CharField(max_length=1024, blank=True)
    utm_medium = models.CharField(max_length=1024, blank=True)
    utm_campaign = models.CharField(max_length=1024, blank=True)
    browser = models.CharField(max_length=200, blank=True)
    device_type = models.CharField(max_length=50, blank=True)
    country = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["original_profile", "session_key"], name="session_unique_key"),
        ]
        indexes = [
            models.Index(fields=["profile", "-ended_at"], name="session_by_profile"),
            # A person's first session (initial properties): no sort over all of a long-lived profile's sessions.
            models.Index(fields=["profile", "started_at"], name="session_by_start"),
            models.Index(fields=["environment", "started_at"], name="session_by_time"),
        ]

    def __str__(self) -> str:
        return f"Session {self.session_key} of {self.profile_id}"

    @property
    def duration(self):
        return self.ended_at - self.started_at


# named()'s default: the defined event of the name is looked up (a caller that has it already passes it, or None).
LOOK_UP = object()


class EventQuerySet(QuerySet):
    def named(self, environment: Environment, name: str, *, start=None, end=None, defined_event=LOOK_UP) -> QuerySet:
        """The environment's events called `name`: those whose raw name is `name`, plus, if the environment has a
        defined event of that name, the events it matches (their DefinedEventMatch rows). `start`/`end` bound
        the timestamps ([start, end)); given here, they also bound the match rows' index range. The one place a
        report, a funnel or the Users view turns an event name into events (docs/architecture.md).
        `defined_event`: the environment's DefinedEvent of that name (or None), when the caller has read it."""
        events = self.filter(environment=environment)
        if start is not None:
            events = events.filter(timestamp__gte=start)
        if end is not None:
            events = events.filter(timestamp__lt=end)
        if defined_event is LOOK_UP:
            defined_event = DefinedEvent.objects.filter(environment=environment, name=name).first()
        if defined_event is None:
            return events.filter(name=name)
        matches = DefinedEventMatch.objects.filter(defined_event_id=defined_event.pk)
        raw = Event.objects.filter(environment=environment, name=name)
        if start is not None:
            matches, raw = matches.filter(timestamp__gte=start), raw.filter(timestamp__gte=start)
        if end is not None:
            matches, raw = matches.filter(timestamp__lt=end), raw.filter(timestamp__lt=end)
        # Raw events of the same name are rare: their part of the UNION is one probe of event_by_name_time_cover.
        return events.filter(pk__in=matches.values("event_id").union(raw.values("pk"), all=True))

    def matched_by(self, defined_event: "DefinedEvent", *, start, end) -> QuerySet:
        """The events in [start, end) that `defined_event` matches (not the raw events of its name: for a range
        that has none, DefinedEventMatch.objects.standing_for). Written as the range of its rules' raw event
        names on event_by_name_time_cover semi-joined with its match rows, which is exact (a rule matches only events of
        its `event`) and lets PostgreSQL choose: a hash semi-join that reads the events in physical order where
        the matches are many, lookups by id where they are few. `id IN (match ids)` alone leaves it only the
        lookups, one random read per match (docs/benchmarks.md, "Defined events")."""
        matches = DefinedEventMatch.objects.filter(
            defined_event_id=defined_event.pk, timestamp__gte=start, timestamp__lt=end
        )
        return self.filter(
            environment_id=defined_event.environment_id,
            name__in=defined_event.raw_names,
            timestamp__gte=start,
            timestamp__lt=end,
            pk__in=matches.values("event_id"),
        )


class Event(models.Model):
    # No foreign-key constraints in the database (db_constraint=False; Django still cascades deletes): every
    # event row would otherwise be checked against four tables at commit, and every row a merge moves
    # against the profiles again: a large part of a merge's and of a bulk call's time (docs/benchmarks.md,
    # "No foreign-key constraints on events"). Integrity is kept by the services instead: profiles and sessions
    # are never deleted on their own (only with their environment, through the ORM), and an event is only ever
    # written with the profiles and session its own transaction created or locked.
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    original_profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="original_events", db_index=False, db_constraint=False
    )
    session = models.ForeignKey(
        Session,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    name = models.CharField(max_length=EVENT_NAME_MAX_LENGTH)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        # On PostgreSQL the table is partitioned by month of `timestamp` (events_app/partitions.py), and its
        # primary key in the database is (id, timestamp): a partitioned table's unique keys must hold the
        # partition key. `id` stays the pk here, for the ORM: ids come from the one sequence and are never
        # written by hand, so an id is still one event. For the same reason the idempotency keys' uniqueness
        # lives in EventIdempotencyKey; `idempotency_key` is kept as what the event was sent with.
        indexes = [
            # Covering: funnels and retention read a step's events (person and order) from the index alone.
            models.Index(
                fields=["environment", "name", "timestamp"],
                name="event_by_name_time_cover",
                include=["original_profile", "id"],
            ),
            models.Index(fields=["environment", "timestamp"], name="event_by_time"),
            models.Index(fields=["profile", "-timestamp", "-id"], name="event_by_profile"),
            models.Index(fields=["original_profile"], name="event_by_original_profile"),
            models.Index(fields=["session"], name="event_by_session"),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class EventIdempotencyKey(models.Model):
    """An idempotency key an environment's event was stored with: its unique key is what makes a key stored once
    (events_app/services/event_rows.py claims keys here in the event's own transaction). A side table, because a
    unique key on the partitioned events table would have to include the timestamp. It goes with its event
    (event_side_rows_delete): a key whose event was deleted or expired may be sent again."""

    pk = models.CompositePrimaryKey("environment", "key")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    key = models.CharField(max_length=255)
    # A plain column: no foreign key can point at the partitioned events table (its unique key is (id, timestamp)).
    event_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["event_id"], name="idempotency_key_by_event")]

    def __str__(self) -> str:
        return f"{self.key} of event {self.event_id}"


def event_side_rows_delete(event_ids) -> None:
    """Delete the rows keyed by these events' ids that have no foreign key to cascade from the event: their
    defined-event matches and their idempotency keys. `event_ids`: ids, or a queryset of them. Every service that
    deletes events calls it first (users_app/deletion/)."""
    DefinedEventMatch.objects.filter(event_id__in=event_ids).delete()
    EventIdempotencyKey.objects.filter(event_id__in=event_ids).delete()


class DefinedEvent(models.Model):
    """A name for a set of raw events, defined afterwards (Heap's "virtual events", SPEC 13): the events matching any
    of its rules, past (backfill) and future (ingest). The rules' meaning lives in events_app/defined_events/."""

    class Backfill(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="defined_events", db_index=False
    )
    name = models.CharField(max_length=255)
    # A list of rule objects ({"event", "selector"?, "text"?, "path"?}), as validated by defined_events/rules.py.
    rules = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    # The backfill's state (defined_events/backfill.py): the pass over past events walks event ids up to
    # backfill_high_id; backfill_position is the last id it finished, so a run that dies resumes there.
    backfill_status = models.CharField(max_length=16, choices=Backfill.choices, default=Backfill.PENDING)
    backfill_position = models.BigIntegerField(default=0)
    backfill_high_id = models.BigIntegerField(null=True, blank=True)
    backfill_finished_at = models.DateTimeField(null=True, blank=True)
    # Written by every batch: a backfill whose heartbeat is old lost its worker, and the sweep queues it again.
    backfill_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The re-sweep of recent events after the backfill (ingest transactions that began before this definition).
    resweep_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="defined_event_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_partial(self) -> bool:
        """True while past events are still being matched: counts so far are a lower bound."""
        return self.backfill_status != self.Backfill.DONE

    @property
    def raw_names(self) -> list[str]:
        """The raw event names its rules look at (each rule names one, `event`): the only names it can match."""
        return sorted({rule["event"] for rule in self.rules})


class DefinedEventMatchQuerySet(QuerySet):
    def standing_for(self, defined_event: "DefinedEvent", *, start, end) -> QuerySet | None:
        """The match rows in [start, end) of `defined_event`, when they stand for every event called by its name: no
        raw event of the environment has that name too (one probe of event_by_name_time_cover). None otherwise: then
        Event.objects.named is the answer. For reads that need of an event only its time and its person (the
        report's fast path, reports_app/selectors/rows.py), or its row (Event.objects.matched_by)."""
        raw = Event.objects.filter(
            environment_id=defined_event.environment_id,
            name=defined_event.name,
            timestamp__gte=start,
            timestamp__lt=end,
        )
        if raw.exists():
            return None
        return self.filter(defined_event_id=defined_event.pk, timestamp__gte=start, timestamp__lt=end)

    def names_by_event(self, event_pks) -> dict[int, list[str]]:
        """{event pk: the names of the defined events it matches}, for a page of events (the timeline)."""
        names: dict[int, list[str]] = {}
        rows = self.filter(event_id__in=list(event_pks)).values_list("event_id", "defined_event__name")
        for event_pk, name in rows.order_by("defined_event__name"):
            names.setdefault(event_pk, []).append(name)
        return names


class DefinedEventMatch(models.Model):
    """One event matched by one defined event: what reports read instead of evaluating rules over JSON.

    Keyed by the event, not its profile: a merge moves events between profiles and leaves these rows as they are.
    No foreign key to the event (a plain column, no constraint, no ORM cascade): ingest writes these rows in the
    event's own statement, and the services that delete events (users_app/deletion/) delete their matches by
    event id first, on the event_id index. The defined event's foreign key has no constraint either (every row
    would be checked at commit); deleting a definition deletes its rows through the ORM."""

    pk = models.CompositePrimaryKey("defined_event", "event_id")
    defined_event = models.ForeignKey(
        DefinedEvent, on_delete=models.CASCADE, related_name="matches", db_index=False, db_constraint=False
    )
    event_id = models.BigIntegerField()
    # Copied from the event, both never change (a merge moves `profile`, never `original_profile`): a report on
    # the defined event reads one index range (defined event, time), index-only, instead of an event row per
    # match (docs/architecture.md, "Defined events"). The person of the event is the person of its original
    # profile: ingest stores an event on person_of(original_profile), and a merge or its undo keeps it so.
    timestamp = models.DateTimeField()
    original_profile = models.ForeignKey(
        Profile, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )

    objects = DefinedEventMatchQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["defined_event", "timestamp"],
                include=["event_id", "original_profile"],
                name="defined_match_by_time",
            ),
            models.Index(fields=["event_id"], name="defined_match_by_event"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} is {self.defined_event_id}"


# The rollups (events_app/rollups/models.py) are events_app's models too: re-exported here, where users_app's
# deletion and retention, which may import events_app's models only, find them; the same for the partitions' step
# of retention.
from events_app.partitions import expired_partitions_drop  # noqa: E402
from events_app.rollups.models import (  # noqa: E402
    PersonActivityRollup,
    PersonDayNameRollup,
    PersonDayRollup,
    RollupWatermark,
    rollups_forget_profiles,
    rollups_rebuild_until,
)

__all__ = [
    "DefinedEvent",
    "DefinedEventMatch",
    "Event",
    "EventIdempotencyKey",
    "PersonActivityRollup",
    "PersonDayNameRollup",
    "PersonDayRollup",
    "RollupWatermark",
    "Session",
    "event_side_rows_delete",
    "expired_partitions_drop",
    "rollups_forget_profiles",
    "rollups_rebuild_until",
]
