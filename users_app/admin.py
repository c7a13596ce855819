"""The admin, for staff: environments, merge records (inspect, approve, reject, retry, undo) and read-only
profiles. Every write goes through a service; every value shown is escaped (identities and properties
are attacker-controlled)."""

import secrets
from datetime import timedelta
from urllib.parse import urlparse

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from config.kernel.admin_site import ReadOnlyAdminMixin, StaffAdminMixin, is_cairn_admin
from config.kernel.errors import InvalidInput
from config.kernel.validation import user_id_term
from users_app.merges.actions import merge_approve, merge_reject, merge_retry
from users_app.merges.undo import merge_undo
from users_app.models import Environment, MergeAction, MergeRecord, Profile, UserProperty
from users_app.selectors import identities_absorbing
from users_app.services.environments import environment_create, environment_rotate_api_key
from users_app.services.tracker_snippet import tracker_snippet


def profile_page_url(profile: Profile) -> str:
    return f"{reverse('users:profile', args=[profile.user_id])}?{urlencode({'env': profile.environment.app_id})}"


def profile_links(profile: Profile | None):
    if profile is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a> <span class="quiet">user_id {}</span> · <a href="{}">profile page</a>',
        reverse("admin:users_app_profile_change", args=[profile.pk]),
        profile.display_name,
        profile.user_id,
        profile_page_url(profile),
    )


def properties_table(snapshot: dict | None, removed: frozenset = frozenset()):
    """A snapshot of properties; `removed`: keys the merge removed (an earlier initial-property set won)."""
    if not snapshot:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}{}</td><td>{}</td></tr>",
        (
            (
                key,
                "(absent: added by the merge)" if item is None else item.get("value"),
                " (removed by the merge)" if key in removed else "",
                "" if item is None else item.get("set_at", ""),
            )
            for key, item in sorted(snapshot.items())
        ),
    )
    return format_html(
        '<table class="cairn-snapshot"><tr><th>Property</th><th>Value</th><th>Set at</th></tr>{}</table>', rows
    )


# ---- Environments ---------------------------------------------------------------------------------------


