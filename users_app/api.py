"""users_app's API: identify (SPEC 2) and the read API for users and merges (SPEC 3)."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from config.kernel.errors import InvalidInput
from config.kernel.schema import (
    APP_ID,
    CURSOR,
    ERROR_SCHEMA,
    IDENTITY_TEXT,
    READ_ERRORS,
    TIMESTAMP,
    USER_ID,
    USER_ID_TEXT,
    schema_field,
)
from config.kernel.validation import ascii_decimal, parse_identity, parse_timestamp, parse_user_id
from users_app.api_access import IngestApi, ReadApi
from users_app.merges.queue import publish_after_response
from users_app.models import MergeRecord
from users_app.schema import WRITTEN_IDENTITY, user_query_parameters
from users_app.selectors import (
    merge_as_dict,
    merge_list,
    profile_get,
    user_count,
    user_detail,
    user_list,
    user_timeline,
)
from users_app.selectors.accounts import account_detail
from users_app.services.identify import profile_identify
from users_app.user_query import parse_user_query

API_KEY_HELP = (
    "The environment's API key, for clients that cannot send `Authorization: Bearer <api key>` (preferred). "
    "Required when the environment has `server_calls_need_api_key`; checked whenever sent."
)


def bounded_int(value, field: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    number = ascii_decimal(str(value), maximum + 1)
    if number is None or number < 1:
        raise InvalidInput("invalid_field", f"`{field}` must be an integer from 1 to {maximum}.", field)
    return number


class IdentifyApi(IngestApi):
    @extend_schema(
        summary="Identify a user (SPEC 2)",
        request=inline_serializer(
            "IdentifyRequest",
            {
                "app_id": schema_field(APP_ID),
                "user_id": schema_field(USER_ID),
                "identity": schema_field(WRITTEN_IDENTITY),
                "timestamp": schema_field(TIMESTAMP, required=False),
                "api_key": schema_field({"type": "string"}, required=False, help_text=API_KEY_HELP),
            },
        ),
        responses={
            200: inline_serializer(
                "IdentifyResponse",
                {
                    "user_id": serializers.CharField(),
                    "identity": serializers.CharField(),
                    "merge": inline_serializer(
                        "IdentifyMerge",
                        {"id": serializers.IntegerField(), "status": serializers.CharField()},
                        allow_null=True,
                    ),
                },
            ),
            400: ERROR_SCHEMA,
            401: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            404: ERROR_SCHEMA,
            413: ERROR_SCHEMA,
            429: ERROR_SCHEMA,
        },
        examples=[
            OpenApiExample(
                "Anonymous to existing identity",
                request_only=True,
                value={"app_id": "1234567890", "user_id": "1565941335949135", "identity": "12345"},
            )
        ],
    )
    def post(self, request):
        publish_after_response()  # the client gets its answer without waiting for the broker
        body = self.json_body(request)
        environment = self.environment_of(body)
        user_id = parse_user_id(body.get("user_id"))
        parse_identity(body.get("identity"))  # field errors before the block list, for clearer messages
        seen_at = parse_timestamp(body.get("timestamp"))
        result = profile_identify(
            environment=environment,
            user_id=user_id,
            identity=body.get("identity"),
            seen_at=seen_at,
            trigger=MergeRecord.Trigger.SERVER,
            enforce_rate_limits=True,  # the block list, then an identify storm's 429, before anything changes
        )
        merge = result.merge
        return Response(
            {
                "user_id": str(result.profile.user_id),
                "identity": result.profile.identity,
                "merge": {"id": merge.pk, "status": merge.status} if merge else None,
            }
        )


USER_SCHEMA = inline_serializer(
    "User",
    {
        "user_id": serializers.CharField(),
        "identity": serializers.CharField(allow_null=True),
        "properties": serializers.DictField(),
        "first_seen": serializers.DateTimeField(allow_null=True),
        "last_seen": serializers.DateTimeField(allow_null=True),
        "session_count": serializers.IntegerField(),
        "event_count": serializers.IntegerField(),
        "merged_into": serializers.CharField(allow_null=True),
    },
)


USER_ID_PATH = OpenApiParameter("user_id", USER_ID_TEXT, OpenApiParameter.PATH)
EVENTS_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
SEARCH_LIMIT = {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}


class UserDetailApi(ReadApi):
    @extend_schema(
        summary="A user by user_id",
        parameters=[USER_ID_PATH],
        responses={200: USER_SCHEMA, **READ_ERRORS, 404: ERROR_SCHEMA},
    )
    def get(self, request, user_id: str):
        profile = profile_get(environment=self.environment, user_id=parse_user_id(user_id))
        return Response(user_detail(profile))


class UserLookupApi(ReadApi):
    @extend_schema(
        summary="A user by identity",
        operation_id="user_by_identity",
        parameters=[OpenApiParameter("identity", IDENTITY_TEXT, required=True)],
        responses={200: USER_SCHEMA, **READ_ERRORS, 404: ERROR_SCHEMA},
    )
    def get(self, request):
        identity = parse_identity(request.query_params.get("identity"))
        return Response(user_detail(profile_get(environment=self.environment, identity=identity)))


class UserEventsApi(ReadApi):
    @extend_schema(
        summary="A user's events, newest first",
        parameters=[USER_ID_PATH, OpenApiParameter("cursor", CURSOR), OpenApiParameter("limit", EVENTS_LIMIT)],
        responses={
            200: inline_serializer(
                "EventPage",
                {
                    "results": serializers.ListField(child=serializers.DictField()),
                    "next": serializers.CharField(allow_null=True),
                },
            ),
            **READ_ERRORS,
            404: ERROR_SCHEMA,
        },
    )
    def get(self, request, user_id: str):
        profile = profile_get(environment=self.environment, user_id=parse_user_id(user_id))
        limit = bounded_int(request.query_params.get("limit"), "limit", 100, 1000)
        return Response(user_timeline(profile, cursor=request.query_params.get("cursor"), limit=limit))


class MergeListApi(ReadApi):
    @extend_schema(
        summary="Merges by identity or user_id",
        parameters=[OpenApiParameter("identity", IDENTITY_TEXT), OpenApiParameter("user_id", USER_ID_TEXT)],
        responses={
            200: inline_serializer("MergeList", {"results": serializers.ListField(child=serializers.DictField())}),
            **READ_ERRORS,
        },
    )
    def get(self, request):
        identity = request.query_params.get("identity")
        user_id = request.query_params.get("user_id")
        merges = merge_list(
            environment=self.environment,
            identity=parse_identity(identity) if identity is not None else None,
            user_id=parse_user_id(user_id) if user_id is not None else None,
        )
        return Response({"results": [merge_as_dict(record) for record in merges]})


class UserSearchApi(ReadApi):
    """The Users view as JSON: the same query string and the same selectors as /users/ (users_app.user_query)."""

    @extend_schema(
        summary="Users matching filters, newest activity first (the Users view as JSON)",
        parameters=[
            *user_query_parameters(),
            OpenApiParameter("cursor", CURSOR),
            OpenApiParameter("limit", SEARCH_LIMIT),
        ],
        responses={
            200: inline_serializer(
                "UserSearchPage",
                {
                    "results": serializers.ListField(child=serializers.DictField()),
                    "next": serializers.CharField(allow_null=True),
                    "searched_until": serializers.DateTimeField(allow_null=True),
                    "count": inline_serializer(
                        "UserSearchCount",
                        {"value": serializers.IntegerField(), "capped": serializers.BooleanField()},
                        allow_null=True,
                    ),
                },
            ),
            **READ_ERRORS,
        },
    )
    def get(self, request):
        query = parse_user_query(request.query_params)
        limit = bounded_int(request.query_params.get("limit"), "limit", 50, 500)
        page = user_list(
            environment=self.environment, filters=query.filters, columns=query.columns, cursor=query.cursor, limit=limit
        )
        # Counted on the first page only: later pages are the same set.
        count = None if query.cursor else user_count(environment=self.environment, filters=query.filters)
        return Response(
            {
                "results": [row.as_dict(query.column_names) for row in page.rows],
                "next": page.next_cursor,
                # Set when the page stopped at its scan budget (filters with `notset`): continue with `next`.
                "searched_until": page.searched_until.isoformat() if page.searched_until else None,
                "count": count.as_dict() if count else None,
            }
        )


ACCOUNT_SCHEMA = inline_serializer(
    "Account",
    {
        "account_id": serializers.CharField(),
        "properties": serializers.DictField(child=serializers.DictField(), help_text="{key: {value, set_at}}"),
        "user_count": serializers.IntegerField(help_text="People whose account id property names this account."),
    },
)


class AccountDetailApi(ReadApi):
    @extend_schema(
        summary="An account: its properties and how many people it has",
        parameters=[
            OpenApiParameter(
                "account_id",
                {**IDENTITY_TEXT, "description": "The account id, as people's account id property has it."},
                OpenApiParameter.PATH,
            )
        ],
        responses={200: ACCOUNT_SCHEMA, **READ_ERRORS, 404: ERROR_SCHEMA},
    )
    def get(self, request, account_id: str):
        return Response(account_detail(environment=self.environment, account_id=account_id).as_dict())
