"""Environments in the admin: create one (its API key shown once), edit its settings, rotate its key, see its
tracker snippet. Creating and rotating go through users_app.services.environments."""

from urllib.parse import urlparse

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from config.kernel.admin_site import StaffAdminMixin, is_cairn_admin
from config.kernel.errors import InvalidInput
from users_app.models import Environment
from users_app.services.environments import environment_create, environment_rotate_api_key, new_app_id
from users_app.services.tracker_snippet import tracker_snippet


class LinesField(forms.CharField):
    """A JSON list of strings edited as one item per line."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        return list(dict.fromkeys(line.strip() for line in (value or "").splitlines() if line.strip()))


# What an admin sets on an environment besides name and app_id: environment_create takes each of them.
ENVIRONMENT_SETTINGS = [
    "blocked_identities",
    "merge_hold_threshold",
    "allowed_origins",
    "server_calls_need_api_key",
    "ingest_limit_per_minute",
    "account_id_property",
    "event_retention_days",
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
        if not app_id and self.instance.pk is not None:
            # Emptied on an existing environment: a new one, made as environment_create makes one for a new
            # environment (which gets the empty value and makes it there).
            return new_app_id()
        return app_id

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
        # New environments are made by the service, whole (it makes the app_id if empty, and the key, and stores
        # only the key's hash); `obj` then becomes the row it made, for the admin's log and redirect.
        try:
            created = environment_create(
                name=obj.name,
                app_id=obj.app_id or None,
                blocked_identities=obj.blocked_identities,
                merge_hold_threshold=obj.merge_hold_threshold,
                allowed_origins=obj.allowed_origins,
                server_calls_need_api_key=obj.server_calls_need_api_key,
                event_retention_days=obj.event_retention_days,
                ingest_limit_per_minute=obj.ingest_limit_per_minute,
                account_id_property=obj.account_id_property,
            )
        except InvalidInput as error:
            raise PermissionDenied(error.message) from error
        for model_field in Environment._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(created.environment, model_field.attname))
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
