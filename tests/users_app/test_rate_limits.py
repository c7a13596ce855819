"""Rate limits of the public ingest endpoints (SPEC 9; users_app/rate_limits.py): per person, per identify, per
environment; 429 with Retry-After and nothing stored; bulk calls keep what is within the limits. Each
behaviour is checked with the counters in Redis (REDIS_URL, the production mode) and in local memory (the
embedded default)."""

import json
import logging
import math
import os
import time

import pytest

from events_app.models import Event
from tests.conftest import free_port
from users_app import rate_limits
from users_app.models import Environment, MergeRecord, Profile

BROWSER = "/api/v1/browser"


@pytest.fixture(params=["redis", "local"])
def counters(request, settings):
    """Which counter store the limits use: Redis (REDIS_URL set) or this process's memory."""
    if request.param == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("REDIS_URL is not set")
        settings.REDIS_URL = os.environ["REDIS_URL"]
    else:
        settings.REDIS_URL = ""
        rate_limits.rate_limits_reset()
    return request.param


@pytest.fixture
def small_limits(settings):
    """Limits small enough to reach in a test: 3 writes per person, 2 identifies per user_id / identity."""
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = 3
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = 3
    settings.CAIRN_RATE_LIMIT_IDENTIFY_PER_MINUTE = 2
    settings.CAIRN_RATE_LIMIT_IDENTIFY_BURST = 2


def events(count: int, people: int, prefix: str = "person", call: int = 0) -> list[dict]:
    """`count` events spread evenly over `people` identities."""
    return [
        {"identity": f"{prefix}-{index % people}", "event": "Imported", "idempotency_key": f"{prefix}-{call}-{index}"}
        for index in range(count)
    ]


def assert_rate_limited(response, field: str | None):
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and error["field"] == field, error


# ---- the defaults ----------------------------------------------------------------------------------------------


def test_the_defaults_never_limit_a_backfill_spread_over_many_people(counters, calls, environment):
    # Five full bulk calls back to back, 5,000 events of 100 people: 50 each, far below a person's burst.
    for call in range(5):
        response = calls.track_bulk(events(1000, 100, call=call))
        assert response.status_code == 200, response.content
        assert response.json()["accepted"] == 1000 and response.json()["rejected"] == []
    assert Event.objects.filter(environment=environment).count() == 5000


def test_the_defaults_let_two_full_bulk_calls_of_one_person_through_and_then_pace_them(counters, calls, environment):
    for call in range(2):
        response = calls.track_bulk(events(1000, 1, call=call))
        assert response.status_code == 200, response.content
        assert response.json()["accepted"] == 1000, response.json()["rejected"][:3]

    third = calls.track_bulk(events(1000, 1, call=2))

    # Only what came back since (1,000 a minute) gets through; the rest is listed, first come first kept.
    body = third.json()
    assert body["accepted"] < 1000
    assert third["Retry-After"]
    rejected = body["rejected"]
    assert [item["index"] for item in rejected] == list(range(body["accepted"], 1000))
    assert {(item["error"]["code"], item["error"]["field"]) for item in rejected} == {("rate_limited", "identity")}
    assert Event.objects.filter(environment=environment).count() == 2000 + body["accepted"]


# ---- one person, over the limit ----------------------------------------------------------------------------------


def test_a_single_track_over_the_limit_gets_429_and_is_not_stored(counters, small_limits, calls, environment):
    for index in range(3):
        assert calls.track(identity="alice", idempotency_key=f"a{index}").status_code == 200

    response = calls.track(identity="alice", idempotency_key="a3")

    assert_rate_limited(response, "identity")
    assert "at most 3 per minute" in response.json()["error"]["message"]
    assert not Event.objects.filter(idempotency_key="a3").exists()
    # Someone else is not affected, and neither is alice's user_id written as a user_id.
    assert calls.track(identity="bob").status_code == 200
    assert calls.track(user_id="42").status_code == 200


def test_a_user_id_flood_is_limited_by_user_id(counters, small_limits, calls):
    for _ in range(3):
        assert calls.track(user_id="42").status_code == 200
    assert_rate_limited(calls.track(user_id="42"), "user_id")


