"""Initial properties (SPEC 2 and 6): set from a profile's first session; on a merge the earliest session's
initial properties win."""

import json
from datetime import UTC, datetime, timedelta

from tests.builders import initial_properties
from users_app.merges.apply import merge_apply
from users_app.merges.undo import merge_undo
from users_app.models import MergeRecord, Profile
from users_app.services.initial_properties import INITIAL_PROPERTY_FIELDS

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:120.0) Gecko/120.0 Firefox/120.0"


def visit(client, user_id, session_id, path, *, referrer="", when=None, agent=CHROME, calls=(), **utm):
    when = when or datetime.now(UTC)
    properties = {"path": path, "referrer": referrer, **utm}
    body = {
        "app_id": "1000000001",
        "user_id": str(user_id),
        "session_id": session_id,
        "calls": [
            {
                "type": "pageview",
                "properties": properties,
                "timestamp": int(when.timestamp() * 1000),
                "idempotency_key": f"{user_id}-{session_id}-{path}",
            },
            *calls,
        ],
    }
    response = client.post(
        "/api/v1/browser",
        json.dumps(body),
        content_type="text/plain",
        HTTP_USER_AGENT=agent,
        HTTP_CF_IPCOUNTRY="FR",
        HTTP_X_CITY="Lyon",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_first_session_sets_every_initial_property(client, api, environment, settings):
    settings.CAIRN_COUNTRY_HEADER, settings.CAIRN_CITY_HEADER = "HTTP_CF_IPCOUNTRY", "HTTP_X_CITY"
    visit(
        client,
        9001,
        "s1",
        "/blog/launch",
        referrer="https://news.example.org/item?id=1",
        utm_source="hn",
        utm_medium="social",
        utm_campaign="launch",
    )
    assert initial_properties(api, 9001) == {
        "Initial Referrer": "https://news.example.org/item?id=1",
        "Initial Landing Page": "/blog/launch",
        "Initial UTM Source": "hn",
        "Initial UTM Medium": "social",
        "Initial UTM Campaign": "launch",
        "Initial Browser": "Chrome",
        "Initial Device Type": "Desktop",
        "Initial Country": "FR",
        "Initial City": "Lyon",
    }
    assert set(initial_properties(api, 9001)) == set(INITIAL_PROPERTY_FIELDS)


def test_later_sessions_do_not_change_them(client, api, environment):
    visit(client, 9002, "s1", "/first", referrer="https://a.example/", utm_source="a")
    visit(client, 9002, "s2", "/second", referrer="https://b.example/", utm_source="b", agent=FIREFOX_ANDROID)
    values = initial_properties(api, 9002)
    assert (values["Initial Landing Page"], values["Initial Referrer"]) == ("/first", "https://a.example/")
    assert (values["Initial UTM Source"], values["Initial Browser"]) == ("a", "Chrome")


def test_empty_values_are_absent_not_empty_strings(client, api, environment):
    visit(client, 9003, "s1", "/direct")
    values = initial_properties(api, 9003)
    assert values == {"Initial Landing Page": "/direct", "Initial Browser": "Chrome", "Initial Device Type": "Desktop"}


def test_a_late_arriving_earlier_session_takes_over(client, api, environment):
    now = datetime.now(UTC)
    visit(client, 9004, "late", "/today", utm_source="today", when=now)
    # An offline device catches up with a visit from yesterday: that was the first session.
    visit(client, 9004, "early", "/yesterday", when=now - timedelta(days=1), agent=FIREFOX_ANDROID)
    values = initial_properties(api, 9004)
    assert values["Initial Landing Page"] == "/yesterday"
    assert values["Initial Device Type"] == "Mobile"
    assert "Initial UTM Source" not in values  # the first session had none


def test_merge_keeps_the_earlier_anonymous_sessions_initial_properties(client, api, environment, eager_celery):
    now = datetime.now(UTC)
    # The identified profile's first visit was yesterday on a phone...
    visit(
        client,
        9005,
        "phone",
        "/from-phone",
        utm_source="phone",
        when=now - timedelta(hours=20),
        agent=FIREFOX_ANDROID,
        calls=[{"type": "identify", "identity": "heidi"}],
    )
    # ...but an anonymous laptop visit two days ago, identified only today, was earlier still.
    visit(client, 9006, "laptop", "/from-laptop", utm_source="laptop", when=now - timedelta(days=2))
    visit(client, 9006, "laptop2", "/login", when=now, calls=[{"type": "identify", "identity": "heidi"}])
    record = MergeRecord.objects.get()
    merge_apply(merge_id=record.pk)
    heidi = Profile.objects.get(identity="heidi")
    values = initial_properties(api, heidi.user_id)
    assert (values["Initial Landing Page"], values["Initial UTM Source"]) == ("/from-laptop", "laptop")
    assert values["Initial Browser"] == "Chrome"


def test_merge_keeps_the_identified_profiles_when_they_are_earlier(client, api, environment, eager_celery):
    now = datetime.now(UTC)
    visit(
        client,
        9007,
        "phone",
        "/from-phone",
        utm_source="phone",
        when=now - timedelta(days=3),
        agent=FIREFOX_ANDROID,
        calls=[{"type": "identify", "identity": "ivan"}],
    )
    visit(
        client,
        9008,
        "laptop",
        "/from-laptop",
        utm_source="laptop",
        when=now - timedelta(hours=1),
        calls=[{"type": "identify", "identity": "ivan"}],
    )
    merge_apply(merge_id=MergeRecord.objects.get().pk)
    values = initial_properties(api, Profile.objects.get(identity="ivan").user_id)
    assert (values["Initial Landing Page"], values["Initial UTM Source"]) == ("/from-phone", "phone")
    assert values["Initial Device Type"] == "Mobile"


def test_pending_merge_counts_the_merged_sessions_as_earlier(client, api, environment):
    # The merge task has not run (REDIS_URL set, no worker): the anonymous profile's sessions still count
    # as the person's, so a new session on the identified profile is not its "first".
    now = datetime.now(UTC)
    visit(client, 9009, "anon", "/anonymous-landing", utm_source="ads", when=now - timedelta(hours=2))
    # The identity exists already (server-side add_user_properties by identity: a profile with no events).
    api.post("/api/add_user_properties", {"app_id": "1000000001", "identity": "judy", "properties": {"plan": "Free"}})
    answer = visit(
        client, 9009, "anon", "/login", when=now - timedelta(hours=1), calls=[{"type": "identify", "identity": "judy"}]
    )
    judy = Profile.objects.get(identity="judy")
    assert answer["user_id"] == str(judy.user_id)
    # The next page view comes with judy's user_id and the same tracker session id: a new session row.
    visit(client, judy.user_id, "anon", "/dashboard", when=now)
    values = initial_properties(api, judy.user_id)
    assert (values["Initial Landing Page"], values["Initial UTM Source"]) == ("/anonymous-landing", "ads")


# The earlier direct visit's set: no referrer, no UTM.
DIRECT_VISIT_SET = {"Initial Landing Page": "/direct", "Initial Browser": "Chrome", "Initial Device Type": "Desktop"}


def test_a_later_visits_initial_values_never_fill_the_gaps_of_the_earlier_one(client, api, environment, eager_celery):
    # Found by QA: frank came in directly (no referrer, no UTM); a later visit from an ad on another device
    # must not give him an Initial Referrer or UTM: the earliest session's set stays whole.
    now = datetime.now(UTC)
    visit(
        client,
        9010,
        "direct",
        "/direct",
        when=now - timedelta(days=2),
        calls=[{"type": "identify", "identity": "frank"}],
    )
    visit(
        client,
        9011,
        "ad",
        "/from-ad",
        referrer="https://ref.example/",
        utm_medium="cpc",
        when=now - timedelta(days=1),
        agent=FIREFOX_ANDROID,
        calls=[{"type": "identify", "identity": "frank"}],
    )
    merge_apply(merge_id=MergeRecord.objects.get().pk)
    assert initial_properties(api, Profile.objects.get(identity="frank").user_id) == DIRECT_VISIT_SET


def grace_signs_up_after_an_ad_visit(client, user_id: int) -> Profile:
    visit(
        client,
        user_id,
        "ad",
        "/from-ad",
        referrer="https://ref.example/",
        utm_medium="cpc",
        when=datetime.now(UTC) - timedelta(days=1),
        agent=FIREFOX_ANDROID,
        calls=[{"type": "identify", "identity": "grace"}],
    )
    return Profile.objects.get(identity="grace")


def an_earlier_direct_visit_is_merged_in(client, user_id: int) -> MergeRecord:
    """Her laptop's direct visit, three days ago, identified later: its initial set wins whole."""
    visit(
        client,
        user_id,
        "direct",
        "/direct",
        when=datetime.now(UTC) - timedelta(days=3),
        calls=[{"type": "identify", "identity": "grace"}],
    )
    record = MergeRecord.objects.get()
    merge_apply(merge_id=record.pk)
    return record


def test_an_earlier_visits_set_replaces_the_later_one_whole_and_undo_puts_it_back(
    client, api, environment, eager_celery, admin
):
    grace = grace_signs_up_after_an_ad_visit(client, 9012)
    before = initial_properties(api, grace.user_id)
    record = an_earlier_direct_visit_is_merged_in(client, 9013)
    assert initial_properties(api, grace.user_id) == DIRECT_VISIT_SET

    merge_undo(merge_id=record.pk, actor=admin)

    assert initial_properties(api, grace.user_id) == before
    assert before["Initial Referrer"] == "https://ref.example/" and before["Initial UTM Medium"] == "cpc"


def test_undo_never_mixes_a_removed_key_into_a_set_recomputed_since(client, api, environment, eager_celery, admin):
    # Found by review: the merge removed grace's Initial Referrer/UTM Medium (the earlier direct visit's set
    # won). Then an even earlier offline visit of grace's own device arrives: it is her first session and
    # replaces the whole set. Undoing the merge must not put the removed ad-visit keys back next to it.
    grace = grace_signs_up_after_an_ad_visit(client, 9112)
    record = an_earlier_direct_visit_is_merged_in(client, 9113)
    offline_set = {"Initial Landing Page": "/old", "Initial Browser": "Chrome", "Initial Device Type": "Desktop"}
    visit(client, grace.user_id, "offline", "/old", when=datetime.now(UTC) - timedelta(days=5))
    assert initial_properties(api, grace.user_id) == offline_set

    merge_undo(merge_id=record.pk, actor=admin)

    # grace's first session is still the offline one: its set, whole, not mixed with the ad visit's referrer.
    assert initial_properties(api, grace.user_id) == offline_set
