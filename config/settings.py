"""Cairn settings, read from the environment.

Embedded default: no DATABASE_URL -> a SQLite file; no REDIS_URL -> Celery runs tasks eagerly in-process.
Production: DATABASE_URL=postgres://..., REDIS_URL=redis://..., SECRET_KEY set, DEBUG unset.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.kernel.static_files import static_file_headers

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
# Origins whose form posts are trusted (https://cairn.example.com) when the dashboard is reached through a
# proxy or another host name than the one Django sees.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# HTTPS (docs/operations.md, "HTTPS and proxies"). CAIRN_HTTPS=1 when visitors reach Cairn over https (directly
# or through a TLS-terminating proxy): plain http is redirected, cookies are sent over https only, and browsers
# are told (HSTS) never to use http again for CAIRN_HSTS_SECONDS.
CAIRN_HTTPS = env_bool("CAIRN_HTTPS")
SECURE_SSL_REDIRECT = CAIRN_HTTPS
SESSION_COOKIE_SECURE = CAIRN_HTTPS
CSRF_COOKIE_SECURE = CAIRN_HTTPS
SECURE_HSTS_SECONDS = env_int("CAIRN_HSTS_SECONDS", 31536000) if CAIRN_HTTPS else 0
# Off unless asked for: on an apex domain they would force https on every other host of it for a year
# (docs/operations.md turns them on for Cairn's own host name, which `check --deploy` expects).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CAIRN_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("CAIRN_HSTS_PRELOAD", False)
# A load balancer's health probe speaks plain http to the process: never redirect it.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a TLS-terminating proxy Django sees http: trust the header the proxy sets (and strips from visitors),
# e.g. CAIRN_PROXY_SSL_HEADER=X-Forwarded-Proto. Unset: no header is trusted.
_proxy_ssl_header = os.environ.get("CAIRN_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

INSTALLED_APPS = [
    # Django's admin with Cairn's site: signed-in viewers get 403 on admin URLs (config/kernel/admin_site.py).
    "config.kernel.admin_site.CairnAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: `runserver` serves static files through WhiteNoise too, as gunicorn does.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",  # login throttling (the "Hardening" block at the end)
    "users_app",
    "events_app",
    "reports_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app itself (no separate web server): right after SecurityMiddleware, as WhiteNoise
    # documents, so HTTPS redirects still apply and nothing else runs for a file.
    # WhiteNoise, plus Heap's script addresses answered with the tracker (config/middleware.py).
    "config.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Before any view reads the body (its __call__ runs before every middleware's process_view).
    "config.middleware.ContentLengthMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the 429 lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out username+address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while ingest writes; a busy timeout instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
elif env_bool("CAIRN_DB_SERVER_SIDE_BINDING", True):
    # PostgreSQL: parameters bound by the server, so psycopg prepares a statement run five times on a
    # connection and the server skips parsing and planning it again (docs/benchmarks.md, "Prepared
    # statements"). Behind PgBouncer in transaction mode (before 1.21) prepared statements break:
    # set CAIRN_DB_SERVER_SIDE_BINDING=0 there.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `manage.py collectstatic` writes here (a deploy step, docs/operations.md); WhiteNoise serves it.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cached for ten years, `immutable`) plus gzip and Brotli copies made at collectstatic time.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Files requested by their plain name (the tracker that pasted snippets load): cached this long.
# (Not cached at all while developing: an edited script must show on the next reload.)
WHITENOISE_MAX_AGE = 0 if DEBUG else env_int("CAIRN_STATIC_MAX_AGE", 300)
WHITENOISE_ADD_HEADERS_FUNCTION = static_file_headers

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Ingest bodies: a bulk call of 1000 events fits comfortably; anything larger is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CAIRN_MAX_BODY_BYTES", 5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.kernel.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Cairn API",
    "DESCRIPTION": "Heap-compatible ingest (track, add_user_properties, identify) and the read API.",
    "VERSION": "1.0.0",
    # 3.1: full JSON Schema (propertyNames, `not`), so the schema can say exactly what the API accepts.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: dashboards run behind firewalls, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Rules across the fields of a request body (identity or user_id, single or bulk): events_app/schema.py.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "events_app.schema.add_body_rules"],
    # A deletion request's status and a defined event's backfill share these three values: one enum name for both
    # (two would be a warning, which `check --deploy --fail-level WARNING` refuses).
    "ENUM_NAME_OVERRIDES": {"WorkStateEnum": ["pending", "running", "done"]},
}

# Celery: REDIS_URL absent -> eager (the embedded default). Tasks are enqueued after commit.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
# The cache web processes share (environments, user counts: config/kernel/shared_cache.py). Redis when there is one,
# so every gunicorn worker and machine agrees; short timeouts because the cache is never worth waiting for.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("CAIRN_CACHE_URL", REDIS_URL),
            "KEY_PREFIX": "cairn",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A merge is short, but a redelivery must wait for a dead worker's task: the sweep re-queues sooner.
# max_retries/interval_*: publishing to a Redis that is down gives up after one quick retry instead of
# kombu's default of about two seconds of retries, so identify answers at once and the sweep queues the merge.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CAIRN_VISIBILITY_TIMEOUT", 600),
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
# When the broker is down, publishing must fail fast so identify still answers (the sweep re-queues).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Merges (users_app/merges/apply.py): rows moved per batch, an optional pause between batches (throttle
# on a busy database), and how long a pending/running merge may go without a heartbeat before the sweep
# re-queues it. Worst case after a worker dies: STALE + SWEEP seconds plus the rest of the merge.
CAIRN_MERGE_BATCH_SIZE = env_int("CAIRN_MERGE_BATCH_SIZE", 5000)
# A large history moves on this many connections at once (PostgreSQL; a plain UPDATE uses one core).
CAIRN_MERGE_STREAMS = env_int("CAIRN_MERGE_STREAMS", 2)
CAIRN_MERGE_BATCH_PAUSE_MS = env_int("CAIRN_MERGE_BATCH_PAUSE_MS", 0)
CAIRN_MERGE_STALE_SECONDS = env_int("CAIRN_MERGE_STALE_SECONDS", 45)
CAIRN_MERGE_SWEEP_SECONDS = env_int("CAIRN_MERGE_SWEEP_SECONDS", 15)
# Deletion and retention (users_app/deletion, docs/operations.md "Deleting people and event retention").
CAIRN_DELETION_BATCH_SIZE = env_int("CAIRN_DELETION_BATCH_SIZE", 2000)
CAIRN_DELETION_STALE_SECONDS = env_int("CAIRN_DELETION_STALE_SECONDS", 120)
CAIRN_RETENTION_BATCH_SIZE = env_int("CAIRN_RETENTION_BATCH_SIZE", 5000)
CAIRN_RETENTION_SECONDS = env_int("CAIRN_RETENTION_SECONDS", 3600)
# Defined events' backfill (events_app/defined_events/backfill.py, docs/operations.md "Defined events"): event ids
# per batch, the delay of the re-sweep of recent events, and how long a backfill may go without a batch before the
# sweep queues it again.
CAIRN_DEFINED_EVENT_BATCH_IDS = env_int("CAIRN_DEFINED_EVENT_BATCH_IDS", 20000)
CAIRN_DEFINED_EVENT_RESWEEP_SECONDS = env_int("CAIRN_DEFINED_EVENT_RESWEEP_SECONDS", 60)
CAIRN_DEFINED_EVENT_STALE_SECONDS = env_int("CAIRN_DEFINED_EVENT_STALE_SECONDS", 300)
# Rollups (events_app/rollups/, docs/operations.md "Rollups"): how often beat runs the catch-up, the event ids per
# catch-up transaction, and how long the catch-up may wait for in-flight writers before it skips a round.
CAIRN_ROLLUP_SECONDS = env_int("CAIRN_ROLLUP_SECONDS", 5)
CAIRN_ROLLUP_BATCH_IDS = env_int("CAIRN_ROLLUP_BATCH_IDS", 200000)
CAIRN_ROLLUP_LOCK_TIMEOUT_MS = env_int("CAIRN_ROLLUP_LOCK_TIMEOUT_MS", 1000)
# A catch-up run that counted at least this many event ids refreshes the rollups' planner statistics (ANALYZE).
CAIRN_ROLLUP_ANALYZE_EVENTS = env_int("CAIRN_ROLLUP_ANALYZE_EVENTS", 100000)
# PostgreSQL's work_mem, in MB, for each report statement (trends, funnels, retention: reports_app/selectors/
# report_cursor.py), set for that statement alone; 0 keeps the server's (docs/operations.md "Report memory").
CAIRN_REPORT_WORK_MEM_MB = env_int("CAIRN_REPORT_WORK_MEM_MB", 64)
# Event partitions (events_app/partitions.py, docs/operations.md "Event partitions"): how many months after the
# current one beat keeps a partition made for, and how often it checks.
CAIRN_EVENT_PARTITIONS_AHEAD = env_int("CAIRN_EVENT_PARTITIONS_AHEAD", 2)
CAIRN_EVENT_PARTITIONS_SECONDS = env_int("CAIRN_EVENT_PARTITIONS_SECONDS", 3600)
CELERY_BEAT_SCHEDULE = {
    "event-partitions-ensure": {
        "task": "cairn.event_partitions_ensure",
        "schedule": float(CAIRN_EVENT_PARTITIONS_SECONDS),
        "options": {"expires": float(CAIRN_EVENT_PARTITIONS_SECONDS)},
    },
    "rollups-catch-up": {
        "task": "cairn.rollups_catch_up",
        "schedule": float(CAIRN_ROLLUP_SECONDS),
        "options": {"expires": float(CAIRN_ROLLUP_SECONDS)},
    },
    "merge-sweep": {
        "task": "cairn.merge_sweep",
        "schedule": float(CAIRN_MERGE_SWEEP_SECONDS),
        # A sweep that could not run in time is pointless: the next one is coming.
        "options": {"expires": float(CAIRN_MERGE_SWEEP_SECONDS)},
    },
    # users_app/deletion: lost deletion requests queued again; events past their environment's retention removed.
    "deletion-sweep": {
        "task": "cairn.deletion_sweep",
        "schedule": float(CAIRN_MERGE_SWEEP_SECONDS),
        "options": {"expires": float(CAIRN_MERGE_SWEEP_SECONDS)},
    },
    "defined-event-sweep": {
        "task": "cairn.defined_event_sweep",
        "schedule": float(CAIRN_MERGE_SWEEP_SECONDS),
        "options": {"expires": float(CAIRN_MERGE_SWEEP_SECONDS)},
    },
    "event-retention": {
        "task": "cairn.event_retention",
        "schedule": float(CAIRN_RETENTION_SECONDS),
        "options": {"expires": float(CAIRN_RETENTION_SECONDS)},
    },
}

# How long an environment looked up by app_id or API key may be answered from the shared cache (docs/operations.md,
# "Environment cache"); 0 turns the cache off.
CAIRN_ENVIRONMENT_CACHE_SECONDS = float(os.environ.get("CAIRN_ENVIRONMENT_CACHE_SECONDS", 5))
# Identity guard (SPEC 4): merges into one identity beyond this many in 24 h are held for an admin.
CAIRN_MERGE_HOLD_THRESHOLD = env_int("CAIRN_MERGE_HOLD_THRESHOLD", 25)
# Web sessions end after this many minutes without activity.
CAIRN_SESSION_TIMEOUT_MINUTES = env_int("CAIRN_SESSION_TIMEOUT_MINUTES", 30)
# Location: a GeoIP2 City database, else a trusted proxy header (e.g. "HTTP_CF_IPCOUNTRY"), else empty.
GEOIP_PATH = os.environ.get("GEOIP_PATH", "")
# Proxies in front of gunicorn that append to X-Forwarded-For (a load balancer: 1). The visitor's address (GeoIP,
# login throttling) is read that many entries from the right; 0 = REMOTE_ADDR, X-Forwarded-For ignored.
CAIRN_TRUSTED_PROXY_COUNT = env_int("CAIRN_TRUSTED_PROXY_COUNT", 0)
CAIRN_COUNTRY_HEADER = os.environ.get("CAIRN_COUNTRY_HEADER", "")
CAIRN_CITY_HEADER = os.environ.get("CAIRN_CITY_HEADER", "")

LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # 4xx are the client's errors: INFO without traceback; suspicious requests: one WARNING line (log_filters).
    "filters": {
        "client_errors_quiet": {"()": "config.log_filters.ClientErrorsQuiet"},
        "security_warning_once": {"()": "config.log_filters.SecurityWarningOnce"},
    },
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "level": LOG_LEVEL,
            "formatter": "plain",
            "filters": ["security_warning_once"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.request": {"filters": ["client_errors_quiet"]}},
}


# --- Hardening (issue #11, the audit's Low/Info findings) ------------------------------------------------------
# The demo product at /demo/<app_id>/ is public and loads the tracker for any environment's app_id: on for
# development (DEBUG), off in production unless asked for (404 when off).
CAIRN_DEMO_SITE = env_bool("CAIRN_DEMO_SITE", DEBUG)

# Login throttling (/accounts/login/ and the admin's login) with django-axes: after CAIRN_LOGIN_FAILURE_LIMIT
# wrong passwords for one username from one address, that pair is locked out (429 page, even the right
# password fails) until CAIRN_LOGIN_COOLOFF_MINUTES after its last attempt. Per pair, so a stranger guessing
# at a username from elsewhere does not lock its owner out. A successful login clears the count. Attempts are
# kept in the database (admin: Access attempts; `manage.py axes_reset_username NAME` unlocks).
AXES_ENABLED = env_bool("CAIRN_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("CAIRN_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CAIRN_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The visitor behind CAIRN_TRUSTED_PROXY_COUNT proxies, the same address GeoIP uses.
AXES_CLIENT_IP_CALLABLE = "config.kernel.login_throttle.login_client_ip"
AXES_USERNAME_CALLABLE = "config.kernel.login_throttle.login_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429

# ---- Rate limits of the public ingest endpoints (users_app/rate_limits.py; docs/api.md, "Rate limits") ----
# Token buckets: a sustained rate per minute, and a burst that may arrive at once (refilled continuously).
# Counters live in Redis when REDIS_URL is set (shared by every web process), else in each process's memory.
# 0 turns a limit off. The per-environment cap is a field of each environment (admin), off by default.
# Per person (the identity or user_id a call names): events and property updates. Heap allows 1,000 per minute
# per identity; the burst of 2,000 lets two full bulk calls about one person through at once (a one-person
# backfill beyond that goes at 1,000 a minute: raise this for a large one).
CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE = env_int("CAIRN_RATE_LIMIT_PER_IDENTITY_PER_MINUTE", 1000)
CAIRN_RATE_LIMIT_PER_IDENTITY_BURST = env_int("CAIRN_RATE_LIMIT_PER_IDENTITY_BURST", 2000)
# Identify calls, per user_id and per identity (a device cycling through identities, or many devices
# identifying as one person): 2 a second sustained is far beyond an app that identifies on every request.
CAIRN_RATE_LIMIT_IDENTIFY_PER_MINUTE = env_int("CAIRN_RATE_LIMIT_IDENTIFY_PER_MINUTE", 120)
CAIRN_RATE_LIMIT_IDENTIFY_BURST = env_int("CAIRN_RATE_LIMIT_IDENTIFY_BURST", 240)
