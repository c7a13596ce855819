"""A small world built through the real ingest, identify and merge services, with hand-computed numbers.

Range 2026-11-02 (Monday) .. 2026-11-15 (Sunday): two weeks.

person   plan      events (UTC)                                           session
alice    Startup   Sign Up 11-02 09:00 {source: ads}                       a1
                   pageview 11-02 09:05 {path: /pricing}                   a1
                   pageview 11-10 12:00 {path: /docs}                      a2
user 501 (own plan Enterprise, set before alice's) pageview 11-03 08:00 {path: /pricing}  x1
         -> identify(501, alice): merge PENDING (task not run), so these count as alice
bob      Free      Sign Up 11-08 23:50 (Sunday) {source: seo}              b1
                   pageview 11-09 00:10 (Monday) {path: /pricing}          b1 (spans the week edge)
user 502           pageview 11-05 08:00 {path: /}                          y1
         -> identify(502, bob) and merge_apply: merge DONE
carol    (none)    Sign Up 11-04 15:00                                     c1
user 503 Growth    Sign Up 11-15 22:00 (Sunday, last day)                  z1
dave     Premium   Upgrade 10-31 23:59:59 (before the range), Upgrade 11-16 00:00 (just after)
"""

import pytest
from django.utils import timezone

from events_app.services.ingest import track_ingest, user_properties_ingest
from reports_app.selectors import funnels, retention
from tests.builders import identify, plan_story, set_properties, track
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord
from users_app.services.accounts import account_properties_set


@pytest.fixture
def world(environment):
    alice, bob, carol, dave = ({"identity": name} for name in ("alice", "bob", "carol", "dave"))
    set_properties(environment, user_id="501", plan="Enterprise")
    set_properties(environment, **alice, plan="Startup")
    set_properties(environment, **bob, plan="Free")
    set_properties(environment, **dave, plan="Premium")
    set_properties(environment, user_id="503", plan="Growth")

    user_501, user_502, user_503 = ({"user_id": user_id} for user_id in ("501", "502", "503"))
    for who, event, timestamp, session_id, properties in [
        (alice, "Sign Up", "2026-11-02T09:00:00Z", "a1", {"source": "ads"}),
        (alice, "pageview", "2026-11-02T09:05:00Z", "a1", {"path": "/pricing"}),
        (alice, "pageview", "2026-11-10T12:00:00Z", "a2", {"path": "/docs"}),
        (user_501, "pageview", "2026-11-03T08:00:00Z", "x1", {"path": "/pricing"}),
        (bob, "Sign Up", "2026-11-08T23:50:00Z", "b1", {"source": "seo"}),
        (bob, "pageview", "2026-11-09T00:10:00Z", "b1", {"path": "/pricing"}),
        (user_502, "pageview", "2026-11-05T08:00:00Z", "y1", {"path": "/"}),
        (carol, "Sign Up", "2026-11-04T15:00:00Z", "c1", {}),
        (user_503, "Sign Up", "2026-11-15T22:00:00Z", "z1", {}),
        (dave, "Upgrade", "2026-10-31T23:59:59Z", "d1", {}),
        (dave, "Upgrade", "2026-11-16T00:00:00Z", "d2", {}),
    ]:
        track(environment, **who, event=event, timestamp=timestamp, session_id=session_id, properties=properties)

    pending = identify(environment, 501, "alice").merge
    done = identify(environment, 502, "bob").merge
    merge_apply(merge_id=done.pk)
    pending.refresh_from_db()
    done.refresh_from_db()
    # The premise of the pending case: the task has not run, the events still belong to the tombstone.
    assert pending.status == MergeRecord.Status.PENDING
    assert done.status == MergeRecord.Status.DONE
    return environment


@pytest.fixture
def story(environment):
    """tests/builders.py plan_story's people and events up to now, through the ingest services (the builder's
    browser tests: a funnel and a retention report that differ by plan)."""
    users, events = plan_story(timezone.now())
    assert user_properties_ingest(environment=environment, items=users).accepted == len(users)
    assert track_ingest(environment=environment, items=events).accepted == len(events)
    return environment


@pytest.fixture
def accounts(world):
    """The world with accounts: alice and bob (and their merged devices) are acme's (tier Enterprise, industry
    Software), carol initech's (tier Free); user 503 has none."""
    world.account_id_property = "company_id"
    world.save()
    set_properties(world, identity="alice", company_id="acme")
    set_properties(world, identity="bob", company_id="acme")
    set_properties(world, identity="carol", company_id="initech")
    account_properties_set(
        environment=world,
        updates=[("acme", {"tier": "Enterprise", "industry": "Software"}), ("initech", {"tier": "Free"})],
    )
    return world


@pytest.fixture(params=["postgresql", "python"])
def both_paths(request, monkeypatch):
    """Funnels and retention on both paths, which must give the same numbers: PostgreSQL's statement and the
    Python walk (the one SQLite takes)."""
    if request.param == "python":
        for module in (funnels, retention):
            monkeypatch.setattr(module, "uses_postgresql", lambda environment: False)
    return request.param


def events(environment, who: dict, *items):
    for event, timestamp in items:
        track(environment, **who, event=event, timestamp=timestamp)


