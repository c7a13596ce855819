"""Accounts (SPEC 11, Heap's account properties): parsing an account id, setting account properties, and the rate
limit bucket of an account's writes.

An account has no row of its own. A person's account is their value of the environment's account id property
(`Environment.account_id_property`, a user property), so merges carry it and undo puts it back like any user
property; `AccountProperty` rows describe an account id, whether or not anyone has it yet (Heap accepts account
properties before the account's users are seen).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.kernel.errors import InvalidInput
from config.kernel.validation import (
    PropertyValue,
    check_text,
    is_finite_number,
    is_number,
    json_type_name,
    parse_properties,
    require_object,
    require_present,
)
from users_app.models import ACCOUNT_ID_MAX_LENGTH, AccountProperty, Environment, property_key_hash
from users_app.rate_limits import KEY_PREFIX, Bucket, Limit


@dataclass
class AccountPropertiesItem:
    account_id: str
    properties: dict[str, PropertyValue | None]


def parse_account_id(value, field: str = "account_id") -> str:
    """An account id as a user property stores it (text): a string of 1 to 255 characters, or a number (written
    as its decimal text, so `42` and `"42"` are the same account, as they are the same user property value)."""
    require_present(value, field)
    if isinstance(value, bool) or not (isinstance(value, str) or is_finite_number(value)):
        raise InvalidInput(
            "invalid_type", f"`{field}` must be a string or a number, not {json_type_name(value)}.", field
        )
    text = check_text(value, field) if isinstance(value, str) else str(value)
    if not text.strip():
        raise InvalidInput("invalid_field", f"`{field}` must not be empty.", field)
    if len(text) > ACCOUNT_ID_MAX_LENGTH:
        raise InvalidInput("invalid_field", f"`{field}` is longer than {ACCOUNT_ID_MAX_LENGTH} characters.", field)
    return text


def parse_account_properties_item(environment: Environment, raw) -> AccountPropertiesItem:
    """One item of add_account_properties: the same value rules as add_user_properties (null removes)."""
    raw = require_object(raw, "account")
    if "properties" not in raw:
        raise InvalidInput("missing_field", "`properties` is required.", "properties")
    return AccountPropertiesItem(
        account_id=parse_account_id(raw.get("account_id")),
        properties=parse_properties(raw.get("properties"), allow_null=True),
    )


def account_buckets(environment: Environment, account_ids: list[str]) -> list[Bucket | None]:
    """The rate-limit bucket of each account's property updates, at the same per-person rate as a person's
    writes (an account is written about as often as a person); None when that limit is off."""
    per_minute = settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE
    if per_minute <= 0:
        return [None] * len(account_ids)
    limit = Limit(per_minute, max(settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST, 1))
    made: dict[str, Bucket] = {}
    for account_id in account_ids:
        if account_id not in made:
            made[account_id] = Bucket(
                f"{KEY_PREFIX}:{{{environment.pk}}}:w:a:{account_id}",
                limit,
                "account_id",
                "property updates for this account",
            )
    return [made[account_id] for account_id in account_ids]


def account_properties_set(
    *,
    environment: Environment,
    updates: Iterable[tuple[str, dict[str, PropertyValue | None]]],
    set_at: datetime | None = None,
) -> int:
    """Apply account property updates in one upsert and one delete; later updates of the same account and key
    win, as if applied in order. Returns how many values were set or removed."""
    set_at = set_at or timezone.now()
    latest: dict[tuple[str, str], PropertyValue | None] = {}
    for account_id, properties in updates:
        for key, value in properties.items():
            latest[(account_id, key)] = value
    # Rows in a fixed order, so two concurrent bulk calls lock the same rows in the same order (no deadlock).
    rows = sorted(
        (
            AccountProperty(
                environment=environment,
                account_id=account_id,
                key=key,
                key_hash=property_key_hash(key),
                value=str(value),
                is_number=is_number(value),
                set_at=set_at,
            )
            for (account_id, key), value in latest.items()
            if value is not None
        ),
        key=lambda row: (row.account_id, row.key_hash),
    )
    removals = [(account_id, property_key_hash(key)) for (account_id, key), value in latest.items() if value is None]
    with transaction.atomic():
        AccountProperty.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["environment", "account_id", "key_hash"],
            update_fields=["value", "is_number", "set_at"],
        )
        if removals:
            wanted = set(removals)
            candidates = AccountProperty.objects.filter(
                environment=environment,
                account_id__in={account_id for account_id, _ in wanted},
                key_hash__in={key_hash for _, key_hash in wanted},
            ).values_list("pk", "account_id", "key_hash")
            AccountProperty.objects.filter(
                pk__in=[pk for pk, account_id, key_hash in candidates if (account_id, key_hash) in wanted]
            ).delete()
    return len(latest)
