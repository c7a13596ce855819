"""No URL, query string or path segment answers 500 (SPEC 9), on any page or read API.

Three layers: the 500s found by hand, each pinned with its URL; a sweep that writes every known odd value
(tests/odd_values.py) into every query parameter and path segment of every page and API, signed in as an
admin and as a viewer; and hypothesis combining several odd parameters at once. The inventory below is
checked against the URL configuration and the OpenAPI schema, so a new page or parameter cannot be
forgotten silently. The admin has its own module (test_admin_no_server_errors.py)."""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from events_app.models import Session
from reports_app.models import SavedReport
from tests.builders import identify, person, track, user_build
from tests.conftest import API_KEY
from tests.fuzz_requests import Probe, encoded, server_error, sweep
from tests.odd_values import ODD_VALUES, SWEEP_VALUES, odd_text

pytestmark = pytest.mark.django_db

USER_ID = 4242
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}

USERS_QUERY = [  # users_app/user_query.py
    Probe("period"),
    Probe("from"),
    Probe("to"),
    Probe("from", base=(("to", "2026-01-31"),)),
    Probe("to", base=(("from", "2000-01-01"),)),
    Probe("kind"),
    Probe("q"),
    Probe("ev"),
    Probe("ev", base=(("period", "all"),)),
    Probe("col"),
    Probe("cursor", cursor=True),
    Probe("f0"),
    Probe("f0_op", base=(("f0", "plan"),)),
    Probe("f0_v", base=(("f0", "plan"),)),
    Probe("f0_v", base=(("f0", "plan"), ("f0_op", "in"))),
    Probe("f9"),
    Probe("f9_op", base=(("f9", "plan"),)),
    Probe("f9_v", base=(("f9", "plan"), ("f9_op", "eq"))),
]
REPORT_QUERY = [  # reports_app/query.py
    Probe("measure"),
    Probe("event"),
    Probe("group_by"),
    Probe("group_by", "user.{}"),
    Probe("group_by", "event.{}"),
    Probe("where"),
    Probe("where", "user.plan={}"),
    Probe("where", "user.{}=x"),
    Probe("where", "event.plan!=in:{}"),
    Probe("where", "user.plan=contains:{}"),
    Probe("where", "event.{}!=*"),
    Probe("from"),
    Probe("to"),
    Probe("from", base=(("to", "2026-01-31"),)),
    Probe("interval"),
    Probe("interval", base=(("from", "2000-01-01"),)),
    Probe("range"),
    Probe("chart"),
    Probe("from", base=(("range", "7d"),)),
    Probe("explain"),
]
FUNNEL_QUERY = [  # reports_app/query_funnels.py; the shared parameters as REPORT_QUERY reads them
    Probe("step"),
    Probe("step", base=(("step", "Sign Up"),)),
    Probe("window", base=(("step", "A"), ("step", "B"))),
    Probe("group_by", "user.{}", base=(("step", "A"), ("step", "B"))),
    Probe("group_by", "account.{}", base=(("step", "A"), ("step", "B"))),
    Probe("where", "user.plan={}", base=(("step", "A"), ("step", "B"))),
    Probe("where", "event.{}!=*", base=(("step", "A"), ("step", "B"))),
    Probe("from", base=(("step", "A"), ("step", "B"))),
    Probe("to", base=(("step", "A"), ("step", "B"))),
    Probe("range", base=(("step", "A"), ("step", "B"))),
    Probe("explain", base=(("step", "A"), ("step", "B"))),
]
RETENTION_BASE = (("start_event", "Sign Up"), ("return_event", "pageview"))
RETENTION_QUERY = [
    Probe("start_event", base=(("return_event", "pageview"),)),
    Probe("return_event", base=(("start_event", "Sign Up"),)),
    Probe("interval", base=RETENTION_BASE),
    Probe("periods", base=RETENTION_BASE),
    Probe("group_by", "user.{}", base=RETENTION_BASE),
    Probe("where", "user.plan={}", base=RETENTION_BASE),
    Probe("from", base=RETENTION_BASE),
    Probe("to", base=RETENTION_BASE),
    Probe("range", base=RETENTION_BASE),
    Probe("explain", base=RETENTION_BASE),
]
# The pages parse with the same functions as their APIs: they get each parameter once (the APIs, cheaper to
# call, get every shaped variant above) plus their own page-only parameters.
USERS_PAGE_QUERY = [
    Probe("period"),
    Probe("from"),
    Probe("kind"),
    Probe("q"),
    Probe("ev"),
    Probe("col"),
    Probe("cursor", cursor=True),
    Probe("f0"),
    Probe("f0_op", base=(("f0", "plan"),)),
    Probe("f0_v", base=(("f0", "plan"), ("f0_op", "in"))),
]
REPORT_PAGE_QUERY = [
    Probe("measure"),
    Probe("event"),
    Probe("group_by", "user.{}"),
    Probe("where", "user.plan={}"),
    Probe("from"),
    Probe("interval"),
    Probe("range"),
    Probe("chart"),
    # the page's filter rows, read with page_filters=True
    Probe("filter_field"),
    Probe("filter_op", base=(("filter_field", "user.plan"),)),
    Probe("filter_value", base=(("filter_field", "user.plan"), ("filter_op", "in"))),
    Probe("filter_value", base=(("filter_field", "event.path"), ("filter_op", "contains"))),
]
DEFINE_QUERY = [  # reports_app/views_defined_events.py: one rule's fields
    Probe("event"),
    Probe("selector", base=(("event", "click"),)),
    Probe("text", base=(("event", "click"),)),
    Probe("path", base=(("event", "click"),)),
]
FUNNEL_PAGE_BASE = (("type", "funnel"), ("step", "A"), ("step", "B"))
RETENTION_PAGE_BASE = (("type", "retention"), *RETENTION_BASE)
# The builder's funnel and retention (reports_app/report_types.py, views_funnels.py): the type, the form's own
# fields, and each type's parameters as the page reads them (blank or refused forms included).
PEOPLE_PAGE_QUERY = [
    Probe("type"),
    Probe("step", base=(("type", "funnel"),)),
    Probe("window_count", base=FUNNEL_PAGE_BASE),
    Probe("window_unit", base=(*FUNNEL_PAGE_BASE, ("window_count", "3"))),
    Probe("window", base=FUNNEL_PAGE_BASE),
    Probe("group_by", "user.{}", base=FUNNEL_PAGE_BASE),
    Probe("filter_value", base=(*FUNNEL_PAGE_BASE, ("filter_field", "user.plan"), ("filter_op", "in"))),
    Probe("group_by", "account.{}", base=(("type", "retention"),)),
    Probe("start_event", base=(("type", "retention"),)),
    Probe("periods", base=RETENTION_PAGE_BASE),
    Probe("interval", base=RETENTION_PAGE_BASE),
]
PAGES = {
    "/": [],
    "/users/": [*USERS_PAGE_QUERY, Probe("env"), Probe("count"), Probe("q", base=(("count", "1"),))],
    "/users/count/": [*USERS_PAGE_QUERY, Probe("env")],
    "/users/account/": [Probe("env"), Probe("id")],
    "/users/{user_id}/": [Probe("env"), Probe("pq"), Probe("sessions", cursor=True)],
    "/users/{user_id}/sessions/{session_pk}/": [Probe("env")],
    "/reports/": [*REPORT_PAGE_QUERY, *PEOPLE_PAGE_QUERY, Probe("env"), Probe("report")],
    "/reports/export.csv": [*REPORT_PAGE_QUERY, *PEOPLE_PAGE_QUERY, Probe("env")],
    "/reports/saved/{report_pk}/": [],
    "/reports/defined-events/": [Probe("env")],
    "/reports/defined-events/new/": [*DEFINE_QUERY, Probe("env"), Probe("name")],
    "/reports/defined-events/preview": [*DEFINE_QUERY, Probe("env")],
    "/accounts/login/": [Probe("next")],
}
READ_API = {
    "/api/v1/users": [Probe("identity")],
    "/api/v1/users/{user_id}": [],
    "/api/v1/users/{user_id}/events": [Probe("cursor", cursor=True), Probe("limit")],
    "/api/v1/users/search": [*USERS_QUERY, Probe("limit")],
    "/api/v1/merges": [Probe("identity"), Probe("user_id")],
    "/api/v1/accounts/{account_id}": [],
    "/api/v1/reports/query": REPORT_QUERY,
    "/api/v1/reports/funnel": FUNNEL_QUERY,
    "/api/v1/reports/retention": RETENTION_QUERY,
    "/api/v1/defined-events": [],
    "/api/schema/": [Probe("format"), Probe("lang")],
    "/api/docs/": [],
}
# Path segments, each `{}` filled with every odd value (percent-encoded as a client would send it).
PATHS = [
    "/users/{}/",
    "/users/{}/sessions/1/",
    "/users/{user_id}/sessions/{}/",
    "/reports/saved/{}/",
    "/api/v1/users/{}",
    "/api/v1/users/{}/events",
    "/api/v1/accounts/{}",
    "/api/v1/defined-events/{}",
    "/demo/{}/",
    "/demo/{}/app/",
    "/{}",
    "/api/{}",
]
# Served elsewhere: the admin (its own module), ingest endpoints (bodies: events_app/test_fuzz.py and the
# OpenAPI conformance run), POST-only report actions, logout (POST), and the demo pages (PATHS above).
ELSEWHERE = {
    "/admin/",
    "/api/track",
    "/api/add_user_properties",
    "/api/add_account_properties",
    "/api/identify",
    "/api/v1/identify",
    "/api/v1/browser",
    # Heap's deletion API: a token from auth_token; bodies and paths in the OpenAPI conformance run and
    # tests/users_app/test_deletion_api.py.
    "/api/public/v0/auth_token",
    "/api/public/v0/user_deletion",
    "/api/public/v0/deletion_status/<str:deletion_request_id>",
    # DELETE only (a GET is 405, swept in PATHS): its ids in the OpenAPI conformance run and
    # tests/events_app/test_defined_events.py.
    "/api/v1/defined-events/<str:defined_event_id>",
    "/reports/saved/",
    "/reports/saved/<int:pk>/update/",
    "/reports/saved/<int:pk>/duplicate/",
    "/reports/saved/<int:pk>/delete/",
    "/accounts/logout/",
    # tests/test_deploy_settings.py and tests/test_production.py (they take no parameters)
    "/healthz",
    "/favicon.ico",
}


