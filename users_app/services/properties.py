"""addUserProperties: set (or with null, remove) properties of profiles, each value with the time it was set."""

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.kernel.validation import PropertyValue, is_number
from users_app.models import Profile, UserProperty, property_key_hash
from users_app.services.locks import owners_lock


def properties_add(
    *, updates: Iterable[tuple[Profile, dict[str, PropertyValue | None]]], set_at: datetime | None = None
) -> int:
    """Apply property updates to live profiles in one upsert and one delete. Later updates of the same
    profile and key win, as if applied in order. Returns how many values were set or removed."""
    set_at = set_at or timezone.now()
    latest: dict[tuple[int, str], tuple[Profile, PropertyValue | None]] = {}
    for profile, properties in updates:
        for key, value in properties.items():
            latest[(profile.pk, key)] = (profile, value)
    rows = [
        UserProperty.build(profile=profile, key=key, value=value, is_number=is_number(value), set_at=set_at)
        for (_, key), (profile, value) in latest.items()
        if value is not None
    ]
    removals = [(profile_pk, key) for (profile_pk, key), (_, value) in latest.items() if value is None]
    with transaction.atomic():
        owners_lock(profile_pk for profile_pk, _ in latest)
        UserProperty.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["profile", "key_hash"],
            update_fields=["value", "is_number", "set_at"],
        )
        if removals:
            wanted = {(profile_pk, property_key_hash(key)) for profile_pk, key in removals}
            candidates = UserProperty.objects.filter(
                profile_id__in={pk for pk, _ in wanted}, key_hash__in={key_hash for _, key_hash in wanted}
            ).values_list("pk", "profile_id", "key_hash")
            UserProperty.objects.filter(
                pk__in=[pk for pk, profile_id, key_hash in candidates if (profile_id, key_hash) in wanted]
            ).delete()
    return len(latest)
