"""Headers WhiteNoise adds to static files (settings.WHITENOISE_ADD_HEADERS_FUNCTION, imported by settings.py:
nothing here may import an app)."""

from wsgiref.headers import Headers

# The tracker's static name. Pasted snippets load it by this plain (unhashed) name on purpose, from any site, for
# good: it must keep working across deploys, so it gets WHITENOISE_MAX_AGE's short cache instead of a hashed
# name's ten years.
TRACKER_STATIC_NAME = "cairn/tracker.min.js"


def static_file_headers(headers: Headers, path: str, url: str) -> None:
    from django.conf import settings

    if url == f"{settings.STATIC_URL.rstrip('/')}/{TRACKER_STATIC_NAME}":
        # Any site loads the tracker (WhiteNoise already sends Access-Control-Allow-Origin: * for every file); a page
        # that isolates itself (Cross-Origin-Embedder-Policy: require-corp) also needs the script to say so.
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
