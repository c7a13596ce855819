"""A defined event's name works as a funnel step and as a retention event (SPEC 13: wherever an event name does),
on both paths, counting the person of a pending merge once, over events sent before the definition was made."""

from datetime import date

import pytest

from events_app.defined_events.backfill import defined_event_backfill
from events_app.defined_events.services import defined_event_create
from reports_app.query import ReportQuery
from reports_app.query_funnels import FunnelQuery, RetentionQuery
from reports_app.selectors import report_funnel, report_retention
from tests.builders import identify, track

pytestmark = pytest.mark.django_db

BUY = "@body;|@div;#main;|@button;#buy;.btn;|"
DOCS = "@body;|@div;#main;|@a;#docs;|"
BASE = ReportQuery(date_from=date(2026, 11, 2), date_to=date(2026, 11, 15), range="custom", interval="week")


def click(environment, who: dict, timestamp: str, hierarchy: str) -> None:
    track(environment, **who, event="click", timestamp=timestamp, properties={"hierarchy": hierarchy, "path": "/p"})


@pytest.fixture
def clicks(environment, both_paths):
    ann, ben, user_801 = {"identity": "ann"}, {"identity": "ben"}, {"user_id": "801"}
    track(environment, **ann, event="Sign Up", timestamp="2026-11-02T09:00:00Z")
    click(environment, ann, "2026-11-02T10:00:00Z", BUY)  # ann: Sign Up -> Clicked Buy, in week 0
    track(environment, **ben, event="Sign Up", timestamp="2026-11-03T09:00:00Z")
    click(environment, ben, "2026-11-03T09:30:00Z", DOCS)  # not the buy button
    click(environment, user_801, "2026-11-10T09:00:00Z", BUY)  # ben's other device (merge pending), week 1
    click(environment, ann, "2026-11-11T09:00:00Z", DOCS)
    identify(environment, 801, "ben")
    defined = defined_event_create(
        environment=environment, name="Clicked Buy", rules=[{"event": "click", "selector": "#buy"}]
    )
    assert defined_event_backfill(defined_event_id=defined.pk) == "done"  # the events sent before it
    return environment


def test_a_funnel_step_can_be_a_defined_event(clicks):
    query = FunnelQuery(steps=("Sign Up", "Clicked Buy"), window="14d", base=BASE)
    (series,) = report_funnel(environment=clicks, query=query).series
    # ann within the hour; ben a week later on a device merged into him (pending), within the 14-day window.
    assert series.counts == [2, 2]


def test_retention_can_return_on_a_defined_event(clicks):
    query = RetentionQuery(start_event="Sign Up", return_event="Clicked Buy", interval="week", periods=1, base=BASE)
    cohorts = report_retention(environment=clicks, query=query).cohorts
    # Both signed up in week 0; only ben's buy click falls in week 1 (ann's docs click is not the defined event).
    assert [(cohort.size, cohort.returned) for cohort in cohorts] == [(2, [2, 1])]
