"""Retention read from the rollups (issue #15's speed) gives the numbers of the events: after ingest (part of the
events counted by the catch-up, part still above the watermark), late and out-of-order events that move a cohort
or add a return, merges pending and done, undo, deleting a person, and a retention pass. The references are the
PostgreSQL statement over the events and the Python walk (the one tests/reports_app/test_retention.py checks
against hand-computed numbers), which every case must match cohort for cohort.

The world is reports_app/conftest.py's (alice + 501 pending, bob + 502 done, carol, dave, 503), with its accounts.
A funnel has no rollup path: its window is in seconds, which per-day rows cannot answer exactly."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from events_app.defined_events.services import defined_event_create
from events_app.models import Event
from events_app.rollups.catch_up import rollups_catch_up
from reports_app.query import PropertyRef, ReportQuery, filter_parse
from reports_app.query_funnels import RetentionQuery
from reports_app.selectors import report_retention
from reports_app.selectors.person_steps import PYTHON_PATH
from reports_app.selectors.series import POSTGRESQL_PATH, ROLLUP_PATH
from tests.builders import track
from tests.reports_app.test_rollup_reports import a_device_merged_and_undone
from users_app.deletion.person import person_delete
from users_app.deletion.retention import environment_retention_apply
from users_app.models import Profile

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="rollups are kept on PostgreSQL only"),
]

# (start event, return event): a person's own return of another name, the start event coming back, and a name
# only dave has (before and after the range).
EVENT_PAIRS = [("Sign Up", "pageview"), ("pageview", "pageview"), ("pageview", "Sign Up"), ("Upgrade", "Upgrade")]
GROUPS = [None, "user.plan", "account.tier"]
FILTERS = [[], ["user.plan!=Free"], ["account.tier=Enterprise"], ["user.plan=*", "account.tier!=*"]]
# (interval, periods, first day): the last, of 83 days by day, is too many buckets for a person's bigint of
# return buckets (retention_sql.MASK_BUCKETS): its (person, bucket) pairs are made distinct instead.
INTERVALS = [("day", 10, date(2026, 10, 26)), ("week", 3, date(2026, 10, 26)), ("month", 2, date(2026, 10, 26))]
INTERVALS += [("day", 20, date(2026, 9, 1))]


def retention_query(
    start_event, return_event, *, interval="week", periods=3, group_by=None, where=(), date_from=date(2026, 10, 26)
):
    """Up to 2026-11-22, by default from 2026-10-26: a week before the world's range (dave's first Upgrade) and one
    after."""
    base = ReportQuery(
        group_by=PropertyRef(*group_by.split(".", 1)) if group_by else None,
        filters=tuple(filter_parse(text) for text in where),
        date_from=date_from,
        date_to=date(2026, 11, 22),
        range="custom",
        interval=interval,
    )
    return RetentionQuery(
        start_event=start_event, return_event=return_event, interval=interval, periods=periods, base=base
    )


def every_retention_agrees(environment, *, full: bool = False) -> int:
    """Every combination (`full`: with every filter and group), on the rollups, against the events' statement and
    the Python walk. Returns how many reports had a cohort (so a world that lost its events cannot pass empty)."""
    nonempty = 0
    for start_event, return_event in EVENT_PAIRS:
        for group_by in GROUPS if full else GROUPS[:2]:
            for where in FILTERS if full else FILTERS[:2]:
                for interval, periods, date_from in INTERVALS if (group_by, where) == (None, []) else INTERVALS[1:2]:
                    query = retention_query(
                        start_event,
                        return_event,
                        interval=interval,
                        periods=periods,
                        group_by=group_by,
                        where=where,
                        date_from=date_from,
                    )
                    rolled = report_retention(environment=environment, query=query)
                    assert rolled.explain["path"] == ROLLUP_PATH, query
                    events = report_retention(environment=environment, query=query, path=POSTGRESQL_PATH)
                    walked = report_retention(environment=environment, query=query, path=PYTHON_PATH)
                    assert rolled.as_dict() == events.as_dict() == walked.as_dict(), query
                    nonempty += bool(rolled.cohorts)
    return nonempty


def test_half_caught_up_late_and_out_of_order(accounts):
    assert every_retention_agrees(accounts, full=True) > 40  # nothing counted yet: all above the watermark
    rollups_catch_up()
    assert every_retention_agrees(accounts, full=True) > 40
    # Late events, older than what is counted: carol's Sign Up moves her cohort a week back, 503 comes back the
    # week after its Sign Up, and dave gets a pageview on a day nobody had.
    track(accounts, identity="carol", event="Sign Up", timestamp="2026-10-28T10:00:00Z", session_id="c0")
    track(accounts, user_id="503", event="pageview", timestamp="2026-11-17T09:00:00Z", session_id="z2")
    track(accounts, identity="dave", event="pageview", timestamp="2026-10-27T23:59:59Z", session_id="d0")
    counted = rollups_catch_up().through_event_id
    track(accounts, identity="alice", event="pageview", timestamp="2026-11-21T12:00:00Z", session_id="a3")
    assert Event.objects.filter(pk__gt=counted).count() == 1
    every_retention_agrees(accounts)
    cohorts = report_retention(environment=accounts, query=retention_query("Sign Up", "pageview")).cohorts
    assert [(cohort.start, cohort.size) for cohort in cohorts] == [
        (date(2026, 10, 26), 1),  # carol, now
        (date(2026, 11, 2), 2),  # alice, bob (with their merged devices)
        (date(2026, 11, 9), 1),  # 503
    ]
    assert cohorts[2].returned == [1, 1]  # 503's late pageview of 11-17


def test_merges_pending_done_and_undone(accounts):
    # carol's other device signs up the day before her and comes back: her returns move with the merge.
    events = [("Sign Up", "2026-11-03T10:00:00Z"), ("pageview", "2026-11-12T10:01:00Z")]
    assert a_device_merged_and_undone(accounts, every_retention_agrees, events) > 20


def test_deleting_a_person(accounts):
    rollups_catch_up()
    person_delete(person_pk=Profile.objects.get(environment=accounts, identity="bob").pk)
    assert every_retention_agrees(accounts) > 20


def test_a_retention_pass(accounts):
    rollups_catch_up()
    cutoff = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # inside carol's Sign Up day (15:00): the day keeps part
    track(accounts, identity="carol", event="pageview", timestamp="2026-11-04T09:00:00Z", session_id="c2")
    rollups_catch_up()
    accounts.event_retention_days = 30
    accounts.save()
    result = environment_retention_apply(environment=accounts, now=cutoff + timedelta(days=30))
    assert result.events_deleted > 0
    assert every_retention_agrees(accounts) > 10


def test_what_the_rollups_cannot_answer_reads_the_events(accounts, api):
    rollups_catch_up()
    by_path = retention_query("Sign Up", "pageview", where=["event.path=/pricing"])
    assert report_retention(environment=accounts, query=by_path).explain == {"path": POSTGRESQL_PATH}
    defined_event_create(environment=accounts, name="Signed up", rules=[{"event": "Sign Up"}])
    defined = retention_query("Signed up", "pageview")
    assert report_retention(environment=accounts, query=defined).explain["path"] == POSTGRESQL_PATH
    params = {"start_event": "Sign Up", "return_event": "pageview", "from": "2026-11-02", "to": "2026-11-15"}
    answer = api.get("/api/v1/reports/retention", **params, explain="1").json()
    assert answer["explain"]["path"] == ROLLUP_PATH
    assert answer["explain"]["rollups_through_event_id"] == Event.objects.order_by("-pk").first().pk
    assert "explain" not in api.get("/api/v1/reports/retention", **params).json()
    funnel = api.get("/api/v1/reports/funnel", step=["Sign Up", "pageview"], explain="true").json()
    assert funnel["explain"] == {"path": POSTGRESQL_PATH}
    bad = api.get("/api/v1/reports/retention", **params, explain="maybe")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "explain"
