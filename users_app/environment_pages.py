"""Which environment a dashboard page shows: every page of the Users view and of Reports asks the same way,
and a link to a profile page names its environment the same way (`?env=<app_id>`)."""

from django.http import Http404
from django.urls import reverse
from django.utils.http import urlencode

from users_app.models import Environment, Profile


class EnvironmentMixin:
    """The environment a page shows: `?env=<app_id>`, else the first one. Pages never mix environments."""

    def get_environment(self) -> Environment | None:
        app_id = self.request.GET.get("env", "")
        environments = Environment.objects.order_by("name", "pk")
        if app_id:
            if "\x00" in app_id:
                raise Http404("No such environment.")
            environment = environments.filter(app_id=app_id[:64]).first()
            if environment is None:
                raise Http404("No such environment.")
            return environment
        return environments.first()

    def environment_context(self, environment: Environment | None) -> dict:
        return {"environment": environment, "environments": Environment.objects.order_by("name", "pk")}


def profile_url(profile: Profile, environment: Environment | None = None) -> str:
    """The profile page of `profile`. Pass its environment when the caller has it already (a page lists one
    environment's profiles): otherwise it is read from the profile."""
    environment = environment or profile.environment
    return f"{reverse('users:profile', args=[profile.user_id])}?{urlencode({'env': environment.app_id})}"


def account_url(environment: Environment, account_id: str) -> str:
    """The account page of `account_id` (SPEC 11). The id is any text (slashes, `?`, newlines), so it goes in the
    query string, not the path."""
    return f"{reverse('users:account')}?{urlencode({'env': environment.app_id, 'id': account_id})}"
