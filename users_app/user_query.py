"""The Users view's query string, parsed once for the HTML page and the JSON read API alike.

Everything lives in the URL so a filtered view can be bookmarked and shared:

    period=1d|7d|30d|90d|all (default 7d), or from=YYYY-MM-DD&to=YYYY-MM-DD (to inclusive, UTC)
    kind=identified|anonymous
    q=<identity, identity prefix, or user_id>
    ev=<event name>  (did that event in the period: a raw event name or a defined event's)
    f0=<property>&f0_op=eq|in|set|notset&f0_v=<value>[&f0_v=<value>...]   (f0 .. f9, all must hold)
    col=<property> (repeatable; the property columns shown, default plan)
    cursor=<from the previous page>

A <property> is a user property's key (`plan`, or `user.plan` spelled out) or `account.<key>`, a property of the
person's account (SPEC 11). A user property whose own key starts with `account.` or `user.` is reached spelled
out: `user.account.x`.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.utils import timezone

from config.kernel.errors import InvalidInput
from config.kernel.limits import IDENTITY_MAX_LENGTH, PROPERTY_KEY_MAX_LENGTH, PROPERTY_VALUE_MAX_LENGTH
from config.kernel.periods import CUSTOM_PERIOD, day_end, day_start, moving_window_start, period_labels
from config.kernel.property_filters import (
    ACCOUNT_SCOPE,
    FILTER_OPERATORS,
    MAX_FILTER_VALUES,
    USER_SCOPE,
    PropertyFilter,
    PropertyRef,
)
from config.kernel.validation import calendar_date, check_text
from events_app.models import EVENT_NAME_MAX_LENGTH
from users_app.selectors import UserFilters

PERIODS = period_labels(("1d", "7d", "30d", "90d", "all"))
DEFAULT_PERIOD = "7d"
MAX_PROPERTY_FILTERS = 10
MAX_COLUMNS = 10
DEFAULT_COLUMNS = (PropertyRef(USER_SCOPE, "plan"),)
# The scopes a Users view property may name; a name without one is a user property's key.
SCOPE_PREFIXES = {f"{scope}.": scope for scope in (ACCOUNT_SCOPE, USER_SCOPE)}
# A property's name in the URL: a key of up to PROPERTY_KEY_MAX_LENGTH characters, and its scope.
PROPERTY_NAME_MAX_LENGTH = PROPERTY_KEY_MAX_LENGTH + max(map(len, SCOPE_PREFIXES))
KINDS = {"identified": "Identified", "anonymous": "Anonymous"}
# How `f<n>_op` spells the operators the Users view offers (config/kernel/property_filters.py): as in Reports,
# but for `notset`, which the URL has always said.
OPERATOR_SPELLINGS = {
    "eq": PropertyFilter.EQUALS,
    "in": PropertyFilter.ONE_OF,
    "set": PropertyFilter.IS_SET,
    "notset": PropertyFilter.NOT_SET,
}
SPELLING_OF = {operator: spelling for spelling, operator in OPERATOR_SPELLINGS.items()}
# The filter row reads "plan is Startup", where a report's says "user.plan equals Startup": the one label the
# two pages do not share.
OPERATOR_LABELS = {
    spelling: "is" if operator == PropertyFilter.EQUALS else FILTER_OPERATORS[operator].label
    for spelling, operator in OPERATOR_SPELLINGS.items()
}


def users_view_property(name: str, field: str) -> PropertyRef:
    """A property as the Users view names it (`f0=`, `col=`): `account.<key>`, `user.<key>`, or a bare user key."""
    prefix = next((prefix for prefix in SCOPE_PREFIXES if name.startswith(prefix)), "")
    scope, key = SCOPE_PREFIXES.get(prefix, USER_SCOPE), name[len(prefix) :]
    if not key:
        raise InvalidInput("invalid_field", f"`{field}` names no property after `{prefix}`.", field)
    if len(key) > PROPERTY_KEY_MAX_LENGTH:
        raise InvalidInput("invalid_field", f"A property name is at most {PROPERTY_KEY_MAX_LENGTH} characters.", field)
    return PropertyRef(scope, key)


def users_view_name(prop: PropertyRef) -> str:
    """How the page writes a property back (the form, a column's header, the JSON's key): users_view_property's
    inverse, bare for a user key unless the bare key would read as a scope."""
    if prop.scope == USER_SCOPE and not prop.key.startswith(tuple(SCOPE_PREFIXES)):
        return prop.key
    return str(prop)


@dataclass(frozen=True)
class UserQuery:
    filters: UserFilters
    columns: list[PropertyRef]
    cursor: str | None
    period: str  # a PERIODS key, or CUSTOM_PERIOD
    date_from: date | None
    date_to: date | None

    @property
    def column_names(self) -> list[str]:
        return [users_view_name(column) for column in self.columns]

    def count_key(self) -> str:
        """Identifies the filtered set: the period as chosen (not its moving start), and the filters."""
        filters = self.filters
        described = repr(
            (self.period, self.date_from, self.date_to, filters.properties, filters.kind, filters.search, filters.event)
        )
        return hashlib.sha256(described.encode()).hexdigest()


def _one(params, name: str, max_length: int = 200) -> str:
    value = params.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", f"`{name}` must be a string.", name)
    if len(value) > max_length:
        raise InvalidInput("invalid_field", f"`{name}` is longer than {max_length} characters.", name)
    return check_text(value, name)


def _date(params, name: str) -> date | None:
    text = _one(params, name, 20)
    if not text:
        return None
    parsed = calendar_date(text)
    if parsed is None:
        raise InvalidInput("invalid_date", f"`{name}` must be a date like 2026-01-31.", name)
    return parsed


def parse_period(
    params, now: datetime | None = None
) -> tuple[str, date | None, date | None, datetime | None, datetime | None]:
    """(period, from, to, since, until): the date-range part of the query."""
    now = now or timezone.now()
    # Checked even when dates replace it: the page sends both, and a wrong value is wrong either way.
    period = _one(params, "period", 10) or DEFAULT_PERIOD
    if period not in PERIODS:
        raise InvalidInput("invalid_period", f"`period` must be one of {', '.join(PERIODS)}.", "period")
    date_from, date_to = _date(params, "from"), _date(params, "to")
    if date_from or date_to:
        if date_from and date_to and date_to < date_from:
            raise InvalidInput("invalid_date", "`to` is before `from`.", "to")
        since = day_start(date_from) if date_from else None
        # A period ending today (or later) is "up to now": the fast, exact last_seen test.
        until = day_end(date_to) if date_to and date_to < now.astimezone(UTC).date() else None
        return CUSTOM_PERIOD, date_from, date_to, since, until
    return period, None, None, moving_window_start(period, now), None


def parse_property_filters(params) -> tuple[PropertyFilter, ...]:
    found = []
    for index in range(MAX_PROPERTY_FILTERS):
        name = f"f{index}"
        key = _one(params, name, PROPERTY_NAME_MAX_LENGTH)
        # Operator and values are checked on every row, the form's empty one too, so a wrong one is always
        # an error (docs/api.md), whether or not its row names a property.
        spelling = _one(params, f"{name}_op", 10) or SPELLING_OF[PropertyFilter.EQUALS]
        if spelling not in OPERATOR_SPELLINGS:
            raise InvalidInput(
                "invalid_operator", f"`{name}_op` must be one of {', '.join(OPERATOR_SPELLINGS)}.", f"{name}_op"
            )
        op = OPERATOR_SPELLINGS[spelling]
        raw_values = params.getlist(f"{name}_v") if hasattr(params, "getlist") else [params.get(f"{name}_v")]
        # Counted as sent (empty boxes aside), before duplicates are dropped: what the OpenAPI schema can say.
        sent = [check_text(v, f"{name}_v") for v in raw_values if isinstance(v, str) and v != ""]
        values = tuple(dict.fromkeys(sent))
        if len(sent) > MAX_FILTER_VALUES or any(len(v) > PROPERTY_VALUE_MAX_LENGTH for v in values):
            raise InvalidInput(
                "invalid_value",
                f"At most {MAX_FILTER_VALUES} values of at most {PROPERTY_VALUE_MAX_LENGTH} characters.",
                f"{name}_v",
            )
        if not key:
            continue  # an empty row of the filter form
        prop = users_view_property(key, name)
        if op in (PropertyFilter.EQUALS, PropertyFilter.ONE_OF):
            if not values:
                raise InvalidInput("missing_value", f"The filter on {key[:80]!r} needs a value.", f"{name}_v")
            values = values[:1] if op == PropertyFilter.EQUALS else values
        else:
            values = ()
        found.append(PropertyFilter(prop=prop, op=op, values=values))
    return tuple(found)


def parse_columns(params) -> list[PropertyRef]:
    if "col" not in params:
        return list(DEFAULT_COLUMNS)
    raw = params.getlist("col") if hasattr(params, "getlist") else [params.get("col")]
    # Counted as sent (the form's empty "add a column" box aside), before duplicates are dropped.
    sent = [check_text(c, "col") for c in raw if isinstance(c, str) and c.strip()]
    if len(sent) > MAX_COLUMNS or any(len(c) > PROPERTY_NAME_MAX_LENGTH for c in sent):
        raise InvalidInput("invalid_column", f"At most {MAX_COLUMNS} property columns.", "col")
    # `plan` and `user.plan` are one column.
    return list(dict.fromkeys(users_view_property(name, "col") for name in sent))


def parse_user_query(params, now: datetime | None = None) -> UserQuery:
    """The whole query; raises InvalidInput naming the bad parameter."""
    period, date_from, date_to, since, until = parse_period(params, now)
    kind = _one(params, "kind", 20)
    if kind and kind not in KINDS:
        raise InvalidInput("invalid_kind", "`kind` must be identified or anonymous.", "kind")
    search = _one(params, "q", IDENTITY_MAX_LENGTH).strip()
    event = _one(params, "ev", EVENT_NAME_MAX_LENGTH)
    filters = UserFilters(
        since=since, until=until, properties=parse_property_filters(params), kind=kind, search=search, event=event
    )
    cursor = _one(params, "cursor", 200) or None
    return UserQuery(
        filters=filters,
        columns=parse_columns(params),
        cursor=cursor,
        period=period,
        date_from=date_from,
        date_to=date_to,
    )
