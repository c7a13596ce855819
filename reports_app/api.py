"""GET /api/v1/reports/query (SPEC 7): the numbers behind a graph report."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from reports_app.query import INTERVALS, MEASURES, report_query_parse
from reports_app.selectors import report_series
from users_app.api import ERROR_SCHEMA
from users_app.api_common import ReadApi

WHERE_HELP = (
    "Repeatable filter on a user property (`user.<key>`, the person's current value) or an event property "
    "(`event.<key>`). `user.plan=Startup` equals; `user.plan!=Startup` not equals (people without the "
    "property match); `user.plan=in:Startup,Growth` one of (`\\,` is a literal comma); `user.plan!=in:A,B` "
    "none of; `user.plan=contains:art` contains, case-insensitive; `user.plan!=contains:art` does not "
    "contain; `user.plan=*` is set; `user.plan!=*` is not set; `user.plan=eq:in:x` equals the literal "
    "`in:x`. All filters must hold (AND)."
)

REPORT_SCHEMA = inline_serializer("ReportSeries", {
    "buckets": serializers.ListField(child=serializers.CharField(), help_text=(
        "Bucket starts in UTC: `YYYY-MM-DD` for day, week (Monday) and month; `YYYY-MM-DDTHH:00:00Z` for hour."
    )),
    "series": inline_serializer("ReportSeriesItem", {
        "group": serializers.CharField(help_text="The property value, `(none)`, `Other`, or `All` without group_by."),
        "values": serializers.ListField(child=serializers.IntegerField()),
        "total": serializers.IntegerField(help_text="Over the whole range; unique users count each person once."),
    }, many=True),
})


class ReportQueryApi(ReadApi):
    @extend_schema(
        summary="A graph report's numbers (SPEC 7)",
        parameters=[
            OpenApiParameter("measure", OpenApiTypes.STR, enum=list(MEASURES), default="events"),
            OpenApiParameter("event", OpenApiTypes.STR, description=(
                "An event name; `pageview` for page views; omit for all events.")),
            OpenApiParameter("group_by", OpenApiTypes.STR, description=(
                "`user.<property>` (the person's current value, Heap-style) or `event.<property>`. Missing "
                "values group as `(none)`; beyond the top 10 groups the rest is `Other`.")),
            OpenApiParameter("where", OpenApiTypes.STR, many=True, explode=True, description=WHERE_HELP),
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (UTC). Default: 29 days before `to`."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, inclusive (UTC). Default: today."),
            OpenApiParameter("interval", OpenApiTypes.STR, enum=list(INTERVALS), default="day",
                             description="Weeks start on Monday; all buckets in UTC."),
        ],
        responses={200: REPORT_SCHEMA, 400: ERROR_SCHEMA, 401: ERROR_SCHEMA},
        examples=[OpenApiExample("Sign-ups per week by plan", response_only=True, value={
            "buckets": ["2026-01-05", "2026-01-12"],
            "series": [{"group": "Startup", "values": [3, 0], "total": 3},
                       {"group": "(none)", "values": [1, 2], "total": 3}],
        })],
    )
    def get(self, request):
        query = report_query_parse(request.query_params)
        return Response(report_series(environment=self.environment, query=query).as_dict())
