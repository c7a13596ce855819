"""Sessions and events in the admin: read-only inspection for staff (the admin never edits history)."""

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.kernel.admin_site import ReadOnlyAdminMixin
from events_app.models import Event, Session


def profile_admin_link(profile):
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:users_app_profile_change", args=[profile.pk]), profile.display_name
    )


class ProfileColumnsMixin:
    """A session's or an event's profile (its owner now) and the profile it was recorded on (a merge moves
    the first, never the second)."""

    @admin.display(description="profile")
    def profile_display(self, row) -> str:
        return row.profile.display_name

    @admin.display(description="profile (owner now)")
    def owner(self, row):
        return profile_admin_link(row.profile)

    @admin.display(description="recorded on")
    def original(self, row):
        return profile_admin_link(row.original_profile)


@admin.register(Session)
class SessionAdmin(ProfileColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["session_key", "profile_display", "started_at", "ended_at", "landing_page", "referrer"]
    list_filter = ["environment"]
    search_fields = ["=session_key"]
    list_select_related = ["profile"]
    show_full_result_count = False
    fields = [
        "session_key",
        "environment",
        "owner",
        "original",
        "started_at",
        "ended_at",
        "landing_page",
        "referrer",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "browser",
        "device_type",
        "country",
        "city",
    ]
    readonly_fields = fields


@admin.register(Event)
class EventAdmin(ProfileColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "timestamp", "profile_display", "received_at"]
    list_filter = ["environment"]
    search_fields = ["=name"]
    list_select_related = ["profile"]
    show_full_result_count = False
    fields = [
        "name",
        "timestamp",
        "environment",
        "owner",
        "original",
        "session",
        "properties_text",
        "idempotency_key",
        "received_at",
    ]
    readonly_fields = fields

    @admin.display(description="properties")
    def properties_text(self, event: Event):
        return format_html("<pre>{}</pre>", json.dumps(event.properties, ensure_ascii=False, indent=2, sort_keys=True))
