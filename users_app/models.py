"""Environments, profiles (one per person), their properties, and merge records."""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Left

from config.kernel.limits import IDENTITY_MAX_LENGTH, MAX_USER_ID, PROPERTY_KEY_MAX_LENGTH, PROPERTY_VALUE_MAX_LENGTH  # noqa: F401 - re-exported

# Properties Cairn sets from a profile's first session (Initial Referrer, ...); merges keep the earliest.
INITIAL_PROPERTY_PREFIX = "Initial "
# Filters on a property value compare this prefix (indexed) and then the whole value.
VALUE_INDEX_PREFIX = 100


def default_merge_hold_threshold() -> int:
    """What a new environment starts with (SPEC 4), wherever it is created: the admin's form, a service, a shell."""
    return settings.CAIRN_MERGE_HOLD_THRESHOLD


class Environment(models.Model):
    """One tracked site or app (Heap's app_id). Nothing is ever visible across environments."""

    name = models.CharField(max_length=200)
    app_id = models.CharField(max_length=64, unique=True)
    # Only a SHA-256 of the API key is stored; the key itself is shown once, when created or rotated.
    api_key_hash = models.CharField(max_length=64, unique=True)
    api_key_hint = models.CharField(max_length=12, blank=True, help_text="First characters of the key.")
    blocked_identities = models.JSONField(
        default=list, blank=True, help_text="This environment's own refused identities (SPEC 4)."
    )
    merge_hold_threshold = models.PositiveIntegerField(
        default=default_merge_hold_threshold,
        help_text="Merges into one identity beyond this many in 24 hours are held.",
    )
    allowed_origins = models.JSONField(
        default=list, blank=True, help_text="Origins allowed to call the browser endpoint (CORS)."
    )
    # Off by default for Heap compatibility (Heap's server API takes the public app_id alone); docs/api.md,
    # "Who can write to an environment".
    server_calls_need_api_key = models.BooleanField(
        default=False,
        help_text="Server calls (/api/track, /api/add_user_properties, /api/identify, /api/v1/identify) must "
        "send the API key (Authorization: Bearer <key>). The browser endpoint is not affected.",
    )
    ingest_limit_per_minute = models.PositiveIntegerField(
        default=0,
        help_text="Cap on this environment's ingest (events, property updates and identifies per minute, all "
        "endpoints together); 0 = no cap. Calls over it get 429 with Retry-After.",
    )
    # SPEC 11: a person's account is their value of this user property (Heap's "account ID" setting).
    account_id_property = models.CharField(
        max_length=PROPERTY_KEY_MAX_LENGTH,
        blank=True,
        help_text="The user property that names a person's account (e.g. company_id); empty = no accounts. "
        "Account properties are set with /api/add_account_properties.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Event retention (SPEC 12): events older than this many days are removed by the periodic retention task
    # (users_app/deletion/retention.py); empty = kept forever.
    event_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Events older than this many days are removed (with sessions left empty); empty = forever.",
    )
    # Bumped whenever the environment's defined events change (events_app/defined_events/services.py). 0: none was
    # ever defined, so ingest skips matching without a lookup; otherwise ingest's per-process cache of compiled
    # rules is keyed by it. On the Environment row because that row is already cached for every ingest call.
    defined_events_version = models.PositiveIntegerField(default=0, editable=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.app_id})"


class Profile(models.Model):
    """A person: a user_id, an optional identity, properties, sessions and events.

    A profile merged into another stays as a tombstone (`merged_into` set) so that late calls carrying
    its user_id land in the right place. Only anonymous profiles are ever merged, so tombstones point
    at a live profile, never at another tombstone.
    """

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="profiles")
    user_id = models.BigIntegerField()
    identity = models.CharField(max_length=IDENTITY_MAX_LENGTH, null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_profiles"
    )
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "user_id"], name="profile_unique_user_id"),
            models.UniqueConstraint(
                fields=["environment", "identity"],
                condition=Q(identity__isnull=False),
                name="profile_unique_identity",
            ),
            models.CheckConstraint(
                condition=Q(user_id__gte=0) & Q(user_id__lt=MAX_USER_ID), name="profile_user_id_range"
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "-last_seen", "-id"], name="profile_recent_activity"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.identity if self.identity is not None else f"User {self.user_id}"

    @property
    def is_tombstone(self) -> bool:
        return self.merged_into_id is not None