@pytest.fixture
def site(environment, django_user_model):
    """A person with a session, a merge and a saved report, so the pages have something to show."""
    alice = person(environment, USER_ID, identity="alice", plan="Startup")
    track(environment, user_id=USER_ID + 1, event="Sign Up", properties={"path": "/signup"})
    identify(environment, USER_ID + 1, "alice")
    boss = user_build("boss", password=None, superuser=True)  # no hashing: force_login needs none
    report = SavedReport.objects.create(
        environment=environment, name="Sign-ups", params={"measure": "events"}, created_by=boss
    )
    return {
        "user_id": alice.user_id,
        "session_pk": Session.objects.filter(profile=alice).first().pk,
        "report_pk": report.pk,
        "app_id": environment.app_id,
        "account_id": "acme",
    }


def signed_in(django_user_model, role: str) -> Client:
    client = Client()
    user = django_user_model.objects.filter(username="boss").first() if role == "admin" else None
    client.force_login(user or user_build(role, password=None))
    return client


def filled(url: str, site: dict) -> str:
    return url.format(**site)


# ---- the 500s found by hand ------------------------------------------------------------------------------

KNOWN = [
    # str.isdigit() accepts "²", int() refuses it (the search by user_id of the list and its API)
    ("/users/?q=%C2%B2", 200, False),
    ("/users/count/?q=%C2%B2", 200, False),
    ("/api/v1/users/search?q=%C2%B2", 200, True),
    ("/reports/?report=%C2%B2", 200, False),
    # int() refuses strings of more than 4,300 digits
    ("/reports/?report=" + "1" * 5000, 200, False),
    ("/api/v1/users/search?limit=" + "1" * 5000, 400, True),
    (f"/api/v1/users/{USER_ID}/events?limit=" + "1" * 5000, 400, True),
    # PostgreSQL text cannot hold NUL
    ("/demo/%00/", 404, False),
]


