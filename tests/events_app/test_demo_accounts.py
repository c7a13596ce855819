"""The demo's companies (SPEC 11): signed-up people have an account, the accounts have tiers and industries, so
an account report on the demo has groups worth looking at."""

import pytest
from django.utils import timezone

from events_app.services.demo_data import ACCOUNT_ID_PROPERTY, demo_companies, demo_seed
from reports_app.query import PropertyRef, ReportQuery
from reports_app.selectors import report_series
from users_app.models import AccountProperty, UserProperty, property_key_hash

pytestmark = pytest.mark.django_db


def test_the_demo_has_companies_with_people_and_an_account_report(db):
    summary = demo_seed(people=150, days=20, seed=3)
    environment = summary.environment
    assert environment.account_id_property == ACCOUNT_ID_PROPERTY
    companies = demo_companies(3)
    assert AccountProperty.objects.filter(environment=environment, key="tier").count() == len(companies)
    with_account = UserProperty.objects.filter(
        profile__environment=environment, key_hash=property_key_hash(ACCOUNT_ID_PROPERTY)
    )
    assert with_account.count() > 20
    today = timezone.now().date()
    query = ReportQuery(
        measure="unique_accounts",
        event="Sign Up",
        group_by=PropertyRef("account", "tier"),
        date_from=today - timezone.timedelta(days=30),
        date_to=today,
        interval="week",
        range="custom",
    )
    groups = {series.group: series.total for series in report_series(environment=environment, query=query).series}
    assert set(groups) <= {"Free", "Startup", "Growth", "Enterprise"} and len(groups) >= 3
    assert sum(groups.values()) <= len(companies)
