"""Heap's user deletion API (SPEC 12), same paths and shapes: `auth_token` (HTTP Basic app_id:api_key -> a
short-lived bearer token), `user_deletion` and `deletion_status`. Thin views over users_app/deletion."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.kernel.api import JsonBodyApi
from config.kernel.errors import NotFound
from config.kernel.schema import ERROR_SCHEMA, IDENTITY, USER_ID, json_object, schema_field
from config.kernel.validation import ascii_decimal
from users_app.api_access import BearerAuthentication, HasEnvironment
from users_app.deletion.requests import (
    MAX_USERS_PER_REQUEST,
    deletion_request_create,
    deletion_status,
    parse_deletion_users,
)
from users_app.deletion.tokens import auth_token_issue, environment_for_token
from users_app.models import DeletionRequest


class DeletionTokenAuthentication(BearerAuthentication):
    """`Authorization: Bearer <access_token from /api/public/v0/auth_token>`."""

    credential_max_length = 2000
    missing_message = "Send `Authorization: Bearer <access_token>` (from auth_token)."
    invalid_message = "The access token is invalid or has expired."

    def environment_for_credential(self, credential: str):
        return environment_for_token(credential)


class DeletionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "users_app.api_deletion.DeletionTokenAuthentication"
    name = "DeletionAccessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <access_token>` from POST /api/public/v0/auth_token.",
        }


class DeletionApi(JsonBodyApi):
    authentication_classes = [DeletionTokenAuthentication]
    permission_classes = [HasEnvironment]


DELETION_USERS = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_USERS_PER_REQUEST,
    "items": {
        "oneOf": [
            json_object({"user_id": USER_ID}, ["user_id"], additionalProperties=False),
            json_object({"identity": IDENTITY}, ["identity"], additionalProperties=False),
        ]
    },
}
DELETION_STATUS_SCHEMA = inline_serializer(
    "DeletionStatus",
    {
        "deletion_request_id": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["pending", "running", "done"]),
        "users_requested": serializers.IntegerField(),
        "users_deleted": serializers.IntegerField(),
    },
)


class AuthTokenApi(APIView):
    @extend_schema(
        summary="A bearer token for the deletion API (Heap's auth_token)",
        description="HTTP Basic `app_id:api_key`. The token is valid for `expires_in` seconds.",
        request=None,
        responses={
            200: inline_serializer(
                "AuthToken", {"access_token": serializers.CharField(), "expires_in": serializers.IntegerField()}
            ),
            401: ERROR_SCHEMA,
        },
    )
    def post(self, request):
        return Response(auth_token_issue(request.META.get("HTTP_AUTHORIZATION", "")))


class UserDeletionApi(DeletionApi):
    @extend_schema(
        summary="Delete users and all their data (Heap's user_deletion)",
        request=inline_serializer(
            "UserDeletionRequest",
            {
                "users": schema_field(
                    DELETION_USERS,
                    help_text='Up to 10,000 items, each `{"user_id": "..."}` or `{"identity": "..."}`.',
                )
            },
        ),
        responses={
            200: inline_serializer(
                "UserDeletionAccepted",
                {"deletion_request_id": serializers.CharField(), "status": serializers.CharField()},
            ),
            400: ERROR_SCHEMA,
            401: ERROR_SCHEMA,
            413: ERROR_SCHEMA,
        },
        examples=[
            OpenApiExample(
                "By user_id and identity",
                request_only=True,
                value={"users": [{"user_id": "1234"}, {"identity": "alice@example.com"}]},
            )
        ],
    )
    def post(self, request):
        users = parse_deletion_users(self.json_body(request).get("users"))
        deletion_request = deletion_request_create(environment=request.auth, users=users)
        return Response({"deletion_request_id": str(deletion_request.pk), "status": deletion_request.status})


class DeletionStatusApi(DeletionApi):
    @extend_schema(
        summary="The state of a deletion request (Heap's deletion_status)",
        parameters=[
            OpenApiParameter(
                "deletion_request_id", {"type": "string", "pattern": "^[0-9]{1,18}$"}, OpenApiParameter.PATH
            )
        ],
        responses={200: DELETION_STATUS_SCHEMA, 401: ERROR_SCHEMA, 404: ERROR_SCHEMA},
    )
    def get(self, request, deletion_request_id: str):
        number = ascii_decimal(deletion_request_id, 2**63)
        deletion_request = (
            DeletionRequest.objects.filter(pk=number, environment=request.auth).first() if number is not None else None
        )
        if deletion_request is None:
            raise NotFound("No deletion request with this id.", field="deletion_request_id")
        return Response(deletion_status(deletion_request))
