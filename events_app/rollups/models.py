"""The rollup tables and their corrections. Re-exported by events_app/models.py, so that users_app's deletion and
retention (which may import events_app's models only) correct them where they delete events.

Keyed by the event's **original profile**, never its owner: ingest stores an event on person_of(original
profile), a merge moves it to the tombstone's destination (which is person_of the tombstone) and an undo moves it
back, so the person of the original profile is always the event's person, and the original profile never changes
(the same rule as DefinedEventMatch, docs/architecture.md). So merges and undo leave the rollups exact without
touching them; only deleting events (a person, retention) corrects them. PersonActivityRollup's bits are OR'ed,
not summed: a day's bit says "some event", so a correction recomputes the bits from the events that remain.

Filled by events_app/rollups/catch_up.py in ranges of event ids up to a safe high-water mark, kept in the one
RollupWatermark row; reports add the events above it from the events table (reports_app/selectors/rollup_rows.py),
so a report counts an event the moment it commits, whether or not the catch-up ran."""

from datetime import UTC, datetime, time, timedelta

from django.apps import apps
from django.db import connection, models, transaction

from users_app.models import Environment, Profile

WATERMARK_PK = 1


class RollupWatermark(models.Model):
    """The one row (pk 1, made by the migration): every event with an id up to `through_event_id` is counted in the
    rollups, none above it. Its row lock serializes the catch-up with the corrections below."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=WATERMARK_PK)
    through_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups through event {self.through_event_id}"


def _profile_fk():
    # No constraint and no ORM cascade: the services that delete profiles delete their rollup rows (below).
    return models.ForeignKey(
        Profile, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )


class PersonDayRollup(models.Model):
    """Events of every name per (environment, UTC day, original profile): what a report on all events reads."""

    pk = models.CompositePrimaryKey("environment", "day", "original_profile")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    day = models.DateField()
    original_profile = _profile_fk()
    events = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["original_profile"], name="day_rollup_by_profile")]

    def __str__(self) -> str:
        return f"{self.events} events of {self.original_profile_id} on {self.day}"


class PersonDayNameRollup(models.Model):
    """Events of one name per (environment, name, UTC day, original profile): what a report on one event reads."""

    pk = models.CompositePrimaryKey("environment", "name", "day", "original_profile")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    name = models.CharField(max_length=1024)
    day = models.DateField()
    original_profile = _profile_fk()
    events = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["original_profile"], name="name_rollup_by_profile")]

    def __str__(self) -> str:
        return f"{self.events} {self.name} of {self.original_profile_id} on {self.day}"


# A chunk of days of PersonActivityRollup: 63, so that its bits (bit 62 the highest) keep a bigint positive.
CHUNK_DAYS = 63
# Every bit of a chunk.
ALL_DAYS = (1 << CHUNK_DAYS) - 1


def day_number(day) -> int:
    """Days since 0001-01-01 (day 0), as SQL's `day - DATE '0001-01-01'` counts them."""
    return day.toordinal() - 1


class PersonActivityRollup(models.Model):
    """The UTC days on which an original profile had an event of one name, per 63-day chunk (day_number // 63):
    bit `day_number % 63` of `days` is set for such a day. What retention reads (reports_app/selectors/
    retention_rollup_sql.py): a person's first day and return buckets are bit tests, and a profile has about one
    row per name and two months instead of one per name and day."""

    pk = models.CompositePrimaryKey("environment", "name", "chunk", "original_profile")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    name = models.CharField(max_length=1024)
    chunk = models.IntegerField()
    original_profile = _profile_fk()
    days = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["original_profile"], name="activity_rollup_by_profile")]

    def __str__(self) -> str:
        return f"{self.name} of {self.original_profile_id}: days {self.days:#x} of chunk {self.chunk}"


ROLLUP_MODELS = (PersonDayRollup, PersonDayNameRollup, PersonActivityRollup)


def rollups_supported() -> bool:
    """Rollups are kept on PostgreSQL; SQLite (the embedded default) reads the events themselves."""
    return connection.vendor == "postgresql"


