"""Sessions (SPEC 6): the tracker's session id, or 30 minutes of inactivity for server calls; each session
knows its start, end, landing page, referrer, UTM values, browser, device type and location."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from events_app.models import Session

CHROME_DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)


def browser_post(client, calls, *, user_id="7000", session_id="aaaaaaaaaaaaaaaa", **headers):
    body = {"app_id": "1000000001", "user_id": user_id, "session_id": session_id, "calls": calls}
    response = client.post("/api/v1/browser", json.dumps(body), content_type="text/plain", **headers)
    assert response.status_code == 200, response.content
    return response.json()


def landing(path="/pricing", referrer="https://www.google.com/", **extra):
    query = "&".join(f"{k}={v}" for k, v in extra.items())
    return {
        "type": "pageview",
        "idempotency_key": f"pv-{path}-{query}",
        "properties": {"path": path, "query": f"?{query}" if query else "", "referrer": referrer, **extra},
    }


def test_a_tracker_session_records_landing_page_referrer_utm_and_device(client, environment):
    browser_post(
        client,
        [
            landing(utm_source="newsletter", utm_medium="email", utm_campaign="spring"),
            {"type": "track", "event": "Clicked", "properties": {"path": "/other"}},
        ],
        HTTP_USER_AGENT=SAFARI_IPHONE,
    )
    session = Session.objects.get()
    assert session.session_key == "aaaaaaaaaaaaaaaa"
    assert (session.landing_page, session.referrer) == ("/pricing", "https://www.google.com/")
    assert (session.utm_source, session.utm_medium, session.utm_campaign) == ("newsletter", "email", "spring")
    assert (session.browser, session.device_type) == ("Mobile Safari", "Mobile")
    assert session.events.count() == 2
    assert session.started_at <= session.ended_at


@pytest.mark.parametrize(
    ("agent", "browser", "device"),
    [
        (CHROME_DESKTOP, "Chrome", "Desktop"),
        (SAFARI_IPHONE, "Mobile Safari", "Mobile"),
        (IPAD, "Mobile Safari", "Tablet"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Googlebot", "Bot"),
    ],
)
def test_browser_and_device_type_come_from_the_user_agent(client, environment, agent, browser, device):
    browser_post(client, [landing()], HTTP_USER_AGENT=agent)
    session = Session.objects.get()
    assert (session.browser, session.device_type) == (browser, device)


def test_utm_values_are_read_from_the_url_when_not_sent_apart(api, environment):
    api.post(
        "/api/track",
        {
            "app_id": "1000000001",
            "user_id": "7001",
            "event": "pageview",
            "properties": {"url": "https://shop.example.com/p?utm_source=ads&utm_campaign=x"},
        },
    )
    session = Session.objects.get()
    assert (session.landing_page, session.utm_source, session.utm_campaign) == ("/p", "ads", "x")


def test_two_tracker_session_ids_are_two_sessions(client, environment):
    browser_post(client, [landing("/a")], session_id="1111111111111111")
    browser_post(client, [landing("/b")], session_id="2222222222222222")
    assert sorted(Session.objects.values_list("landing_page", flat=True)) == ["/a", "/b"]


def test_server_calls_without_session_id_split_after_30_minutes_of_inactivity(api, environment):
    start = datetime.now(UTC) - timedelta(hours=3)
    moments = [start, start + timedelta(minutes=20), start + timedelta(minutes=45), start + timedelta(minutes=80)]
    api.post(
        "/api/track",
        {
            "app_id": "1000000001",
            "events": [{"identity": "erin", "event": "Work", "timestamp": moment.isoformat()} for moment in moments],
        },
    )
    sessions = list(Session.objects.order_by("started_at"))
    # 0 -> 20 -> 45 min stay within 30 min of each other; 80 min is 35 min after the last: a new session.
    assert [(s.started_at, s.ended_at) for s in sessions] == [(moments[0], moments[2]), (moments[3], moments[3])]
    assert [s.events.count() for s in sessions] == [3, 1]


def test_location_from_the_trusted_proxy_headers(client, environment, settings):
    settings.CAIRN_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    settings.CAIRN_CITY_HEADER = "HTTP_X_CITY"
    browser_post(client, [landing()], HTTP_CF_IPCOUNTRY="NL", HTTP_X_CITY="Utrecht")
    assert Session.objects.values_list("country", "city").get() == ("NL", "Utrecht")


def test_a_server_calls_backend_user_agent_and_location_are_not_the_persons(client, api, environment, settings):
    # Found by QA: every server-created profile got Initial Browser "Python Requests", Device Type "Desktop"
    # (and the data centre's country). A server call's request describes the backend, not the person.
    settings.CAIRN_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    client.post(
        "/api/track",
        json.dumps({"app_id": "1000000001", "user_id": "7100", "event": "Upgrade"}),
        content_type="application/json",
        HTTP_USER_AGENT="python-requests/2.32.3",
        HTTP_CF_IPCOUNTRY="US",
    )
    session = Session.objects.get()
    assert (session.browser, session.device_type, session.country, session.city) == ("", "", "", "")
    properties = api.get("/api/v1/users/7100").json()["properties"]
    assert not [key for key in properties if key.startswith("Initial ")]


def test_location_is_empty_without_geoip_or_headers(client, environment, settings):
    settings.CAIRN_COUNTRY_HEADER = ""
    browser_post(client, [landing()], HTTP_CF_IPCOUNTRY="NL")  # an untrusted header is ignored
    assert Session.objects.values_list("country", "city").get() == ("", "")


@pytest.fixture
def geoip_database(tmp_path, settings):
    """A small GeoIP2 City database in MaxMind's format, built here."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-City",
        languages=["en"],
        description="Cairn test database",
    )
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "city": {"names": {"en": "London"}},
        },
    )
    writer.insert_network(
        IPSet(["2001:db8::/32"]),
        {
            "country": {"iso_code": "DE", "names": {"en": "Germany"}},
            "city": {"names": {"en": "Berlin"}},
        },
    )
    path = tmp_path / "city.mmdb"
    writer.to_db_file(str(path))
    settings.GEOIP_PATH = str(path)
    settings.CAIRN_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    return path


@pytest.mark.parametrize(
    ("address", "place"),
    [
        ("81.2.69.160", ("United Kingdom", "London")),
        ("2001:db8::1", ("Germany", "Berlin")),
        ("203.0.113.9", ("", "")),  # not in the database: empty, not the proxy header
    ],
)
def test_location_from_a_geoip2_database_wins_over_headers(client, environment, geoip_database, address, place):
    browser_post(client, [landing()], REMOTE_ADDR=address, HTTP_CF_IPCOUNTRY="NL")
    assert Session.objects.values_list("country", "city").get() == place


def test_identify_switching_users_mid_visit_keeps_the_visits_landing_page(client, environment):
    # Rule 6 in the middle of a visit: the new profile's session is the same browser visit, so it keeps
    # the landing page, referrer and UTM values the visit started with.
    browser_post(client, [{"type": "identify", "identity": "frank"}])
    answer = browser_post(
        client,
        [
            landing("/welcome", utm_source="ads"),
            {"type": "identify", "identity": "grace"},
            {"type": "track", "event": "Sign Up", "idempotency_key": "su"},
        ],
    )
    grace_session = Session.objects.get(profile__identity="grace")
    assert grace_session.profile.user_id == int(answer["user_id"])
    assert (grace_session.landing_page, grace_session.utm_source) == ("/welcome", "ads")
    assert grace_session.session_key == "aaaaaaaaaaaaaaaa"
