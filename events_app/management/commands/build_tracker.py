"""Write static/cairn/tracker.min.js from its sources, static/cairn/tracker.js then tracker_autocapture.js (run after
editing either; a test checks the committed copy is current)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

STATIC_CAIRN = Path(settings.BASE_DIR) / "static" / "cairn"
# In this order: the autocapture part needs the loaded tracker (window.heap) the first part installs.
TRACKER_SOURCES = (STATIC_CAIRN / "tracker.js", STATIC_CAIRN / "tracker_autocapture.js")
TRACKER_MINIFIED = STATIC_CAIRN / "tracker.min.js"
HEADER = "/* Cairn browser tracker (heap.js-compatible). Source: tracker.js, tracker_autocapture.js */\n"


def tracker_source() -> str:
    return "\n".join(source.read_text() for source in TRACKER_SOURCES)


def tracker_minify(source: str) -> str:
    # calmjs.parse (a dev dependency, only needed to rebuild) parses the ES5 source and renames local names.
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    return HEADER + minify_print(es5(source), obfuscate=True, obfuscate_globals=False) + "\n"


class Command(BaseCommand):
    help = "Minify the browser tracker into static/cairn/tracker.min.js."

    def handle(self, *args, **options):
        minified = tracker_minify(tracker_source())
        TRACKER_MINIFIED.write_text(minified)
        self.stdout.write(f"{TRACKER_MINIFIED}: {len(minified.encode())} bytes")
