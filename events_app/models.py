"""Sessions and events.

Both keep two profiles: `profile` is who owns the row now (it changes when a merge moves history) and
`original_profile` is the profile the row was first recorded on, so a merge can be undone exactly.
"""

from django.db import models
from django.db.models import Q

from users_app.models import Environment, Profile

# Heap's server API takes event names of up to 1024 characters; Cairn's own browser tracker keeps 255 (SPEC 10).
EVENT_NAME_MAX_LENGTH = 1024
BROWSER_EVENT_NAME_MAX_LENGTH = 255
# Reports look events up by name through a B-tree index (event_by_name_time), whose entries PostgreSQL caps at
# 2704 bytes: 1024 characters of a 3- or 4-byte script (CJK, emoji) would not fit, and the insert would fail.
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

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "name", "timestamp"], name="event_by_name_time"),
            models.Index(fields=["environment", "timestamp"], name="event_by_time"),
            models.Index(fields=["profile", "-timestamp", "-id"], name="event_by_profile"),
            models.Index(fields=["original_profile"], name="event_by_original_profile"),
            models.Index(fields=["session"], name="event_by_session"),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.timestamp:%Y-%m-%d %H:%M:%S}"
