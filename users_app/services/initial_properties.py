"""Initial properties (SPEC 6): a profile's "Initial *" user properties come from its first session.

They are written when a profile's first session is created: "first" is the earliest-starting session of the
person, counting the sessions of profiles merged into it whose rows a pending merge has not moved yet. A
session that arrives late but started earlier (an offline device catching up) takes over. Empty values are
not stored (the property is absent rather than ""), so reports group them as `(none)`. On a merge the
earliest session's initial properties win (users_app/merges/request.py compares first_seen).
"""

from collections.abc import Iterable

from django.db import connection
from django.db.models import OuterRef, Subquery

from config.kernel.sql import InsertRows, rows_insert
from events_app.models import Session
from users_app.models import Profile, UserProperty, property_key_hash
from users_app.people import person_member_filters

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
INITIAL_KEY_HASH = {key: property_key_hash(key) for key in INITIAL_PROPERTY_FIELDS}
INITIAL_KEY_HASHES = list(INITIAL_KEY_HASH.values())
MAX_VALUE_LENGTH = 1024


def initial_properties_of(session: Session) -> dict[str, str]:
    """The non-empty initial properties a session gives its profile."""
    values = {key: (getattr(session, field) or "")[:MAX_VALUE_LENGTH] for key, field in INITIAL_PROPERTY_FIELDS.items()}
    return {key: value for key, value in values.items() if value}


def initial_properties_update(
    *, new_sessions: list[Session], created_profile_ids: Iterable[int] = (), insert: InsertRows = rows_insert
) -> int:
    """For each (live) profile that just got one of `new_sessions` (stored, with their pks): if its first
    session is one of them, set its initial properties from it. Returns how many profiles were updated.

    Call inside the ingest transaction, after the sessions are stored, with the profiles' row locks held
    (sessions_assign takes them), so two concurrent first sessions of one person are decided one after the
    other, each seeing the other's committed session. A profile in `created_profile_ids` was inserted by this
    transaction: its only sessions are the new ones, so its first is found without a query. `insert`: how the
    properties are inserted (ingest holds them back for its call's last writes)."""
    created_profile_ids = set(created_profile_ids)
    earliest_new: dict[int, Session] = {}
    for session in new_sessions:
        current = earliest_new.get(session.profile_id)
        if current is None or (session.started_at, session.pk) < (current.started_at, current.pk):
            earliest_new[session.profile_id] = session
    chosen = {pk: session for pk, session in earliest_new.items() if pk in created_profile_ids}
    stored_profile_ids = sorted(earliest_new.keys() - created_profile_ids)
    if stored_profile_ids:
        chosen.update(
            (profile_pk, earliest_new[profile_pk])
            for profile_pk, session_pk in _first_sessions(stored_profile_ids).items()
            if session_pk == earliest_new[profile_pk].pk
        )
    if not chosen:
        return 0
    # Replace the whole set, so a key the first session has no value for does not keep a later session's (a
    # profile created by this transaction has no properties yet).
    replaced = [profile_pk for profile_pk in chosen if profile_pk not in created_profile_ids]
    if replaced:
        UserProperty.objects.filter(profile_id__in=replaced, key_hash__in=INITIAL_KEY_HASHES).delete()
    _insert_initial(chosen, insert)
    return len(chosen)


def initial_properties_recompute(*, profile_id: int) -> None:
    """Set the profile's initial properties again, whole, from its first session (counting profiles merged
    into it); none if it has no session. For a person whose sessions changed otherwise than by a new one: an
    undone merge took some away. Call with the profile's row lock held."""
    UserProperty.objects.filter(profile_id=profile_id, key_hash__in=INITIAL_KEY_HASHES).delete()
    first = _first_sessions([profile_id]).get(profile_id)
    if first is not None:
        _insert_initial({profile_id: Session.objects.get(pk=first)}, rows_insert)


def _insert_initial(chosen: dict[int, Session], insert: InsertRows) -> None:
    """Insert each profile's initial properties from its chosen session (their old ones already deleted)."""
    quote = connection.ops.quote_name
    updated = ", ".join(f"{quote(column)} = excluded.{quote(column)}" for column in ("value", "is_number", "set_at"))
    insert(
        UserProperty,
        ("profile_id", "key", "key_hash", "value", "is_number", "set_at"),
        [
            (profile_pk, key, INITIAL_KEY_HASH[key], value, False, session.started_at)
            for profile_pk, session in chosen.items()
            for key, value in initial_properties_of(session).items()
        ],
        on_conflict=f"ON CONFLICT ({quote('profile_id')}, {quote('key_hash')}) DO UPDATE SET {updated}",
    )


def _first_sessions(profile_ids: list[int]) -> dict[int, int | None]:
    """Each profile's earliest session (pk), counting those of profiles merged into it."""
    # The earliest of the profile's own sessions and of those of profiles merged into it, as two subqueries:
    # one OR across both would not use the indexes and scans every session for each profile.
    own_condition, merged_in_condition = person_member_filters(OuterRef("pk"))
    own = Session.objects.filter(own_condition).order_by("started_at", "pk")
    merged_in = Session.objects.filter(merged_in_condition).order_by("started_at", "pk")
    candidates = (
        Profile.objects.filter(pk__in=profile_ids)
        .annotate(
            own_pk=Subquery(own.values("pk")[:1]),
            own_at=Subquery(own.values("started_at")[:1]),
            merged_pk=Subquery(merged_in.values("pk")[:1]),
            merged_at=Subquery(merged_in.values("started_at")[:1]),
        )
        .values_list("pk", "own_at", "own_pk", "merged_at", "merged_pk")
    )
    return {
        profile_pk: min(
            ((at, session_pk) for at, session_pk in ((own_at, own_pk), (merged_at, merged_pk)) if session_pk),
            default=(None, None),
        )[1]
        for profile_pk, own_at, own_pk, merged_at, merged_pk in candidates
    }
