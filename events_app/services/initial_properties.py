"""Initial properties (SPEC 6): a profile's "Initial *" user properties come from its first session.

They are written when a profile's first session is created: "first" is the earliest-starting session of the
person, counting the sessions of profiles merged into it whose rows a pending merge has not moved yet. A
session that arrives late but started earlier (an offline device catching up) takes over. Empty values are
not stored (the property is absent rather than ""), so reports group them as `(none)`. On a merge the
earliest session's initial properties win (users_app.services.merges compares first_seen).
"""

from collections.abc import Iterable

from django.db.models import OuterRef, Subquery

from events_app.models import Session
from users_app.models import Profile, UserProperty, property_key_hash

# Property key -> Session field. The keys are part of the product (reports group by them): never rename.
INITIAL_PROPERTY_FIELDS = {
    "Initial Referrer": "referrer",
    "Initial Landing Page": "landing_page",
    "Initial UTM Source": "utm_source",
    "Initial UTM Medium": "utm_medium",
    "Initial UTM Campaign": "utm_campaign",
    "Initial Browser": "browser",
    "Initial Device Type": "device_type",
    "Initial Country": "country",
    "Initial City": "city",
}
INITIAL_KEY_HASHES = [property_key_hash(key) for key in INITIAL_PROPERTY_FIELDS]
MAX_VALUE_LENGTH = 1024


def initial_properties_of(session: Session) -> dict[str, str]:
    """The non-empty initial properties a session gives its profile."""
    values = {key: (getattr(session, field) or "")[:MAX_VALUE_LENGTH] for key, field in INITIAL_PROPERTY_FIELDS.items()}
    return {key: value for key, value in values.items() if value}


def initial_properties_update(*, profile_ids: Iterable[int], new_session_ids: Iterable[int]) -> int:
    """For each (live) profile that just got a session: if its first session is one of the new ones, set its
    initial properties from it. Returns how many profiles were updated. Call inside the ingest transaction,
    after the sessions are stored."""
    profile_ids = sorted(set(profile_ids))
    new_session_ids = set(new_session_ids)
    if not profile_ids or not new_session_ids:
        return 0
    # Lock the profiles (in key order, like time_bounds_extend) so two concurrent first sessions of one
    # person are decided one after the other, each seeing the other's committed session.
    list(Profile.objects.select_for_update().filter(pk__in=profile_ids).order_by("pk").values_list("pk", flat=True))
    # The earliest of the profile's own sessions and of those of profiles merged into it, as two subqueries:
    # one OR across both would not use the indexes and scans every session for each profile.
    own = Session.objects.filter(profile_id=OuterRef("pk")).order_by("started_at", "pk")
    merged_in = Session.objects.filter(profile__merged_into_id=OuterRef("pk")).order_by("started_at", "pk")
    candidates = Profile.objects.filter(pk__in=profile_ids).annotate(
        own_pk=Subquery(own.values("pk")[:1]), own_at=Subquery(own.values("started_at")[:1]),
        merged_pk=Subquery(merged_in.values("pk")[:1]), merged_at=Subquery(merged_in.values("started_at")[:1]),
    ).values_list("pk", "own_at", "own_pk", "merged_at", "merged_pk")
    firsts = {
        profile_pk: min(
            ((at, session_pk) for at, session_pk in ((own_at, own_pk), (merged_at, merged_pk)) if session_pk),
            default=(None, None),
        )[1]
        for profile_pk, own_at, own_pk, merged_at, merged_pk in candidates
    }
    chosen = {profile_pk: session_pk for profile_pk, session_pk in firsts.items() if session_pk in new_session_ids}
    if not chosen:
        return 0
    sessions = Session.objects.in_bulk(chosen.values())
    rows = [
        UserProperty.build(profile=Profile(pk=profile_pk), key=key, value=value, is_number=False,
                           set_at=sessions[session_pk].started_at)
        for profile_pk, session_pk in chosen.items()
        for key, value in initial_properties_of(sessions[session_pk]).items()
    ]
    # Replace the whole set, so a key the first session has no value for does not keep a later session's.
    UserProperty.objects.filter(profile_id__in=chosen, key_hash__in=INITIAL_KEY_HASHES).delete()
    UserProperty.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["profile", "key_hash"],
        update_fields=["value", "is_number", "set_at"],
    )
    return len(chosen)
