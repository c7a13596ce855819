"""Checks on the request itself, before any view reads it; static files, with Heap's script addresses."""

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse, JsonResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from config.kernel.static_files import TRACKER_ALIASES, TRACKER_STATIC_NAME
from config.kernel.validation import ascii_decimal


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, which also answers Heap's script addresses (TRACKER_ALIASES) with the tracker: the same bytes,
    gzip copy and headers as `/static/cairn/tracker.min.js` (docs/operations.md, "Static files and the tracker
    script"), in production (collected files) and in development alike."""

    def __init__(self, get_response=None, settings=settings):
        super().__init__(get_response, settings)
        self.tracker_url = f"{self.static_prefix}{TRACKER_STATIC_NAME}"
        if not self.autorefresh and self.tracker_url not in self.files:
            # Nothing collected (the test settings, a fresh checkout): the source file, found as runserver finds it.
            source = finders.find(TRACKER_STATIC_NAME)
            if source:
                self.add_file_to_dictionary(self.tracker_url, source)

    def __call__(self, request):
        if TRACKER_ALIASES.fullmatch(request.path_info):
            tracker = self.find_file(self.tracker_url) if self.autorefresh else self.files.get(self.tracker_url)
            if tracker is not None:
                return self.serve(tracker, request)
        return super().__call__(request)


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
