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

from tests.builders import identify, set_properties, track
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord


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
