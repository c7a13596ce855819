"""Writes of reports_app: saved reports."""

from django.db import transaction

from reports_app.models import SavedReport
from reports_app.query import PropertyRef, ReportQuery
from users_app.errors import InvalidInput
from users_app.models import Environment

HEADLINE_REPORT_NAME = "Sign-ups per week by plan"
SIGN_UP_EVENT = "Sign Up"
NAME_MAX_LENGTH = 200


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidInput("missing_field", "Give the report a name.", "name")
    if "\x00" in name:
        raise InvalidInput("invalid_field", "A report name must not contain NUL characters.", "name")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput("invalid_field", f"A report name is at most {NAME_MAX_LENGTH} characters.", "name")
    return name


def saved_report_create(*, environment: Environment, name: str, query: ReportQuery, user=None,
                        pinned: bool = False) -> SavedReport:
    return SavedReport.objects.create(
        environment=environment, name=_clean_name(name), params=query.to_params(), pinned=pinned,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def saved_report_update(*, report: SavedReport, name: str, query: ReportQuery) -> SavedReport:
    report.name = _clean_name(name)
    report.params = query.to_params()
    report.save(update_fields=["name", "params", "updated_at"])
    return report


def saved_report_duplicate(*, report: SavedReport, user=None) -> SavedReport:
    name = f"Copy of {report.name}"[:NAME_MAX_LENGTH]
    return SavedReport.objects.create(
        environment=report.environment, name=name, params=dict(report.params), pinned=False,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def saved_report_delete(*, report: SavedReport) -> None:
    report.delete()


def headline_report_query() -> ReportQuery:
    return ReportQuery(
        measure="unique_users", event=SIGN_UP_EVENT, group_by=PropertyRef("user", "plan"), interval="week",
        range="90d", chart="stacked_bar",
    )


def saved_report_seed_defaults(*, environment: Environment) -> None:
    """The saved reports a new install shows; the headline one first (pinned). Safe to call again."""
    with transaction.atomic():
        if not SavedReport.objects.filter(environment=environment, name=HEADLINE_REPORT_NAME).exists():
            SavedReport.objects.create(
                environment=environment, name=HEADLINE_REPORT_NAME, params=headline_report_query().to_params(),
                pinned=True,
            )
