"""Saved reports: the seeded headline report first, save, reopen, edit, duplicate, delete."""

from urllib.parse import parse_qs, urlsplit

import pytest

from reports_app.models import SavedReport
from reports_app.query import report_query_parse
from reports_app.report_types import any_query_parse
from reports_app.selectors import saved_report_list
from reports_app.services import (
    FUNNEL_REPORT_NAME,
    HEADLINE_REPORT_NAME,
    RETENTION_REPORT_NAME,
    saved_report_seed_defaults,
)
from tests.builders import environment_build

pytestmark = pytest.mark.django_db


def test_seeded_headline_report_is_first_and_seeding_twice_is_harmless(environment, signed_in):
    SavedReport.objects.create(environment=environment, name="Aardvark report", params={"measure": "events"})
    saved_report_seed_defaults(environment=environment)
    saved_report_seed_defaults(environment=environment)
    names = [report.name for report in saved_report_list(environment=environment)]
    assert names == [HEADLINE_REPORT_NAME, "Aardvark report", FUNNEL_REPORT_NAME, RETENTION_REPORT_NAME]
    headline = saved_report_list(environment=environment).first()
    query = report_query_parse(headline.params)
    assert (query.measure, query.event, str(query.group_by), query.interval, query.range, query.chart) == (
        "unique_users",
        "Sign Up",
        "user.plan",
        "week",
        "90d",
        "stacked_bar",
    )
    page = signed_in.get("/reports/").content.decode()
    assert page.index(HEADLINE_REPORT_NAME) < page.index("Aardvark report")


def test_the_seeded_funnel_and_retention_reports_reopen_as_the_demo_asks(environment, signed_in):
    saved_report_seed_defaults(environment=environment)
    funnel = any_query_parse(SavedReport.objects.get(name=FUNNEL_REPORT_NAME).params)
    assert (funnel.steps, funnel.window, str(funnel.base.group_by), funnel.base.range) == (
        ("Sign Up", "Activate", "Upgrade"),
        "14d",
        "user.plan",
        "90d",
    )
    retention = SavedReport.objects.get(name=RETENTION_REPORT_NAME)
    opened = signed_in.get(f"/reports/saved/{retention.pk}/", follow=True)
    assert opened.status_code == 200 and opened.context["report_type"] == "retention"
    query = opened.context["report_query"]
    assert (query.start_event, query.return_event, query.interval, query.periods) == ("Sign Up", "pageview", "week", 8)
    assert str(query.base.group_by) == "user.plan" and (query.base.date_to - query.base.date_from).days == 89
    page = opened.content.decode()
    assert 'class="type-badge">Funnel<' in page and 'class="type-badge">Retention<' in page


def test_reopening_the_headline_report_shows_the_last_90_days_by_week(environment, signed_in):
    saved_report_seed_defaults(environment=environment)
    headline = SavedReport.objects.get(name=HEADLINE_REPORT_NAME)
    opened = signed_in.get(f"/reports/saved/{headline.pk}/", follow=True)
    assert opened.status_code == 200
    query = opened.context["query"]
    assert (query.date_to - query.date_from).days == 89
    assert opened.context["open_report"] == headline
    assert opened.context["figure"]["layout"]["barmode"] == "stack"


def test_save_reopen_edit_duplicate_delete(world, signed_in):
    querystring = (
        "measure=events&group_by=user.plan&range=custom&from=2026-11-02&to=2026-11-15&interval=week"
        "&where=user.plan%21%3D%2A&chart=bar"
    )
    saved = signed_in.post(f"/reports/saved/?env={world.app_id}", {"name": "Plans weekly", "query": querystring})
    assert saved.status_code == 302
    report = SavedReport.objects.get(name="Plans weekly")
    assert report.environment == world
    assert report.params["where"] == ["user.plan!=*"]

    reopened = signed_in.get(f"/reports/saved/{report.pk}/", follow=True)
    assert reopened.context["result"].as_dict()["series"] == [{"group": "(none)", "values": [1, 0], "total": 1}]
    assert reopened.context["query"].chart == "bar"

    edited = "measure=unique_users&group_by=user.plan&range=custom&from=2026-11-02&to=2026-11-15&interval=week"
    signed_in.post(f"/reports/saved/{report.pk}/update/", {"name": "Plans weekly (people)", "query": edited})
    report.refresh_from_db()
    assert report.name == "Plans weekly (people)" and report.params["measure"] == "unique_users"

    signed_in.post(f"/reports/saved/{report.pk}/duplicate/")
    copy = SavedReport.objects.get(name="Copy of Plans weekly (people)")
    assert copy.params == report.params and copy.pk != report.pk

    signed_in.post(f"/reports/saved/{report.pk}/delete/")
    assert not SavedReport.objects.filter(pk=report.pk).exists()
    assert SavedReport.objects.filter(pk=copy.pk).exists()


