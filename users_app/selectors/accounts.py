"""Reads of accounts (SPEC 11): an account's properties, its people, and the account of a person.

A person's account is the person's value of the environment's account id property; only people (live profiles)
count, so a merged-away profile is counted once, as its destination (users_app/people.py).
"""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.db.models.functions import Left

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
from users_app.people import is_person, person_of

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
    row = person.properties.filter(key_hash=property_key_hash(environment.account_id_property)).first()
    if row is None or len(row.value) > ACCOUNT_ID_MAX_LENGTH:
        return None
    return row.value
