"""Cairn's admin site: Django's, except that a signed-in viewer (not staff) gets 403 on every admin URL
instead of being bounced to the admin login page. Installed as the default site by `CairnAdminConfig`
(INSTALLED_APPS), so `admin.site` everywhere is this one.

Roles (no table needed): viewers are signed-in non-staff users (Users view, reports); admins are staff.
"""

from functools import update_wrapper

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.urls import reverse


class CairnAdminSite(AdminSite):
    site_header = "Cairn administration"
    site_title = "Cairn admin"
    index_title = "Environments, profiles and merges"

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            # Django would redirect a signed-in non-staff user to the admin login form, which offers to
            # sign in again: for a viewer the honest answer is "forbidden".
            if (request.user.is_authenticated and not self.has_permission(request)
                    and request.path != reverse("admin:logout", current_app=self.name)):
                raise PermissionDenied("Admin pages are for staff.")
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, view)


class CairnAdminConfig(AdminConfig):
    default_site = "users_app.admin_site.CairnAdminSite"
