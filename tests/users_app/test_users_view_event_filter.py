"""The Users view's `ev` filter: users who did an event in the period, by a raw name or a defined event's (SPEC 13),
on the page and GET /api/v1/users/search alike."""

from tests.builders import apply_pending_merges, days_ago, iso
from tests.events_app.test_defined_events import BUY, SELL, click, define


def searched(api, **params) -> list[str]:
    answer = api.get("/api/v1/users/search", **params)
    assert answer.status_code == 200, answer.content
    return sorted(row["identity"] or row["user_id"] for row in answer.json()["results"])


def test_users_who_did_a_raw_or_a_defined_event_in_the_period(
    calls, api, eager_celery, django_capture_on_commit_callbacks
):
    calls.track(identity="alice", event="click", properties=click(BUY))
    calls.track(identity="bob", event="click", properties=click(SELL))
    calls.track(identity="carol", event="Sign Up")
    calls.track(user_id="301", event="click", properties=click(BUY))  # anonymous, then merged into dave
    calls.track(identity="dave", event="pageview")
    calls.identify("301", "dave")
    calls.track(identity="erin", event="click", properties=click(BUY), timestamp=iso(days_ago(20)))
    calls.track(identity="erin", event="pageview")
    with django_capture_on_commit_callbacks(execute=True):
        assert define(api).status_code == 201
    assert searched(api, ev="Clicked Buy", period="7d") == ["alice", "dave"]  # the merge is still pending
    apply_pending_merges()
    assert searched(api, ev="Clicked Buy", period="7d") == ["alice", "dave"]
    assert searched(api, ev="Clicked Buy", period="30d") == ["alice", "dave", "erin"]
    assert searched(api, ev="Sign Up", period="7d") == ["carol"]
    assert searched(api, ev="click", period="7d") == ["alice", "bob", "dave"]
    assert searched(api, ev="No such event", period="all") == []
    assert len(searched(api, period="7d")) == 5
    assert api.get("/api/v1/users/search", ev="x" * 1025).json()["error"]["field"] == "ev"


def test_the_page_filters_by_event_and_escapes_it(calls, signed_in):
    calls.track(identity="alice", event="<b>Sign Up</b>")
    calls.track(identity="bob", event="pageview")
    page = signed_in.get("/users/", {"ev": "<b>Sign Up</b>"})
    text = page.content.decode()
    assert [row[0].profile.identity for row in page.context["rows"]] == ["alice"]
    assert 'value="&lt;b&gt;Sign Up&lt;/b&gt;"' in text and "<b>Sign Up</b>" not in text
