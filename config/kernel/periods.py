"""Periods, one vocabulary for the Users view (`period=`, `from`/`to`; users_app/user_query.py) and Reports
(`range=`, `from`/`to`; reports_app/query.py): the presets, how dates become UTC datetimes, and the dates a
report may name. Each page keeps its own query syntax (SPEC 6 and 7 pin both).

The two read a preset differently, each for its own question:
- the Users view asks who was active lately: its preset is a moving window ending now (`7d`: the last 7 x 24
  hours, `moving_window_start`);
- a report counts per day, week or month: its preset is whole UTC days ending today (`7d`: today and the 6 days
  before, `last_days`).
Both read `from`/`to` as UTC days, `to` included (`day_start`, `day_end`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from config.kernel.validation import EARLIEST_TIMESTAMP


@dataclass(frozen=True)
class PeriodPreset:
    label: str
    days: int | None  # None: no start (all time)


PERIOD_PRESETS: dict[str, PeriodPreset] = {
    "1d": PeriodPreset("Last 24 hours", 1),
    "7d": PeriodPreset("Last 7 days", 7),
    "30d": PeriodPreset("Last 30 days", 30),
    "90d": PeriodPreset("Last 90 days", 90),
    "all": PeriodPreset("All time", None),
}
# Chosen by dates rather than a preset. A report names it (`range=custom`); the Users view only reports it.
CUSTOM_PERIOD = "custom"
CUSTOM_PERIOD_LABEL = "Custom"

# The days a report may name. No event is older than EARLIEST_TIMESTAMP (ingest refuses them). The last one
# leaves room for the day after `to` and for the bucket after the last one (a month ahead) below date.max.
EARLIEST_DATE = EARLIEST_TIMESTAMP.date()
LATEST_DATE = date(9998, 12, 1)


def period_labels(names: Iterable[str]) -> dict[str, str]:
    """The presets a page offers, name -> label, in the order given."""
    return {name: PERIOD_PRESETS[name].label for name in names}


def moving_window_start(preset: str, now: datetime) -> datetime | None:
    """The Users view's reading of a preset: the moment its days before `now` (None: all time)."""
    days = PERIOD_PRESETS[preset].days
    return None if days is None else now - timedelta(days=days)


def last_days(days: int, last_day: date) -> tuple[date, date]:
    """A report's reading of a preset: `days` whole days ending with `last_day`, both included."""
    return last_day - timedelta(days=days - 1), last_day


def day_start(day: date) -> datetime:
    """00:00 UTC of `day`: where a period from `day` starts."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """00:00 UTC of the day after `day`: where a period to `day` (included) ends, exclusive."""
    return day_start(day + timedelta(days=1))


def date_in_report_bounds(day: date) -> bool:
    return EARLIEST_DATE <= day <= LATEST_DATE