@pytest.fixture
def funnel_world(environment, both_paths):
    """A funnel's world, with hand-computed numbers (tests/reports_app/test_funnels.py):

    Range 2026-11-02 .. 2026-11-15, steps Sign Up -> Activate -> Upgrade, window 1d (86,400 s).

    person  plan now   events (UTC)                                                   best attempt reaches, seconds
    alice   Startup    Sign Up 11-02 09:00, Activate 10:00, Upgrade 11-03 09:00        3  (3600, 82800: Upgrade exactly
                                                                                           at the window: counts)
    bob     Free       Sign Up 11-03 12:00, Activate 11-04 12:00:01                    1  (one second over the window)
    carol   Free       Activate 11-05 08:00, Sign Up 09:00, Upgrade 10:00              1  (wrong order)
    dave    Premium    Sign Up 11-01 23:00 (before the range), Activate 11-02 01:00    -  (no attempt starts in range)
    erin    Growth     Sign Up 11-15 23:00 (last day), Activate 11-16 01:00, Upgrade   3  (7200, 3600: later steps after
                       11-16 02:00                                                         `to` count)
    frank   Startup    user 601 (older plan Enterprise) Sign Up 11-06 10:00, then     2  (3600: merge PENDING, counted
                       identify(601, frank); frank Activate 11-06 11:00                    together, frank's plan)
    gina    Enterprise user 602 Sign Up 11-07 10:00, identify(602, gina), merge DONE;  3  (1800, 1800)
                       gina Activate 10:30, Upgrade 11:00
    hank    (none)     Activate 11-08 12:00 then Sign Up 11-08 12:00 (same time,       2  (0: not earlier than)
                       recorded after)
    ivy     Growth     Sign Up 11-09 09:00 while Free; Growth set afterwards           1  (current value wins)
    jack    Startup    Sign Up 11-10 09:00, Sign Up 11-12 09:00, Activate 10:00,       3  (3600, 5400: the first attempt
                       Upgrade 11:30                                                       reaches 1 step, the second 3)
    kim     Startup    Sign Up 11-11 09:00, Activate 12:00, Sign Up 13:00,             2  (10800: both attempts reach 2,
                       Activate 13:30                                                      the earliest counts)
    """
    people = {name: {"identity": name} for name in "alice bob carol dave erin frank gina hank ivy jack kim".split()}
    # Set before frank's plan: at the merge the most recently set value wins (SPEC 2), so frank keeps Startup.
    set_properties(environment, user_id="601", plan="Enterprise")
    for name, plan in [
        ("alice", "Startup"),
        ("bob", "Free"),
        ("carol", "Free"),
        ("dave", "Premium"),
        ("erin", "Growth"),
        ("frank", "Startup"),
        ("gina", "Enterprise"),
        ("ivy", "Free"),
        ("jack", "Startup"),
        ("kim", "Startup"),
    ]:
        set_properties(environment, **people[name], plan=plan)
    set_properties(environment, identity="hank", seen="yes")  # hank has no plan
    events(
        environment,
        people["alice"],
        ("Sign Up", "2026-11-02T09:00:00Z"),
        ("Activate", "2026-11-02T10:00:00Z"),
        ("Upgrade", "2026-11-03T09:00:00Z"),
    )
    events(environment, people["bob"], ("Sign Up", "2026-11-03T12:00:00Z"), ("Activate", "2026-11-04T12:00:01Z"))
    events(
        environment,
        people["carol"],
        ("Activate", "2026-11-05T08:00:00Z"),
        ("Sign Up", "2026-11-05T09:00:00Z"),
        ("Upgrade", "2026-11-05T10:00:00Z"),
    )
    events(environment, people["dave"], ("Sign Up", "2026-11-01T23:00:00Z"), ("Activate", "2026-11-02T01:00:00Z"))
    events(
        environment,
        people["erin"],
        ("Sign Up", "2026-11-15T23:00:00Z"),
        ("Activate", "2026-11-16T01:00:00Z"),
        ("Upgrade", "2026-11-16T02:00:00Z"),
    )
    events(environment, {"user_id": "601"}, ("Sign Up", "2026-11-06T10:00:00Z"))
    events(environment, people["frank"], ("Activate", "2026-11-06T11:00:00Z"))
    events(environment, {"user_id": "602"}, ("Sign Up", "2026-11-07T10:00:00Z"))
    events(environment, people["gina"], ("Activate", "2026-11-07T10:30:00Z"), ("Upgrade", "2026-11-07T11:00:00Z"))
    events(environment, people["hank"], ("Activate", "2026-11-08T12:00:00Z"), ("Sign Up", "2026-11-08T12:00:00Z"))
    events(environment, people["ivy"], ("Sign Up", "2026-11-09T09:00:00Z"))
    set_properties(environment, **people["ivy"], plan="Growth")
    events(
        environment,
        people["jack"],
        ("Sign Up", "2026-11-10T09:00:00Z"),
        ("Sign Up", "2026-11-12T09:00:00Z"),
        ("Activate", "2026-11-12T10:00:00Z"),
        ("Upgrade", "2026-11-12T11:30:00Z"),
    )
    events(
        environment,
        people["kim"],
        ("Sign Up", "2026-11-11T09:00:00Z"),
        ("Activate", "2026-11-11T12:00:00Z"),
        ("Sign Up", "2026-11-11T13:00:00Z"),
        ("Activate", "2026-11-11T13:30:00Z"),
    )
    pending = identify(environment, 601, "frank").merge
    done = identify(environment, 602, "gina").merge
    merge_apply(merge_id=done.pk)
    pending.refresh_from_db()
    done.refresh_from_db()
    # The premise of the pending case: the task has not run, the Sign Up still belongs to the tombstone.
    assert (pending.status, done.status) == (MergeRecord.Status.PENDING, MergeRecord.Status.DONE)
    return environment
