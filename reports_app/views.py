"""The graph report pages (SPEC 7): build, see, export, save and reopen reports."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View
from django.views.generic import TemplateView

from config.kernel.errors import InvalidInput
from config.kernel.property_filters import OPERATOR_LABELS
from config.kernel.validation import ascii_decimal
from events_app.models import PAGEVIEW_EVENT
from reports_app.charts import report_figure
from reports_app.csv_export import csv_response
from reports_app.models import SavedReport
from reports_app.query import (
    CHART_TYPES,
    INTERVALS,
    MEASURES,
    RANGES,
    ReportQuery,
    report_query_parse,
)
from reports_app.report_types import TRENDS, AnyQuery, any_query_parse, query_querystring, report_type_of
from reports_app.selectors import (
    ReportResult,
    report_defined_event_names,
    report_event_names,
    report_property_choices,
    report_series,
    saved_report_list,
)
from reports_app.services import (
    saved_report_create,
    saved_report_delete,
    saved_report_duplicate,
    saved_report_may_change,
    saved_report_update,
)
from reports_app.views_funnels import people_csv, people_report_context, type_switch
from users_app.environment_pages import EnvironmentMixin  # `?env=<app_id>`, else the first environment
from users_app.models import Environment

BIGINT_LIMIT = 2**63  # primary keys (BigAutoField) are below this


def report_url(environment: Environment, query: AnyQuery, report: SavedReport | None = None) -> str:
    extra = {"env": environment.app_id}
    if report is not None:
        extra["report"] = report.pk
    return f"{reverse('reports:report')}?{urlencode(extra)}&{query_querystring(query)}"


def _open_report(request, environment: Environment) -> SavedReport | None:
    report_id = ascii_decimal(request.GET.get("report", ""), BIGINT_LIMIT)
    if report_id is None:
        return None
    return SavedReport.objects.filter(pk=report_id, environment=environment).first()


class ReportView(LoginRequiredMixin, EnvironmentMixin, TemplateView):
    template_name = "reports_app/report.html"

    def get(self, request, *args, **kwargs):
        environment = self.get_environment()
        context = {"environment": environment, "environments": Environment.objects.order_by("name", "pk")}
        status, report_type = 200, TRENDS
        if environment is not None:
            try:
                report_type = report_type_of(request.GET)
                query = report_query_parse(request.GET, page_filters=True) if report_type == TRENDS else ReportQuery()
            except InvalidInput as error:
                query, status = ReportQuery(), 400
                context["error"] = error
            context.update(self.report_context(environment, query, compute=status == 200 and report_type == TRENDS))
            if report_type != TRENDS:  # funnels and retention: reports_app/views_funnels.py
                people, status = people_report_context(request.GET, environment, report_type, context)
                context.update(people)
                query = context["report_query"] or query
                context.update(querystring=query_querystring(query), share_url=report_url(environment, query))
            context["type_switch"] = type_switch(environment, context["query"], report_type)
        context["report_type"] = report_type
        return self.render_to_response(self.get_context_data(**context), status=status)

    def report_context(self, environment: Environment, query: ReportQuery, compute: bool) -> dict:
        result = report_series(environment=environment, query=query) if compute else None
        choices = report_property_choices(environment=environment)
        defined_names = report_defined_event_names(environment=environment)
        event_names = [
            name
            for name in report_event_names(environment=environment)
            if name != PAGEVIEW_EVENT and name not in defined_names
        ]
        if query.event and query.event not in (PAGEVIEW_EVENT, *defined_names) and query.event not in event_names:
            event_names.insert(0, query.event)
        group_choices = [f"{scope}.{key}" for scope in ("user", "event", "account") for key in choices[scope]]
        if query.group_by and str(query.group_by) not in group_choices:
            group_choices.insert(0, str(query.group_by))
        saved_reports = list(saved_report_list(environment=environment))
        open_report = _open_report(self.request, environment)
        user = self.request.user
        return {
            "query": query,
            "result": result,
            "figure": report_figure(result) if result is not None else None,
            "table": table_rows(result) if result is not None else [],
            "querystring": query.to_querystring(),
            "share_url": report_url(environment, query),
            "saved_reports": saved_reports,
            # The page offers Delete / Save changes only where the POST would be allowed (owner or staff).
            "changeable_report_ids": {
                saved.pk for saved in saved_reports if saved_report_may_change(report=saved, user=user)
            },
            "open_report": open_report,
            "open_report_changeable": open_report is not None
            and saved_report_may_change(report=open_report, user=user),
            "event_names": event_names,
            "defined_event_names": defined_names,
            "pageview_event": PAGEVIEW_EVENT,
            "group_choices": group_choices,
            "measures": MEASURES,
            "intervals": INTERVALS,
            "chart_types": CHART_TYPES,
            "ranges": RANGES,
            "operators": OPERATOR_LABELS,  # every operator, as the kernel labels them
            "filter_rows": [*query.filters, None],
        }


def table_rows(result: ReportResult) -> list[dict]:
    """Rows of the data table and the CSV: one per bucket, a column per group."""
    partial = set(result.partial_positions)
    rows = [
        {
            "bucket": label,
            "values": [series.values[position] for series in result.series],
            "partial": position in partial,
        }
        for position, label in enumerate(result.bucket_labels)
    ]
    return rows


class ReportCsvView(LoginRequiredMixin, EnvironmentMixin, View):
    def get(self, request):
        environment = self.get_environment()
        if environment is None:
            raise Http404("No environment yet.")
        try:
            query = any_query_parse(request.GET, page=True)
        except InvalidInput as error:
            return HttpResponse(f"{error.field}: {error.message}", status=400, content_type="text/plain")
        if not isinstance(query, ReportQuery):
            return csv_response(*people_csv(query, environment))
        result = report_series(environment=environment, query=query)
        rows = [
            ["bucket", *(series.group for series in result.series)],
            *([row["bucket"], *row["values"]] for row in table_rows(result)),
            ["Total", *(series.total for series in result.series)],
        ]
        return csv_response(rows, "cairn-report.csv")


class SavedReportMixin(LoginRequiredMixin):
    def get_report(self, pk: int) -> SavedReport:
        return get_object_or_404(SavedReport.objects.select_related("environment"), pk=pk)

    def get_changeable_report(self, pk: int) -> SavedReport:
        # Refused before the body is read, so a stranger's POST is a 403 whatever it carries.
        report = self.get_report(pk)
        if not saved_report_may_change(report=report, user=self.request.user):
            raise PermissionDenied("Only the report's owner or an admin may change or delete it.")
        return report

    def posted_query(self) -> AnyQuery:
        return any_query_parse(QueryDict(self.request.POST.get("query", "")))


class SavedReportOpenView(SavedReportMixin, View):
    def get(self, request, pk: int):
        report = self.get_report(pk)
        try:
            query = any_query_parse(_as_querydict(report.params))
        except InvalidInput:
            query = ReportQuery()
        return HttpResponseRedirect(report_url(report.environment, query, report))


def _as_querydict(params: dict) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, value in params.items():
        query.setlist(key, [str(item) for item in value] if isinstance(value, list) else [str(value)])
    return query


class SavedReportCreateView(SavedReportMixin, EnvironmentMixin, View):
    def post(self, request):
        environment = self.get_environment()
        if environment is None:
            raise Http404("No environment yet.")
        try:
            query = self.posted_query()
            report = saved_report_create(
                environment=environment, name=request.POST.get("name"), query=query, user=request.user
            )
        except InvalidInput as error:
            messages.error(request, f"Not saved: {error.message}")
            return HttpResponseRedirect(
                f"{reverse('reports:report')}?{urlencode({'env': environment.app_id})}&"
                f"{request.POST.get('query', '')[:4000]}"
            )
        messages.success(request, f"Saved “{report.name}”.")
        return HttpResponseRedirect(report_url(environment, query, report))


class SavedReportUpdateView(SavedReportMixin, View):
    def post(self, request, pk: int):
        report = self.get_changeable_report(pk)
        try:
            query = self.posted_query()
            report = saved_report_update(report=report, name=request.POST.get("name"), query=query, user=request.user)
        except InvalidInput as error:
            messages.error(request, f"Not saved: {error.message}")
            return HttpResponseRedirect(reverse("reports:saved-open", args=[report.pk]))
        messages.success(request, f"Updated “{report.name}”.")
        return HttpResponseRedirect(report_url(report.environment, query, report))


class SavedReportDuplicateView(SavedReportMixin, View):
    def post(self, request, pk: int):
        copy = saved_report_duplicate(report=self.get_report(pk), user=request.user)
        messages.success(request, f"Created “{copy.name}”.")
        return HttpResponseRedirect(reverse("reports:saved-open", args=[copy.pk]))


class SavedReportDeleteView(SavedReportMixin, View):
    def post(self, request, pk: int):
        report = self.get_changeable_report(pk)
        environment = report.environment
        saved_report_delete(report=report, user=request.user)
        messages.success(request, f"Deleted “{report.name}”.")
        return HttpResponseRedirect(f"{reverse('reports:report')}?{urlencode({'env': environment.app_id})}")
