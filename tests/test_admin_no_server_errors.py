"""No admin URL answers 500 (SPEC 9): the changelists of every registered model (search `q`, ordering `o`,
page `p`, every filter, any other lookup), object pages by odd ids, and the admin's own extra pages.

Django's changelist accepted any lookup on a model's own fields (`?identity__regex=(`,
`?user_id__range=x`, `?first_seen__year=-1`): PostgreSQL or Python refused them, a 500. The admin now
accepts the filters it offers (config/kernel/admin_site.py, OfferedLookupsOnly) and answers anything else 400."""

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import identify, person, signed_in_as, track, user_build
from tests.fuzz_requests import Probe, answer, encoded, server_error, sweep
from tests.odd_values import SWEEP_VALUES, odd_text
from users_app.models import MergeRecord

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
MODELS = [model._meta.label for model, _ in REGISTERED]
# Lookups Django registers on fields that the spike found failing on some field (each with a value that
# breaks it); every other lookup is refused the same way, which test_only_offered_lookups_are_allowed checks.
# For the parameters Django's generic admin code reads (ordering, page, filters of Django's own classes): the
# values that break number and text parsing, rather than the whole sweep list.
GENERIC = ("²", "١٢", "-1", "99999999999999999999999", "9" * 5000, "x" * 5000, "\x00", "(", "'", "1.-2.x")
BREAKING_LOOKUPS = {
    "regex": "(",
    "iregex": "[",
    "range": "x",
    "contained_by": "x",
    "year": "-1",
    "iso_year": "99999",
    "in": "99999999999999999999999",
}


@pytest.fixture
def boss(db):
    """conftest's, but with no usable password (the admin's pages of users show this one)."""
    return user_build("boss", password=None, superuser=True)


@pytest.fixture
def staff(environment, boss):
    """Signed in as an admin, with a profile, a session, an event and a merge for the pages to show."""
    person(environment, 4242, identity="alice", plan="Startup")
    track(environment, user_id=4243, event="Sign Up")
    identify(environment, 4243, "alice")
    client = Client()
    client.force_login(boss)
    return client


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def filter_parameters(model, model_admin, boss) -> list[str]:
    request = RequestFactory().get(changelist_url(model))
    request.user = boss
    changelist = model_admin.get_changelist_instance(request)
    return sorted({name for spec in changelist.filter_specs for name in spec.expected_parameters()})


def changelist_probes(model, model_admin, boss) -> list[Probe]:
    generic = ["o", "p", "_to_field", "e", *filter_parameters(model, model_admin, boss)]
    # Cairn's own filters (SimpleListFilter subclasses in users_app/admin/) get every value, like `q`.
    own = {
        spec.parameter_name
        for spec in model_admin.get_list_filter(None)
        if isinstance(spec, type) and spec.__module__.startswith(("users_app", "events_app", "reports_app"))
    }
    return [
        Probe("q"),
        Probe("q", base=(("o", "-1"),)),
        *(Probe(name) for name in sorted(own)),
        *(Probe(name, only=GENERIC) for name in generic if name not in own),
    ]


@pytest.mark.parametrize("label", MODELS)
def test_every_odd_value_in_every_changelist_parameter(staff, boss, label):
    model, model_admin = next(item for item in REGISTERED if item[0]._meta.label == label)
    assert sweep(staff, changelist_url(model), changelist_probes(model, model_admin, boss)) == []


@pytest.mark.parametrize("label", MODELS)
def test_lookups_the_changelist_does_not_offer_are_refused(staff, boss, label):
    model, model_admin = next(item for item in REGISTERED if item[0]._meta.label == label)
    request = RequestFactory().get("/admin/")
    request.user = boss
    # An offered one (a date hierarchy's year, say) with a value it cannot read is Django's redirect to ?e=1.
    offered = model_admin.offered_lookups(request)
    answers = {
        answer(staff, changelist_url(model), [(f"{field.name}__{lookup}", value)])
        for field in model._meta.concrete_fields
        for lookup, value in BREAKING_LOOKUPS.items()
        if lookup in field.get_lookups() and f"{field.name}__{lookup}" not in offered
    }
    assert answers <= {400}


