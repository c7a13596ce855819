"""The browser endpoint (SPEC 3) for Cairn's own tracker: ordered batches of calls from one device, with CORS
limited to each environment's allowed origins.

The tracker sends `text/plain` bodies (a CORS "simple request", as `sendBeacon` does), so browsers send no
preflight; one is still answered for clients that send JSON. A preflight carries no body, so it names the
environment in the query string: `OPTIONS /api/v1/browser?app_id=...`.

Cross-origin writes are refused, not only unreadable: a request whose `Origin` is neither this server nor
one of the environment's `allowed_origins` gets 403 and nothing is stored, so another site cannot feed
events into an environment through its visitors' browsers (the same rule as every ingest endpoint:
users_app.api_access.origin_check). Requests without an `Origin` header (server to server, curl) are accepted;
the environment's "server calls need the API key" does not apply here (a page cannot keep a secret).

A batch over a rate limit is refused whole (429, Retry-After) rather than in part: its calls must stay in
order (an identify decides whose the later calls are), and the tracker re-sends a refused batch as it is. The
exception is heap.addAccountProperties, charged to its account (known only when the call is processed): one
over the account's limit is rejected alone as `rate_limited` (Retry-After), and the tracker keeps it queued.
"""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.kernel.api import client_ip, error_response
from config.kernel.errors import InvalidInput, RateLimited
from config.kernel.schema import APP_ID, ERROR_SCHEMA, USER_ID, schema_field, short_text
from config.kernel.validation import parse_app_id
from events_app.api import all_items_rejected
from events_app.schema import BROWSER_CALL, SENT_AT
from events_app.services.browser import MAX_BROWSER_CALLS, browser_batch_parse, browser_batch_process, encodable
from events_app.services.unit_of_work import RequestContext
from users_app.api_access import IngestApi, origin_is_allowed, origin_is_same_site
from users_app.models import Environment
from users_app.services.environments import environment_for_app_id

PREFLIGHT_MAX_AGE = "86400"


def request_context(request) -> RequestContext:
    """The visitor's browser, address and proxy location headers: only the tracker's calls come from the
    person's own browser (a server call's request describes the backend that sent it)."""
    from django.conf import settings

    meta = request.META
    return RequestContext(
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        ip=client_ip(request),
        country=meta.get(settings.CAIRN_COUNTRY_HEADER, "") if settings.CAIRN_COUNTRY_HEADER else "",
        city=meta.get(settings.CAIRN_CITY_HEADER, "") if settings.CAIRN_CITY_HEADER else "",
    )


class BrowserBatchApi(IngestApi):
    """POST /api/v1/browser: `{app_id, user_id, session_id?, sent_at?, calls: [...]}`."""

    server_endpoint = False  # a page cannot keep the API key secret: the environment's key setting does not apply

    def _environment_from_query(self, request) -> Environment | None:
        app_id = request.GET.get("app_id")
        if not app_id:
            return None
        try:
            return environment_for_app_id(parse_app_id(app_id))
        except InvalidInput:
            return None

    def _with_cors(self, request, response, environment: Environment | None):
        origin = request.headers.get("Origin")
        response["Vary"] = "Origin"
        if origin and not origin_is_same_site(request, origin) and origin_is_allowed(environment, origin):
            response["Access-Control-Allow-Origin"] = origin
        return response

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):
        environment = self._environment_from_query(request)
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin and origin_is_allowed(environment, origin):
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return self._with_cors(request, response, environment)

    @extend_schema(
        summary="The browser tracker's ordered batch of calls",
        parameters=[
            OpenApiParameter(
                "app_id",
                str,
                required=False,
                description=("For preflights (which carry no body); a POST names its environment in the body."),
            )
        ],
        request=inline_serializer(
            "BrowserBatchRequest",
            {
                "app_id": schema_field(APP_ID),
                "user_id": schema_field(USER_ID),
                "session_id": schema_field(short_text(64), required=False),
                "sent_at": schema_field(SENT_AT, required=False),
                "calls": schema_field({"type": "array", "maxItems": MAX_BROWSER_CALLS, "items": BROWSER_CALL}),
            },
        ),
        responses={
            200: inline_serializer(
                "BrowserBatchResponse",
                {
                    "user_id": serializers.CharField(help_text="The user_id to use from now on"),
                    "identity": serializers.CharField(allow_null=True),
                    "accepted": serializers.IntegerField(),
                    "rejected": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            404: ERROR_SCHEMA,
            413: ERROR_SCHEMA,
            429: ERROR_SCHEMA,
        },
        examples=[
            OpenApiExample(
                "Sign-up",
                request_only=True,
                value={
                    "app_id": "1234567890",
                    "user_id": "1565941335949135",
                    "session_id": "k2j4h5g6f7d8s9a0",
                    "calls": [
                        {
                            "type": "pageview",
                            "timestamp": 1795000000000,
                            "idempotency_key": "p-1",
                            "properties": {"path": "/signup", "title": "Sign up", "referrer": ""},
                        },
                        {"type": "identify", "identity": "alice@example.com"},
                        {"type": "add_user_properties", "properties": {"plan": "Startup"}},
                        {
                            "type": "track",
                            "event": "Sign Up",
                            "idempotency_key": "t-2",
                            "properties": {"plan": "Startup"},
                        },
                    ],
                },
            )
        ],
    )
    def post(self, request):
        environment = self._environment_from_query(request)
        try:
            body = self.json_body(request)
            environment = self.environment_of(body)  # the origin is checked there, as on every ingest endpoint
            batch = browser_batch_parse(environment, body)
            result = browser_batch_process(
                environment=environment, batch=batch, context=request_context(request), enforce_rate_limits=True
            )
        except InvalidInput as error:
            answer = error_response(error.code, encodable(error.message), encodable(error.field), error.status)
            if isinstance(error, RateLimited):
                answer["Retry-After"] = str(error.retry_after)
            return self._with_cors(request, answer, environment)
        answer, status = result.as_dict(), 200
        if result.rejected and not result.accepted:
            # Every 4xx carries the error body, as on the bulk endpoints; a 429 when some call was over its rate
            # limit (heap.addAccountProperties over its account's), which the tracker sends again later.
            rate_limited = result.retry_after is not None
            answer["error"], status = all_items_rejected(rate_limited), 429 if rate_limited else 400
        response = Response(answer, status=status)
        if result.retry_after is not None:
            response["Retry-After"] = str(result.retry_after)
        return self._with_cors(request, response, environment)