def property_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class UserProperty(models.Model):
    """One property of a profile, with the time its current value was set.

    Keys and values may be 1024 characters of any script, more than a B-tree entry can hold, so uniqueness
    and lookups go through `key_hash` (SHA-256 of the key) and an index on the value's first characters.
    Build rows with `UserProperty.build` so the hash is always set.
    """

    # Indexed through the (profile, key_hash) unique constraint.
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="properties", db_index=False)
    key = models.TextField()
    key_hash = models.CharField(max_length=64)
    # Stored as text so reports can group and filter alike on both databases; `is_number` restores the type.
    value = models.TextField()
    is_number = models.BooleanField(default=False)
    set_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "key_hash"], name="property_unique_key")]
        indexes = [models.Index(F("key_hash"), Left("value", VALUE_INDEX_PREFIX), name="property_key_value")]
        verbose_name_plural = "user properties"

    def __str__(self) -> str:
        return f"{self.key}={self.value}"

    @classmethod
    def build(cls, *, profile, key: str, value, is_number: bool, set_at) -> "UserProperty":
        return cls(
            profile=profile,
            key=key,
            key_hash=property_key_hash(key),
            value=str(value),
            is_number=is_number,
            set_at=set_at,
        )

    @property
    def typed_value(self) -> str | int | float:
        if not self.is_number:
            return self.value
        try:
            return int(self.value)  # exact: a trip through float would change integers beyond 2**53
        except ValueError:
            number = float(self.value)
            return int(number) if number.is_integer() and "e" not in self.value.lower() else number


# An account id is compared whole in joins (a person's user property value against the account's rows), so
# it is kept short enough for a plain B-tree index on both databases.
ACCOUNT_ID_MAX_LENGTH = 255


class AccountProperty(models.Model):
    """One property of an account (SPEC 11), with the time its current value was set. An account has no row of
    its own: it is the account id that people's account id property names and these rows describe."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="account_properties", db_index=False
    )
    account_id = models.CharField(max_length=ACCOUNT_ID_MAX_LENGTH)
    key = models.TextField()
    key_hash = models.CharField(max_length=64)
    value = models.TextField()  # text, as UserProperty.value; `is_number` restores the type
    is_number = models.BooleanField(default=False)
    set_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "account_id", "key_hash"], name="account_property_unique")
        ]
        verbose_name_plural = "account properties"

    def __str__(self) -> str:
        return f"{self.account_id}: {self.key}={self.value}"

    typed_value = UserProperty.typed_value


class MergeRecord(models.Model):
    """Every merge of an anonymous profile into an identified one (SPEC 5)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        HELD = "held"
        REJECTED = "rejected"
        REVERTED = "reverted"

    # Merges applied or on their way: they count toward an identity's 24-hour hold threshold and as
    # profiles it absorbed (held, rejected and reverted ones do not).
    APPLIED_STATUSES = (Status.PENDING, Status.RUNNING, Status.DONE, Status.FAILED)

    class Trigger(models.TextChoices):
        IDENTIFY = "identify"
        TRACKER = "tracker"
        SERVER = "server"
        ADMIN = "admin"
        DEMO = "demo"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="merges")
    source = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="merges_out")
    destination = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="merges_in")
    identity = models.CharField(max_length=IDENTITY_MAX_LENGTH)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.IDENTIFY)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    events_moved = models.PositiveIntegerField(default=0)
    sessions_moved = models.PositiveIntegerField(default=0)
    properties_moved = models.PositiveIntegerField(default=0)
    # The source's properties as they were when the merge was requested: {key: {value, set_at}}.
    source_properties = models.JSONField(default=dict, blank=True)
    # Destination values the merge overwrote (or keys it added, with null), so undo can restore them.
    replaced_destination_properties = models.JSONField(default=dict, blank=True)
    source_first_seen = models.DateTimeField(null=True, blank=True)
    source_last_seen = models.DateTimeField(null=True, blank=True)
    destination_first_seen = models.DateTimeField(null=True, blank=True)
    destination_last_seen = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life of the task (each moved batch) or of the sweep queuing it; the sweep re-queues a
    # pending or running merge whose heartbeat is older than CAIRN_MERGE_STALE_SECONDS.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["environment", "identity", "-requested_at"], name="merge_by_identity"),
            models.Index(fields=["status", "requested_at"], name="merge_by_status"),
        ]
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Merge #{self.pk}: User {self.source.user_id} -> {self.identity} ({self.status})"


class MergeAction(models.Model):
    """Audit trail: who approved, rejected, retried or undid a merge, and when."""

    merge = models.ForeignKey(MergeRecord, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor or 'system'} at {self.created_at:%Y-%m-%d %H:%M}"


class DeletionRequest(models.Model):
    """One call of Heap's user deletion API (SPEC 12), or an admin's "Delete this person". It keeps counts,
    never personal data: `users` holds what was asked for only until the task resolves it to profile ids
    (`person_pks`), and those ids point at rows that are gone once the request is done."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="deletion_requests")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # [{"user_id": "..."} | {"identity": "..."}] as asked; emptied when resolved.
    users = models.JSONField(default=list, blank=True)
    # The people's primary keys, resolved by the task; each is removed when its person is gone.
    person_pks = models.JSONField(default=list, blank=True)
    resolved = models.BooleanField(default=False)
    users_requested = models.PositiveIntegerField(default=0)
    users_deleted = models.PositiveIntegerField(default=0)
    profiles_deleted = models.PositiveIntegerField(default=0)
    events_deleted = models.PositiveBigIntegerField(default=0)
    sessions_deleted = models.PositiveIntegerField(default=0)
    merges_deleted = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["status", "requested_at"], name="deletion_by_status")]

    def __str__(self) -> str:
        return f"Deletion request #{self.pk} ({self.status})"
