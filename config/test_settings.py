"""The test suite's settings: production's (config/settings.py), with what a test process must not share.

- Static files: plain storage, so pages render without a `collectstatic` first. tests/test_production.py runs
  the real thing (collectstatic, hashed and compressed files, WhiteNoise under gunicorn) in its own processes.
- Cache: this process's memory, so one test's entries never reach another; the Redis cache is tested on purpose
  (tests/users_app/test_shared_cache.py, tests/test_production.py).
- A fast password hasher: logins are not what the suite measures.
"""

from config.settings import *  # noqa: F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
