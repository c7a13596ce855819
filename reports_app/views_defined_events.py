"""The defined events pages (SPEC 13): the list with last-30-day counts, "Define an event" from a recent autocaptured
element (pick it, see and edit its rule, a live preview count, save), and the preview's small JSON endpoint."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View
from django.views.generic import TemplateView

from config.kernel.errors import InvalidInput
from events_app.defined_events.selectors import RECENT_DAYS, recent_elements, rule_preview
from events_app.defined_events.services import defined_event_counts, defined_event_create, defined_event_list
from events_app.models import EVENT_NAME_MAX_LENGTH
from reports_app.query import ReportQuery
from users_app.environment_pages import EnvironmentMixin
from users_app.models import Environment

RULE_FIELDS = ("event", "selector", "text", "path")
COUNT_DAYS = 30


def _rule_from(params) -> dict:
    """The rule the page's form (or a picked element's link) describes; empty optional fields are left out."""
    rule = {key: params.get(key, "")[: EVENT_NAME_MAX_LENGTH + 1] for key in RULE_FIELDS}
    return {key: value for key, value in rule.items() if value.strip() or key == "event"}


def _report_link(environment: Environment, name: str) -> str:
    query = ReportQuery(event=name, range="30d").to_querystring()
    return f"{reverse('reports:report')}?{urlencode({'env': environment.app_id})}&{query}"


def _error_field(error: InvalidInput) -> str:
    """`rules[0].selector` -> `selector`: the page has one rule."""
    return (error.field or "").rpartition(".")[2] if (error.field or "").startswith("rules[") else error.field or ""


class DefinedEventPage(LoginRequiredMixin, EnvironmentMixin):
    def environment_or_404(self) -> Environment:
        environment = self.get_environment()
        if environment is None:
            raise Http404("No environment yet.")
        return environment


class DefinedEventListView(DefinedEventPage, TemplateView):
    template_name = "reports_app/defined_events.html"

    def get_context_data(self, **kwargs):
        environment = self.environment_or_404()
        counts = defined_event_counts(environment=environment, days=COUNT_DAYS)
        rows = [
            {"defined": item, "count": counts.get(item.pk, 0), "report_url": _report_link(environment, item.name)}
            for item in defined_event_list(environment=environment)
        ]
        return {**super().get_context_data(**kwargs), **self.environment_context(environment), "rows": rows}


class DefinedEventCreateView(DefinedEventPage, TemplateView):
    template_name = "reports_app/defined_event_new.html"

    def get(self, request, *args, **kwargs):
        environment = self.environment_or_404()
        picked = "event" in request.GET
        rule = _rule_from(request.GET) if picked else {}
        return self.page(environment, rule=rule, name=request.GET.get("name", "")[:255], status=200)

    def post(self, request, *args, **kwargs):
        environment = self.environment_or_404()
        rule, name = _rule_from(request.POST), request.POST.get("name", "")
        try:
            defined = defined_event_create(environment=environment, name=name, rules=[rule])
        except InvalidInput as error:
            return self.page(environment, rule=rule, name=name[:300], error=error, status=400)
        messages.success(request, f"Defined “{defined.name}”: past events are being matched.")
        return HttpResponseRedirect(f"{reverse('reports:defined-events')}?{urlencode({'env': environment.app_id})}")

    def page(self, environment: Environment, *, rule: dict, name: str, status: int, error=None):
        preview = None
        if rule and error is None:
            try:
                preview = rule_preview(environment=environment, rule=rule)
            except InvalidInput as preview_error:
                error = preview_error
        context = {
            **self.get_context_data(),
            **self.environment_context(environment),
            "elements": recent_elements(environment=environment),
            "rule": rule,
            "name": name or (rule.get("text") or "")[:60],
            "preview": preview,
            "error": error,
            "error_field": _error_field(error) if error is not None else "",
            "recent_days": RECENT_DAYS,
        }
        return self.render_to_response(context, status=status)


class DefinedEventPreviewView(DefinedEventPage, View):
    """GET ...?event=&selector=&text=&path= -> {"count", "scanned", "days"}, or 400 {"error": {..., "field"}}."""

    def get(self, request):
        environment = self.environment_or_404()
        try:
            preview = rule_preview(environment=environment, rule=_rule_from(request.GET))
        except InvalidInput as error:
            return JsonResponse({"error": {**error.as_dict(), "field": _error_field(error)}}, status=400)
        return JsonResponse({"count": preview.count, "scanned": preview.scanned, "days": preview.days})
