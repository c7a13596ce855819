"""Saved reports belong to whoever saved them: only the owner or staff may change or delete one, everyone
signed in may open or duplicate it, and every change is in the admin's log with the definition before and after."""

import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry

from reports_app.models import SavedReport
from reports_app.services import HEADLINE_REPORT_NAME, saved_report_seed_defaults
from tests.builders import signed_in_as

pytestmark = pytest.mark.django_db

WEEKLY = "measure=events&group_by=user.plan&range=custom&from=2026-11-02&to=2026-11-15&interval=week"
PEOPLE = "measure=unique_users&range=custom&from=2026-11-02&to=2026-11-15&interval=day"


@pytest.fixture
def owner():
    return signed_in_as("owner")


@pytest.fixture
def stranger():
    return signed_in_as("stranger")


@pytest.fixture
def admin_client_():
    return signed_in_as("boss", is_staff=True)


@pytest.fixture
def report(environment, owner) -> SavedReport:
    answer = owner.post(f"/reports/saved/?env={environment.app_id}", {"name": "Owner's weekly", "query": WEEKLY})
    assert answer.status_code == 302
    return SavedReport.objects.get(name="Owner's weekly")


def audit_of(report_pk: int) -> list[tuple[str, int, dict]]:
    entries = LogEntry.objects.filter(object_id=str(report_pk), content_type__model="savedreport")
    return [
        (entry.user.username, entry.action_flag, json.loads(entry.change_message))
        for entry in entries.order_by("action_time", "pk")
    ]


def test_a_stranger_gets_403_on_changing_or_deleting_and_nothing_changes(report, stranger):
    assert (
        stranger.post(f"/reports/saved/{report.pk}/update/", {"name": "Mine now", "query": PEOPLE}).status_code == 403
    )
    assert stranger.post(f"/reports/saved/{report.pk}/delete/").status_code == 403
    report.refresh_from_db()
    assert report.name == "Owner's weekly" and report.params["measure"] == "events"
    # Refused attempts change nothing, so they are not in the audit trail either.
    assert [flag for _, flag, _ in audit_of(report.pk)] == [ADDITION]


def test_a_stranger_can_still_open_and_duplicate_and_owns_the_copy(report, stranger):
    assert stranger.get(f"/reports/saved/{report.pk}/", follow=True).status_code == 200
    assert stranger.post(f"/reports/saved/{report.pk}/duplicate/").status_code == 302
    copy = SavedReport.objects.get(name="Copy of Owner's weekly")
    assert copy.created_by.username == "stranger" and copy.params == report.params
    assert stranger.post(f"/reports/saved/{copy.pk}/update/", {"name": "My copy", "query": PEOPLE}).status_code == 302
    copy.refresh_from_db()
    assert copy.name == "My copy"


def test_the_page_offers_change_and_delete_only_to_whoever_may(report, owner, stranger, admin_client_):
    delete_form = f'action="/reports/saved/{report.pk}/delete/"'
    for client, allowed in ((owner, True), (stranger, False), (admin_client_, True)):
        page = client.get(f"/reports/saved/{report.pk}/", follow=True).content.decode()
        assert (delete_form in page) is allowed
        assert ('id="update-report"' in page) is allowed
        assert ('id="report-not-yours"' in page) is not allowed
        assert f'action="/reports/saved/{report.pk}/duplicate/"' in page  # everyone may duplicate


def test_staff_may_change_and_delete_anyones_report(report, admin_client_):
    assert (
        admin_client_.post(f"/reports/saved/{report.pk}/update/", {"name": "Tidied", "query": PEOPLE}).status_code
        == 302
    )
    report.refresh_from_db()
    assert report.name == "Tidied"
    assert admin_client_.post(f"/reports/saved/{report.pk}/delete/").status_code == 302
    assert not SavedReport.objects.filter(pk=report.pk).exists()


def test_a_report_nobody_owns_is_staffs_to_change(environment, stranger, admin_client_):
    saved_report_seed_defaults(environment=environment)
    headline = SavedReport.objects.get(name=HEADLINE_REPORT_NAME)
    assert headline.created_by is None
    assert stranger.post(f"/reports/saved/{headline.pk}/delete/").status_code == 403
    assert admin_client_.post(f"/reports/saved/{headline.pk}/delete/").status_code == 302
    assert not SavedReport.objects.filter(pk=headline.pk).exists()


def test_every_change_is_audited_with_who_what_and_the_definitions(report, owner):
    owner.post(f"/reports/saved/{report.pk}/update/", {"name": "Owner's people", "query": PEOPLE})
    owner.post(f"/reports/saved/{report.pk}/delete/")

    (created, updated, deleted) = audit_of(report.pk)
    assert created[:2] == ("owner", ADDITION)
    assert created[2]["action"] == "create" and created[2]["before"] is None
    assert created[2]["after"]["name"] == "Owner's weekly" and created[2]["after"]["params"]["measure"] == "events"

    assert updated[:2] == ("owner", CHANGE) and updated[2]["action"] == "update"
    assert updated[2]["before"] == created[2]["after"]
    assert updated[2]["after"]["name"] == "Owner's people"
    assert updated[2]["after"]["params"]["measure"] == "unique_users"

    assert deleted[:2] == ("owner", DELETION) and deleted[2]["action"] == "delete"
    assert deleted[2]["before"] == updated[2]["after"] and deleted[2]["after"] is None
    entry = LogEntry.objects.get(object_id=str(report.pk), action_flag=DELETION)
    assert entry.action_time is not None and entry.object_repr == "Owner's people"


def test_staff_read_the_trail_in_the_admin(report, owner, admin_client_):
    owner.post(f"/reports/saved/{report.pk}/update/", {"name": "Owner's people", "query": PEOPLE})
    history = admin_client_.get(f"/admin/reports_app/savedreport/{report.pk}/history/")
    assert history.status_code == 200
    text = history.content.decode()
    assert "owner" in text and "unique_users" in text and "Owner&#x27;s weekly" in text

    owner.post(f"/reports/saved/{report.pk}/delete/")
    # A deleted report has no History page any more; the admin's log still lists what was deleted.
    log = admin_client_.get("/admin/admin/logentry/", {"action_flag__exact": DELETION})  # the list filter's own
    assert log.status_code == 200 and "Owner&#x27;s people" in log.content.decode()
    entry = LogEntry.objects.get(object_id=str(report.pk), action_flag=DELETION)
    assert admin_client_.get(f"/admin/admin/logentry/{entry.pk}/change/").status_code == 200


def test_edits_in_the_admin_are_audited_with_before_and_after(report):
    superuser = signed_in_as("root", superuser=True)
    form = superuser.get(f"/admin/reports_app/savedreport/{report.pk}/change/")
    assert form.status_code == 200
    answer = superuser.post(
        f"/admin/reports_app/savedreport/{report.pk}/change/",
        {
            "environment": report.environment_id,
            "name": "Renamed in admin",
            "params": json.dumps(report.params),
            "created_by": report.created_by_id,
        },
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer
    username, flag, message = audit_of(report.pk)[-1]
    assert (username, flag, message["action"]) == ("root", CHANGE, "update")
    assert message["before"]["name"] == "Owner's weekly" and message["after"]["name"] == "Renamed in admin"
    assert message["before"]["params"] == message["after"]["params"] == report.params
