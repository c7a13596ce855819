"""What every API view shares: the error body, JSON body parsing that never 500s, API-key authentication."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from users_app.errors import InvalidInput
from users_app.services.environments import (
    environment_for_api_key,
    environment_for_app_id,
    environment_write_failure,
)
from users_app.validation import ascii_decimal, parse_app_id


def client_ip(request) -> str:
    """The visitor's address. Behind `CAIRN_TRUSTED_PROXY_COUNT` proxies (load balancer, CDN), each of them appends
    the address it received the request from to X-Forwarded-For, so the visitor is the entry that many places
    from the right; anything further left was written by the client and cannot be trusted. With no trusted
    proxy (the default) it is REMOTE_ADDR, and X-Forwarded-For is ignored (a visitor could forge it)."""
    proxies = settings.CAIRN_TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        # Fewer entries than proxies: the request skipped a proxy (or the count is wrong); the nearest sender is
        # all that is known for sure.
        return forwarded[0] if forwarded else remote
    return forwarded[-proxies][:64]


def error_response(code: str, message: str, field: str | None = None, http_status: int = 400) -> Response:
    return Response({"error": {"code": code, "message": message, "field": field}}, status=http_status)


def exception_handler(exc, context):
    if isinstance(exc, InvalidInput):
        response = error_response(exc.code, exc.message, exc.field, exc.status)
        if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
            response["Retry-After"] = "1"
        return response
    if isinstance(exc, RequestDataTooBig):
        return error_response("body_too_large", "The request body is too large.", None, 413)
    if isinstance(exc, exceptions.ParseError):
        return error_response("invalid_json", f"The body is not valid JSON: {exc.detail}", None, 400)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return error_response("unauthorized", str(exc.detail), "Authorization", status.HTTP_401_UNAUTHORIZED)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"error": {"code": getattr(exc, "default_code", "error"), "message": str(detail),
                                   "field": None}}
    return response


class JsonBodyApi(APIView):
    """Ingest views read the body themselves: a size limit answered with 413, and invalid, non-object or
    absurdly nested JSON answered with 400 (DRF's parser would let a RecursionError through as a 500).

    An environment deleted by another process while this one still had it cached (docs/operations.md,
    "Environment cache") makes the call's write fail on a foreign key (nothing of it is stored): answered as
    the unknown app_id it now is (404), or 503 if the app_id has a new environment since, not a 500."""

    environment_used = None

    def handle_exception(self, exc):
        if isinstance(exc, IntegrityError) and self.environment_used is not None:
            exc = environment_write_failure(self.environment_used) or exc
        return super().handle_exception(exc)

    def json_body(self, request) -> dict:
        # A declared length longer than any real one is not a decimal we read: the body is read (and capped) below.
        declared = ascii_decimal(request.META.get("CONTENT_LENGTH") or "0", 2**63)
        if declared is not None and declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise InvalidInput("body_too_large", "The request body is too large.", None, status=413)
        try:
            raw = request._request.body
        except RequestDataTooBig as error:
            raise InvalidInput("body_too_large", "The request body is too large.", None, status=413) from error
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as error:
            raise InvalidInput("invalid_json", "The body is not valid JSON.", None) from error
        if not isinstance(body, dict):
            raise InvalidInput("invalid_type", "The body must be a JSON object.", None)
        return body

    def environment_of(self, body: dict):
        self.environment_used = environment_for_app_id(parse_app_id(body.get("app_id")))
        return self.environment_used


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <environment api key>`; request.auth is the environment."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise exceptions.NotAuthenticated("Send `Authorization: Bearer <api key>`.")
        environment = environment_for_api_key(key.strip()[:200])
        if environment is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        return (None, environment)

    def authenticate_header(self, request) -> str:
        return "Bearer"


class HasEnvironment(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth is not None


class ReadApi(APIView):
    """Base of the read API: a key sees only its own environment (`self.environment`)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasEnvironment]

    @property
    def environment(self):
        return self.request.auth