def rollup_aggregate_sql(condition: str) -> str:
    """One statement adding the events that meet `condition` (SQL on the events table `e`, written by the
    caller, values as parameters) to the three rollups: one pass over those events, grouped by name and day, then
    summed per day, and OR'ed into the days of their chunk.
    Table and column names come from the models."""
    # By the registry, not an import: events_app/models.py re-exports this module.
    event = apps.get_model("events_app", "Event")
    quote = connection.ops.quote_name
    tables = (event, PersonDayRollup, PersonDayNameRollup, PersonActivityRollup)
    events, by_day, by_name, activity = (quote(model._meta.db_table) for model in tables)
    # The day's number since 0001-01-01; mod() and integer division, not `%` (the driver's parameter marker).
    number = "(day - DATE '0001-01-01')"
    return (
        f"WITH counted AS ("
        f"SELECT e.environment_id, e.name, (e.\"timestamp\" AT TIME ZONE 'UTC')::date AS day, e.original_profile_id, "
        f"count(*) AS events FROM {events} e WHERE {condition} GROUP BY 1, 2, 3, 4), "
        f"named AS (INSERT INTO {by_name} AS r (environment_id, name, day, original_profile_id, events) "
        f"SELECT * FROM counted ON CONFLICT (environment_id, name, day, original_profile_id) "
        f"DO UPDATE SET events = r.events + EXCLUDED.events), "
        f"active AS (INSERT INTO {activity} AS r (environment_id, name, chunk, original_profile_id, days) "
        f"SELECT environment_id, name, {number} / {CHUNK_DAYS}, original_profile_id, "
        f"bit_or(1::bigint << mod({number}, {CHUNK_DAYS})) FROM counted GROUP BY 1, 2, 3, 4 "
        f"ON CONFLICT (environment_id, name, chunk, original_profile_id) DO UPDATE SET days = r.days | EXCLUDED.days) "
        f"INSERT INTO {by_day} AS r (environment_id, day, original_profile_id, events) "
        f"SELECT environment_id, day, original_profile_id, sum(events) FROM counted GROUP BY 1, 2, 3 "
        f"ON CONFLICT (environment_id, day, original_profile_id) DO UPDATE SET events = r.events + EXCLUDED.events"
    )


def _watermark_locked() -> RollupWatermark:
    watermark, _ = RollupWatermark.objects.select_for_update().get_or_create(pk=WATERMARK_PK)
    return watermark


def rollups_forget_profiles(profile_pks, *, lock: bool) -> int:
    """Delete the rollup rows of these original profiles (a person being deleted, with their events). `lock`: under
    the watermark's row lock, so that a catch-up which read their events before they were deleted has committed and
    its rows go too; without it (inside a transaction that must not wait), it removes what is there now, and the
    caller calls again with the lock after its commit."""
    profile_pks = list(profile_pks)
    if not profile_pks or not rollups_supported():
        return 0
    with transaction.atomic():
        if lock:
            _watermark_locked()
        return sum(model.objects.filter(original_profile_id__in=profile_pks).delete()[0] for model in ROLLUP_MODELS)


def rollups_rebuild_until(*, environment_id: int, last_day) -> None:
    """Count the environment's days up to `last_day` (inclusive) again from the events still there, for the events
    counted so far (up to the watermark): after retention deleted the events before a cutoff in `last_day`, the
    days before it drop out and `last_day` keeps only its remaining events. The activity rollup's chunks before
    `last_day`'s go; in that chunk only the bits up to `last_day` are cleared (the later days keep theirs, their
    events untouched), and the one statement sets again the bits of the days that still have events."""
    if not rollups_supported():
        return
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=UTC)
    last_chunk, last_bit = divmod(day_number(last_day), CHUNK_DAYS)
    later_days = ALL_DAYS & ~((1 << (last_bit + 1)) - 1)
    with transaction.atomic():
        watermark = _watermark_locked()
        for model in (PersonDayRollup, PersonDayNameRollup):
            model.objects.filter(environment_id=environment_id, day__lte=last_day).delete()
        activity = PersonActivityRollup.objects.filter(environment_id=environment_id)
        activity.filter(chunk__lt=last_chunk).delete()
        with connection.cursor() as cursor:
            # By hand, cast to bigint: the ORM's F("days").bitand(mask) set 0 on every row in a test with the mask
            # 2**63 - 2**52 (the cause not found; its low 32 bits are 0).
            cursor.execute(
                f"UPDATE {connection.ops.quote_name(PersonActivityRollup._meta.db_table)} SET days = days & %s::bigint "
                "WHERE environment_id = %s AND chunk = %s",
                [later_days, environment_id, last_chunk],
            )
            cursor.execute(
                rollup_aggregate_sql('e.environment_id = %s AND e."timestamp" < %s AND e.id <= %s'),
                [environment_id, end, watermark.through_event_id],
            )
        activity.filter(chunk=last_chunk, days=0).delete()  # profiles left with no day in the chunk