@pytest.mark.parametrize(("url", "status", "with_key"), KNOWN)
def test_the_server_errors_found_by_hand_are_answers_now(site, django_user_model, url, status, with_key):
    client = Client(**BEARER) if with_key else signed_in(django_user_model, "admin")
    assert client.get(url).status_code == status


def test_a_search_by_user_id_still_finds_the_person_and_odd_digits_find_nobody(site, api):
    found = api.get("/api/v1/users/search", q=str(USER_ID), period="all").json()["results"]
    assert [row["user_id"] for row in found] == [str(USER_ID)]
    # "４２４２" (fullwidth) is neither the user_id 4242 nor a prefix of any identity.
    assert api.get("/api/v1/users/search", q="４２４２", period="all").json()["results"] == []


@pytest.mark.parametrize("declared", ["²", "١٢", "-1", "9" * 5000])
def test_a_content_length_that_is_not_a_number_is_a_bad_request(environment, client, declared):
    # Django reads the header with int() when a view reads the body: a ValueError, a 500, before this fix.
    response = client.post("/api/track", b"{}", content_type="application/json", CONTENT_LENGTH=declared)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_content_length"
    form = client.post(
        "/accounts/login/",
        "username=a&password=b",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=declared,
    )
    assert form.status_code == 400


# ---- every parameter of every page and API ---------------------------------------------------------------


