"""Write static/cairn/tracker.min.js from static/cairn/tracker.js (run after editing the tracker; a test
checks the committed copy is current)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

TRACKER_SOURCE = Path(settings.BASE_DIR) / "static" / "cairn" / "tracker.js"
TRACKER_MINIFIED = TRACKER_SOURCE.with_name("tracker.min.js")
HEADER = "/* Cairn browser tracker (heap.js-compatible). Source: tracker.js */\n"


def tracker_minify(source: str) -> str:
    # calmjs.parse (a dev dependency, only needed to rebuild) parses the ES5 source and renames local names.
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    return HEADER + minify_print(es5(source), obfuscate=True, obfuscate_globals=False) + "\n"


class Command(BaseCommand):
    help = "Minify the browser tracker into static/cairn/tracker.min.js."

    def handle(self, *args, **options):
        minified = tracker_minify(TRACKER_SOURCE.read_text())
        TRACKER_MINIFIED.write_text(minified)
        self.stdout.write(f"{TRACKER_MINIFIED}: {len(minified.encode())} bytes")
