"""Headers WhiteNoise adds to static files (WHITENOISE_ADD_HEADERS_FUNCTION)."""

from wsgiref.headers import Headers

from django.conf import settings

from events_app.services.browser import TRACKER_STATIC_NAME


def static_file_headers(headers: Headers, path: str, url: str) -> None:
    if url == f"{settings.STATIC_URL.rstrip('/')}/{TRACKER_STATIC_NAME}":
        # Any site loads the tracker (WhiteNoise already sends Access-Control-Allow-Origin: * for every file); a page
        # that isolates itself (Cross-Origin-Embedder-Policy: require-corp) also needs the script to say so.
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
