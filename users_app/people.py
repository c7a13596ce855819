"""Who is this person: the one home of SPEC 2's rule "a person is a profile plus every profile merged into it".

A profile is live (`merged_into` empty: it is a person) or a tombstone (merged into its destination, which is
the person). From the moment identify returns, a tombstone's rows count as the destination's, whether or not
the merge task has moved them yet (`merged_into` is set in identify's transaction; the rows move later). So
every read of "this person's X" asks this module instead of spelling the rule out again:

- `person_of(profile)` / `person_pk(profile)`: the person a profile belongs to;
- `person_member_pks(person_pks)` / `person_members(profile)`: the profiles whose rows count as a person's;
- `person_expression("profile__")`: the same rule as an ORM expression on a relation to a profile;
- `person_sql("alias")`: and as raw SQL on a joined profile row, for queries written by hand.
"""

from django.db.models import Expression, F, Q, QuerySet
from django.db.models.functions import Coalesce

from users_app.models import Profile


def person_pk(profile: Profile) -> int:
    """The primary key of the person whose profile this is: its destination if it was merged, else itself."""
    return profile.merged_into_id or profile.pk


def person_of(profile: Profile) -> Profile:
    """The person's live profile (loads the destination unless `select_related("merged_into")` did)."""
    return profile.merged_into if profile.merged_into_id else profile


def person_member_pks(person_pks: set[int] | list[int]) -> set[int]:
    """The profiles whose rows count as these people's: the people themselves and every profile merged into
    them. The merged-in profiles are looked up on their own (an indexed lookup): an OR across a join to
    profiles cannot use an index and made PostgreSQL scan every row of every environment."""
    person_pks = set(person_pks)
    return person_pks | set(Profile.objects.filter(merged_into_id__in=person_pks).values_list("pk", flat=True))


def person_members(profile: Profile) -> QuerySet:
    """Ids (`values("pk")`, for `__in` subqueries) of the profiles whose rows are this profile's person's when
    read from this profile: itself plus every profile merged into it, including merges whose task has not moved
    the rows yet. A tombstone read on its own (the admin's inspection of it) counts only itself."""
    if profile.merged_into_id:
        return Profile.objects.filter(pk=profile.pk).values("pk")
    return Profile.objects.filter(Q(pk=profile.pk) | Q(merged_into_id=profile.pk)).values("pk")


def person_expression(relation: str = "") -> Expression:
    """The person's primary key for rows that reach a profile through `relation` ("profile__" for events and
    sessions, "" on profiles themselves)."""
    return Coalesce(F(f"{relation}merged_into_id"), F(f"{relation}id"))


def person_sql(profile_alias: str) -> str:
    """The person's primary key, in SQL, for a profile row joined as `profile_alias` (a fixed name chosen by
    the query's author, never input)."""
    if not profile_alias.isidentifier():
        raise ValueError(f"not an SQL alias: {profile_alias!r}")
    return f"COALESCE({profile_alias}.merged_into_id, {profile_alias}.id)"


def person_member_filters(person_pk: int | F, relation: str = "profile__") -> tuple[Q, Q]:
    """The person's rows (reached through `relation`) as two conditions: the person's own, and those of the
    profiles merged into it. `person_pk` may be a reference (`OuterRef("pk")`). Two conditions to query
    apart, each with its own index: their OR across the join to profiles can use neither."""
    return Q(**{f"{relation}id": person_pk}), Q(**{f"{relation}merged_into_id": person_pk})
