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


@admin.register(Session)
class SessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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

    @admin.display(description="profile")
    def profile_display(self, session: Session) -> str:
        return session.profile.display_name

    @admin.display(description="profile (owner now)")
    def owner(self, session: Session):
        return profile_admin_link(session.profile)

    @admin.display(description="recorded on")
    def original(self, session: Session):
        return profile_admin_link(session.original_profile)


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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

    @admin.display(description="profile")
    def profile_display(self, event: Event) -> str:
        return event.profile.display_name

    @admin.display(description="profile (owner now)")
    def owner(self, event: Event):
        return profile_admin_link(event.profile)

    @admin.display(description="recorded on")
    def original(self, event: Event):
        return profile_admin_link(event.original_profile)

    @admin.display(description="properties")
    def properties_text(self, event: Event):
        return format_html("<pre>{}</pre>", json.dumps(event.properties, ensure_ascii=False, indent=2, sort_keys=True))
