"""The Users view's property filters as conditions on people (live profiles): on a user property (`plan`), or on a
property of the person's account (`account.tier`, SPEC 11), with the reports' meaning (a person without an account
has none of its properties).

Each condition also says whether PostgreSQL can estimate how many people it matches. A filter it cannot estimate
may match almost nobody, and "walk the recency index until a page is full" would then walk the whole period, so
the Users view checks such pages in bounded windows (user_search.py `_seen_page`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Left

from config.kernel.property_filters import ACCOUNT_SCOPE, PropertyFilter
from users_app.models import VALUE_INDEX_PREFIX, AccountProperty, Environment, UserProperty, property_key_hash

# An account filter is written with the accounts it names (looked up first) when they are at most this many: with
# the indexed prefix, PostgreSQL estimates the people they name from the index's statistics, and drives the query
# from the index when they are few, as for a user property's value.
ACCOUNTS_INDEXED = 200
# Beyond ACCOUNTS_INDEXED its estimate is off by orders of magnitude (it multiplies the prefix's and the value's
# selectivities, which are the same condition), so such filters are checked in bounded windows; they name many
# accounts, so usually many people and full pages. Up to this many accounts go in the query as values, beyond it
# as a subquery.
ACCOUNTS_AS_VALUES = 5_000


@dataclass(frozen=True)
class FilterCondition:
    condition: Q
    estimated: bool  # False: pages check it in bounded windows


def property_conditions(environment: Environment, filters: Iterable[PropertyFilter]) -> list[FilterCondition]:
    return [
        _account_condition(environment, prop_filter)
        if prop_filter.prop.scope == ACCOUNT_SCOPE
        else _user_property_condition(prop_filter)
        for prop_filter in filters
    ]


def _presence(rows, prop_filter: PropertyFilter, estimated: bool) -> FilterCondition:
    """`rows` (of the person) exist, or for `is not set` do not; PostgreSQL estimates no `is not set` well."""
    if prop_filter.op == PropertyFilter.NOT_SET:
        return FilterCondition(~Q(Exists(rows)), estimated=False)
    return FilterCondition(Q(Exists(rows)), estimated=estimated)


def _with_value(rows, values):
    """Rows whose value is one of `values`. The prefix comparison lets PostgreSQL use the (key_hash, Left(value,
    100)) index when it drives the join from the property side; the full comparison makes it exact."""
    return rows.annotate(value_prefix=Left("value", VALUE_INDEX_PREFIX)).filter(
        value_prefix__in={value[:VALUE_INDEX_PREFIX] for value in values}, value__in=set(values)
    )


def _user_property_condition(prop_filter: PropertyFilter) -> FilterCondition:
    rows = UserProperty.objects.filter(profile_id=OuterRef("pk"), key_hash=property_key_hash(prop_filter.prop.key))
    if prop_filter.op in (PropertyFilter.EQUALS, PropertyFilter.ONE_OF):
        rows = _with_value(rows, prop_filter.values)
    return _presence(rows, prop_filter, estimated=True)


def _account_condition(environment: Environment, prop_filter: PropertyFilter) -> FilterCondition:
    """The person's account has the property (with one of the values): the person's account id property names one
    of the accounts that have it. In an environment that names no account id property the empty key matches no
    row: nobody has an account."""
    accounts = AccountProperty.objects.filter(environment=environment, key_hash=property_key_hash(prop_filter.prop.key))
    if prop_filter.op in (PropertyFilter.EQUALS, PropertyFilter.ONE_OF):
        accounts = accounts.filter(value__in=set(prop_filter.values))
    memberships = UserProperty.objects.filter(
        profile_id=OuterRef("pk"), key_hash=property_key_hash(environment.account_id_property)
    )
    account_ids = list(accounts.values_list("account_id", flat=True)[: ACCOUNTS_AS_VALUES + 1])
    if len(account_ids) <= ACCOUNTS_INDEXED:
        # No account at all makes an empty IN: Django answers "nobody" (or "everybody" for `is not set`) unqueried.
        return _presence(_with_value(memberships, account_ids), prop_filter, estimated=True)
    named = account_ids if len(account_ids) <= ACCOUNTS_AS_VALUES else accounts.values("account_id")
    return _presence(memberships.filter(value__in=named), prop_filter, estimated=False)