def test_a_saved_reports_url_carries_its_environment(world, signed_in):
    second = environment_build(name="Second", app_id="2000000002", api_key="second-key-000000000000")
    saved_report_seed_defaults(environment=second)
    report = SavedReport.objects.get(environment=second, name=HEADLINE_REPORT_NAME)
    location = signed_in.get(f"/reports/saved/{report.pk}/")["Location"]
    assert parse_qs(urlsplit(location).query)["env"] == [second.app_id]
    # Saved reports belong to an environment: the first environment's list does not show it.
    assert report not in signed_in.get("/reports/", {"env": world.app_id}).context["saved_reports"]
    assert report in signed_in.get("/reports/", {"env": second.app_id}).context["saved_reports"]


def test_saving_without_a_name_is_refused(world, signed_in):
    signed_in.post(f"/reports/saved/?env={world.app_id}", {"name": "  ", "query": "measure=events"})
    assert not SavedReport.objects.exists()


def test_unknown_environment_is_404(world, signed_in):
    assert signed_in.get("/reports/", {"env": "nope"}).status_code == 404


FUNNEL_QUERY = (
    "type=funnel&step=Sign+Up&step=pageview&window=7d&group_by=user.plan&range=custom&from=2026-11-02&to=2026-11-15"
)


def test_a_funnel_and_a_retention_report_save_reopen_edit_and_duplicate(world, signed_in, api):
    saved = signed_in.post(f"/reports/saved/?env={world.app_id}", {"name": "Sign-up to visit", "query": FUNNEL_QUERY})
    assert saved.status_code == 302
    report = SavedReport.objects.get(name="Sign-up to visit")
    assert report.params["type"] == "funnel" and report.params["step"] == ["Sign Up", "pageview"]
    reopened = signed_in.get(f"/reports/saved/{report.pk}/", follow=True)
    assert reopened.context["report_type"] == "funnel" and reopened.context["open_report"] == report
    from_api = api.get(
        "/api/v1/reports/funnel",
        step=["Sign Up", "pageview"],
        window="7d",
        group_by="user.plan",
        **{"from": "2026-11-02", "to": "2026-11-15"},
    ).json()
    assert reopened.context["people_result"].as_dict() == from_api and from_api["series"]

    retention = (
        "type=retention&start_event=Sign+Up&return_event=pageview&interval=day&periods=3"
        "&range=custom&from=2026-11-02&to=2026-11-15"
    )
    signed_in.post(f"/reports/saved/{report.pk}/update/", {"name": "Now a retention report", "query": retention})
    report.refresh_from_db()
    assert report.name == "Now a retention report" and report.params["type"] == "retention"
    assert report.params["interval"] == "day" and report.params["periods"] == "3"
    edited = signed_in.get(f"/reports/saved/{report.pk}/", follow=True)
    assert edited.context["report_type"] == "retention" and edited.context["report_query"].periods == 3

    signed_in.post(f"/reports/saved/{report.pk}/duplicate/")
    copy = SavedReport.objects.get(name="Copy of Now a retention report")
    assert copy.params == report.params
    assert signed_in.get(f"/reports/saved/{copy.pk}/", follow=True).context["report_type"] == "retention"


def test_a_trends_report_saved_before_report_types_opens_as_trends(world, signed_in):
    old = SavedReport.objects.create(environment=world, name="Old", params={"measure": "sessions", "interval": "week"})
    opened = signed_in.get(f"/reports/saved/{old.pk}/", follow=True)
    assert opened.status_code == 200 and opened.context["report_type"] == "trends"
    assert opened.context["query"].measure == "sessions" and "type=" not in opened.context["share_url"]
