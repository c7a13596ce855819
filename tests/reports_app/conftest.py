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

from datetime import date

import pytest

from events_app.services.ingest import track_ingest, user_properties_ingest
from reports_app.query import PropertyRef, ReportQuery, filter_parse
from users_app.merges.apply import merge_apply
from users_app.models import MergeRecord
from users_app.services.identify import profile_identify

FROM, TO = date(2026, 11, 2), date(2026, 11, 15)


def track(environment, who: dict, event: str, timestamp: str, session: str | None = None, **properties):
    item = {**who, "event": event, "timestamp": timestamp, "properties": properties}
    if session:
        item["session_id"] = session
    result = track_ingest(environment=environment, items=[item])
    assert result.accepted == 1, result.rejected


def set_properties(environment, who: dict, **properties):
    result = user_properties_ingest(environment=environment, items=[{**who, "properties": properties}])
    assert result.accepted == 1, result.rejected


def report(**kwargs) -> ReportQuery:
    """A ReportQuery over the world's range; `group_by="user.plan"` and `where=[...]` as strings."""
    group_by = kwargs.pop("group_by", None)
    where = kwargs.pop("where", [])
    kwargs.setdefault("date_from", FROM)
    kwargs.setdefault("date_to", TO)
    kwargs.setdefault("interval", "week")
    kwargs.setdefault("range", "custom")
    if group_by:
        scope, _, key = group_by.partition(".")
        kwargs["group_by"] = PropertyRef(scope, key)
    return ReportQuery(filters=tuple(filter_parse(text) for text in where), **kwargs)


def as_table(result) -> dict:
    return {series.group: (series.values, series.total) for series in result.series}


@pytest.fixture
def world(environment):
    alice, bob, carol, dave = ({"identity": name} for name in ("alice", "bob", "carol", "dave"))
    set_properties(environment, {"user_id": "501"}, plan="Enterprise")
    set_properties(environment, alice, plan="Startup")
    set_properties(environment, bob, plan="Free")
    set_properties(environment, dave, plan="Premium")
    set_properties(environment, {"user_id": "503"}, plan="Growth")

    track(environment, alice, "Sign Up", "2026-11-02T09:00:00Z", "a1", source="ads")
    track(environment, alice, "pageview", "2026-11-02T09:05:00Z", "a1", path="/pricing")
    track(environment, alice, "pageview", "2026-11-10T12:00:00Z", "a2", path="/docs")
    track(environment, {"user_id": "501"}, "pageview", "2026-11-03T08:00:00Z", "x1", path="/pricing")
    track(environment, bob, "Sign Up", "2026-11-08T23:50:00Z", "b1", source="seo")
    track(environment, bob, "pageview", "2026-11-09T00:10:00Z", "b1", path="/pricing")
    track(environment, {"user_id": "502"}, "pageview", "2026-11-05T08:00:00Z", "y1", path="/")
    track(environment, carol, "Sign Up", "2026-11-04T15:00:00Z", "c1")
    track(environment, {"user_id": "503"}, "Sign Up", "2026-11-15T22:00:00Z", "z1")
    track(environment, dave, "Upgrade", "2026-10-31T23:59:59Z", "d1")
    track(environment, dave, "Upgrade", "2026-11-16T00:00:00Z", "d2")

    pending = profile_identify(environment=environment, user_id=501, identity="alice").merge
    done = profile_identify(environment=environment, user_id=502, identity="bob").merge
    merge_apply(merge_id=done.pk)
    pending.refresh_from_db()
    done.refresh_from_db()
    # The premise of the pending case: the task has not run, the events still belong to the tombstone.
    assert pending.status == MergeRecord.Status.PENDING
    assert done.status == MergeRecord.Status.DONE
    return environment
