import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# A bulk call makes many short-lived objects (parsed JSON, rows, tuples), and with the default threshold of 700
# allocations the collector ran over and over through every module, model and URL pattern loaded above: a large
# share of a call's CPU (docs/benchmarks.md, "Ingest CPU"). What is loaded now lives as long as the worker, so it
# is frozen out of the collections, and the youngest generation is collected after 50,000 allocations instead;
# reference cycles are still collected, only less often.
gc.freeze()
gc.set_threshold(50_000, *gc.get_threshold()[1:])
