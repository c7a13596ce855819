"""Checks on the request itself, before any view reads it."""

from django.http import HttpResponse, JsonResponse

from config.kernel.validation import ascii_decimal


class ContentLengthMiddleware:
    """A `Content-Length` that is not a decimal number answers 400.

    Django reads the header with `int()` when a view first reads the body (a form's POST, the JSON of an
    ingest call): "²" or a 5,000-digit value raised ValueError there, a 500. gunicorn refuses most such
    headers itself; other servers and proxies pass them on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH")
        if declared and ascii_decimal(declared, 2**63) is None:
            message = "Content-Length must be a decimal number of bytes."
            if request.path.startswith("/api/"):
                body = {"error": {"code": "invalid_content_length", "message": message, "field": "Content-Length"}}
                return JsonResponse(body, status=400)
            return HttpResponse(message, status=400, content_type="text/plain")
        return self.get_response(request)