def test_a_bulk_keeps_the_items_within_the_limits_and_lists_the_others(counters, small_limits, api, environment):
    users = [{"identity": "alice", "properties": {"step": index}} for index in range(5)]
    users.insert(2, {"identity": "bob", "properties": {"step": 0}})

    response = api.post("/api/add_user_properties", {"app_id": environment.app_id, "users": users})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 4  # alice's first three and bob
    assert [item["index"] for item in body["rejected"]] == [4, 5]
    assert all(item["error"]["code"] == "rate_limited" for item in body["rejected"])
    assert int(response["Retry-After"]) >= 1
    alice = Profile.objects.get(environment=environment, identity="alice")
    assert alice.properties.get(key="step").value == "2"  # the refused later steps were not applied


def test_a_bulk_with_nothing_accepted_because_of_the_limits_is_a_429(counters, small_limits, calls, environment):
    assert calls.track_bulk(events(3, 1)).status_code == 200

    response = calls.track_bulk(events(2, 1, call=1) + [{"identity": "guest", "event": "x"}])

    assert_rate_limited(response, None)
    assert [item["error"]["code"] for item in response.json()["rejected"]] == [
        "rate_limited",
        "rate_limited",
        "identity_blocked",
    ]
    assert Event.objects.filter(environment=environment).count() == 3


def test_retry_after_says_when_the_call_gets_through(counters, settings, calls):
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = 30  # one back every 2 s
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = 1
    assert calls.track(identity="alice").status_code == 200
    refused = calls.track(identity="alice")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2"

    time.sleep(2)

    assert calls.track(identity="alice").status_code == 200


def test_zero_turns_a_limit_off(counters, settings, calls):
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = 0
    settings.CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = 1
    for _ in range(5):
        assert calls.track(identity="alice").status_code == 200


# ---- identify storms ------------------------------------------------------------------------------------------


def test_one_device_cycling_through_identities_is_stopped(counters, small_limits, calls, environment):
    assert calls.identify("7", "first").status_code == 200
    assert calls.identify("7", "second").status_code == 200  # a new profile takes it (SPEC 2 rule 6)
    profiles = Profile.objects.filter(environment=environment).count()

    response = calls.identify("7", "third")

    assert_rate_limited(response, "user_id")
    assert Profile.objects.filter(environment=environment).count() == profiles
    assert not Profile.objects.filter(identity="third").exists()


def test_many_devices_identifying_as_one_person_are_stopped(counters, small_limits, calls, environment):
    for device in ("1", "2"):
        calls.track(user_id=device)
        assert calls.identify(device, "alice").status_code == 200
    calls.track(user_id="3")

    response = calls.identify("3", "alice")

    assert_rate_limited(response, "identity")
    assert MergeRecord.objects.filter(environment=environment).count() == 1  # device 2's; device 3 is not merged
    assert Profile.objects.get(environment=environment, user_id=3).merged_into is None


# ---- the per-environment cap ------------------------------------------------------------------------------------


def test_the_environment_cap_is_off_by_default(environment):
    assert environment.ingest_limit_per_minute == 0


def test_the_environment_cap_counts_every_endpoint_together(counters, monkeypatch, api, calls, environment):
    monkeypatch.setattr(rate_limits, "ENVIRONMENT_BURST_FLOOR", 0)  # a cap of 4 is reachable in a test
    environment.ingest_limit_per_minute = 4
    environment.save()
    assert calls.track(identity="a").status_code == 200
    assert calls.add_properties({"plan": "Free"}, identity="b").status_code == 200
    assert calls.identify("5", "c").status_code == 200
    bulk = calls.track_bulk([{"identity": "d", "event": "x"}, {"identity": "e", "event": "y"}])
    assert bulk.json()["accepted"] == 1
    assert bulk.json()["rejected"][0]["error"]["field"] == "app_id"

    assert_rate_limited(calls.identify("6", "f"), "app_id")
    browser = api.post(BROWSER, {"app_id": environment.app_id, "user_id": "8", "calls": [{"type": "pageview"}]})
    assert_rate_limited(browser, "app_id")
    assert not Profile.objects.filter(environment=environment, user_id__in=[6, 8]).exists()


def test_a_low_environment_cap_still_lets_one_full_bulk_call_through(counters, calls, environment):
    environment.ingest_limit_per_minute = 10
    environment.save()

    first = calls.track_bulk(events(1000, 500))
    second = calls.track_bulk(events(1000, 500, prefix="later"))

    assert first.json()["accepted"] == 1000
    assert second.json()["accepted"] < 1000
    assert {item["error"]["field"] for item in second.json()["rejected"]} == {"app_id"}


