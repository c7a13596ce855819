"""Profiles in the admin, read-only: search by identity or user_id, their properties and the merges they took
part in; and "Delete this person" (SPEC 12), confirmed on a page that says what will go, through the same
deletion request and task as Heap's user deletion API (users_app/deletion)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.kernel.admin_site import ReadOnlyAdminMixin, is_cairn_admin
from config.kernel.validation import user_id_term
from users_app.admin.links import profile_links
from users_app.deletion.person import person_deletion_preview
from users_app.deletion.requests import deletion_request_for_profile
from users_app.environment_pages import profile_url
from users_app.models import MergeRecord, Profile, UserProperty
from users_app.people import person_of


class UserPropertyInline(ReadOnlyAdminMixin, admin.TabularInline):
    # Shown to admins, never edited (ReadOnlyAdminMixin: no add, change or delete).
    model = UserProperty
    fields = ["key", "value", "is_number", "set_at"]
    readonly_fields = fields
    extra = 0
    ordering = ["key"]


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
        "delete_link",
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
        return format_html('<a href="{}">{}</a>', profile_url(profile), "open in the Users view")

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

    @admin.display(description="delete")
    def delete_link(self, profile: Profile):
        return format_html(
            '<a class="deletelink" href="{}">Delete this person</a>',
            reverse("admin:users_app_profile_delete_person", args=[profile.pk]),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/delete-person/",
                self.admin_site.admin_view(self.delete_person_view),
                name="users_app_profile_delete_person",
            ),
            *super().get_urls(),
        ]

    def delete_person_view(self, request, pk: int):
        """GET: what will go (counts); POST: a deletion request for the person, run by the deletion task."""
        if not is_cairn_admin(request.user):
            raise PermissionDenied
        profile = get_object_or_404(Profile.objects.select_related("merged_into", "environment"), pk=pk)
        if request.method == "POST":
            deletion = deletion_request_for_profile(profile=profile, requested_by=request.user)
            # No LogEntry naming the person: the deletion would have to delete it again. The request keeps counts.
            self.message_user(
                request,
                f"Deletion request #{deletion.pk} recorded: the person and all their data are being deleted.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:users_app_profile_changelist"))
        person = person_of(profile)
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete this person",
            "opts": self.model._meta,
            "profile": profile,
            "person": person,
            "preview": person_deletion_preview(profile),
        }
        return TemplateResponse(request, "admin/users_app/profile/delete_person.html", context)
