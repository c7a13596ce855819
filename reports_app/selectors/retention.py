"""`report_retention`: the one computation behind the retention page, CSV export and GET /api/v1/reports/retention.

SPEC 14, with the rules it leaves open written down (docs/reports.md, "Retention"):
- A person's cohort is the bucket (day, week from Monday, or month, in UTC) of their first `start_event` in
  [from, to]; a person is in one cohort only.
- `returned[0]` is the cohort's size; `returned[k]` (k = 1..periods) counts the cohort's people with at least
  one `return_event` in the k-th bucket after the cohort's, anywhere in that bucket (even after `to`). Buckets
  that begin after `to` are left out, so later cohorts have shorter rows: the triangle.
- Only cohorts with people are listed, by start, then by group (largest group first, `Other` last).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.utils import timezone

from config.kernel.periods import day_start
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors.buckets import bucket_floor, bucket_next, time_range
from reports_app.selectors.person_steps import (
    PYTHON_PATH,
    person_events,
    person_group_map,
    ranked_groups,
    step_events,
    uses_postgresql,
)
from reports_app.selectors.retention_sql import postgresql_counts, retention_path
from reports_app.selectors.series import OTHER_GROUP
from users_app.models import Environment


@dataclass
class Cohort:
    start: date
    group: str
    size: int
    returned: list[int]

    @property
    def rates(self) -> list[float]:
        """returned[k] as a share of the cohort's size."""
        return [count / self.size if self.size else 0.0 for count in self.returned]

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "group": self.group, "size": self.size, "returned": self.returned}


@dataclass
class RetentionResult:
    query: RetentionQuery
    cohorts: list[Cohort]
    computed_at: datetime = field(default_factory=timezone.now)
    # How they were computed, for the API's `explain=1` (as the graph report's): the path, and for the rollups the
    # watermark they read.
    explain: dict = field(default_factory=dict)

    def partial_periods(self, cohort: Cohort) -> list[int]:
        """The periods k of `cohort` (0: its own bucket, whose size can still grow) not over when the report was
        computed: their counts can still grow, so the page marks them and the API lists them, as trends does its
        buckets (ReportResult.partial_positions). Always a tail of `returned`: once one is not over, none after is."""
        bucket = datetime(cohort.start.year, cohort.start.month, cohort.start.day, tzinfo=UTC)
        partial = []
        for position in range(len(cohort.returned)):
            following = bucket_next(bucket, self.query.interval)
            if following > self.computed_at:
                partial.append(position)
            bucket = following
        return partial

    def as_dict(self) -> dict:
        return {
            "interval": self.query.interval,
            "cohorts": [
                {**cohort.as_dict(), "partial_periods": self.partial_periods(cohort)} for cohort in self.cohorts
            ],
        }


def _periods(cohort: datetime, query: RetentionQuery) -> list[datetime]:
    """The starts of the cohort's buckets k = 0..periods that begin by the end of `to`."""
    _, end = time_range(query.base)
    starts, bucket = [], cohort
    while len(starts) <= query.periods and bucket < end:
        starts.append(bucket)
        bucket = bucket_next(bucket, query.interval)
    return starts


def _return_range(query: RetentionQuery) -> tuple[datetime, datetime]:
    """Return events can count from the bucket after the first cohort's to the end of the bucket holding `to`."""
    start, _ = time_range(query.base)
    last_bucket = bucket_floor(day_start(query.base.date_to), query.interval)
    return bucket_next(bucket_floor(start, query.interval), query.interval), bucket_next(last_bucket, query.interval)


def report_retention(*, environment: Environment, query: RetentionQuery, path: str | None = None) -> RetentionResult:
    """The cohorts of the range, each with its people coming back period by period (module docstring). `path`:
    None takes the fastest the database has (on PostgreSQL the rollups where they answer); a path given forces it
    (the tests compare them)."""
    ranges = (time_range(query.base), _return_range(query))
    if path is None:
        path = retention_path(environment, query, ranges) if uses_postgresql(environment) else PYTHON_PATH
    if path == PYTHON_PATH:
        sizes, returns = _python_counts(environment, query)
        explain = {"path": path}
    else:
        sizes, returns, explain = postgresql_counts(environment, query, path, ranges)
    group_sizes = defaultdict(int)
    for (_, group), size in sizes.items():
        group_sizes[group] += size
    top, rest = ranked_groups(group_sizes)
    shown = {name: name for name in top} | dict.fromkeys(rest, OTHER_GROUP)
    order = {name: position for position, name in enumerate([*top, OTHER_GROUP])}
    cohorts: dict[tuple[datetime, str], Cohort] = {}
    for (cohort_start, group), size in sizes.items():
        periods = _periods(cohort_start, query)
        key = (cohort_start, shown[group])
        if key not in cohorts:
            cohorts[key] = Cohort(cohort_start.date(), shown[group], 0, [0] * len(periods))
        cohorts[key].size += size
        cohorts[key].returned[0] += size
        position_of = {bucket: position for position, bucket in enumerate(periods)}
        for bucket, count in returns.get((cohort_start, group), {}).items():
            if bucket in position_of:
                cohorts[key].returned[position_of[bucket]] += count
    ordered = sorted(cohorts.items(), key=lambda item: (item[0][0], order[item[0][1]]))
    return RetentionResult(query, [cohort for _, cohort in ordered], explain=explain)


def _python_counts(environment: Environment, query: RetentionQuery):
    """({(cohort, group): size}, {(cohort, group): {bucket: people}}) by walking the events in Python."""
    start, end = time_range(query.base)
    first_start = {}
    for person, moment in person_events(
        step_events(environment, query.base, [query.start_event], start, end), "timestamp"
    ):
        if person not in first_start or moment < first_start[person]:
            first_start[person] = moment
    cohort_of = {person: bucket_floor(moment, query.interval) for person, moment in first_start.items()}
    groups = person_group_map(environment, query.base.group_by, cohort_of)
    sizes = defaultdict(int)
    for person, cohort in cohort_of.items():
        sizes[(cohort, groups[person])] += 1
    returned = set()
    returns_from, returns_to = _return_range(query)
    return_events = step_events(environment, query.base, [query.return_event], returns_from, returns_to)
    for person, moment in person_events(return_events, "timestamp"):
        if person in cohort_of:
            returned.add((person, bucket_floor(moment, query.interval)))
    returns = defaultdict(lambda: defaultdict(int))
    for person, bucket in returned:
        cohort = cohort_of[person]
        if bucket > cohort:
            returns[(cohort, groups[person])][bucket] += 1
    return sizes, returns
