"""config/wsgi.py: the process that serves requests (gunicorn imports it) freezes what it loaded out of the
garbage collector and collects its youngest generation less often (why: the module's comment)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_served_process_freezes_what_it_loaded_and_collects_less_often():
    probe = (
        "import gc; before = gc.get_threshold(); import config.wsgi; "
        "print(before[0], gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:], gc.get_freeze_count())"
    )
    environment = {"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "PATH": "/usr/bin:/bin"}
    printed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=environment, capture_output=True, text=True, check=True
    ).stdout.split()
    default_threshold, threshold, older_kept, frozen = int(printed[0]), int(printed[1]), printed[2], int(printed[3])
    assert default_threshold == 700 and threshold == 50_000 and older_kept == "True"
    assert frozen > 10_000  # Django, the apps, DRF: the loaded modules' objects, not a handful
