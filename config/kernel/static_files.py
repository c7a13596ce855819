"""Headers WhiteNoise adds to static files (settings.WHITENOISE_ADD_HEADERS_FUNCTION, imported by settings.py:
nothing here may import an app)."""

import re
from wsgiref.headers import Headers

# The tracker's static name. Pasted snippets load it by this plain (unhashed) name on purpose, from any site, for
# good: it must keep working across deploys, so it gets WHITENOISE_MAX_AGE's short cache instead of a hashed
# name's ten years.
TRACKER_STATIC_NAME = "cairn/tracker.min.js"
# Heap's own script addresses, so a Heap snippet works with only its host changed: the classic snippet's
# `/js/heap-<app_id>.js` and heap.js 5's `/config/<env_id>/heap_config.js`. Both answer the tracker itself, the
# same file with the same headers (the id in the address is not needed: the snippet sets heap.appid / heap.envId).
TRACKER_ALIASES = re.compile(r"/js/heap-[A-Za-z0-9_-]{1,64}\.js|/config/[A-Za-z0-9_-]{1,64}/heap_config\.js")


def static_file_headers(headers: Headers, path: str, url: str) -> None:
    from django.conf import settings

    if url == f"{settings.STATIC_URL.rstrip('/')}/{TRACKER_STATIC_NAME}":
        # Any site loads the tracker (WhiteNoise already sends Access-Control-Allow-Origin: * for every file); a page
        # that isolates itself (Cross-Origin-Embedder-Policy: require-corp) also needs the script to say so.
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
