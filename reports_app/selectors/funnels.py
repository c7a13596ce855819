"""`report_funnel`: the one computation behind the funnel's page, CSV export and GET /api/v1/reports/funnel.

SPEC 14, with the rules it leaves open written down (docs/reports.md, "Funnels"):
- An *attempt* starts at an event e1 of step 1's name with e1 in [from, to]. Each later step k takes the first
  event (by time, then by the event's id) of step k's name that is not earlier than step k-1's event, is not an
  event an earlier step of the attempt already took (so `A -> A` needs two A events), and is at most `window`
  after e1. Taking the first such event never reaches fewer steps than any other choice.
- A person counts at step k when their *best attempt* reaches step k: the attempt that reaches the most steps;
  among those, the one that starts first. Its times give the person's time between steps.
- `median_seconds_to_convert[k]` is the median over the people counted at step k of (step k's time - step
  k-1's time) in the best attempt, in seconds rounded to the millisecond (even count: the mean of the two middle
  values); null for step 1 and for a step nobody reached.
"""

import bisect
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reports_app.query_funnels import FunnelQuery
from reports_app.selectors.buckets import time_range
from reports_app.selectors.funnels_sql import postgresql_funnel_rows, seconds_rounded
from reports_app.selectors.person_steps import (
    PYTHON_PATH,
    person_events,
    person_group_map,
    ranked_groups,
    step_column,
    step_events,
    uses_postgresql,
)
from reports_app.selectors.series import OTHER_GROUP, POSTGRESQL_PATH
from users_app.models import Environment


@dataclass
class FunnelSeries:
    group: str
    counts: list[int]
    median_seconds_to_convert: list[float | None]

    @property
    def conversion_rates(self) -> list[float]:
        """Step k's people as a share of step 1's (1.0 for step 1)."""
        first = self.counts[0] if self.counts else 0
        return [count / first if first else 0.0 for count in self.counts]

    @property
    def step_rates(self) -> list[float]:
        """Step k's people as a share of step k-1's (1.0 for step 1)."""
        return [1.0] + [
            count / previous if previous else 0.0 for previous, count in zip(self.counts, self.counts[1:], strict=False)
        ]

    def as_dict(self) -> dict:
        return {
            "group": self.group,
            "counts": self.counts,
            "median_seconds_to_convert": self.median_seconds_to_convert,
        }


@dataclass
class FunnelResult:
    query: FunnelQuery
    series: list[FunnelSeries]
    # How they were computed, for the API's `explain=1`: one PostgreSQL statement or the Python walk.
    explain: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "steps": list(self.query.steps),
            "window_seconds": self.query.window_seconds,
            "series": [item.as_dict() for item in self.series],
        }


def _name_indexes(steps: tuple[str, ...]) -> tuple[list[str], list[int]]:
    """(the distinct names in order of first use, each step's index into them)."""
    names = list(dict.fromkeys(steps))
    return names, [names.index(step) for step in steps]


def _step_queryset(environment: Environment, query: FunnelQuery, names: list[str]):
    """The events that an attempt may use: of the steps' names, from `from` to `window` after the end of `to`
    (e1 is in the range; later steps may fall after `to`)."""
    start, end = time_range(query.base)
    return start, end, step_events(environment, query.base, names, start, end + query.window_length)


def report_funnel(*, environment: Environment, query: FunnelQuery) -> FunnelResult:
    """Per group, the people at each step and the median time from the step before (module docstring)."""
    names, step_names = _name_indexes(query.steps)
    start, end, queryset = _step_queryset(environment, query, names)
    if uses_postgresql(environment):
        path, rows = POSTGRESQL_PATH, postgresql_funnel_rows(environment, query, queryset, step_names, start, end)
    else:
        path, rows = PYTHON_PATH, _python_rows(environment, query, queryset, step_names, start, end)
    series = []
    for name, counts, medians in rows:
        if counts[0]:
            series.append(FunnelSeries(OTHER_GROUP if name is None else name, counts, medians))
    return FunnelResult(query, series, explain={"path": path})


# ---- Python (SQLite, and the tests' second opinion) ------------------------------------------------------


def best_attempt(events: list[tuple], step_names: list[int], start: datetime, end: datetime, window: timedelta):
    """The times of a person's best attempt (module docstring), or None if no attempt starts in [start, end).
    `events` are the person's (time, id, name index), sorted."""
    times = [item[0] for item in events]
    positions_of = defaultdict(list)  # name index -> positions in `events`, ascending
    for position, (_, _, name) in enumerate(events):
        positions_of[name].append(position)
    best: list[datetime] | None = None
    for first in positions_of[step_names[0]]:
        first_time = times[first]
        if not start <= first_time < end:
            continue
        chosen, chosen_times = [first], [first_time]
        for step in range(1, len(step_names)):
            name = step_names[step]
            lowest = bisect.bisect_left(times, chosen_times[-1])  # not earlier than the step before
            same = [chosen[earlier] for earlier in range(step) if step_names[earlier] == name]
            if same:
                lowest = max(lowest, same[-1] + 1)  # not an event an earlier step took
            candidates = positions_of[name]
            index = bisect.bisect_left(candidates, lowest)
            if index == len(candidates) or times[candidates[index]] > first_time + window:
                break
            chosen.append(candidates[index])
            chosen_times.append(times[candidates[index]])
        if best is None or len(chosen_times) > len(best):
            best = chosen_times
            if len(best) == len(step_names):
                break  # a later attempt can reach no further, and the earliest wins a tie
    return best


def _python_rows(environment: Environment, query: FunnelQuery, queryset, step_names, start, end) -> list[tuple]:
    columns = [step_column(index) for index in range(len(set(step_names)))]
    events_of = defaultdict(list)
    for person, moment, event_id, *matches in person_events(queryset, "timestamp", "id", *columns):
        for name_index, matched in enumerate(matches):
            if matched:
                events_of[person].append((moment, event_id, name_index))
    attempts = {}
    for person, events in events_of.items():
        events.sort()
        times = best_attempt(events, step_names, start, end, query.window_length)
        if times is not None:
            attempts[person] = times
    groups = person_group_map(environment, query.base.group_by, attempts)
    people_of = defaultdict(list)
    for person, times in attempts.items():
        people_of[groups[person]].append(times)
    top, rest = ranked_groups({name: len(people) for name, people in people_of.items()})
    shown = [(name, people_of[name]) for name in top]
    if rest:
        shown.append((None, [times for name in rest for times in people_of[name]]))
    rows = []
    for name, people in shown:
        steps = len(step_names)
        counts = [sum(1 for times in people if len(times) > step) for step in range(steps)]
        medians = [None] + [
            _median([(times[step] - times[step - 1]).total_seconds() for times in people if len(times) > step])
            for step in range(1, steps)
        ]
        rows.append((name, counts, medians))
    return rows


def _median(values: list[float]) -> float | None:
    return seconds_rounded(statistics.median(values)) if values else None