# ---- the browser endpoint: a batch is admitted whole or refused whole ---------------------------------------


def test_a_browser_batch_over_a_limit_is_refused_whole(counters, small_limits, client, environment):
    def send(calls, **headers):
        return client.post(
            BROWSER,
            json.dumps({"app_id": environment.app_id, "user_id": "9", "calls": calls}),
            content_type="text/plain",
            **headers,
        )

    assert (
        send([{"type": "pageview", "idempotency_key": "p1"}, {"type": "identify", "identity": "one"}]).status_code
        == 200
    )
    environment.allowed_origins = ["https://shop.example.com"]
    environment.save()

    response = send(
        [
            {"type": "pageview", "idempotency_key": "p2"},
            {"type": "identify", "identity": "two"},
            {"type": "identify", "identity": "three"},
        ],
        HTTP_ORIGIN="https://shop.example.com",
    )

    assert_rate_limited(response, "user_id")
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"  # the tracker can read it
    assert not Event.objects.filter(idempotency_key="p2").exists()  # nothing of the batch, not even the pageview
    assert not Profile.objects.filter(identity="two").exists()


# ---- where the counters live ---------------------------------------------------------------------------------


def test_with_redis_every_process_shares_the_counters(small_limits, settings, calls):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    settings.REDIS_URL = os.environ["REDIS_URL"]
    for _ in range(3):
        assert calls.track(identity="alice").status_code == 200
    rate_limits._redis.clear()  # as a web process that has never seen alice
    rate_limits.rate_limits_reset()

    assert_rate_limited(calls.track(identity="alice"), "identity")


