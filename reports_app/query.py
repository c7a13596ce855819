"""A report's definition (SPEC 7): parsed from a query string, written back to one, stored in a saved report.

The API, the page, the CSV export and saved reports all go through `report_query_parse`, so a URL, a saved
report and an API call with the same parameters mean the same report.

`where` syntax (docs/reports.md; `account.<property>` and `event.<property>` alike):
    user.plan=Startup             equals
    user.plan!=Startup            not equals (people without a plan match too)
    user.plan=in:Startup,Growth   one of (`\\,` is a literal comma, `\\\\` a backslash)
    user.plan!=in:Startup,Growth  none of
    user.plan=contains:art        contains, case-insensitive
    user.plan!=contains:art       does not contain
    user.plan=*                   is set
    user.plan!=*                  is not set
    user.plan=eq:in:x             equals the literal `in:x` (the `eq:` prefix escapes the forms above)
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from django.http import QueryDict
from django.utils import timezone

from config.kernel.errors import InvalidInput
from config.kernel.limits import PROPERTY_KEY_MAX_LENGTH, PROPERTY_VALUE_MAX_LENGTH
from config.kernel.periods import (
    CUSTOM_PERIOD,
    CUSTOM_PERIOD_LABEL,
    EARLIEST_DATE,
    PERIOD_PRESETS,
    date_in_report_bounds,
    last_days,
    period_labels,
)
from config.kernel.property_filters import (
    CONTAINS,
    EQUALS,
    FILTER_OPERATORS,
    IS_SET,
    MAX_FILTER_VALUES,
    NEGATED,
    NEGATION_OF,
    ONE_OF,
    PropertyRef,
)
from config.kernel.validation import calendar_date
from events_app.models import EVENT_NAME_MAX_LENGTH

MEASURES = {
    "events": "Events",
    "unique_users": "Unique users",
    "sessions": "Sessions",
    "unique_accounts": "Unique accounts",
}
INTERVALS = {"hour": "Hour", "day": "Day", "week": "Week", "month": "Month"}
CHART_TYPES = {"line": "Line", "bar": "Bar", "stacked_bar": "Stacked bar", "table": "Table"}
RANGES = {**period_labels(("7d", "30d", "90d")), CUSTOM_PERIOD: CUSTOM_PERIOD_LABEL}
SCOPES = ("user", "event", "account")
MAX_FILTERS = 20
MAX_BUCKETS = 3000
DEFAULT_RANGE = "30d"


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput("invalid_field", message, field_name)


def property_ref_parse(text: str, field_name: str) -> PropertyRef:
    scope, dot, key = text.partition(".")
    if not dot or scope not in SCOPES or not key:
        raise _invalid(
            field_name, f"`{field_name}` must be `user.<property>`, `event.<property>` or `account.<property>`."
        )
    if len(key) > PROPERTY_KEY_MAX_LENGTH:
        raise _invalid(field_name, f"A property name is at most {PROPERTY_KEY_MAX_LENGTH} characters.")
    return PropertyRef(scope, key)


@dataclass(frozen=True)
class Filter:
    prop: PropertyRef
    operator: str
    values: tuple[str, ...] = ()

    @property
    def positive_operator(self) -> str:
        return NEGATED.get(self.operator, self.operator)

    @property
    def is_negated(self) -> bool:
        return self.operator in NEGATED

    @property
    def value_text(self) -> str:
        """The value as typed in the page's filter row (one-of values comma separated)."""
        return ",".join(_escape_list_item(value) for value in self.values)

    def to_where(self) -> str:
        sign = "!=" if self.is_negated else "="
        positive = self.positive_operator
        if positive == IS_SET:
            text = "*"
        elif positive == ONE_OF:
            text = "in:" + self.value_text
        elif positive == CONTAINS:
            text = "contains:" + self.values[0]
        else:
            value = self.values[0]
            text = f"eq:{value}" if value == "*" or value.startswith(("in:", "contains:", "eq:")) else value
        return f"{self.prop}{sign}{text}"


