"""Heap-compatible server-side ingest: /api/track and /api/add_user_properties (and legacy /api/identify)."""

from collections.abc import Callable

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.kernel.api import error_response
from config.kernel.schema import APP_ID, ERROR_SCHEMA, schema_field
from events_app.schema import ACCOUNT_PROPERTIES_ITEM, TRACK_ITEM, USER_PROPERTIES_ITEM, bulk_of
from events_app.services.account_ingest import account_properties_ingest
from events_app.services.ingest import IngestResult, bulk_items, track_ingest, user_properties_ingest
from users_app.api import API_KEY_HELP
from users_app.api_access import IngestApi

RATE_LIMITED = "rate_limited"
INGEST_RESULT_SCHEMA = inline_serializer(
    "IngestResult",
    {
        "accepted": serializers.IntegerField(),
        "rejected": serializers.ListField(child=serializers.DictField(), help_text="[{index, error}] of bad items"),
        "duplicates": serializers.IntegerField(required=False),
    },
)


# What the ingest endpoints answer besides their 200 (401: a key sent or required; 403: a page's origin that the
# environment does not allow; 429: over a rate limit, docs/api.md "Rate limits").
INGEST_ERRORS = {
    400: ERROR_SCHEMA,
    401: ERROR_SCHEMA,
    403: ERROR_SCHEMA,
    404: ERROR_SCHEMA,
    413: ERROR_SCHEMA,
    429: ERROR_SCHEMA,
}


def ingest_request_schema(component: str, item: dict, bulk_key: str):
    """The body of an ingest endpoint: one item's fields at the top level, or `bulk_key` with up to 1000
    items, beside the app_id and the optional api_key."""
    return inline_serializer(
        component,
        {
            "app_id": schema_field(APP_ID),
            **{name: schema_field(schema, required=False) for name, schema in item["properties"].items()},
            bulk_key: schema_field(bulk_of(item), required=False),
            "api_key": schema_field({"type": "string"}, required=False, help_text=API_KEY_HELP),
        },
    )


def all_items_rejected(rate_limited: bool = False) -> dict:
    """The error body of a bulk call (or browser batch) that kept nothing; `rate_limited`: some items were over a
    rate limit (the answer is then a 429)."""
    if rate_limited:
        return {
            "code": RATE_LIMITED,
            "message": "No item was accepted: some were over a rate limit (send them again after Retry-After); "
            "see `rejected`.",
            "field": None,
        }
    return {"code": "all_items_rejected", "message": "No item was accepted; see `rejected`.", "field": None}


def ingest_response(result: IngestResult, is_bulk: bool) -> Response:
    """A single call answers its error as SPEC 3's error body; a bulk call lists rejected items and is a 400
    only when nothing at all was accepted, a 429 when nothing was and some items were over a rate limit (they
    may be sent again after Retry-After; a 200 with rate-limited items carries Retry-After too)."""
    if not is_bulk and result.rejected:
        error = result.rejected[0]["error"]
        status = 429 if error["code"] == RATE_LIMITED else 400
        response = error_response(error["code"], error["message"], error["field"], status)
    else:
        answer, status = result.as_dict(), 200
        if not is_bulk and result.profile is not None:
            answer["user_id"] = str(result.profile.user_id)
        if result.rejected and not result.accepted:
            # Every 4xx carries the error body; `rejected` still says what was wrong with each item.
            rate_limited = any(item["error"]["code"] == RATE_LIMITED for item in result.rejected)
            answer["error"], status = all_items_rejected(rate_limited), 429 if rate_limited else 400
        response = Response(answer, status=status)
    if result.retry_after is not None:
        response["Retry-After"] = str(result.retry_after)
    return response


class BulkIngestApi(IngestApi):
    """An ingest endpoint: one item at the top level or up to 1000 under `bulk_key`, handed to `ingest`."""

    bulk_key: str
    ingest: Callable[..., IngestResult]

    def post(self, request):
        # No request context: a server call's user agent, IP address and proxy location headers are the
        # customer's backend's (python-requests in a data centre), not the person's. Heap's server API records
        # no device either; sessions started here get their landing page, referrer and UTM values only.
        body = self.json_body(request)
        environment = self.environment_of(body)
        items, is_bulk = bulk_items(body, self.bulk_key)
        result = self.ingest(environment=environment, items=items, enforce_rate_limits=True)
        return ingest_response(result, is_bulk)


