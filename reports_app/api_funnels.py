"""GET /api/v1/reports/funnel and GET /api/v1/reports/retention (SPEC 14): the numbers of a funnel and of a
retention report, with the read API's Bearer key (users_app/api_access.py ReadApi), as /api/v1/reports/query."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.kernel.limits import PROPERTY_KEY_MAX_LENGTH
from config.kernel.schema import ERROR_SCHEMA, choice, or_empty, text
from events_app.models import EVENT_NAME_MAX_LENGTH
from reports_app.api import EXPLAIN_PARAMETER, explain_requested, report_parameters
from reports_app.query import MAX_BUCKETS
from reports_app.query_funnels import (
    DEFAULT_PERIODS,
    DEFAULT_WINDOW,
    MAX_PERIODS,
    MAX_STEPS,
    MAX_WINDOW,
    MIN_STEPS,
    RETENTION_INTERVALS,
    funnel_query_parse,
    retention_query_parse,
)
from reports_app.selectors import report_funnel, report_retention
from users_app.api_access import ReadApi

# reports_app/query_funnels.py window_parse: 1 to MAX_WINDOW days or hours (365, 8760), no zeros first;
# tests/reports_app/test_funnel_api.py checks the patterns against the parsers, value by value.
WINDOW = {
    "type": "string",
    "pattern": (
        "^(?:(?:[1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-5])d|"
        "(?:[1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-5][0-9]|8760)h)$"
    ),
}
PERIODS = {"type": "string", "pattern": "^(?:[1-9][0-9]?|100)$"}
EVENT_NAME = text(EVENT_NAME_MAX_LENGTH, minLength=1)
PERSON_PROPERTY_REF = {"type": "string", "pattern": f"^(?:user|account)\\.[\\s\\S]{{1,{PROPERTY_KEY_MAX_LENGTH}}}$"}

SHARED_PARAMETERS = report_parameters(
    group_by=PERSON_PROPERTY_REF,
    group_help="`user.<property>` (the person's current value) or `account.<property>` (the current value of the "
    "person's account); event properties are refused. Groups rank by their people.",
    where_help=" Every event the report reads must pass them.",
)

FUNNEL_SCHEMA = inline_serializer(
    "FunnelReport",
    {
        "steps": serializers.ListField(child=serializers.CharField()),
        "window_seconds": serializers.IntegerField(),
        "series": inline_serializer(
            "FunnelSeries",
            {
                "group": serializers.CharField(help_text="The property value, `(none)`, `Other`, or `All`."),
                "counts": serializers.ListField(
                    child=serializers.IntegerField(), help_text="People whose best attempt reached each step."
                ),
                "median_seconds_to_convert": serializers.ListField(
                    child=serializers.FloatField(allow_null=True),
                    help_text="Per step, the median seconds from the step before (null for step 1 and for a step "
                    "nobody reached).",
                ),
            },
            many=True,
        ),
        "explain": serializers.DictField(
            required=False,
            help_text="With `explain=1`: `path` is how the numbers were computed: `postgresql` (one statement over "
            "the events) or `python` (SQLite).",
        ),
    },
)

RETENTION_SCHEMA = inline_serializer(
    "RetentionReport",
    {
        "interval": serializers.CharField(),
        "cohorts": inline_serializer(
            "RetentionCohort",
            {
                "start": serializers.CharField(help_text="The cohort's bucket, `YYYY-MM-DD` (UTC)."),
                "group": serializers.CharField(),
                "size": serializers.IntegerField(),
                "returned": serializers.ListField(
                    child=serializers.IntegerField(),
                    help_text="returned[0] is the size; returned[k] the people back in the k-th bucket after; "
                    "buckets that begin after `to` are left out.",
                ),
                "partial_periods": serializers.ListField(
                    child=serializers.IntegerField(),
                    help_text="The positions k of `returned` whose bucket was not over when the report was "
                    "computed (this week, today, or later; 0 when the cohort's own bucket is not over, so its size "
                    "can still grow). Their counts can still grow; always the last entries of `returned`, `[]` once "
                    "every bucket is over. The page marks them with * and draws them dotted.",
                ),
            },
            many=True,
        ),
        "explain": serializers.DictField(
            required=False,
            help_text="With `explain=1`: `path` is how the numbers were computed: `rollup` (the rollups of "
            "(person, day, event name), plus the events stored since their last catch-up, whose id is above "
            "`rollups_through_event_id`), `postgresql` (the events: defined events, event-property filters) or "
            "`python` (SQLite).",
        ),
    },
)


class FunnelReportApi(ReadApi):
    @extend_schema(
        summary="A funnel's numbers (SPEC 14)",
        parameters=[
            OpenApiParameter(
                "step",
                {
                    "type": "array",
                    "items": or_empty(EVENT_NAME),
                    "contains": {"minLength": 1},
                    "minContains": MIN_STEPS,
                    "maxContains": MAX_STEPS,
                },
                required=True,
                explode=True,
                description=(
                    f"The steps' event names, in order, repeated: {MIN_STEPS} to {MAX_STEPS} (empty ones are left "
                    "out). The same name may be used by several steps; each step then takes another event."
                ),
            ),
            OpenApiParameter(
                "window",
                or_empty(WINDOW),
                description=(
                    f"How long after step 1 the last step may come: `<N>d` (1 to {MAX_WINDOW['d']}) or `<N>h` (1 to "
                    f"{MAX_WINDOW['h']}). Default {DEFAULT_WINDOW}."
                ),
            ),
            *SHARED_PARAMETERS,
            EXPLAIN_PARAMETER,
        ],
        responses={200: FUNNEL_SCHEMA, 400: ERROR_SCHEMA, 401: ERROR_SCHEMA},
        examples=[
            OpenApiExample(
                "Sign up, activate, upgrade by plan",
                response_only=True,
                value={
                    "steps": ["Sign Up", "Activate", "Upgrade"],
                    "window_seconds": 1209600,
                    "series": [
                        {
                            "group": "Startup",
                            "counts": [40, 22, 9],
                            "median_seconds_to_convert": [None, 3600.0, 86400.0],
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request):
        query, explain = funnel_query_parse(request.query_params), explain_requested(request.query_params)
        return explained(report_funnel(environment=self.environment, query=query), explain)


class RetentionReportApi(ReadApi):
    @extend_schema(
        summary="A retention report's cohorts (SPEC 14)",
        parameters=[
            OpenApiParameter(
                "start_event", EVENT_NAME, required=True, description="The event that puts a person in a cohort."
            ),
            OpenApiParameter(
                "return_event", EVENT_NAME, required=True, description="The event that counts as coming back."
            ),
            OpenApiParameter(
                "interval",
                choice(RETENTION_INTERVALS),
                description=(
                    f"Default week (weeks start on Monday; UTC). One cohort per bucket of the range, at most "
                    f"{MAX_BUCKETS} buckets (days by day, days / 7 by week, days / 28 by month): beyond, 400."
                ),
            ),
            OpenApiParameter(
                "periods",
                or_empty(PERIODS),
                description=f"How many buckets after the cohort's to follow, 1 to {MAX_PERIODS}. "
                f"Default {DEFAULT_PERIODS}.",
            ),
            *SHARED_PARAMETERS,
            EXPLAIN_PARAMETER,
        ],
        responses={200: RETENTION_SCHEMA, 400: ERROR_SCHEMA, 401: ERROR_SCHEMA},
        examples=[
            OpenApiExample(
                "Weekly retention by plan",
                response_only=True,
                value={
                    "interval": "week",
                    "cohorts": [
                        {
                            "start": "2026-11-16",
                            "group": "Startup",
                            "size": 12,
                            "returned": [12, 7, 5],
                            "partial_periods": [2],
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request):
        query, explain = retention_query_parse(request.query_params), explain_requested(request.query_params)
        return explained(report_retention(environment=self.environment, query=query), explain)


def explained(result, explain: bool) -> Response:
    """The report's answer, with how it was computed when `explain=1` asked."""
    answer = result.as_dict()
    if explain:
        answer["explain"] = result.explain
    return Response(answer)
