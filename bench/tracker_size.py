"""The tracker's size (issue 14: under 8 KB gzipped with autocapture; 3.3 KB before it). One command:

    .venv/bin/python bench/tracker_size.py

Prints the bytes of static/cairn/tracker.min.js as served: minified, gzipped (level 9, as collectstatic's gzip copy
is made by WhiteNoise) and Brotli when the `brotli` package is installed; and each source part's share.
"""

import gzip
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "static" / "cairn"


def main() -> None:
    minified = (STATIC / "tracker.min.js").read_bytes()
    print(f"tracker.min.js: {len(minified):,} bytes minified, {len(gzip.compress(minified, 9)):,} bytes gzipped")
    try:
        import brotli
    except ImportError:
        pass
    else:
        print(f"tracker.min.js: {len(brotli.compress(minified)):,} bytes Brotli")
    # The parts manage.py build_tracker puts in one closure (a glob: this script runs without Django).
    for path in sorted(STATIC.glob("tracker_*.js")):
        source = path.read_bytes()
        print(f"{path.name}: {len(source):,} bytes of source, {len(gzip.compress(source, 9)):,} gzipped")


if __name__ == "__main__":
    main()
