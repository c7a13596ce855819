from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry

from config.kernel.admin_site import ReadOnlyAdminMixin, StaffAdminMixin
from reports_app.models import SavedReport
from reports_app.services import saved_report_audit_message, saved_report_definition


@admin.register(SavedReport)
class SavedReportAdmin(StaffAdminMixin, admin.ModelAdmin):
    """Staff see every saved report and its History (the audit trail of reports_app.services). Edits made
    here are logged in the same shape as edits made on the report page: before and after."""

    list_display = ["name", "environment", "pinned", "created_by", "updated_at"]
    list_filter = ["environment", "pinned"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]
    raw_id_fields = ["created_by"]

    def construct_change_message(self, request, form, formsets, add=False):
        # form.initial still holds the values the report had before this save.
        before = None if add else {"name": form.initial.get("name"), "params": form.initial.get("params")}
        return saved_report_audit_message(
            action="create" if add else "update", before=before, after=saved_report_definition(form.instance)
        )

    def log_deletions(self, request, queryset):
        return [
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=[report],
                action_flag=DELETION,
                single_object=True,
                change_message=saved_report_audit_message(
                    action="delete", before=saved_report_definition(report), after=None
                ),
            )
            for report in queryset
        ]


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The admin's log, read-only: the only place a deleted saved report's last definition can still be seen
    (an object's History page needs the object)."""

    list_display = ["action_time", "user", "content_type", "object_repr", "action_flag"]
    list_filter = ["action_flag", "content_type"]
    search_fields = ["object_repr", "object_id", "change_message"]
    date_hierarchy = "action_time"
    list_select_related = ["user", "content_type"]
    fields = ["action_time", "user", "content_type", "object_id", "object_repr", "action_flag", "change_message"]
