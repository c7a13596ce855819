"""Cairn's admin site: Django's, except that a signed-in viewer (not staff) gets 403 on every admin URL
instead of being bounced to the admin login page, and that no query string reaches the database with
what it refuses. Installed as the default site by `CairnAdminConfig` (INSTALLED_APPS), so `admin.site`
everywhere is this one.

Roles (no table needed): viewers are signed-in non-staff users (Users view, reports); admins are staff.
"""

from functools import update_wrapper

from django.contrib.admin import AdminSite, FieldListFilter, ModelAdmin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import url_params_from_lookup_dict
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.urls import reverse


def is_cairn_admin(user) -> bool:
    """Admins are staff; viewers (signed in, not staff) never reach the admin (see admin_site)."""
    return bool(user.is_active and user.is_staff)


class StaffAdminMixin:
    """Staff are Cairn's admins without per-model permission rows (roles need no table)."""

    def has_module_permission(self, request) -> bool:
        return is_cairn_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_cairn_admin(request.user)


class ReadOnlyAdminMixin(StaffAdminMixin):
    """Inspection, not editing."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OfferedLookupsOnly:
    """A changelist filters by what it offers, nothing else.

    Django lets a changelist URL filter by any lookup on any of the model's own fields, offered or not:
    `?identity__regex=(`, `?user_id__range=x` or `?first_seen__year=-1` reached PostgreSQL or Python's
    date code with what they refuse, a 500. Accepted: the parameters of the page's own filters
    (list_filter, date_hierarchy), `extra_lookups` that the admin links to itself, and raw-id popups'
    `limit_choices_to`; anything else is Django's 400 (DisallowedModelAdminLookup). Mixed into every
    ModelAdmin by CairnAdminSite.register, Django's own (users, groups) included."""

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        return lookup in self.offered_lookups(request) and super().lookup_allowed(lookup, value, request)

    def offered_lookups(self, request) -> set[str]:
        # Read with getattr: the mixin comes first in the MRO, a class attribute here would hide the admin's.
        offered = set(getattr(self, "extra_lookups", ()))
        if self.date_hierarchy:
            offered.update(f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day"))
        for fk_lookup in self.model._meta.related_fkey_lookups:
            offered.update(url_params_from_lookup_dict(fk_lookup() if callable(fk_lookup) else fk_lookup))
        for list_filter in self.get_list_filter(request):
            offered.update(self._filter_spec(list_filter, request).expected_parameters())
        return offered

    def _filter_spec(self, list_filter, request):
        """The filter as ChangeList.get_filters builds it, with no parameters (only its names are wanted)."""
        if callable(list_filter):  # a SimpleListFilter class
            return list_filter(request, {}, self.model, self)
        field_path, filter_class = (
            list_filter if isinstance(list_filter, list | tuple) else (list_filter, FieldListFilter.create)
        )
        field = get_fields_from_path(self.model, field_path)[-1]
        return filter_class(field, request, {}, self.model, self, field_path=field_path)


def has_nul(request) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


class CairnAdminSite(AdminSite):
    site_header = "Cairn administration"
    site_title = "Cairn admin"
    index_title = "Environments, profiles and merges"

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or ModelAdmin
        if not issubclass(admin_class, OfferedLookupsOnly):
            admin_class = type(
                admin_class.__name__,
                (OfferedLookupsOnly, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        return super().register(model_or_iterable, admin_class, **options)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            # Django would redirect a signed-in non-staff user to the admin login form, which offers to
            # sign in again: for a viewer the honest answer is "forbidden".
            if (
                request.user.is_authenticated
                and not self.has_permission(request)
                and request.path != reverse("admin:logout", current_app=self.name)
            ):
                raise PermissionDenied("Admin pages are for staff.")
            # PostgreSQL text cannot hold NUL: a search, filter or autocomplete term with one is bad input.
            if has_nul(request):
                return HttpResponseBadRequest("Query values must not contain NUL characters.")
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, view)


class CairnAdminConfig(AdminConfig):
    default_site = "config.kernel.admin_site.CairnAdminSite"
