"""Write static/cairn/tracker.min.js, the tracker that is served, from its sources (run after editing any of them;
a test checks the committed copy is current).

The sources are FRAGMENTS, not standalone scripts: each is a part of one function body, split by job so that each
reads on its own (the device's state, the send queue, the public API and the start, autocapture). The build
concatenates them in TRACKER_SOURCES' order inside ONE closure, `(function (window, document) { "use strict"; ...
})(window, document)`: the parts share its scope, so they need no globals of their own (nothing but window.heap
is put on window), and the minifier can rename every name they share."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

STATIC_CAIRN = Path(settings.BASE_DIR) / "static" / "cairn"
# In this order, the order they run in: each part uses names the parts before it define (functions are hoisted,
# but the variables are set top to bottom), and autocapture's `return` ends the closure, so it comes last.
TRACKER_PARTS = ("tracker_device.js", "tracker_queue.js", "tracker_api.js", "tracker_autocapture.js")
TRACKER_SOURCES = tuple(STATIC_CAIRN / name for name in TRACKER_PARTS)
TRACKER_MINIFIED = STATIC_CAIRN / "tracker.min.js"
HEADER = f"/* Cairn browser tracker (heap.js-compatible). Source: {', '.join(TRACKER_PARTS)} */\n"
CLOSURE_OPEN = '(function (window, document) {\n"use strict";\n'
CLOSURE_CLOSE = "})(window, document);\n"


def tracker_source() -> str:
    """The whole tracker, unminified: the parts inside their one closure (a script that runs as it is)."""
    return CLOSURE_OPEN + "\n".join(source.read_text() for source in TRACKER_SOURCES) + CLOSURE_CLOSE


def tracker_minify(source: str) -> str:
    # calmjs.parse (a dev dependency, only needed to rebuild) parses the ES5 source and renames local names.
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    return HEADER + minify_print(es5(source), obfuscate=True, obfuscate_globals=False) + "\n"


class Command(BaseCommand):
    help = "Minify the browser tracker's parts, in one closure, into static/cairn/tracker.min.js."

    def handle(self, *args, **options):
        minified = tracker_minify(tracker_source())
        TRACKER_MINIFIED.write_text(minified)
        self.stdout.write(f"{TRACKER_MINIFIED}: {len(minified.encode())} bytes")
