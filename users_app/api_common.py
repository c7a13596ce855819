"""What every API view shares: the error body, JSON body parsing that never 500s, API-key authentication, and
the checks every ingest call passes before anything is parsed or stored (origin, API key)."""

import hmac
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from users_app.errors import InvalidInput, RateLimited
from users_app.models import Environment
from users_app.services.environments import (
    api_key_hash,
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
        return (forwarded[0] if forwarded else remote)[:64]
    return forwarded[-proxies][:64]


def error_response(code: str, message: str, field: str | None = None, http_status: int = 400) -> Response:
    return Response({"error": {"code": code, "message": message, "field": field}}, status=http_status)


def exception_handler(exc, context):
    if isinstance(exc, InvalidInput):
        response = error_response(exc.code, exc.message, exc.field, exc.status)
        if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
            response["Retry-After"] = "1"
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        if exc.status == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = "Bearer"
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


# ---- the checks of every ingest call -------------------------------------------------------------------------


def origin_normal_form(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_is_same_site(request, origin: str) -> bool:
    # Compare host[:port] only: behind a TLS-terminating proxy Django may see http while the page is https.
    return urlsplit(origin).netloc.lower() == request.get_host().lower()


def origin_is_allowed(environment: Environment | None, origin: str) -> bool:
    if environment is None:
        return False
    allowed = {origin_normal_form(str(item)) for item in environment.allowed_origins or []}
    return "*" in allowed or origin_normal_form(origin) in allowed


def origin_check(request, environment: Environment) -> None:
    """A call sent by a page on another site (it carries that page's `Origin`) is refused unless the environment
    allows that origin, on every ingest endpoint: a page can send a `text/plain` POST to any of them without a
    preflight (`fetch(..., {mode: "no-cors"})`), so CORS alone would only hide the answer, not stop the write.
    Calls without `Origin` (servers, curl) and pages of this server itself are not concerned."""
    origin = request.headers.get("Origin")
    if origin and not origin_is_same_site(request, origin) and not origin_is_allowed(environment, origin):
        raise InvalidInput(
            "origin_not_allowed", "This origin is not in the environment's allowed origins.", "Origin", status=403
        )


def browser_origin_check(request, environment: Environment) -> None:
    """With "server calls need the API key" on, the browser endpoint would be the one way around it for a
    server (it never asks for the key: a page cannot keep one). It then takes only what browsers send, a request
    carrying an `Origin`, which origin_check holds to the allowed origins. A server can still forge an
    `Origin` header: docs/api.md says so plainly."""
    if environment.server_calls_need_api_key and not request.headers.get("Origin"):
        raise InvalidInput(
            "origin_required",
            "This environment requires the API key on server calls: the browser endpoint takes calls from "
            "pages of its allowed origins only.",
            "Origin", status=403,
        )


def _sent_api_key(request, body: dict) -> tuple[str | None, str]:
    """(the key, where it came from): `Authorization: Bearer <key>`, else an `api_key` body field for clients
    that can shape the body but not set headers."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip(), "Authorization"
    key = body.get("api_key")
    if key is None:
        return None, "Authorization"
    if not isinstance(key, str):
        raise InvalidInput("unauthorized", "`api_key` must be a string.", "api_key", status=401)
    return key, "api_key"


def api_key_check(request, body: dict, environment: Environment) -> None:
    """Environments with `server_calls_need_api_key` refuse server calls without their key. A key that is sent
    is checked whatever the setting, so clients can be given the key, and checked, before it is switched on."""
    key, field = _sent_api_key(request, body)
    if key is None:
        if environment.server_calls_need_api_key:
            raise InvalidInput(
                "unauthorized",
                "This environment requires the API key on server calls: send `Authorization: Bearer <api key>`.",
                field, status=401,
            )
        return
    if not hmac.compare_digest(api_key_hash(key[:200]), environment.api_key_hash):
        raise InvalidInput("unauthorized", "This is not the API key of this app_id's environment.", field, status=401)


def _read_to_end(stream, limit: int) -> bytes:
    """A body without Content-Length (`Transfer-Encoding: chunked`), which the server has de-chunked and ends
    at its true end: read in pieces, never more than one byte past the limit."""
    pieces, size = [], 0
    while True:
        try:
            piece = stream.read(min(64 * 1024, limit + 1 - size))
        except Exception as error:  # noqa: BLE001 - gunicorn raises its own ParseException on broken chunk framing
            raise InvalidInput("invalid_json", "The body could not be read to its end.", None) from error
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            raise InvalidInput("body_too_large", "The request body is too large.", None, status=413)


class JsonBodyApi(APIView):
    """Ingest views read the body themselves: a size limit answered with 413, and invalid, non-object or
    absurdly nested JSON answered with 400 (DRF's parser would let a RecursionError through as a 500).

    An environment deleted by another process while this one still had it cached (docs/operations.md,
    "Environment cache") makes the call's write fail on a foreign key (nothing of it is stored): answered as
    the unknown app_id it now is (404), or 503 if the app_id has a new environment since, not a 500."""

    environment_used = None
    # The environment's "server calls need the API key" applies (not to the browser endpoint: a page cannot keep
    # a secret, so its key would be public).
    server_endpoint = True

    def handle_exception(self, exc):
        if isinstance(exc, IntegrityError) and self.environment_used is not None:
            exc = environment_write_failure(self.environment_used) or exc
        return super().handle_exception(exc)

    def json_body(self, request) -> dict:
        raw = self._raw_body(request._request)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as error:
            raise InvalidInput("invalid_json", "The body is not valid JSON.", None) from error
        if not isinstance(body, dict):
            raise InvalidInput("invalid_type", "The body must be a JSON object.", None)
        return body

    def _raw_body(self, django_request) -> bytes:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        meta = django_request.META
        declared = meta.get("CONTENT_LENGTH") or ""
        try:
            # Django reads a body without Content-Length as empty; gunicorn (and any server that sets
            # wsgi.input_terminated) hands over a chunked body de-chunked, ending at its true end.
            if not declared and meta.get("wsgi.input_terminated"):
                return _read_to_end(meta["wsgi.input"], limit)
            length = ascii_decimal(declared, 2**63)  # ContentLengthMiddleware answered a non-decimal one already
            if length is not None and length > limit:
                raise InvalidInput("body_too_large", "The request body is too large.", None, status=413)
            return django_request.body
        except RequestDataTooBig as error:
            raise InvalidInput("body_too_large", "The request body is too large.", None, status=413) from error
        except OSError as error:  # the client went away mid-body, or sent a malformed chunk
            raise InvalidInput("invalid_json", "The body could not be read to its end.", None) from error

    def environment_of(self, body: dict) -> Environment:
        """The call's environment, once the call may write to it: known app_id (404), allowed origin (403), API
        key if sent or required (401). Nothing is parsed or stored before this."""
        self.environment_used = environment_for_app_id(parse_app_id(body.get("app_id")))
        origin_check(self.request, self.environment_used)
        if self.server_endpoint:
            api_key_check(self.request, body, self.environment_used)
        else:
            browser_origin_check(self.request, self.environment_used)
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
