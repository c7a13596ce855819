"""GET /api/v1/reports/query (SPEC 7): the numbers behind a graph report."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.kernel.errors import InvalidInput
from config.kernel.limits import PROPERTY_KEY_MAX_LENGTH
from config.kernel.periods import EARLIEST_DATE, LATEST_DATE
from config.kernel.schema import ERROR_SCHEMA, at_most, choice, or_empty, text
from events_app.models import EVENT_NAME_MAX_LENGTH
from reports_app.query import (
    CHART_TYPES,
    INTERVALS,
    MAX_BUCKETS,
    MAX_FILTERS,
    MEASURES,
    RANGES,
    report_query_parse,
)
from reports_app.selectors import report_series
from users_app.api_access import ReadApi

EXPLAIN_VALUES = {"": False, "0": False, "false": False, "1": True, "true": True}
# The graph, funnel and retention APIs' `explain` (reports_app/api_funnels.py too).
EXPLAIN_PARAMETER = OpenApiParameter(
    "explain",
    choice(sorted(EXPLAIN_VALUES)),
    description="`1` or `true`: the answer says how it was computed (`explain`). Default 0.",
)
# reports_app/query.py: property_ref_parse and filter_parse.
PROPERTY_REF = {"type": "string", "pattern": f"^(?:user|event|account)\\.[\\s\\S]{{1,{PROPERTY_KEY_MAX_LENGTH}}}$"}
WHERE = {
    "type": "string",
    "pattern": (
        # the property (its key without the `!` of `!=`), then `=` and the value
        f"^(?:user|event|account)\\."
        f"(?:[^=!][^=]{{0,{PROPERTY_KEY_MAX_LENGTH - 1}}}|![^=]{{1,{PROPERTY_KEY_MAX_LENGTH}}})="
    ),
}
# EARLIEST_DATE to LATEST_DATE (config/kernel/periods.py), 2000-01-01 to 9998-12-01, as reports_app/query.py reads them
REPORT_DATE = {
    "type": "string",
    "format": "date",
    "pattern": (
        "^(?:(?:[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-7])-[0-9]{2}-[0-9]{2}|"
        "9998-(?:0[1-9]|1[01])-[0-9]{2}|9998-12-01)$"
    ),
}

WHERE_HELP = (
    "Repeatable filter on a user property (`user.<key>`, the person's current value), an event property "
    "(`event.<key>`) or an account property (`account.<key>`, the person's account's current value). "
    "`user.plan=Startup` equals; `user.plan!=Startup` not equals (people without the "
    "property match); `user.plan=in:Startup,Growth` one of (`\\,` is a literal comma); `user.plan!=in:A,B` "
    "none of; `user.plan=contains:art` contains, case-insensitive; `user.plan!=contains:art` does not "
    "contain; `user.plan=*` is set; `user.plan!=*` is not set; `user.plan=eq:in:x` equals the literal "
    "`in:x`. All filters must hold (AND)."
)


def report_parameters(*, group_by: dict, group_help: str, where_help: str) -> list[OpenApiParameter]:
    """The parameters every report API reads alike, through reports_app/query.py (`group_by`, `where`, `from`,
    `to`, `range`): one list for the graph report, the funnel and retention, so their descriptions cannot drift.
    `group_by` is the pattern of the properties a report groups by; `group_help` says which scopes it takes,
    `where_help` what a filter applies to where it differs."""
    return [
        OpenApiParameter(
            "group_by",
            or_empty(group_by),
            description=f"{group_help} Missing values group as `(none)`; beyond the top 10 groups the rest is `Other`.",
        ),
        OpenApiParameter(
            "where",
            at_most(MAX_FILTERS, or_empty(WHERE), {"minLength": 1}),
            explode=True,
            description=f"{WHERE_HELP}{where_help} At most {MAX_FILTERS} (empty ones are left out).",
        ),
        OpenApiParameter(
            "from",
            or_empty(REPORT_DATE),
            description=(
                f"First day (UTC), {EARLIEST_DATE} to {LATEST_DATE}, not after `to`. Default: 29 days before `to`."
            ),
        ),
        OpenApiParameter(
            "to",
            or_empty(REPORT_DATE),
            description=f"Last day, inclusive (UTC), {EARLIEST_DATE} to {LATEST_DATE}. Default: today.",
        ),
        OpenApiParameter(
            "range",
            choice(RANGES),
            description="7d, 30d or 90d: the last days up to today instead of from/to (which are still checked). "
            "Default: custom when from or to is given, else 30d.",
        ),
    ]


REPORT_SCHEMA = inline_serializer(
    "ReportSeries",
    {
        "buckets": serializers.ListField(
            child=serializers.CharField(),
            help_text=(
                "Bucket starts in UTC: `YYYY-MM-DD` for day, week (Monday) and month; `YYYY-MM-DDTHH:00:00Z` for hour."
            ),
        ),
        "partial_buckets": serializers.ListField(
            child=serializers.CharField(),
            help_text="The buckets (as in `buckets`) not over when the report was computed: this week, today, "
            "or later. Their counts can still grow; the page draws them dotted or shaded.",
        ),
        "series": inline_serializer(
            "ReportSeriesItem",
            {
                "group": serializers.CharField(
                    help_text="The property value, `(none)`, `Other`, or `All` without group_by."
                ),
                "values": serializers.ListField(child=serializers.IntegerField()),
                "total": serializers.IntegerField(
                    help_text="Over the whole range; unique users count each person once."
                ),
            },
            many=True,
        ),
        "explain": serializers.DictField(
            required=False,
            help_text="With `explain=1`: `path` is how the numbers were computed: `rollup` (the rollups, plus the "
            "events stored since their last catch-up, whose id is above `rollups_through_event_id`), `postgresql` "
            "(a pass over the events: hourly buckets, sessions, event properties, defined events) or `orm` (SQLite).",
        ),
        "backfilling": serializers.BooleanField(
            required=False,
            help_text="Present (true) while the report's event is a defined event whose past events are still "
            "being matched by its backfill: the numbers are a lower bound.",
        ),
    },
)


class ReportQueryApi(ReadApi):
    @extend_schema(
        summary="A graph report's numbers (SPEC 7)",
        parameters=[
            OpenApiParameter("measure", choice(MEASURES), description="Default events."),
            OpenApiParameter(
                "event",
                text(EVENT_NAME_MAX_LENGTH),
                description=("An event name; `pageview` for page views; omit (or leave empty) for all events."),
            ),
            *report_parameters(
                group_by=PROPERTY_REF,
                group_help="`user.<property>` (the person's current value, Heap-style), `event.<property>` or "
                "`account.<property>` (the person's account's current value).",
                where_help="",
            ),
            OpenApiParameter(
                "interval",
                choice(INTERVALS),
                description=(
                    f"Default day. Weeks start on Monday; all buckets in UTC. A report has at most {MAX_BUCKETS} "
                    "buckets, counted as its days x 24 by hour, x 1 by day, / 7 by week and / 28 by month (125 days "
                    "by hour, 3000 days by day): beyond, 400 `invalid_field`."
                ),
            ),
            OpenApiParameter("chart", choice(CHART_TYPES), description="The page's chart type; no effect here."),
            EXPLAIN_PARAMETER,
        ],
        responses={200: REPORT_SCHEMA, 400: ERROR_SCHEMA, 401: ERROR_SCHEMA},
        examples=[
            OpenApiExample(
                "Sign-ups per week by plan",
                response_only=True,
                value={
                    "buckets": ["2026-01-05", "2026-01-12"],
                    "series": [
                        {"group": "Startup", "values": [3, 0], "total": 3},
                        {"group": "(none)", "values": [1, 2], "total": 3},
                    ],
                },
            )
        ],
    )
    def get(self, request):
        query = report_query_parse(request.query_params)
        explain = explain_requested(request.query_params)
        result = report_series(environment=self.environment, query=query)
        answer = result.as_dict()
        if explain:
            answer["explain"] = result.explain
        return Response(answer)


def explain_requested(params) -> bool:
    value = params.get("explain", "")
    if value not in EXPLAIN_VALUES:
        raise InvalidInput("invalid_field", "explain must be one of 0, 1, false, true.", field="explain")
    return EXPLAIN_VALUES[value]