VIEWER_VALUES = ["²", "9" * 5000, "\x00", "<script>alert(1)</script>"]


@pytest.mark.parametrize("url", sorted(PAGES))
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_every_odd_value_in_every_page_parameter(site, django_user_model, url, role):
    client = signed_in(django_user_model, role)
    # The viewer's pages run the same code with fewer links and buttons: a few values are enough there.
    odd_values = SWEEP_VALUES if role == "admin" else VIEWER_VALUES
    assert sweep(client, filled(url, site), PAGES[url], odd_values) == []


@pytest.mark.parametrize("url", sorted(READ_API))
def test_every_odd_value_in_every_read_api_parameter(site, url):
    assert sweep(Client(), filled(url, site), READ_API[url], SWEEP_VALUES, **BEARER) == []


@pytest.mark.parametrize("template", PATHS)
def test_every_odd_value_in_every_path_segment(site, django_user_model, template):
    client = signed_in(django_user_model, "admin")
    prefix = "/api/" if template.startswith("/api/") else ""
    failures = []
    for value in [*ODD_VALUES, "%FF", "%ED%A0%80", "%2F"]:
        segment = value if value.startswith("%") and len(value) > 2 else encoded(value)
        url = template.replace("{}", segment).format(**site)
        failures.append(server_error(client, url, **(BEARER if prefix else {})))
    assert [failure for failure in failures if failure] == []


# ---- several odd parameters at once ----------------------------------------------------------------------

ENDPOINTS = {**PAGES, **READ_API}
FUZZ_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("url", sorted(url for url, probes in ENDPOINTS.items() if probes))
def test_random_combinations_of_odd_parameters(site, django_user_model, url):
    client = signed_in(django_user_model, "admin")
    names = sorted({probe.name for probe in ENDPOINTS[url]})
    headers = BEARER if url.startswith("/api/") else {}

    @FUZZ_SETTINGS
    @given(params=st.lists(st.tuples(st.sampled_from(names), odd_text()), max_size=6))
    @example(params=[(name, "²") for name in names])
    def run(params):
        failure = server_error(client, filled(url, site), params, **headers)
        assert failure is None, failure

    run()


# ---- the inventory is complete ---------------------------------------------------------------------------


def _routes(patterns, prefix="/") -> set[str]:
    routes = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) == "admin/":
                routes.add("/admin/")
                continue
            routes |= _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            routes.add(prefix + str(pattern.pattern))
    return routes


def _as_template(route: str) -> str:
    for converter, name in [
        ("<str:user_id>", "{user_id}"),
        ("<str:account_id>", "{account_id}"),
        ("<int:session_pk>", "{session_pk}"),
        ("<int:pk>", "{report_pk}"),
        ("<str:app_id>", "{app_id}"),
    ]:
        route = route.replace(converter, name)
    return route


def test_every_route_is_fuzzed_here_or_elsewhere():
    covered = set(PAGES) | set(READ_API) | ELSEWHERE
    demo = {route for route in _routes(get_resolver().url_patterns) if route.startswith("/demo/")}
    missing = {
        route for route in _routes(get_resolver().url_patterns) - demo - ELSEWHERE if _as_template(route) not in covered
    }
    assert missing == set()
    assert all(template.startswith("/demo/{}/") or template.count("{}") for template in PATHS)


def test_every_read_api_parameter_in_the_schema_is_fuzzed(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path, operations in schema["paths"].items():
        if "get" not in operations or path not in READ_API:
            continue
        documented = {
            parameter["name"] for parameter in operations["get"].get("parameters", []) if parameter["in"] == "query"
        }
        # Filters f1 .. f8 run the same code as f0 and f9, which stand for them.
        middle = {f"f{index}{suffix}" for index in range(1, 9) for suffix in ("", "_op", "_v")}
        assert documented - middle - {probe.name for probe in READ_API[path]} == set(), path
