"""Rate limits of the public ingest endpoints (SPEC 9; docs/api.md, "Rate limits").

Three kinds of bucket, each a GCRA token bucket (a sustained rate per minute plus a burst that may arrive at
once, refilling continuously, so there is no window edge at which twice the limit gets through):

- a person's writes (events and property updates), keyed by the identity or user_id the call names;
- a person's identifies, keyed by the user_id and by the identity (one device cycling through identities
  creates a profile each time; many devices identifying as one identity each make a merge);
- optionally, the whole environment (`Environment.ingest_limit_per_minute`, 0 = off).

A call asks for all its items at once (`ingest_admit`); items are admitted in index order while every bucket
they touch has room, and only admitted items consume tokens. With `whole=True` (the browser endpoint, whose
calls must stay in order) the call is admitted whole or not at all.

Counters live in Redis when REDIS_URL is set (one EVALSHA per call, whatever its size; all of a call's keys
share the environment's hash tag, `{pk}`, as a script on a Redis Cluster needs), else in this process's memory.
If Redis cannot be reached, ingest goes on unlimited (logged once per outage) rather than failing: losing
events is worse than a few minutes without limits.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from django.conf import settings

from config.kernel.errors import RateLimited
from users_app.models import Environment

log = logging.getLogger(__name__)

# One full bulk call always fits in an environment's cap after a quiet spell, however low the cap is set:
# otherwise a client whose call is larger than the burst could never get it through.
ENVIRONMENT_BURST_FLOOR = 1000
# After a Redis error, calls skip Redis (unlimited) for this long instead of each paying a timeout.
REDIS_RETRY_SECONDS = 5.0
# A slow Redis must not slow ingest down: past this, the call is admitted unlimited.
REDIS_TIMEOUT_SECONDS = 0.25
KEY_PREFIX = "cairn:rl"
ROOM_EPSILON = 1e-6  # tokens


@dataclass(frozen=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def interval_ms(self) -> float:
        """Time for one token to come back."""
        return 60_000 / self.per_minute

    @property
    def tolerance_ms(self) -> float:
        return max(self.burst, 1) * self.interval_ms


class Bucket(NamedTuple):  # a tuple: a bulk call of 1,000 people makes 1,000 of them
    key: str
    limit: Limit
    field: str  # what the error names: identity, user_id or app_id
    what: str  # for the message: "writes for this identity", ...


Runs = list[tuple[tuple[int, ...], int]]  # (bucket numbers of each item, how many items in a row)


@dataclass
class Admission:
    """Per item: None if admitted, else the bucket that refused it."""

    refused_by: list[Bucket | None]
    retry_after: int | None = None  # seconds until the refused items may be sent again

    @property
    def all_admitted(self) -> bool:
        return not any(self.refused_by)

    def error(self, index: int) -> RateLimited | None:
        bucket = self.refused_by[index]
        if bucket is None:
            return None
        limit = bucket.limit
        return RateLimited(
            code="rate_limited",
            message=f"Too many {bucket.what}: at most {limit.per_minute} per minute (bursts of {limit.burst}). "
            f"Nothing of this was stored; send it again after {self.retry_after} s.",
            field=bucket.field,
            retry_after=self.retry_after or 1,
        )

    def raise_if_refused(self) -> None:
        for index in range(len(self.refused_by)):
            if error := self.error(index):
                raise error


# ---- the buckets of a call ---------------------------------------------------------------------------------


def _person_limit(per_minute: int, burst: int) -> Limit | None:
    return Limit(per_minute, max(burst, 1)) if per_minute > 0 else None


def writes_buckets(environment: Environment, people: list[tuple[int | None, str | None]]) -> list[Bucket | None]:
    """The bucket of each person's events and property updates, by (user_id, identity) as the call names them
    (identity first, as ingest does); None when that limit is off. One Bucket per distinct person."""
    limit = _person_limit(
        settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE, settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST
    )
    if limit is None:
        return [None] * len(people)
    made: dict[tuple, Bucket] = {}
    buckets = []
    for person in people:
        bucket = made.get(person)
        if bucket is None:
            user_id, identity = person
            if identity is not None:
                bucket = Bucket(
                    f"{KEY_PREFIX}:{{{environment.pk}}}:w:i:{identity}",
                    limit,
                    "identity",
                    "events and property updates for this identity",
                )
            else:
                bucket = Bucket(
                    f"{KEY_PREFIX}:{{{environment.pk}}}:w:u:{user_id}",
                    limit,
                    "user_id",
                    "events and property updates for this user_id",
                )
            made[person] = bucket
        buckets.append(bucket)
    return buckets


def identify_buckets(environment: Environment, *, user_id: int, identity: str) -> tuple[Bucket, ...]:
    limit = _person_limit(settings.CAIRN_RATE_LIMIT_IDENTIFY_PER_MINUTE, settings.CAIRN_RATE_LIMIT_IDENTIFY_BURST)
    if limit is None:
        return ()
    return (
        Bucket(f"{KEY_PREFIX}:{{{environment.pk}}}:id:u:{user_id}", limit, "user_id", "identifies of this user_id"),
        Bucket(f"{KEY_PREFIX}:{{{environment.pk}}}:id:i:{identity}", limit, "identity", "identifies of this identity"),
    )


def _environment_bucket(environment: Environment) -> Bucket | None:
    cap = environment.ingest_limit_per_minute or 0
    if cap <= 0:
        return None
    return Bucket(
        f"{KEY_PREFIX}:{{{environment.pk}}}:env",
        Limit(cap, max(cap, ENVIRONMENT_BURST_FLOOR)),
        "app_id",
        "calls for this environment",
    )


def ingest_admit(*, environment: Environment, items: list[tuple[Bucket | None, ...]], whole: bool = False) -> Admission:
    """Which of a call's items are within the limits; only those consume tokens. `items[i]`: the buckets item i
    counts against (None entries are limits that are off)."""
    environment_bucket = _environment_bucket(environment)
    numbers: dict[str, int] = {}
    buckets: list[Bucket] = []
    # Items that count against the same buckets are sent as one run with a count, not one entry each: a bulk
    # call of 1,000 events about 13 people is about 13 runs (docs/benchmarks.md, "Ingest profile").
    runs: Runs = []
    run_of_item: list[int] = []
    previous_item, previous_run = None, -1
    for item in items:
        if previous_run < 0 or item != previous_item:
            row = []
            for bucket in item:
                if bucket is None:
                    continue
                number = numbers.get(bucket.key)
                if number is None:
                    number = numbers[bucket.key] = len(buckets)
                    buckets.append(bucket)
                row.append(number)
            if environment_bucket is not None:
                if environment_bucket.key not in numbers:
                    numbers[environment_bucket.key] = len(buckets)
                    buckets.append(environment_bucket)
                row.append(numbers[environment_bucket.key])
            runs.append((tuple(row), 0))
            previous_item, previous_run = item, len(runs) - 1
        row, count = runs[previous_run]
        runs[previous_run] = (row, count + 1)
        run_of_item.append(previous_run)
    if not buckets:
        return Admission([None] * len(items))
    if not whole:  # a whole call names the first refused item's bucket: its runs stay in index order
        runs = _merged_runs(runs, run_of_item)
    admitted, blocking, retry_ms = _counter_store().admit(buckets, runs, whole)
    if all(number < 0 for number in blocking):
        return Admission([None] * len(items))
    # Each run's first `admitted` items (in index order) got through, the rest were refused by its blocking bucket.
    left = list(admitted)
    refused_by: list[Bucket | None] = []
    for run in run_of_item:
        if left[run] > 0:
            left[run] -= 1
            refused_by.append(None)
        else:
            refused_by.append(buckets[blocking[run]])
    return Admission(refused_by=refused_by, retry_after=max(1, math.ceil(retry_ms / 1000)))


def _merged_runs(runs: Runs, run_of_item: list[int]) -> Runs:
    """Runs of the same buckets merged into one, in place of their first, when no two different runs share a
    bucket: then no run's admission depends on another's, only on its own items' order (an environment cap,
    which every item counts against, keeps the runs as they come). Renumbers `run_of_item` to match."""
    first_run: dict[tuple[int, ...], int] = {}
    owner: dict[int, tuple[int, ...]] = {}
    for row, _count in runs:
        for number in row:
            if owner.setdefault(number, row) != row:
                return runs
        first_run.setdefault(row, len(first_run))
    if len(first_run) == len(runs):
        return runs
    merged = [(row, 0) for row in first_run]
    renumber = []
    for row, count in runs:
        target = first_run[row]
        merged[target] = (row, merged[target][1] + count)
        renumber.append(target)
    run_of_item[:] = [renumber[run] for run in run_of_item]
    return merged


# ---- the algorithm, in Python (the local store; the Lua script is the same steps) ------------------------------


def gcra_admit(stored: list[float], buckets: list[Bucket], runs: Runs, whole: bool, now: float):
    """-> (admitted: per run how many of its items, blocking: per run -1 or the number of the bucket that refused
    the rest, retry_ms, new theoretical arrival times). `runs`: (the numbers of the buckets an item counts
    against, how many items in a row do), in index order; item by item, an item is admitted while every bucket
    of its row has room. `stored`: each bucket's theoretical arrival time (ms, 0 if none): the bucket is empty
    until then, full once it is `tolerance` in the past."""
    start = [max(value, now) for value in stored]
    # (begin - now) first: it is exactly 0 for a full bucket, where now + tolerance - begin would lose a fraction
    # of a millisecond to rounding at now's magnitude and floor a burst of 1000 down to 999. The epsilon absorbs
    # what rounding is left in a partly full bucket.
    room = [
        math.floor((bucket.limit.tolerance_ms - (begin - now)) / bucket.limit.interval_ms + ROOM_EPSILON)
        for bucket, begin in zip(buckets, start, strict=True)
    ]
    used = [0] * len(buckets)
    admitted, blocking = [], []
    for row, count in runs:
        # An item is admitted while each of its buckets has used < room, and uses one token per time the row
        # names the bucket: the run's first `fits` items get through.
        fits = count
        for number in set(row):
            times = row.count(number)
            fits = min(fits, max(0, -(-(room[number] - used[number]) // times)))
        for number in row:
            used[number] += fits
        admitted.append(fits)
        blocking.append(-1 if fits == count else next(number for number in row if used[number] >= room[number]))
    if whole and any(number >= 0 for number in blocking):
        first = next(number for number in blocking if number >= 0)
        admitted, blocking = [0] * len(runs), [first] * len(runs)
        used = [0] * len(buckets)
    arrival = [
        begin + count * bucket.limit.interval_ms for begin, count, bucket in zip(start, used, buckets, strict=True)
    ]
    # Retry after: when the refused items' buckets have room for them again (at most a burst: more can
    # never arrive at once), the longest wait of any bucket that refused or would refuse one of them.
    waiting = [0] * len(buckets)
    for (row, count), fits in zip(runs, admitted, strict=True):
        for number in row:
            waiting[number] += count - fits
    retry_ms = 0.0
    for number, count in enumerate(waiting):
        if count:
            limit = buckets[number].limit
            needed = min(count, max(limit.burst, 1))
            retry_ms = max(retry_ms, arrival[number] + needed * limit.interval_ms - limit.tolerance_ms - now)
    return admitted, blocking, retry_ms, arrival


class LocalCounters:
    """The embedded default (no REDIS_URL): counters of this process only (docs: with several web processes,
    each allows the limits on its own)."""

    PRUNE_ABOVE = 50_000

    def __init__(self):
        self._arrival: dict[str, float] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._arrival.clear()

    def admit(self, buckets: list[Bucket], runs: Runs, whole: bool):
        with self._lock:
            now = time.monotonic() * 1000
            stored = [self._arrival.get(bucket.key, 0.0) for bucket in buckets]
            admitted, blocking, retry_ms, arrival = gcra_admit(stored, buckets, runs, whole, now)
            for bucket, before, after in zip(buckets, stored, arrival, strict=True):
                if after != max(before, now):
                    self._arrival[bucket.key] = after
            if len(self._arrival) > self.PRUNE_ABOVE:
                # A bucket whose arrival time has passed is full again: forgetting it changes nothing.
                self._arrival = {key: value for key, value in self._arrival.items() if value > now}
        return admitted, blocking, retry_ms


class RedisCounters:
    """Counters shared by every web process, in Redis. One EVALSHA per call (the script is loaded on first use
    and again after a Redis restart, by redis-py's Script)."""

    SCRIPT = (Path(__file__).with_name("rate_limits.lua")).read_text()

    def __init__(self, url: str):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # One retry without delay: a pooled connection that Redis closed (a restart) is replaced at once, while
        # a Redis that is down costs one refused connect, not redis-py's default backoff of about a second.
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
        )
        self.script = self.client.register_script(self.SCRIPT)
        self.unavailable_until = 0.0

    def admit(self, buckets: list[Bucket], runs: Runs, whole: bool):
        unlimited = [count for _, count in runs], [-1] * len(runs), 0.0
        if time.monotonic() < self.unavailable_until:
            return unlimited
        # The script's numbers are 1-based; the distinct limits (usually one or two) are sent once each.
        limit_numbers: dict[Limit, str] = {}
        for bucket in buckets:
            limit_numbers.setdefault(bucket.limit, str(len(limit_numbers) + 1))
        arguments = [
            # A run whose items have no bucket (their limit is off) is "0", so that every run keeps its place.
            ";".join(f"{','.join(str(number + 1) for number in row) or '0'}*{count}" for row, count in runs),
            "1" if whole else "0",
            ";".join(f"{limit.interval_ms!r},{limit.tolerance_ms!r}" for limit in limit_numbers),
            ",".join(limit_numbers[bucket.limit] for bucket in buckets),
        ]
        import redis

        try:
            reply = self.script(keys=[bucket.key for bucket in buckets], args=arguments)
        except redis.RedisError as error:
            if self.unavailable_until == 0.0:
                log.warning("Rate limits are off until Redis answers again (%s): ingest is accepted unlimited.", error)
            self.unavailable_until = time.monotonic() + REDIS_RETRY_SECONDS
            return unlimited
        if self.unavailable_until:
            log.warning("Redis answers again: rate limits are back on.")
            self.unavailable_until = 0.0
        retry_ms, refused = reply
        if not refused:
            return unlimited
        admitted, blocking = [], []
        for answer in refused.split(b";"):
            fits, number = answer.split(b",")
            admitted.append(int(fits))
            blocking.append(int(number) - 1)
        return admitted, blocking, float(retry_ms)


_local = LocalCounters()
_redis: dict[str, RedisCounters] = {}
_redis_lock = threading.Lock()


def _counter_store():
    url = settings.REDIS_URL
    if not url:
        return _local
    store = _redis.get(url)
    if store is None:
        with _redis_lock:
            store = _redis.setdefault(url, RedisCounters(url))
    return store


def rate_limits_reset() -> None:
    """Forget this process's local counters (tests; Redis counters expire on their own)."""
    _local.clear()
