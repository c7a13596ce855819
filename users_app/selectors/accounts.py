"""Reads of accounts (SPEC 11): an account's properties, its people, and the account of a person.

A person's account is the person's value of the environment's account id property, if that value can be an
account id (at most ACCOUNT_ID_MAX_LENGTH characters; a user property may hold more); only people (live
profiles) count, so a merged-away profile is counted once, as its destination (users_app/people.py). That rule
lives here, in three forms: `account_of` / `accounts_of` (one profile, a page of people), `person_account` (ORM,
for reports' querysets) and `person_account_sql` / `account_property_sql` (SQL, for queries written by hand).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, Expression, QuerySet, TextField, Value, When
from django.db.models.functions import Left, Length
from django.db.models.lookups import LessThanOrEqual

from config.kernel.errors import InvalidInput, NotFound
from config.kernel.validation import check_text
from users_app.models import (
    ACCOUNT_ID_MAX_LENGTH,
    VALUE_INDEX_PREFIX,
    AccountProperty,
    Environment,
    Profile,
    UserProperty,
    property_key_hash,
)
from users_app.people import is_person, person_of, person_property

ACCOUNT_USERS_SHOWN = 100


@dataclass
class AccountDetail:
    account_id: str
    properties: list[AccountProperty]
    user_count: int

    def as_dict(self) -> dict:
        return {
            "account_id": self.account_id,
            "properties": {
                row.key: {"value": row.typed_value, "set_at": row.set_at.isoformat()} for row in self.properties
            },
            "user_count": self.user_count,
        }


def _account_property_rows(environment: Environment, account_id: str) -> QuerySet:
    """The account id property's rows that name this account (the index on (key_hash, value prefix) finds them)."""
    return (
        UserProperty.objects.annotate(value_prefix=Left("value", VALUE_INDEX_PREFIX))
        .filter(
            key_hash=property_key_hash(environment.account_id_property),
            value_prefix=account_id[:VALUE_INDEX_PREFIX],
            value=account_id,
            profile__environment=environment,
        )
        .filter(is_person("profile__"))
    )


def account_people(*, environment: Environment, account_id: str) -> QuerySet:
    """The people (live profiles) whose account this is, most recently active first."""
    if not environment.account_id_property:
        return Profile.objects.none()
    profile_pks = _account_property_rows(environment, account_id).values("profile_id")
    return Profile.objects.filter(environment=environment, pk__in=profile_pks).order_by("-last_seen", "-id")


def account_detail(*, environment: Environment, account_id: str) -> AccountDetail:
    """An account: its properties and how many people have it. NotFound when it has neither."""
    try:
        check_text(account_id, "account_id")
    except InvalidInput:
        raise NotFound("No such account.", field="account_id") from None
    if len(account_id) > ACCOUNT_ID_MAX_LENGTH:
        raise NotFound("No such account.", field="account_id")
    properties = list(AccountProperty.objects.filter(environment=environment, account_id=account_id).order_by("key"))
    user_count = account_people(environment=environment, account_id=account_id).count()
    if not properties and not user_count:
        raise NotFound(f"No account {account_id[:100]!r} in this environment.", field="account_id")
    return AccountDetail(account_id=account_id, properties=properties, user_count=user_count)


def account_of(profile: Profile) -> str | None:
    """The account of the profile's person (their value of the account id property), or None."""
    environment = profile.environment
    if not environment.account_id_property:
        return None
    person = person_of(profile)
    return accounts_of(environment, [person.pk]).get(person.pk)


def accounts_of(environment: Environment, person_pks: list[int]) -> dict[int, str]:
    """{person's pk: their account} for these people (live profiles), in one query; people without one are left
    out. A value longer than an account id can be names no account."""
    if not environment.account_id_property or not person_pks:
        return {}
    rows = UserProperty.objects.filter(
        profile_id__in=person_pks, key_hash=property_key_hash(environment.account_id_property)
    ).values_list("profile_id", "value")
    return {pk: value for pk, value in rows if len(value) <= ACCOUNT_ID_MAX_LENGTH}


def account_property_values(
    environment: Environment, account_ids: Iterable[str], keys: Iterable[str]
) -> dict[tuple[str, str], AccountProperty]:
    """{(account id, key): its row} for these accounts' properties of these keys, in one query."""
    account_ids, key_hashes = set(account_ids), {property_key_hash(key) for key in keys}
    if not account_ids or not key_hashes:
        return {}
    rows = AccountProperty.objects.filter(environment=environment, account_id__in=account_ids, key_hash__in=key_hashes)
    return {(row.account_id, row.key): row for row in rows}


def account_property_keys(environment: Environment, limit: int = 200) -> list[str]:
    """The keys of the environment's account properties, for the Users view's and the reports' pickers; none when
    the environment names no account id property (nobody has an account)."""
    if not environment.account_id_property:
        return []
    return list(
        AccountProperty.objects.filter(environment=environment)
        .values_list("key", flat=True)
        .distinct()
        .order_by("key")[:limit]
    )


def person_account(
    queryset: QuerySet, environment: Environment, *, alias: str, relation: str = "profile__"
) -> tuple[QuerySet, Expression]:
    """The account of the person of each row (rows reaching a profile through `relation`), as an ORM expression:
    the person's current account id property value (Heap-style, for all of the person's rows; a tombstone's own
    stale value has no say), NULL for no account. Returns `queryset` with the joins it needs (people.person_property,
    named after `alias`). An environment that names no account id property has no accounts: NULL, no join."""
    if not environment.account_id_property:
        return queryset, Value(None, output_field=TextField())
    key_hash = property_key_hash(environment.account_id_property)
    queryset, value = person_property(queryset, key_hash, alias=alias, relation=relation)
    account = Case(When(LessThanOrEqual(Length(value), ACCOUNT_ID_MAX_LENGTH), then=value), output_field=TextField())
    return queryset, account


@dataclass(frozen=True)
class SqlJoin:
    """A LEFT JOIN written by hand: its text (fixed: table names from the models, aliases chosen by the query's
    author), its parameters, and the value it provides as an SQL expression on the joined row."""

    join: str
    params: list
    value: str


def _sql_alias(alias: str) -> str:
    if not alias.isidentifier():
        raise ValueError(f"not an SQL alias: {alias!r}")
    return alias


def person_account_sql(environment: Environment, person: str, *, alias: str) -> SqlJoin:
    """`person_account` in SQL: `person` is the person's primary key as SQL (people.person_sql); the join reads
    the person's account id property row (the unique index on (profile, key_hash) serves it)."""
    alias = _sql_alias(alias)
    if not environment.account_id_property:
        return SqlJoin("", [], "CAST(NULL AS text)")
    join = (
        f'LEFT JOIN "{UserProperty._meta.db_table}" {alias} ON {alias}.profile_id = {person} AND {alias}.key_hash = %s'
    )
    account = f"CASE WHEN char_length({alias}.value) <= {ACCOUNT_ID_MAX_LENGTH} THEN {alias}.value END"
    return SqlJoin(join, [property_key_hash(environment.account_id_property)], account)


def account_property_sql(environment: Environment, account: str, key: str, *, alias: str) -> SqlJoin:
    """The current value of the account property `key` of `account` (an SQL expression, person_account_sql's
    value), NULL when the account has no such property or there is no account."""
    alias = _sql_alias(alias)
    join = (
        f'LEFT JOIN "{AccountProperty._meta.db_table}" {alias} ON {alias}.environment_id = %s '
        f"AND {alias}.account_id = {account} AND {alias}.key_hash = %s"
    )
    return SqlJoin(join, [environment.pk, property_key_hash(key)], f"{alias}.value")
