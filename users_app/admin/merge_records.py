"""Merge records in the admin: filters, search, a read-only detail with its audit trail, and approve /
reject / retry / undo, each confirmed on an intermediate page and done by a service that records who did it."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.kernel.admin_site import ReadOnlyAdminMixin, is_cairn_admin
from config.kernel.errors import InvalidInput
from config.kernel.validation import user_id_term
from users_app.admin.absorbing_identities import AbsorbingIdentitiesPageMixin, AbsorbingIdentityFilter
from users_app.admin.links import profile_links, properties_table

# The only import of the merge services in the admin: every action below goes through MERGE_ACTIONS.
from users_app.merges.actions import merge_approve, merge_reject, merge_retry
from users_app.merges.undo import merge_undo
from users_app.models import MergeAction, MergeRecord

# name -> (service in users_app/merges/actions.py or undo.py, statuses it applies to, past tense)
MERGE_ACTIONS = {
    "approve": (merge_approve, (MergeRecord.Status.HELD,), "approved"),
    "reject": (merge_reject, (MergeRecord.Status.HELD,), "rejected"),
    "retry": (merge_retry, (MergeRecord.Status.FAILED,), "queued again"),
    "undo": (merge_undo, (MergeRecord.Status.DONE,), "undone"),
}


class MergeActionInline(ReadOnlyAdminMixin, admin.TabularInline):
    # Shown to admins, never edited (ReadOnlyAdminMixin: no add, change or delete).
    model = MergeAction
    fields = ["created_at", "action", "actor", "note"]
    readonly_fields = fields
    extra = 0
    verbose_name = "audit trail entry"
    verbose_name_plural = "audit trail"


@admin.register(MergeRecord)
class MergeRecordAdmin(AbsorbingIdentitiesPageMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "source_display",
        "destination_display",
        "identity",
        "trigger",
        "status",
        "events_moved",
        "requested_at",
        "finished_at",
        "attempts",
    ]
    list_display_links = ["id"]
    list_filter = [
        "status",
        "trigger",
        ("requested_at", admin.DateFieldListFilter),
        AbsorbingIdentityFilter,
        "environment",
    ]
    search_fields = ["identity"]  # see get_search_results: identity, or a source/destination user_id
    extra_lookups = ("identity__exact",)  # the identities page links to the merges of one identity
    search_help_text = "An identity (exact or prefix) or a user_id of the source or destination."
    list_select_related = ["source", "destination", "environment"]
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected", "retry_selected", "undo_selected"]
    inlines = [MergeActionInline]
    change_form_template = "admin/users_app/mergerecord/change_form.html"
    change_list_template = "admin/users_app/mergerecord/change_list.html"
    fieldsets = [
        (None, {"fields": ["environment", "identity", "status", "trigger", "requested_by"]}),
        ("Profiles", {"fields": ["source_link", "destination_link"]}),
        ("What moved", {"fields": ["events_moved", "sessions_moved", "properties_moved", "snapshot", "replaced"]}),
        (
            "Timings",
            {"fields": ["requested_at", "started_at", "finished_at", "duration", "attempts", "last_error_text"]},
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(identity=term) | Q(identity__startswith=term)
        user_id = user_id_term(term)
        if user_id is not None:
            condition |= Q(source__user_id=user_id) | Q(destination__user_id=user_id)
        return queryset.filter(condition), False

    @admin.display(description="source", ordering="source__user_id")
    def source_display(self, record: MergeRecord) -> str:
        return record.source.display_name

    @admin.display(description="destination", ordering="destination__user_id")
    def destination_display(self, record: MergeRecord) -> str:
        return record.destination.display_name

    @admin.display(description="source (merged away)")
    def source_link(self, record: MergeRecord):
        return profile_links(record.source)

    @admin.display(description="destination")
    def destination_link(self, record: MergeRecord):
        return profile_links(record.destination)

    @admin.display(description="source properties when requested")
    def snapshot(self, record: MergeRecord):
        return properties_table(record.source_properties)

    @admin.display(description="destination values the merge replaced or removed")
    def replaced(self, record: MergeRecord):
        replaced = record.replaced_destination_properties
        return properties_table(replaced, removed=frozenset(replaced.keys() - record.source_properties.keys()))

    @admin.display(description="duration")
    def duration(self, record: MergeRecord) -> str:
        if record.started_at and record.finished_at:
            return str(record.finished_at - record.started_at)
        return "—"

    @admin.display(description="last error")
    def last_error_text(self, record: MergeRecord):
        return format_html("<pre class='cairn-error'>{}</pre>", record.last_error) if record.last_error else "—"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, object_id)
        buttons = []
        if record is not None:
            buttons = [
                (name, reverse(f"admin:users_app_mergerecord_{name}", args=[record.pk]))
                for name, (_, statuses, _) in MERGE_ACTIONS.items()
                if record.status in statuses
            ]
        extra_context = {**(extra_context or {}), "merge_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "identities_url": reverse("admin:users_app_mergerecord_identities")}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        urls = self.identities_urls()
        for name in MERGE_ACTIONS:
            urls.append(
                path(
                    f"<int:pk>/{name}/",
                    self.admin_site.admin_view(self.single_action_view),
                    {"action_name": name},
                    name=f"users_app_mergerecord_{name}",
                )
            )
        return urls + super().get_urls()

    # -- actions: each confirmed on an intermediate page, each through a service that records who did it

    def run_merge_action(self, request, action_name: str, records, note: str = "") -> None:
        service, _statuses, done = MERGE_ACTIONS[action_name]
        succeeded = []
        for record in records:
            kwargs = {"merge_id": record.pk, "actor": request.user}
            if action_name == "reject":
                kwargs["note"] = note
            try:
                service(**kwargs)
            except InvalidInput as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            self.log_change(request, record, f"{action_name.capitalize()} ({note})" if note else action_name)
            succeeded.append(record.pk)
        if succeeded:
            self.message_user(
                request,
                f"{len(succeeded)} merge(s) {done}: " + ", ".join(f"#{pk}" for pk in succeeded),
                messages.SUCCESS,
            )

    def confirmation(self, request, action_name: str, records, single: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{action_name.capitalize()} {len(records)} merge(s)?",
            "action_name": action_name,
            "records": records,
            "eligible": MERGE_ACTIONS[action_name][1],
            "single": single,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/users_app/mergerecord/action_confirm.html", context)

    def bulk_action(self, request, queryset, action_name: str):
        records = list(queryset.select_related("source", "destination"))
        if request.POST.get("confirm") != "yes":
            return self.confirmation(request, action_name, records, single=False)
        self.run_merge_action(request, action_name, records, note=request.POST.get("note", "")[:2000])
        return None

    @admin.action(description="Approve selected held merges")
    def approve_selected(self, request, queryset):
        return self.bulk_action(request, queryset, "approve")

    @admin.action(description="Reject selected held merges")
    def reject_selected(self, request, queryset):
        return self.bulk_action(request, queryset, "reject")

    @admin.action(description="Retry selected failed merges")
    def retry_selected(self, request, queryset):
        return self.bulk_action(request, queryset, "retry")

    @admin.action(description="Undo selected finished merges")
    def undo_selected(self, request, queryset):
        return self.bulk_action(request, queryset, "undo")

    def single_action_view(self, request, pk: int, action_name: str):
        if not is_cairn_admin(request.user):
            raise PermissionDenied
        record = get_object_or_404(MergeRecord.objects.select_related("source", "destination"), pk=pk)
        if request.method != "POST" or request.POST.get("confirm") != "yes":
            return self.confirmation(request, action_name, [record], single=True)
        self.run_merge_action(request, action_name, [record], note=request.POST.get("note", "")[:2000])
        return HttpResponseRedirect(reverse("admin:users_app_mergerecord_change", args=[record.pk]))
