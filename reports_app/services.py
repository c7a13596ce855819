"""Writes of reports_app: saved reports, each change audited.

The audit trail is Django's admin log (`LogEntry`), not a model of our own: the admin already writes it for
its own edits and shows it as the report's History page, so changes made on the report page and changes made
in the admin land in one trail that staff know where to find, with no table, migration or page of ours. Its
`change_message` holds JSON `{"action", "before", "after"}` (the admin shows a message that does not start
with "[" as it is). What it costs: `LogEntry.user` is required and cascades, so only changes by a signed-in
person are audited (seeding is not), and deleting a user account deletes its entries (deactivate accounts
instead); a model of our own could keep those, but would be a second trail beside the admin's.
"""

import json

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import transaction

from config.kernel.errors import InvalidInput, NotFound
from events_app.models import PAGEVIEW_EVENT
from events_app.services.demo_data import ACTIVATE_EVENT
from reports_app.models import SavedReport
from reports_app.query import PropertyRef, ReportQuery
from reports_app.query_funnels import FunnelQuery, RetentionQuery
from reports_app.report_types import AnyQuery
from users_app.models import Environment

HEADLINE_REPORT_NAME = "Sign-ups per week by plan"
FUNNEL_REPORT_NAME = "Sign up -> Activate -> Upgrade by plan"
RETENTION_REPORT_NAME = "Weekly retention by plan"
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


def saved_report_may_change(*, report: SavedReport, user) -> bool:
    """Only the report's owner or staff (Cairn's admins) may change or delete it; anyone signed in may open or
    duplicate it. A report with no owner (seeded, or its owner's account deleted) is staff's to change."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or (report.created_by_id is not None and report.created_by_id == user.pk))


def saved_report_definition(report: SavedReport) -> dict:
    return {"name": report.name, "params": report.params}


def saved_report_audit_message(*, action: str, before: dict | None, after: dict | None) -> str:
    return json.dumps({"action": action, "before": before, "after": after}, ensure_ascii=False, sort_keys=True)


def _audit(*, user, report: SavedReport, flag: int, action: str, before: dict | None, after: dict | None) -> None:
    if user is None or not user.is_authenticated:
        return  # LogEntry needs a person; system writes (seeding) are not changes anyone made
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[report],
        action_flag=flag,
        single_object=True,
        change_message=saved_report_audit_message(action=action, before=before, after=after),
    )


def _check_may_change(report: SavedReport, user) -> None:
    if not saved_report_may_change(report=report, user=user):
        raise PermissionDenied("Only the report's owner or an admin may change or delete it.")


def saved_report_create(
    *, environment: Environment, name: str, query: AnyQuery, user=None, pinned: bool = False
) -> SavedReport:
    with transaction.atomic():
        report = SavedReport.objects.create(
            environment=environment,
            name=_clean_name(name),
            params=query.to_params(),
            pinned=pinned,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        _audit(
            user=user, report=report, flag=ADDITION, action="create", before=None, after=saved_report_definition(report)
        )
    return report


def saved_report_update(*, report: SavedReport, name: str, query: AnyQuery, user) -> SavedReport:
    _check_may_change(report, user)
    name = _clean_name(name)
    with transaction.atomic():
        # Re-read under a row lock, so "before" is what this change replaced even if someone saved meanwhile.
        report = SavedReport.objects.select_for_update().filter(pk=report.pk).first()
        if report is None:
            raise NotFound("This report was deleted meanwhile.", "report")
        before = saved_report_definition(report)
        report.name = name
        report.params = query.to_params()
        report.save(update_fields=["name", "params", "updated_at"])
        _audit(
            user=user, report=report, flag=CHANGE, action="update", before=before, after=saved_report_definition(report)
        )
    return report


def saved_report_duplicate(*, report: SavedReport, user=None) -> SavedReport:
    with transaction.atomic():
        copy = SavedReport.objects.create(
            environment=report.environment,
            name=f"Copy of {report.name}"[:NAME_MAX_LENGTH],
            params=dict(report.params),
            pinned=False,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        _audit(
            user=user,
            report=copy,
            flag=ADDITION,
            action="duplicate",
            before=None,
            after={**saved_report_definition(copy), "copied_from": report.pk},
        )
    return copy


def saved_report_delete(*, report: SavedReport, user) -> None:
    _check_may_change(report, user)
    with transaction.atomic():
        report = SavedReport.objects.select_for_update().filter(pk=report.pk).first()
        if report is None:
            return  # someone else deleted it first: nothing left to delete or to audit
        # Logged before the row goes: the entry keeps the object's id and the definition that was deleted.
        _audit(
            user=user, report=report, flag=DELETION, action="delete", before=saved_report_definition(report), after=None
        )
        report.delete()


def headline_report_query() -> ReportQuery:
    return ReportQuery(
        measure="unique_users",
        event=SIGN_UP_EVENT,
        group_by=PropertyRef("user", "plan"),
        interval="week",
        range="90d",
        chart="stacked_bar",
    )


def seeded_report_queries() -> dict[str, AnyQuery]:
    """The demo's saved reports by name: the headline graph report, then the funnel and the retention report
    that its data tells a story with (events_app/services/demo_data.py: activation and upgrades, return visits,
    all differing by plan)."""
    by_plan = ReportQuery(group_by=PropertyRef("user", "plan"), range="90d")
    return {
        HEADLINE_REPORT_NAME: headline_report_query(),
        FUNNEL_REPORT_NAME: FunnelQuery(steps=(SIGN_UP_EVENT, ACTIVATE_EVENT, "Upgrade"), window="14d", base=by_plan),
        RETENTION_REPORT_NAME: RetentionQuery(
            start_event=SIGN_UP_EVENT, return_event=PAGEVIEW_EVENT, interval="week", periods=8, base=by_plan
        ),
    }


def saved_report_seed_defaults(*, environment: Environment) -> None:
    """The saved reports a new install shows; the headline one first (pinned). Safe to call again: a report of
    the same name is left as it is."""
    with transaction.atomic():
        existing = set(SavedReport.objects.filter(environment=environment).values_list("name", flat=True))
        for name, query in seeded_report_queries().items():
            if name not in existing:
                SavedReport.objects.create(
                    environment=environment,
                    name=name,
                    params=query.to_params(),
                    pinned=name == HEADLINE_REPORT_NAME,
                )
