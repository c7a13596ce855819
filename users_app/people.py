"""Who is this person: the one home of SPEC 2's rule "a person is a profile plus every profile merged into it".

A profile is live (`merged_into` empty: it is a person) or a tombstone (merged into its destination, which is
the person). From the moment identify returns, a tombstone's rows count as the destination's, whether or not
the merge task has moved them yet (`merged_into` is set in identify's transaction; the rows move later). So
every read of "this person's X" asks this module instead of spelling the rule out again:

- `person_of(profile)` / `person_pk(profile)`: the person a profile belongs to;
- `is_person()`: the condition "this profile is a person" (live), for filters;
- `person_member_pks(person_pks)` / `person_pks_by_member(person_pks)` / `person_members(profile)` /
  `people_members(person_pks)`: the profiles whose rows count as a person's;
- `person_member_filters(person)`: the person's rows as two conditions (own, merged-in), one index each;
- `person_rows_exist(rows, person)`: some of these rows (events, sessions) are the person's;
- `person_expression("profile__")`: the person as an ORM expression on a relation to a profile;
- `person_property(queryset, key_hash)`: the person's value of a user property, on such a relation;
- `person_sql("alias")`: the person as raw SQL on a joined profile row, for queries written by hand;
- `person_sql_through_tombstones(...)`: the same for rows that carry a profile id, joining tombstones only
  (`tombstones_sql()`: those, for a query that joins them as a CTE).
"""

from collections.abc import Iterable

from django.db.models import Case, Exists, Expression, F, FilteredRelation, Q, QuerySet, TextField, When
from django.db.models.functions import Coalesce

from users_app.models import Profile


def person_pk(profile: Profile) -> int:
    """The primary key of the person whose profile this is: its destination if it was merged, else itself."""
    return profile.merged_into_id or profile.pk


def person_of(profile: Profile) -> Profile:
    """The person's live profile (loads the destination unless `select_related("merged_into")` did)."""
    return profile.merged_into if profile.merged_into_id else profile


def is_person(relation: str = "") -> Q:
    """The profile (reached through `relation`, "" on profiles themselves) is a person: live, not a tombstone."""
    return Q(**{f"{relation}merged_into__isnull": True})


def person_pks_by_member(person_pks: Iterable[int]) -> dict[int, int]:
    """{member profile's pk: its person's pk} for these people: each person is its own member, and so is every
    profile merged into it. The merged-in profiles are looked up on their own (an indexed lookup): an OR across
    a join to profiles cannot use an index and made PostgreSQL scan every row of every environment."""
    person_of_member = {pk: pk for pk in person_pks}
    person_of_member.update(
        Profile.objects.filter(merged_into_id__in=list(person_of_member)).values_list("pk", "merged_into_id")
    )
    return person_of_member


def person_member_pks(person_pks: Iterable[int]) -> set[int]:
    """The profiles whose rows count as these people's: the people themselves and every profile merged into
    them."""
    return set(person_pks_by_member(person_pks))


def person_members(profile: Profile) -> QuerySet:
    """Ids (`values("pk")`, for `__in` subqueries) of the profiles whose rows are this profile's person's when
    read from this profile: itself plus every profile merged into it, including merges whose task has not moved
    the rows yet. A tombstone read on its own (the admin's inspection of it) counts only itself."""
    if profile.is_tombstone:
        return Profile.objects.filter(pk=profile.pk).values("pk")
    return Profile.objects.filter(Q(pk=profile.pk) | Q(merged_into_id=profile.pk)).values("pk")


def people_members(person_pks: Iterable[int]) -> QuerySet:
    """person_member_pks as a subquery (`values("pk")`, for `__in`): the query that uses it needs no round trip
    of its own to learn them. One table, so PostgreSQL serves the OR with both indexes (a BitmapOr)."""
    person_pks = list(person_pks)
    return Profile.objects.filter(Q(pk__in=person_pks) | Q(merged_into_id__in=person_pks)).values("pk")


def person_rows_exist(rows: QuerySet, person, relation: str = "profile__") -> Q:
    """Some of `rows` (reaching a profile through `relation`) are the person `person`'s (a primary key or an
    OuterRef): rows of the person's own profile or of a profile merged into it. Two EXISTS, one per index
    lookup, rather than one over an OR across the join."""
    own, merged_in = person_member_filters(person, relation)
    return Q(Exists(rows.filter(own))) | Q(Exists(rows.filter(merged_in)))


def person_expression(relation: str = "") -> Expression:
    """The person's primary key for rows that reach a profile through `relation` ("profile__" for events and
    sessions, "" on profiles themselves)."""
    return Coalesce(F(f"{relation}merged_into_id"), F(f"{relation}id"))


def person_property(
    queryset: QuerySet, key_hash: str, *, alias: str, relation: str = "profile__"
) -> tuple[QuerySet, Expression]:
    """The person's current value of one user property, for rows that reach a profile through `relation`: the
    destination's row for a tombstone's rows, else the profile's own (Heap-style: the current value applies to
    all of the person's rows). Returns `queryset` with two LEFT JOINs on (profile, key_hash), which the unique
    index serves, named `own_<alias>` and `merged_<alias>`, and the value as an expression on them."""
    own, merged = f"own_{alias}", f"merged_{alias}"
    queryset = queryset.alias(
        **{
            own: FilteredRelation(
                f"{relation}properties", condition=Q(**{f"{relation}properties__key_hash": key_hash})
            ),
            merged: FilteredRelation(
                f"{relation}merged_into__properties",
                condition=Q(**{f"{relation}merged_into__properties__key_hash": key_hash}),
            ),
        }
    )
    value = Case(
        When(**{f"{relation}merged_into_id__isnull": False}, then=F(f"{merged}__value")),
        default=F(f"{own}__value"),
        output_field=TextField(),
    )
    return queryset, value


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


def tombstones_sql() -> str:
    """The merged-away profiles (id, merged_into_id), in SQL: for a query that joins them as a CTE of its own
    (`person_sql_through_tombstones(..., table=<the CTE>)`), so that the planner hashes them rather than looking
    each row's profile up by index when it cannot tell how many rows it joins."""
    return f"SELECT id, merged_into_id FROM {Profile._meta.db_table} WHERE merged_into_id IS NOT NULL"


def person_sql_through_tombstones(
    profile_id_sql: str, tombstone_alias: str, table: str | None = None
) -> tuple[str, str]:
    """(a LEFT JOIN, the person's primary key), in SQL, for rows that carry a profile id (`profile_id_sql`, a
    column reference fixed by the query's author): the join finds the row's profile only when it is a tombstone,
    and the person is that tombstone's destination, else the profile itself. For queries over many rows: the
    join's hash holds the merged-away profiles only, not every profile of the environment. `table`: a CTE of
    tombstones_sql()'s rows (a fixed name) to join instead of the profiles."""
    for name in (tombstone_alias, table or "profiles"):
        if not name.isidentifier():
            raise ValueError(f"not an SQL alias: {name!r}")
    join = (
        f"LEFT JOIN {table or Profile._meta.db_table} {tombstone_alias} "
        f"ON {tombstone_alias}.id = {profile_id_sql} AND {tombstone_alias}.merged_into_id IS NOT NULL"
    )
    return join, f"COALESCE({tombstone_alias}.merged_into_id, {profile_id_sql})"