class LinesField(forms.CharField):
    """A JSON list of strings edited as one item per line."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        return list(dict.fromkeys(line.strip() for line in (value or "").splitlines() if line.strip()))


# What an admin sets on an environment (besides name and app_id); a new one is made by the service, then these
# are copied onto it.
ENVIRONMENT_SETTINGS = [
    "blocked_identities",
    "merge_hold_threshold",
    "allowed_origins",
    "server_calls_need_api_key",
    "ingest_limit_per_minute",
]


class EnvironmentForm(forms.ModelForm):
    blocked_identities = LinesField(
        required=False,
        help_text="One identity per line, refused in this "
        "environment on top of the built-in list (compared case-insensitively).",
    )
    allowed_origins = LinesField(required=False, help_text="One origin per line, e.g. https://www.example.com")

    class Meta:
        model = Environment
        fields = ["name", "app_id", *ENVIRONMENT_SETTINGS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app_id"].required = False
        self.fields["app_id"].help_text = "Leave empty to generate one."
        self.fields["ingest_limit_per_minute"].required = False  # empty means no cap, as 0 does

    def clean_app_id(self) -> str:
        app_id = (self.cleaned_data.get("app_id") or "").strip()
        # Heap-style numeric app_ids, as environment_create makes them.
        return app_id or str(secrets.randbelow(9 * 10**9) + 10**9)

    def clean_ingest_limit_per_minute(self) -> int:
        return self.cleaned_data.get("ingest_limit_per_minute") or 0

    def clean_allowed_origins(self) -> list[str]:
        origins = self.cleaned_data["allowed_origins"]
        for origin in origins:
            parts = urlparse(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise forms.ValidationError(f"{origin!r} is not an origin like https://www.example.com")
        return [origin.rstrip("/") for origin in origins]


@admin.register(Environment)
class EnvironmentAdmin(StaffAdminMixin, admin.ModelAdmin):
    form = EnvironmentForm
    list_display = ["name", "app_id", "key_hint", "merge_hold_threshold", "created_at"]
    search_fields = ["name", "=app_id"]
    readonly_fields = ["key_hint", "created_at"]
    change_form_template = "admin/users_app/environment/change_form.html"

    def has_add_permission(self, request) -> bool:
        return is_cairn_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_cairn_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting an environment deletes all its data: not a click in the admin

    @admin.display(description="API key")
    def key_hint(self, environment: Environment) -> str:
        return f"{environment.api_key_hint}… (only a hash is stored)"

    def get_fields(self, request, obj=None):
        fields = ["name", "app_id", *ENVIRONMENT_SETTINGS]
        return fields + (["key_hint", "created_at"] if obj else [])

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        # New environments are made by the service, which makes the key and stores only its hash.
        try:
            created = environment_create(name=obj.name, app_id=obj.app_id)
        except InvalidInput as error:
            raise PermissionDenied(error.message) from error
        environment = created.environment
        for name in ENVIRONMENT_SETTINGS:
            setattr(environment, name, getattr(obj, name))
        environment.save(update_fields=ENVIRONMENT_SETTINGS)
        obj.pk, obj.api_key_hash, obj.api_key_hint = environment.pk, environment.api_key_hash, environment.api_key_hint
        obj.created_at = environment.created_at
        obj._state.adding = False
        request._cairn_new_api_key = created.api_key

    def change_view(self, request, object_id, form_url="", extra_context=None):
        environment = self.get_object(request, object_id)
        extra_context = {**(extra_context or {})}
        if environment is not None:
            extra_context["tracker_snippet"] = tracker_snippet(environment, request)
        return super().change_view(request, object_id, form_url, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        api_key = getattr(request, "_cairn_new_api_key", None)
        if api_key is None:
            return super().response_add(request, obj, post_url_continue)
        return self.api_key_response(request, obj, api_key, created=True)

    def api_key_response(self, request, environment: Environment, api_key: str, created: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "environment": environment,
            "api_key": api_key,
            "created": created,
            "title": "API key (shown once)",
        }
        response = TemplateResponse(request, "admin/users_app/environment/api_key.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        return [
            path(
                "<int:pk>/rotate-key/",
                self.admin_site.admin_view(self.rotate_key_view),
                name="users_app_environment_rotate_key",
            ),
            *super().get_urls(),
        ]

    def rotate_key_view(self, request, pk: int):
        if not self.has_change_permission(request):
            raise PermissionDenied
        environment = get_object_or_404(Environment, pk=pk)
        if request.method == "POST":
            api_key = environment_rotate_api_key(environment=environment)
            self.log_change(request, environment, "Rotated the API key.")
            return self.api_key_response(request, environment, api_key, created=False)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "environment": environment,
            "title": f"Rotate the API key of {environment.name}?",
        }
        return TemplateResponse(request, "admin/users_app/environment/rotate_key_confirm.html", context)


# ---- Merge records --------------------------------------------------------------------------------------

# name -> (service in users_app/merges/actions.py or undo.py, statuses it applies to, past tense)
MERGE_ACTIONS = {
    "approve": (merge_approve, (MergeRecord.Status.HELD,), "approved"),
    "reject": (merge_reject, (MergeRecord.Status.HELD,), "rejected"),
    "retry": (merge_retry, (MergeRecord.Status.FAILED,), "queued again"),
    "undo": (merge_undo, (MergeRecord.Status.DONE,), "undone"),
}


class AbsorbingIdentityFilter(admin.SimpleListFilter):
    """The identities that absorbed the most profiles in the last 7 days: a company name or a placeholder
    used as an identity shows up here first."""

    title = "absorbing identity (top, last 7 days)"
    parameter_name = "absorbing"

    def lookups(self, request, model_admin):
        since = timezone.now() - timedelta(days=7)
        top = (
            MergeRecord.objects.filter(requested_at__gte=since)
            .values("identity")
            .annotate(merges=Count("pk"))
            .order_by("-merges", "identity")[:10]
        )
        return [(row["identity"], f"{row['identity'][:60]} ({row['merges']})") for row in top]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(identity=self.value())
        return queryset


class MergeActionInline(admin.TabularInline):
    model = MergeAction
    fields = ["created_at", "action", "actor", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "audit trail entry"
    verbose_name_plural = "audit trail"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_cairn_admin(request.user)


@admin.register(MergeRecord)
class MergeRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
        urls = [
            path(
                "identities/", self.admin_site.admin_view(self.identities_view), name="users_app_mergerecord_identities"
            )
        ]
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

    def identities_view(self, request):
        windows = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
        window = request.GET.get("window", "24h")
        if window not in windows:
            window = "24h"
        rows = identities_absorbing(since=timezone.now() - windows[window])
        changelist = reverse("admin:users_app_mergerecord_changelist")
        for row in rows:
            row["merges_url"] = f"{changelist}?{urlencode({'identity__exact': row['identity']})}"
            row["profile_url"] = reverse("admin:users_app_profile_change", args=[row["destination_id"]])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "rows": rows,
            "window": window,
            "windows": list(windows),
            "title": "Identities that absorbed the most profiles",
            "threshold_note": "Merges beyond an environment's held-merge threshold in 24 hours are held.",
        }
        return TemplateResponse(request, "admin/users_app/mergerecord/identities.html", context)


# ---- Profiles (read-only) -------------------------------------------------------------------------------


class UserPropertyInline(admin.TabularInline):
    model = UserProperty
    fields = ["key", "value", "is_number", "set_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["key"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_cairn_admin(request.user)


class IdentifiedFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("identified", "Identified"), ("anonymous", "Anonymous"), ("tombstone", "Merged away")]

    def queryset(self, request, queryset):
        return {
            "identified": lambda: queryset.filter(identity__isnull=False),
            "anonymous": lambda: queryset.filter(identity__isnull=True, merged_into__isnull=True),
            "tombstone": lambda: queryset.filter(merged_into__isnull=False),
        }.get(self.value(), lambda: queryset)()


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user_id", "identity", "environment", "first_seen", "last_seen", "merged_into_display"]
    list_filter = [IdentifiedFilter, "environment"]
    search_fields = ["identity"]  # see get_search_results
    search_help_text = "An identity (exact or prefix) or a user_id."
    list_select_related = ["environment", "merged_into"]
    show_full_result_count = False
    fields = [
        "user_id",
        "identity",
        "environment",
        "merged_into_link",
        "first_seen",
        "last_seen",
        "created_at",
        "page_link",
        "merges_in",
    ]
    readonly_fields = fields
    inlines = [UserPropertyInline]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(identity=term) | Q(identity__startswith=term)
        user_id = user_id_term(term)
        if user_id is not None:
            condition |= Q(user_id=user_id)
        return queryset.filter(condition), False

    @admin.display(description="merged into")
    def merged_into_display(self, profile: Profile) -> str:
        return profile.merged_into.display_name if profile.merged_into_id else ""

    @admin.display(description="merged into")
    def merged_into_link(self, profile: Profile):
        return profile_links(profile.merged_into) if profile.merged_into_id else "— (a live profile)"

    @admin.display(description="profile page")
    def page_link(self, profile: Profile):
        return format_html('<a href="{}">{}</a>', profile_page_url(profile), "open in the Users view")

    @admin.display(description="merges")
    def merges_in(self, profile: Profile):
        merges = list(
            MergeRecord.objects.filter(Q(destination=profile) | Q(source=profile))
            .select_related("source", "destination")
            .order_by("-requested_at")[:100]
        )
        if not merges:
            return "—"
        links = format_html_join(
            "",
            '<li><a href="{}">Merge #{}</a>: {} ({})</li>',
            (
                (
                    reverse("admin:users_app_mergerecord_change", args=[merge.pk]),
                    merge.pk,
                    f"{merge.source.display_name} merged into this profile"
                    if merge.destination_id == profile.pk
                    else f"merged into {merge.destination.display_name}",
                    merge.status,
                )
                for merge in merges
            ),
        )
        return format_html("<ul>{}</ul>", links)
