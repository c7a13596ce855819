"""The Users view (/users/) and its JSON twin (/api/v1/users/search): period, filters, search, columns,
keyset pages, the count, tombstones and pending merges."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import days_ago, identify, person, set_properties, track
from tests.conftest import OTHER_API_KEY
from users_app.models import MergeRecord, Profile


def listed(response) -> list[str]:
    """The user names of the list, in order."""
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    table = html[html.index('id="users-table"') :]
    return re.findall(r'class="user-link">([^<]*)</a>', table)


@pytest.fixture
def people(environment):
    person(environment, 1001, identity="alice@example.com", plan="Startup", at=days_ago(1))
    person(environment, 1002, identity="bob@example.com", plan="Growth", at=days_ago(2))
    person(environment, 1003, plan="Startup", at=days_ago(3))  # anonymous
    person(environment, 1004, identity="carol@example.com", at=days_ago(4))  # no plan
    person(environment, 1005, identity="dave@example.com", plan="Enterprise", at=days_ago(20))  # not this week
    return environment


def test_default_lists_users_active_in_the_last_7_days_newest_first(viewer, people):
    names = listed(viewer.get("/users/"))
    assert names == ["alice@example.com", "bob@example.com", "User 1003", "carol@example.com"]


def test_period_30_days_and_all_time_include_older_users(viewer, people):
    assert "dave@example.com" in listed(viewer.get("/users/", {"period": "30d"}))
    # All time also lists a profile never seen (created by a server call with no events), last.
    set_properties(people, identity="erin@example.com", plan="Free")
    names = listed(viewer.get("/users/", {"period": "all"}))
    assert names[-2:] == ["dave@example.com", "erin@example.com"]
    assert "erin@example.com" not in listed(viewer.get("/users/", {"period": "90d"}))


def test_extreme_dates_are_fine(viewer, people):
    assert len(listed(viewer.get("/users/", {"from": "0001-01-01", "to": "9999-12-31"}))) == 5


def test_custom_dates_in_the_past_list_only_users_active_then(viewer, people):
    start, end = days_ago(21).date(), days_ago(19).date()
    names = listed(viewer.get("/users/", {"from": start.isoformat(), "to": end.isoformat()}))
    assert names == ["dave@example.com"]


def test_rows_show_first_seen_last_seen_sessions_and_the_plan_column(viewer, people):
    html = viewer.get("/users/").content.decode()
    row = re.search(r"alice@example\.com</a>.*?</tr>", html, re.S).group(0)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    first_seen, last_seen, sessions, plan = cells[:4]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", first_seen)
    assert sessions == "1"
    assert plan == "Startup"
    assert "<th>plan</th>" in html


def test_filter_plan_is_startup(viewer, people):
    names = listed(viewer.get("/users/", {"f0": "plan", "f0_op": "eq", "f0_v": "Startup"}))
    assert names == ["alice@example.com", "User 1003"]


def test_filter_plan_is_one_of(viewer, people):
    names = listed(viewer.get("/users/", {"f0": "plan", "f0_op": "in", "f0_v": ["Growth", "Startup"]}))
    assert names == ["alice@example.com", "bob@example.com", "User 1003"]


def test_filter_property_is_set_and_not_set(viewer, people):
    assert listed(viewer.get("/users/", {"f0": "plan", "f0_op": "set"})) == [
        "alice@example.com",
        "bob@example.com",
        "User 1003",
    ]
    assert listed(viewer.get("/users/", {"f0": "plan", "f0_op": "notset"})) == ["carol@example.com"]


def test_filters_combine_with_identified_and_anonymous(viewer, people):
    startup = {"f0": "plan", "f0_op": "eq", "f0_v": "Startup"}
    assert listed(viewer.get("/users/", {**startup, "kind": "identified"})) == ["alice@example.com"]
    assert listed(viewer.get("/users/", {**startup, "kind": "anonymous"})) == ["User 1003"]


def test_search_by_identity_prefix_user_id_and_merged_away_user_id(viewer, people):
    assert listed(viewer.get("/users/", {"q": "bob@"})) == ["bob@example.com"]
    assert listed(viewer.get("/users/", {"q": "1003"})) == ["User 1003"]
    track(people, user_id=2001, at=days_ago(0, hours=1))
    identify(people, 2001, "alice@example.com")  # 2001 merges into alice
    assert listed(viewer.get("/users/", {"q": "2001"})) == ["alice@example.com"]
    assert listed(viewer.get("/users/", {"q": "nobody"})) == []


def test_tombstones_are_not_listed_and_pending_merges_count_their_sessions(viewer, people):
    track(people, user_id=3001, at=days_ago(0, hours=2))
    track(people, user_id=3001, at=days_ago(0, hours=1))  # same session (within 30 minutes? no: 1 h apart)
    identify(people, 3001, "bob@example.com")  # the merge task has not run: sessions still on 3001
    merge = MergeRecord.objects.get(source__user_id=3001)
    assert merge.status == MergeRecord.Status.PENDING
    html = viewer.get("/users/").content.decode()
    assert "User 3001" not in listed(viewer.get("/users/"))
    row = re.search(r"bob@example\.com</a>.*?</tr>", html, re.S).group(0)
    assert re.findall(r"<td>(.*?)</td>", row, re.S)[2] == "3"  # its own 1 + the two pending
    assert listed(viewer.get("/users/"))[0] == "bob@example.com"  # last seen follows the merge


def test_columns_are_chosen_in_the_url(viewer, people):
    set_properties(people, identity="alice@example.com", company="Acme")
    html = viewer.get("/users/", {"col": ["company", "plan"]}).content.decode()
    assert "<th>company</th>" in html and "<th>plan</th>" in html
    row = re.search(r"alice@example\.com</a>.*?</tr>", html, re.S).group(0)
    assert re.findall(r"<td>(.*?)</td>", row, re.S)[3:5] == ["Acme", "Startup"]
    no_columns = viewer.get("/users/", {"col": ""}).content.decode()
    assert "<th>plan</th>" not in no_columns


def test_keyset_pages_cover_every_user_once(viewer, environment):
    items = [
        {"user_id": str(5000 + n), "event": "pageview", "timestamp": days_ago(0, hours=n / 10).isoformat()}
        for n in range(57)
    ]
    from events_app.services.ingest import track_ingest

    assert track_ingest(environment=environment, items=items).accepted == 57
    first = viewer.get("/users/")
    first_names = listed(first)
    assert len(first_names) == 50
    assert viewer.get("/users/count/").json()["value"] == 57
    next_url = re.search(r'href="([^"]+)" rel="next"', first.content.decode()).group(1).replace("&amp;", "&")
    second_names = listed(viewer.get(next_url))
    assert len(second_names) == 7
    assert set(first_names).isdisjoint(second_names)
    assert first_names + second_names == [f"User {5000 + n}" for n in range(57)]


def test_not_set_filters_scan_a_bounded_window_per_page_and_continue(viewer, api, environment, monkeypatch):
    from users_app.selectors import user_search as selectors

    monkeypatch.setattr(selectors, "SCAN_WINDOW", 2)
    monkeypatch.setattr(selectors, "SCAN_WINDOWS_PER_PAGE", 1)
    for n in range(5):
        person(environment, 7000 + n, plan="Free", at=days_ago(0, hours=n + 1))
    person(environment, 7010, at=days_ago(0, hours=10))  # the only one without a plan, the oldest
    not_set = {"f0": "plan", "f0_op": "notset"}
    first = viewer.get("/users/", not_set)
    assert listed(first) == []
    assert 'id="searched-until"' in first.content.decode()
    found, pages = [], 0
    params = dict(not_set)
    while True:
        answer = api.get("/api/v1/users/search", **params).json()
        found += [row["display_name"] for row in answer["results"]]
        pages += 1
        if not answer["next"]:
            break
        assert answer["searched_until"]
        params = {**not_set, "cursor": answer["next"]}
    assert found == ["User 7010"] and pages == 4  # 6 users, 2 scanned per page, then an empty last page


def test_count_of_matching_users(viewer, people):
    startup = {"f0": "plan", "f0_op": "eq", "f0_v": "Startup"}
    # The page does not wait for the count: its script asks /users/count/ with the same filters.
    first = viewer.get("/users/", startup).content.decode()
    assert "Counting users" in first
    url = re.search(r'id="user-count" data-url="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert viewer.get(url).json() == {"value": 2, "capped": False, "text": "2 users match"}
    # Counted once per filter change: the next visit shows it at once.
    assert re.search(r"2 users\s+match", viewer.get("/users/", startup).content.decode())
    # Without JavaScript, count=1 counts on the page itself.
    growth = {"f0": "plan", "f0_op": "eq", "f0_v": "Growth", "count": "1"}
    assert re.search(r"1 user\s+matches", viewer.get("/users/", growth).content.decode())
    assert viewer.get("/users/count/", {"period": "bogus"}).status_code == 400


def test_count_is_bounded(people):
    from users_app.selectors import user_count
    from users_app.user_query import parse_user_query
    from users_app.views import count_text

    filters = parse_user_query({}).filters  # 4 users active this week
    assert user_count(environment=people, filters=filters, cap=3).as_dict() == {"value": 3, "capped": True}
    assert count_text(user_count(environment=people, filters=filters, cap=3)) == "More than 3 users match"
    assert user_count(environment=people, filters=filters, cap=4).as_dict() == {"value": 4, "capped": False}


@pytest.mark.parametrize(
    "params",
    [
        {"period": "forever"},
        {"from": "yesterday"},
        {"from": "2026-02-02", "to": "2026-01-01"},
        {"f0": "plan", "f0_op": "like", "f0_v": "x"},
        {"f0": "plan", "f0_op": "eq"},
        {"kind": "robots"},
        {"cursor": "not-a-cursor"},
        {"q": "a\x00b"},  # PostgreSQL text cannot hold NUL: refused before the query
        {"f0": "plan", "f0_v": "Startup\x00"},
        {"f0": "pl\x00an", "f0_op": "set"},
        {"col": "plan\x00"},
    ],
)
def test_bad_parameters_are_a_400_page_with_the_reason(viewer, people, params):
    response = viewer.get("/users/", params)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()


def test_environment_choice_keeps_environments_apart(viewer, people, other_environment):
    person(other_environment, 9001, identity="zed@other.example", plan="Startup")
    assert listed(viewer.get("/users/", {"env": other_environment.app_id})) == ["zed@other.example"]
    assert "zed@other.example" not in listed(viewer.get("/users/", {"env": people.app_id}))
    assert viewer.get("/users/", {"env": "no-such-app"}).status_code == 404


# ---- the same filters through the read API ----------------------------------------------------------------


def test_search_api_answers_the_same_users_as_the_page(api, viewer, people):
    params = {"f0": "plan", "f0_op": "in", "f0_v": ["Startup", "Growth"], "col": ["plan"]}
    answer = api.get("/api/v1/users/search", **params)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [row["display_name"] for row in body["results"]] == listed(viewer.get("/users/", params))
    alice = body["results"][0]
    assert alice["identity"] == "alice@example.com"
    assert alice["properties"] == {"plan": "Startup"}
    assert alice["session_count"] == 1
    assert body["count"] == {"value": 3, "capped": False}
    assert body["next"] is None


def test_search_api_pages_with_a_cursor(api, people):
    first = api.get("/api/v1/users/search", limit="2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = api.get("/api/v1/users/search", limit="2", cursor=first["next"]).json()
    assert [r["user_id"] for r in second["results"]] == [
        str(Profile.objects.get(user_id=1003).user_id),
        str(Profile.objects.get(identity="carol@example.com").user_id),
    ]
    assert second["count"] is None


def test_search_api_needs_the_key_and_sees_only_its_environment(api, people, other_environment):
    assert api.get("/api/v1/users/search", api_key="").status_code == 401
    assert api.get("/api/v1/users/search", api_key=OTHER_API_KEY).json()["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"period": "x"},
        {"f0": "plan", "f0_op": "zz"},
        {"cursor": "%%%"},
        {"limit": "0"},
        {"limit": "abc"},
        {"q": "\x00"},
        {"f0": "plan", "f0_v": "\x00"},
    ],
)
def test_search_api_bad_input_is_400_with_the_error_body(api, people, params):
    answer = api.get("/api/v1/users/search", **params)
    assert answer.status_code == 400
    assert set(answer.json()["error"]) == {"code", "message", "field"}


PARAM_NAMES = ["period", "from", "to", "kind", "q", "f0", "f0_op", "f0_v", "f1", "f1_op", "col", "cursor", "limit"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(PARAM_NAMES), st.text(max_size=40), max_size=6))
def test_any_query_string_is_answered_200_or_400(viewer, api, people, params):
    for response in (
        viewer.get("/users/", params),
        api.get("/api/v1/users/search", **params),
        viewer.get("/users/count/", params),
    ):
        assert response.status_code in (200, 400), (params, response.status_code)
