"""The identities that absorb the most profiles: a company name or a placeholder used as an identity merges
many people into one, and shows up here first. A filter of the merge list and a page of its own."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from users_app.models import MergeRecord
from users_app.selectors import identities_absorbing

PAGE_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PAGE_WINDOW = "24h"


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


class AbsorbingIdentitiesPageMixin:
    """The page, served under the merge records' admin (admin:users_app_mergerecord_identities), which links
    each identity to its merges in the list."""

    def identities_urls(self) -> list[URLPattern]:
        return [
            path(
                "identities/", self.admin_site.admin_view(self.identities_view), name="users_app_mergerecord_identities"
            )
        ]

    def identities_view(self, request):
        window = request.GET.get("window", DEFAULT_PAGE_WINDOW)
        if window not in PAGE_WINDOWS:
            window = DEFAULT_PAGE_WINDOW
        rows = identities_absorbing(since=timezone.now() - PAGE_WINDOWS[window])
        changelist = reverse("admin:users_app_mergerecord_changelist")
        for row in rows:
            row["merges_url"] = f"{changelist}?{urlencode({'identity__exact': row['identity']})}"
            row["profile_url"] = reverse("admin:users_app_profile_change", args=[row["destination_id"]])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "rows": rows,
            "window": window,
            "windows": list(PAGE_WINDOWS),
            "title": "Identities that absorbed the most profiles",
            "threshold_note": "Merges beyond an environment's held-merge threshold in 24 hours are held.",
        }
        return TemplateResponse(request, "admin/users_app/mergerecord/identities.html", context)