def test_only_offered_lookups_are_allowed(boss):
    request = RequestFactory().get("/admin/")
    request.user = boss
    for model, model_admin in REGISTERED:
        offered = model_admin.offered_lookups(request)
        for field in model._meta.concrete_fields:
            for lookup in field.get_lookups():
                name = f"{field.name}__{lookup}"
                assert model_admin.lookup_allowed(name, "x", request) == (name in offered), name


def test_the_filters_the_admin_offers_and_links_to_still_work(staff, environment):
    merges = changelist_url(MergeRecord)
    assert staff.get(merges, {"identity__exact": "alice"}).status_code == 200  # linked from the identities page
    assert staff.get(merges, {"status__exact": "done"}).status_code == 200
    assert staff.get(merges, {"environment__id__exact": str(environment.pk)}).status_code == 200
    assert staff.get(merges, {"requested_at__gte": "2000-01-01"}).status_code == 200
    assert staff.get(merges, {"absorbing": "alice"}).status_code == 200
    users = staff.get("/admin/auth/user/", {"is_staff__exact": "1"})  # Django's own admin, filtered
    assert users.status_code == 200 and "boss" in users.content.decode()


@pytest.mark.parametrize("label", MODELS)
def test_every_odd_object_id(staff, label):
    model, _ = next(item for item in REGISTERED if item[0]._meta.label == label)
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}"
    failures = [server_error(staff, f"{base}/{encoded(value)}/change/") for value in [*GENERIC, "%FF"]]
    failures += [
        server_error(staff, f"{base}/{encoded(value)}/{page}/")
        for value in GENERIC[:3]
        for page in ("history", "delete")
    ]
    first = model.objects.order_by("pk").first()
    if first is not None:
        failures += sweep(
            staff,
            f"{base}/{first.pk}/change/",
            [Probe("_changelist_filters", only=GENERIC), Probe("_to_field", only=GENERIC)],
        )
    assert [failure for failure in failures if failure] == []


EXTRA_PAGES = {
    "/admin/users_app/mergerecord/identities/": [Probe("window")],
    "/admin/autocomplete/": [
        Probe("term", base=(("app_label", "users_app"), ("model_name", "profile"), ("field_name", "merged_into"))),
        Probe("app_label"),
        Probe("model_name", base=(("app_label", "users_app"),)),
    ],
    "/admin/login/": [Probe("next")],
    "/admin/": [Probe("q")],
    "/admin/jsi18n/": [],
}
EXTRA_PATHS = [
    "/admin/users_app/mergerecord/{}/approve/",
    "/admin/users_app/environment/{}/rotate-key/",
    "/admin/r/{}/1/",
    "/admin/r/1/{}/",
    "/admin/{}/",
    "/admin/users_app/{}/",
]


@pytest.mark.parametrize("url", sorted(EXTRA_PAGES))
def test_the_admins_own_pages(staff, url):
    assert sweep(staff, url, EXTRA_PAGES[url]) == []


@pytest.mark.parametrize("template", EXTRA_PATHS)
def test_the_admins_own_paths(staff, template):
    failures = [server_error(staff, template.format(encoded(value))) for value in SWEEP_VALUES]
    assert [failure for failure in failures if failure] == []


def test_a_viewer_gets_403_whatever_the_query(environment, django_user_model):
    viewer = signed_in_as("viewer", password=None)
    for model, _ in REGISTERED:
        for value in ["²", "\x00", "("]:
            response = viewer.get(changelist_url(model), {"q": value, "identity__regex": value})
            assert response.status_code == 403, (model, value)


@pytest.mark.parametrize("label", MODELS)
def test_random_changelist_queries(staff, boss, label):
    model, model_admin = next(item for item in REGISTERED if item[0]._meta.label == label)
    fields = [field.name for field in model._meta.concrete_fields]
    names = [probe.name for probe in changelist_probes(model, model_admin, boss)]
    lookups = sorted({lookup for field in model._meta.concrete_fields for lookup in field.get_lookups()})
    parameter = st.sampled_from(names) | st.builds(
        lambda field, lookup: f"{field}__{lookup}", st.sampled_from(fields), st.sampled_from(lookups)
    )

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(params=st.lists(st.tuples(parameter, odd_text()), max_size=4))
    def run(params):
        failure = server_error(staff, changelist_url(model), params)
        assert failure is None, failure

    run()
