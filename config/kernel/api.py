"""What every API view shares: the error body (SPEC 3), the visitor's address, and JSON body parsing that never
500s. Which environment a call may write to or read is users_app/api_access.py."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from config.kernel.errors import InvalidInput, RateLimited
from config.kernel.validation import ascii_decimal


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
        response.data = {
            "error": {"code": getattr(exc, "default_code", "error"), "message": str(detail), "field": None}
        }
    return response


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
    absurdly nested JSON answered with 400 (DRF's parser would let a RecursionError through as a 500)."""

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