def test_ingest_goes_on_unlimited_when_redis_is_down(small_limits, settings, calls, environment, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    rate_limits._redis.clear()

    with caplog.at_level(logging.WARNING, logger="users_app.rate_limits"):
        answers = [calls.track(identity="alice").status_code for _ in range(5)]

    assert answers == [200] * 5
    assert Event.objects.filter(environment=environment).count() == 5
    warnings = [record for record in caplog.records if record.name == "users_app.rate_limits"]
    assert len(warnings) == 1 and "Redis" in warnings[0].getMessage()


def test_internal_callers_are_not_limited(small_limits, counters, environment):
    from events_app.services.ingest import track_ingest

    result = track_ingest(environment=environment, items=events(10, 1))

    assert result.accepted == 10 and not result.rejected


@pytest.mark.parametrize("seed", range(4))
def test_redis_and_local_memory_admit_exactly_the_same_items(seed, settings):
    """The Lua script and the Python algorithm are the same steps: random calls with shared, separate and
    missing buckets (a limit that is off), whole and in part, get the same answer from both stores."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    import random

    rng = random.Random(seed)
    # Slow refills (10 s a token and more): the answers must not depend on the milliseconds between calls.
    limits = [rate_limits.Limit(6, 3), rate_limits.Limit(2, 5), rate_limits.Limit(1, 1)]
    calls = []
    for _ in range(6):
        items = []
        for _ in range(rng.randrange(1, 12)):
            items.append(tuple(rng.choice([None, "a", "b", "c", "d"]) for _ in range(rng.randrange(0, 3))))
        calls.append((items, rng.random() < 0.3))
    answers = {}
    for store, url in (("redis", os.environ["REDIS_URL"]), ("local", "")):
        settings.REDIS_URL = url
        rate_limits.rate_limits_reset()
        environment = Environment(pk=10**12 + seed * 10 + (store == "local"), app_id="x")
        buckets = {
            name: rate_limits.Bucket(f"cairn:rl:{{{environment.pk}}}:t:{name}", limits[number % 3], name, name)
            for number, name in enumerate("abcd")
        }
        answers[store] = []
        for items, whole in calls:
            admission = rate_limits.ingest_admit(
                environment=environment,
                whole=whole,
                items=[tuple(buckets[name] if name else None for name in item) for item in items],
            )
            answers[store].append(
                ([bucket.field if bucket else None for bucket in admission.refused_by], admission.retry_after)
            )
        assert all(len(refused) == len(items) for (refused, _), (items, _) in zip(answers[store], calls, strict=True))
    assert answers["redis"] == answers["local"]
    assert any(any(refused) for refused, _ in answers["local"])  # the scenarios do reach the limits


@pytest.mark.parametrize("now", [2_990_373.850307, 123_456_789.987, 1_796_000_000_000.123])
def test_a_full_bucket_admits_its_whole_burst_whatever_the_clock_reads(now):
    # now + tolerance - now is 5999999.99... at the first of these clock readings (seen in a test run): floored, a
    # burst of 1000 let 999 through.
    bucket = rate_limits.Bucket("k", rate_limits.Limit(per_minute=10, burst=1000), "app_id", "writes")
    admitted, blocking, _, _ = rate_limits.gcra_admit([0.0], [bucket], [((0,), 1001)], False, now)
    assert admitted == [1000] and blocking == [0]


def item_by_item(items: list[tuple], whole: bool) -> tuple[list, int | None]:
    """The rule as SPEC 9 states it, for fresh buckets: items in index order, each admitted while every bucket it
    names has room (its burst), taking one token per time it names it; a whole call refused whole. -> (per item
    None or the refusing bucket, retry_after)."""
    used: dict[str, int] = {}
    refused = []
    for item in items:
        named = [bucket for bucket in item if bucket is not None]
        blocking = next((bucket for bucket in named if used.get(bucket.key, 0) >= bucket.limit.burst), None)
        if blocking is None:
            for bucket in named:
                used[bucket.key] = used.get(bucket.key, 0) + 1
        refused.append(blocking)
    if whole and any(refused):
        refused = [next(bucket for bucket in refused if bucket)] * len(items)
        used = {}
    if not any(refused):
        return refused, None
    waiting: dict[str, int] = {}
    for item, blocking in zip(items, refused, strict=True):
        if blocking is not None:
            for bucket in item:
                if bucket is not None:
                    waiting[bucket.key] = waiting.get(bucket.key, 0) + 1
    by_key = {bucket.key: bucket for item in items for bucket in item if bucket is not None}
    retry_ms = max(
        (used.get(key, 0) + min(count, by_key[key].limit.burst)) * by_key[key].limit.interval_ms
        - by_key[key].limit.tolerance_ms
        for key, count in waiting.items()
    )
    return refused, max(1, math.ceil(retry_ms / 1000))


@pytest.mark.parametrize("seed", range(6))
def test_runs_of_items_are_admitted_exactly_as_item_by_item(seed, counters):
    """A bulk call's items go to the counters as runs with a count (13 people's 1,000 events: about 13 runs),
    merged when no two runs share a bucket: the answer is the one item-by-item admission gives, in both stores,
    with an environment cap (every item shares it) or without, whole or not, and rows naming a bucket twice."""
    import random

    rng = random.Random(seed)
    limits = [rate_limits.Limit(6, 3), rate_limits.Limit(2, 5), rate_limits.Limit(1, 1)]
    environment = Environment(pk=2 * 10**12 + seed * 10 + (counters == "local"), app_id="x")
    rate_limits.rate_limits_reset()
    for call in range(4):
        buckets = {
            name: rate_limits.Bucket(f"cairn:rl:{{{environment.pk}}}:r{call}:{name}", limits[number % 3], name, name)
            for number, name in enumerate("abcde")
        }
        shared = buckets["e"] if call % 2 else None  # like an environment cap: in every item
        rows = [(buckets["a"],), (buckets["b"],), (buckets["c"], buckets["d"]), (None,), (buckets["b"], buckets["b"])]
        items = []
        for _ in range(rng.randrange(1, 8)):
            row = rng.choice(rows)
            items.extend([(*row, shared)] * rng.randrange(1, 6))
        whole = rng.random() < 0.3
        admission = rate_limits.ingest_admit(environment=environment, items=items, whole=whole)
        expected, retry_after = item_by_item(items, whole)
        assert [bucket.key if bucket else None for bucket in admission.refused_by] == [
            bucket.key if bucket else None for bucket in expected
        ], (call, whole)
        # The stores reckon from the clock's milliseconds: their rounding may add a second.
        assert (admission.retry_after is None) == (retry_after is None)
        assert retry_after is None or 0 <= admission.retry_after - retry_after <= 1