@extend_schema_view(
    post=extend_schema(
        summary="Track events (single or bulk of up to 1000)",
        description="Name the person by `identity` or `user_id`, not both (Heap's rule). Event names up to 1024 "
        "characters; arrays of scalars are stored joined by `||`. See docs/api.md.",
        request=ingest_request_schema("TrackRequest", TRACK_ITEM, "events"),
        responses={200: INGEST_RESULT_SCHEMA, **INGEST_ERRORS},
        examples=[
            OpenApiExample(
                "One event",
                request_only=True,
                value={
                    "app_id": "1234567890",
                    "identity": "alice@example.com",
                    "event": "Sign Up",
                    "properties": {"plan": "Startup"},
                    "idempotency_key": "signup-alice",
                },
            ),
            OpenApiExample(
                "Heap's Track reference example (an array is stored as vanilla||chocolate||strawberry)",
                request_only=True,
                value={
                    "app_id": "1234567890",
                    "identity": "alice@example.com",
                    "event": "Send Transactional Email",
                    "timestamp": "2017-03-10T22:21:56+00:00",
                    "properties": {
                        "subject": "Welcome to My App!",
                        "variation": "A",
                        "flavors": ["vanilla", "chocolate", "strawberry"],
                    },
                },
            ),
            OpenApiExample(
                "Bulk",
                request_only=True,
                value={
                    "app_id": "1234567890",
                    "events": [
                        {"identity": "alice@example.com", "event": "Upgrade", "timestamp": "2026-11-20T10:00:00Z"},
                        {"user_id": "1565941335949135", "event": "pageview", "properties": {"path": "/pricing"}},
                    ],
                },
            ),
        ],
    )
)
class TrackApi(BulkIngestApi):
    bulk_key = "events"
    ingest = staticmethod(track_ingest)


@extend_schema_view(
    post=extend_schema(
        summary="Add user properties (single or bulk of up to 1000); null removes a property",
        description="Name the person by `identity` or `user_id`, not both (Heap's rule). See docs/api.md.",
        request=ingest_request_schema("AddUserPropertiesRequest", USER_PROPERTIES_ITEM, "users"),
        responses={200: INGEST_RESULT_SCHEMA, **INGEST_ERRORS},
        examples=[
            OpenApiExample(
                "Set a plan",
                request_only=True,
                value={"app_id": "1234567890", "identity": "alice@example.com", "properties": {"plan": "Startup"}},
            ),
            OpenApiExample(
                'A boolean (stored as "true") and a removal',
                request_only=True,
                value={
                    "app_id": "1234567890",
                    "identity": "alice@example.com",
                    "properties": {"newsletter": True, "trial": None},
                },
            ),
        ],
    )
)
class UserPropertiesAddApi(BulkIngestApi):
    bulk_key = "users"
    ingest = staticmethod(user_properties_ingest)


@extend_schema_view(
    post=extend_schema(
        summary="Add account properties (single or bulk of up to 1000); null removes a property",
        description="Name the account by `account_id` (the value of the environment's account id property on "
        "its users). Same value rules as add_user_properties. See docs/api.md.",
        request=ingest_request_schema("AddAccountPropertiesRequest", ACCOUNT_PROPERTIES_ITEM, "accounts"),
        responses={200: INGEST_RESULT_SCHEMA, **INGEST_ERRORS},
        examples=[
            OpenApiExample(
                "Describe an account",
                request_only=True,
                value={"app_id": "1234567890", "account_id": "acme", "properties": {"tier": "Enterprise"}},
            )
        ],
    )
)
class AccountPropertiesAddApi(BulkIngestApi):
    bulk_key = "accounts"
    ingest = staticmethod(account_properties_ingest)
