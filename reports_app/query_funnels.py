"""The definitions of the two reports that count people through time (SPEC 14): a funnel and a retention
report, parsed from a query string and written back to one.

Both share the graph report's `group_by` (`user.` or `account.`; an event property is refused: a person reaches
a step once, so their events' values would not say which group they are in), `where`, `from`, `to` and `range`,
parsed by reports_app/query.py's `report_query_parse` so that the three report types read them alike; they keep
those in `base`, a ReportQuery.

    funnel     step=<event> (2 to 10, in order; repeated names allowed), window=<N>d|<N>h (default 14d)
    retention  start_event=<event>, return_event=<event>, interval=day|week|month (default week),
               periods=N (1 to 100, default 8)
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.http import QueryDict

from config.kernel.errors import InvalidInput
from config.kernel.validation import ascii_decimal
from events_app.models import EVENT_NAME_MAX_LENGTH
from reports_app.query import ReportQuery, report_query_parse

FUNNEL, RETENTION = "funnel", "retention"
MIN_STEPS, MAX_STEPS = 2, 10
DEFAULT_WINDOW = "14d"
# The longest conversion window: a year, by days or by hours.
MAX_WINDOW = {"d": 365, "h": 365 * 24}
WINDOW_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1)}
RETENTION_INTERVALS = {"day": "Day", "week": "Week", "month": "Month"}
DEFAULT_RETENTION_INTERVAL = "week"
MAX_PERIODS, DEFAULT_PERIODS = 100, 8
# The parameters a funnel and a retention report share with the graph report (reports_app/query.py).
SHARED_PARAMETERS = ("group_by", "where", "from", "to", "range")


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput("invalid_field", message, field_name)


def _getlist(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):
        return params.getlist(name)
    value = params.get(name)
    return [] if value is None else list(value) if isinstance(value, list | tuple) else [value]


def _base_params(params) -> QueryDict:
    base = QueryDict(mutable=True)
    for name in SHARED_PARAMETERS:
        base.setlist(name, [str(value) for value in _getlist(params, name)])
    return base


def _base_params_out(base: ReportQuery) -> dict[str, str | list[str]]:
    params = base.to_params()
    return {name: value for name, value in params.items() if name in SHARED_PARAMETERS}


def _base_parse(params, *, interval: str, today=None, check_buckets: bool) -> ReportQuery:
    base_params = _base_params(params)
    base_params["interval"] = interval
    base = report_query_parse(base_params, today=today, check_buckets=check_buckets)
    if base.group_by is not None and base.group_by.scope == "event":
        raise _invalid(
            "group_by", "Funnels and retention group people: `group_by` is `user.<property>` or `account.<property>`."
        )
    return base


def event_name_parse(value, field_name: str) -> str:
    """A step's, start's or return's event name: 1 to 1024 characters, no NUL."""
    if not isinstance(value, str) or not value:
        raise _invalid(field_name, f"`{field_name}` must be an event name.")
    if len(value) > EVENT_NAME_MAX_LENGTH:
        raise _invalid(field_name, f"`{field_name}` is at most {EVENT_NAME_MAX_LENGTH} characters.")
    if "\x00" in value:
        raise _invalid(field_name, f"`{field_name}` must not contain NUL characters.")
    return value


def window_parse(text: str) -> timedelta:
    """`<N>d` (days) or `<N>h` (hours), at most a year; N written in ASCII digits, without a sign or zeros first."""
    unit = text[-1:]
    count = ascii_decimal(text[:-1], MAX_WINDOW[unit] + 1) if unit in MAX_WINDOW else None
    if count is None or count == 0 or text[0] == "0":
        raise _invalid(
            "window",
            f"`window` must be `<N>d` (1 to {MAX_WINDOW['d']} days) or `<N>h` (1 to {MAX_WINDOW['h']} hours), "
            "for example `14d`.",
        )
    return count * WINDOW_UNITS[unit]


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[str, ...]
    window: str = DEFAULT_WINDOW
    base: ReportQuery = field(default_factory=ReportQuery)

    @property
    def window_length(self) -> timedelta:
        return window_parse(self.window)

    @property
    def window_seconds(self) -> int:
        return int(self.window_length.total_seconds())

    def to_params(self) -> dict[str, str | list[str]]:
        return {"type": FUNNEL, "step": list(self.steps), "window": self.window, **_base_params_out(self.base)}


@dataclass(frozen=True)
class RetentionQuery:
    start_event: str
    return_event: str
    interval: str = DEFAULT_RETENTION_INTERVAL
    periods: int = DEFAULT_PERIODS
    base: ReportQuery = field(default_factory=ReportQuery)

    def to_params(self) -> dict[str, str | list[str]]:
        return {
            "type": RETENTION,
            "start_event": self.start_event,
            "return_event": self.return_event,
            "interval": self.interval,
            "periods": str(self.periods),
            **_base_params_out(self.base),
        }


def funnel_query_parse(params, *, today=None) -> FunnelQuery:
    """SPEC 14's funnel parameters (module docstring). Raises InvalidInput naming the field. Empty `step`
    values (a form's spare input) are left out."""
    steps = tuple(event_name_parse(step, "step") for step in _getlist(params, "step") if step != "")
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise _invalid("step", f"A funnel has {MIN_STEPS} to {MAX_STEPS} steps (`step`, repeated, in order).")
    window = params.get("window") or DEFAULT_WINDOW
    window_parse(window)
    # A funnel has no buckets: its range is not capped by the graph report's bucket count.
    base = _base_parse(params, interval="day", today=today, check_buckets=False)
    return FunnelQuery(steps=steps, window=window, base=base)


def retention_query_parse(params, *, today=None) -> RetentionQuery:
    """SPEC 14's retention parameters (module docstring). Raises InvalidInput naming the field."""
    start_event = event_name_parse(params.get("start_event") or "", "start_event")
    return_event = event_name_parse(params.get("return_event") or "", "return_event")
    interval = params.get("interval") or DEFAULT_RETENTION_INTERVAL
    if interval not in RETENTION_INTERVALS:
        raise _invalid("interval", f"`interval` must be one of: {', '.join(RETENTION_INTERVALS)}.")
    periods_text = params.get("periods") or str(DEFAULT_PERIODS)
    periods = ascii_decimal(periods_text, MAX_PERIODS + 1)
    if periods is None or periods == 0 or periods_text[0] == "0":
        raise _invalid("periods", f"`periods` must be a whole number from 1 to {MAX_PERIODS}.")
    # One cohort per bucket of the range: the graph report's bucket cap bounds them.
    base = _base_parse(params, interval=interval, today=today, check_buckets=True)
    return RetentionQuery(
        start_event=start_event, return_event=return_event, interval=interval, periods=periods, base=base
    )