def _escape_list_item(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,")


def _split_list(text: str) -> list[str]:
    items, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def _check_value(value: str, field_name: str) -> str:
    if len(value) > PROPERTY_VALUE_MAX_LENGTH:
        raise _invalid(field_name, f"A filter value is at most {PROPERTY_VALUE_MAX_LENGTH} characters.")
    return value


def filter_build(prop: PropertyRef, operator: str, raw_value: str, field_name: str) -> Filter:
    """A filter from the page's row (property, operator, value)."""
    if operator not in FILTER_OPERATORS:
        raise _invalid(field_name, f"Unknown filter operator `{operator[:40]}`.")
    takes = FILTER_OPERATORS[operator].takes
    if takes == "none":
        return Filter(prop, operator)
    if takes == "many":
        values = tuple(dict.fromkeys(_check_value(item, field_name) for item in _split_list(raw_value)))
        if len(values) > MAX_FILTER_VALUES:
            raise _invalid(field_name, f"`one of` takes at most {MAX_FILTER_VALUES} values.")
        return Filter(prop, operator, values)
    return Filter(prop, operator, (_check_value(raw_value, field_name),))


def filter_parse(where: str) -> Filter:
    """One `where` parameter (syntax in the module docstring)."""
    position = where.find("=")
    if position <= 0:
        raise _invalid("where", "`where` must look like `user.plan=Startup` (see docs/reports.md).")
    negated = where[position - 1] == "!"
    prop = property_ref_parse(where[: position - 1] if negated else where[:position], "where")
    text = where[position + 1 :]
    if text == "*":
        positive, raw_value = IS_SET, ""
    elif text.startswith("in:"):
        positive, raw_value = ONE_OF, text[3:]
    elif text.startswith("contains:"):
        positive, raw_value = CONTAINS, text[9:]
    elif text.startswith("eq:"):
        positive, raw_value = EQUALS, text[3:]
    else:
        positive, raw_value = EQUALS, text
    operator = NEGATION_OF[positive] if negated else positive
    return filter_build(prop, operator, raw_value, "where")


@dataclass(frozen=True)
class ReportQuery:
    measure: str = "events"
    # None: all events. Page views are the events named `pageview`.
    event: str | None = None
    group_by: PropertyRef | None = None
    filters: tuple[Filter, ...] = ()
    date_from: date = field(default_factory=lambda: _default_range(timezone.now().date())[0])
    date_to: date = field(default_factory=lambda: timezone.now().date())
    interval: str = "day"
    # Page-only parts: how the range was chosen (so a saved "last 90 days" stays relative) and the chart.
    range: str = DEFAULT_RANGE
    chart: str = "line"

    def to_params(self) -> dict[str, str | list[str]]:
        """The canonical query string of this report, as a dict (lists for repeated parameters)."""
        params: dict[str, str | list[str]] = {"measure": self.measure}
        if self.event is not None:
            params["event"] = self.event
        if self.group_by is not None:
            params["group_by"] = str(self.group_by)
        if self.filters:
            params["where"] = [item.to_where() for item in self.filters]
        params["range"] = self.range
        if self.range == CUSTOM_PERIOD:
            params["from"] = self.date_from.isoformat()
            params["to"] = self.date_to.isoformat()
        params["interval"] = self.interval
        params["chart"] = self.chart
        return params

    def to_querystring(self) -> str:
        query = QueryDict(mutable=True)
        for key, value in self.to_params().items():
            query.setlist(key, value if isinstance(value, list) else [value])
        return query.urlencode()


def _default_range(last_day: date) -> tuple[date, date]:
    return last_days(PERIOD_PRESETS[DEFAULT_RANGE].days, last_day)


def _choice(params: Mapping, name: str, choices, default: str) -> str:
    value = params.get(name) or default
    if value not in choices:
        raise _invalid(name, f"`{name}` must be one of: {', '.join(choices)}.")
    return value


def _date(params: Mapping, name: str, default: date) -> date:
    value = params.get(name)
    if not value:
        return default
    parsed = calendar_date(value)
    if parsed is None or not date_in_report_bounds(parsed):
        raise _invalid(name, f"`{name}` must be a date written YYYY-MM-DD ({EARLIEST_DATE.isoformat()} or later).")
    return parsed


def _getlist(params, name: str) -> list[str]:
    return params.getlist(name) if hasattr(params, "getlist") else list(params.get(name) or [])


def bucket_count_check(query: ReportQuery) -> None:
    days = (query.date_to - query.date_from).days + 1
    per_day = {"hour": 24, "day": 1, "week": 1 / 7, "month": 1 / 28}[query.interval]
    if days * per_day > MAX_BUCKETS:
        raise _invalid(
            "interval",
            f"That range has more than {MAX_BUCKETS} {query.interval}s: choose a longer interval or a shorter range.",
        )


def _refuse_nul(params, names: tuple[str, ...]) -> None:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database with a 500.
    for name in names:
        for value in _getlist(params, name):
            if "\x00" in str(value):
                raise _invalid(name, f"`{name}` must not contain NUL characters.")


def report_query_parse(
    params, *, today: date | None = None, page_filters: bool = False, check_buckets: bool = True
) -> ReportQuery:
    """Parse SPEC 7's parameters. Raises InvalidInput naming the field.

    `params` is a QueryDict (or a dict of strings and lists). The API takes `from`/`to`; the page may send
    `range=7d|30d|90d` instead, which is relative to today. `page_filters` also reads the page's filter
    rows (`filter_field`, `filter_op`, `filter_value`, in step). `check_buckets=False` leaves out the bucket
    cap, for the reports that have no buckets over the range (funnels)."""
    today = today or timezone.now().date()
    _refuse_nul(params, ("event", "group_by", "where", "filter_field", "filter_value"))
    measure = _choice(params, "measure", MEASURES, "events")
    event = params.get("event") or None
    if event is not None and len(event) > EVENT_NAME_MAX_LENGTH:
        raise _invalid("event", f"`event` is at most {EVENT_NAME_MAX_LENGTH} characters.")
    group_by_text = params.get("group_by") or ""
    group_by = property_ref_parse(group_by_text, "group_by") if group_by_text else None
    filters = [filter_parse(where) for where in _getlist(params, "where") if where]
    if page_filters:
        rows = zip(
            _getlist(params, "filter_field"),
            _getlist(params, "filter_op"),
            _getlist(params, "filter_value"),
            strict=False,
        )
        for prop_text, operator, raw_value in rows:
            if prop_text.strip():
                prop = property_ref_parse(prop_text.strip(), "filter_field")
                filters.append(filter_build(prop, operator, raw_value, "filter_value"))
    if len(filters) > MAX_FILTERS:
        raise _invalid("where", f"At most {MAX_FILTERS} filters.")
    explicit_dates = bool(params.get("from") or params.get("to"))
    range_name = _choice(params, "range", RANGES, CUSTOM_PERIOD if explicit_dates else DEFAULT_RANGE)
    # Dates are checked even when a relative range replaces them: a wrong one is wrong either way.
    date_to = _date(params, "to", today)
    date_from = _date(params, "from", _default_range(date_to)[0])
    if range_name != CUSTOM_PERIOD:
        date_from, date_to = last_days(PERIOD_PRESETS[range_name].days, today)
    if date_from > date_to:
        raise _invalid("from", "`from` must not be after `to`.")
    query = ReportQuery(
        measure=measure,
        event=event,
        group_by=group_by,
        filters=tuple(dict.fromkeys(filters)),
        date_from=date_from,
        date_to=date_to,
        interval=_choice(params, "interval", INTERVALS, "day"),
        range=range_name,
        chart=_choice(params, "chart", CHART_TYPES, "line"),
    )
    if check_buckets:
        bucket_count_check(query)
    return query
