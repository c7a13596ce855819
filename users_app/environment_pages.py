"""Which environment a dashboard page shows: every page of the Users view and of Reports asks the same way."""

from django.http import Http404

from users_app.models import Environment


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
