"""The profile page (/users/<user_id>/): properties with their set times (searchable), Initial
properties, sessions with their events, merge history, tombstones, and the session page."""

import re
from datetime import timedelta

import pytest

from tests.builders import HOSTILE_IMG, HOSTILE_SCRIPT, days_ago, identify, profile_build, set_properties, track
from users_app.models import MergeRecord, Profile


def page(client, profile: Profile, **params) -> str:
    response = client.get(f"/users/{profile.user_id}/", {"env": profile.environment.app_id, **params})
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</table>", start)]


@pytest.fixture
def alice(environment):
    track(
        environment,
        user_id=11,
        at=days_ago(2),
        session_id="s-one",
        properties={"path": "/pricing", "referrer": "https://news.example/"},
    )
    track(
        environment,
        user_id=11,
        at=days_ago(2, hours=-0.1),
        session_id="s-one",
        event="signup",
        properties={"button": "hero"},
    )
    track(environment, user_id=11, at=days_ago(1), session_id="s-two", properties={"path": "/docs"})
    identify(environment, 11, "alice@example.com")
    set_properties(environment, identity="alice@example.com", plan="Startup", company="Acme")
    set_properties(
        environment,
        identity="alice@example.com",
        **{"Initial Referrer": "https://news.example/", "Initial Landing Page": "/pricing"},
    )
    return Profile.objects.get(identity="alice@example.com")


def test_properties_show_with_when_they_were_set(viewer, alice):
    html = page(viewer, alice)
    table = section(html, "custom-properties")
    assert re.search(r"<td>plan</td><td>Startup</td><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", table)
    assert "<td>company</td><td>Acme</td>" in table
    assert "Initial Referrer" not in table


def test_property_search_matches_keys_and_values(viewer, alice):
    table = section(page(viewer, alice, pq="acm"), "custom-properties")
    assert "<td>company</td>" in table and "<td>plan</td>" not in table
    assert "No property matches" in section(page(viewer, alice, pq="zzz"), "custom-properties")
    assert "<td>plan</td>" in section(page(viewer, alice, pq="\x00"), "custom-properties")  # NUL ignored, no 500


def test_initial_properties_have_their_own_section(viewer, alice):
    initial = section(page(viewer, alice), "initial-properties")
    assert "<td>Initial Referrer</td><td>https://news.example/</td>" in initial
    assert "<td>Initial Landing Page</td><td>/pricing</td>" in initial


def test_sessions_with_duration_event_count_landing_page_referrer_and_events(viewer, alice):
    html = page(viewer, alice)
    sessions = html[html.index('id="sessions"') : html.index('id="merge-history"')]
    bodies = re.findall(r'<tbody class="session">(.*?)</tbody>', sessions, re.S)
    assert len(bodies) == 2
    newest, oldest = bodies
    first_row = re.findall(r"<td>(.*?)</td>", oldest.split("</tr>")[0], re.S)
    assert first_row[1:5] == ["6 min 00 s", "2", "/pricing", "https://news.example/"]
    assert "signup" in oldest and "&quot;button&quot;: &quot;hero&quot;" in oldest
    assert "/docs" in newest
    assert re.search(r'id="session-count">2<', html) and re.search(r'id="event-count">3<', html)


def test_session_page_lists_all_events_of_a_session(viewer, alice):
    session = alice.sessions.get(session_key="s-one")
    response = viewer.get(f"/users/{alice.user_id}/sessions/{session.pk}/", {"env": alice.environment.app_id})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("pageview") < html.index("signup")
    other = profile_build(alice.environment, 99)
    assert viewer.get(f"/users/{other.user_id}/sessions/{session.pk}/").status_code == 404


def test_merge_history_links_each_merge_record_for_admins(staff, viewer, alice, environment):
    track(environment, user_id=22, at=days_ago(0, hours=3), properties={"path": "/blog"})
    identify(environment, 22, "alice@example.com")
    merge = MergeRecord.objects.get(source__user_id=22)
    history = page(staff, alice)[page(staff, alice).index('id="merge-history"') :]
    assert f'href="/admin/users_app/mergerecord/{merge.pk}/change/"' in history
    assert "User 22" in history
    # Viewers see the history but not links into the admin they cannot open.
    viewer_history = page(viewer, alice)
    assert f"#{merge.pk}" in viewer_history and "/admin/users_app/mergerecord/" not in viewer_history
    # The pending merge's session already counts as alice's.
    assert re.search(r'id="session-count">3<', viewer_history)


def test_a_tombstone_page_says_where_it_was_merged_and_links_there(staff, alice, environment):
    track(environment, user_id=33, at=days_ago(0, hours=1), properties={"path": "/old-device"})
    identify(environment, 33, "alice@example.com")
    tombstone = Profile.objects.get(user_id=33)
    html = page(staff, tombstone)
    notice = html[html.index('id="tombstone-notice"') : html.index("</div>", html.index('id="tombstone-notice"'))]
    assert "merged into" in notice
    assert f'href="/users/{alice.user_id}/?env={alice.environment.app_id}"' in notice
    merge = MergeRecord.objects.get(source=tombstone)
    assert f"/admin/users_app/mergerecord/{merge.pk}/change/" in notice
    # Its own history is still shown on it.
    assert "/old-device" in html


def test_unknown_or_invalid_user_ids_are_404(viewer, alice):
    assert viewer.get("/users/12345678/").status_code == 404
    assert viewer.get("/users/not-a-number/").status_code == 404
    assert viewer.get(f"/users/{alice.user_id}/", {"sessions": "garbage"}).status_code == 404


def test_profile_found_without_env_parameter(viewer, alice):
    assert viewer.get(f"/users/{alice.user_id}/").status_code == 200


def test_hostile_values_show_as_text_on_the_profile(viewer, environment):
    track(
        environment,
        user_id=66,
        session_id="h1",
        properties={"path": HOSTILE_SCRIPT, "referrer": HOSTILE_IMG, HOSTILE_IMG: HOSTILE_SCRIPT},
    )
    identify(environment, 66, HOSTILE_IMG)
    set_properties(environment, user_id=66, **{HOSTILE_SCRIPT: HOSTILE_IMG, "Initial Referrer": HOSTILE_SCRIPT})
    html = page(viewer, Profile.objects.get(user_id=66))
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_tombstones_sessions_show_only_its_own_events_of_a_visit_that_logged_in(environment):
    # Found by QA: the anonymous profile's page counted and listed the events its identity sent later in
    # the same visit (after logging in), under "this profile's own history".
    from users_app.selectors.profile_reads import profile_session_page, session_events

    start = days_ago(1)
    track(environment, identity="pm", at=days_ago(3))
    for minute in (0, 1):
        track(environment, user_id=61, at=start + timedelta(minutes=minute), session_id="visit")
    identify(environment, 61, "pm")
    for minute in (2, 3, 4):
        track(environment, identity="pm", event="after login", at=start + timedelta(minutes=minute), session_id="visit")
    tombstone, pm = Profile.objects.get(user_id=61), Profile.objects.get(identity="pm")

    (row,), _ = profile_session_page(tombstone)
    assert row.event_count == 2 and [event.name for event in row.events] == ["pageview", "pageview"]
    _, events = session_events(tombstone, session_pk=row.session.pk)
    assert [event.name for event in events] == ["pageview", "pageview"]
    # The identity's page shows the whole visit.
    visit = next(row for row in profile_session_page(pm)[0] if row.session.session_key == "visit")
    assert visit.event_count == 5
    assert len(session_events(pm, session_pk=visit.session.pk)[1]) == 5
