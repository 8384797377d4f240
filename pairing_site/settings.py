"""Settings: one module driven by the environment, with an embedded default.

No environment at all gives the embedded mode: SQLite in DATA_DIR, the in-memory channel layer and
the WhatsApp worker inside the web process. DATABASE_URL switches to PostgreSQL and REDIS_URL to
Redis (channel layer and cache). `.env.example` lists every variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from pairing_site import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.string("DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DATABASE_URL = env.raw("DATABASE_URL")
REDIS_URL = env.raw("REDIS_URL")
EMBEDDED = DATABASE_URL is None and REDIS_URL is None

DEBUG = env.boolean("DEBUG", EMBEDDED)


def _secret_key() -> str:
    value = env.raw("SECRET_KEY")
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return value
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Embedded/dev mode: keep one generated key in the data folder so sessions and signed
    # pairing links survive restarts.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.listing("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.listing("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_BASE_URL_SET = env.raw("PUBLIC_BASE_URL") is not None
PUBLIC_BASE_URL = env.string("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
if not PUBLIC_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("PUBLIC_BASE_URL must start with http:// or https://")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "whatsapp",
    "whatsapp.sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pairing_site.urls"
ASGI_APPLICATION = "pairing_site.asgi.application"
WSGI_APPLICATION = None

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
                "django.template.context_processors.i18n",
                "whatsapp.context_processors.service",
            ],
        },
    },
]

if DATABASE_URL:
    DATABASES = {"default": env.database_from_url(DATABASE_URL)}
else:
    DATABASES = {"default": env.sqlite_database(str(DATA_DIR / "db.sqlite3"))}
    # Tests use a file, not SQLite's shared in-memory mode: the worker thread and request
    # threads write concurrently, which shared-cache memory databases handle badly.
    # One file per test run, so two runs side by side do not share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test_db_{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every Redis client waits at most this long to connect or for an answer, so a frozen or lost
# Redis turns into 503 WORKER_UNAVAILABLE, never a hang (docs/design.md, "Topology and ownership").
REDIS_SOCKET_TIMEOUT = env.number("REDIS_SOCKET_TIMEOUT", 2.0, minimum=0.1, maximum=60)

if REDIS_URL:
    env.redis_url_checked(REDIS_URL)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.string("CACHE_KEY_PREFIX", "pairing"),
            "OPTIONS": {
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    # Connects are bounded here; reads block by design (the layer's own
                    # BZPOPMIN), so our calls on the layer carry their own deadlines
                    # (events.PUBLISH_TIMEOUT, worker.commands.SEND_TIMEOUT). A read timeout
                    # here would also keep cancelled receives alive at shutdown.
                    {"address": REDIS_URL, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT}
                ],
                "prefix": env.string("CHANNEL_LAYER_PREFIX", "pairing"),
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
LOGIN_URL = "/admin/login/"

# --- Security (docs/design.md, "Security") -------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.boolean("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", False)

CORS_ALLOWED_ORIGINS = env.listing("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "accept", "origin", "x-requested-with")

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["whatsapp.api.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "whatsapp.api.auth.ApiKeyAuthentication",
        "whatsapp.api.auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["whatsapp.api.throttles.CompanyRateThrottle"],
    "EXCEPTION_HANDLER": "whatsapp.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp pairing service API",
    "DESCRIPTION": (
        "Link companies' WhatsApp accounts as linked devices, by QR code or pairing code.\n\n"
        "Authenticate with `Authorization: Bearer <api key>` (or `Token <api key>`); a staff "
        'browser session works too. Every error is `{"success": false, "error_code", '
        '"error", "details"?}`; 429 responses carry `Retry-After`. Live events: the WebSocket '
        "`/ws/v1/companies/{slug}/` (see docs/api.md)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "TAGS": [
        {"name": "companies"},
        {"name": "session"},
        {"name": "credentials"},
        {"name": "attempts"},
        {"name": "pairing links"},
        {"name": "service"},
        {"name": "sandbox", "description": "Only with WHATSAPP_BACKEND=sandbox (404 otherwise)."},
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "whatsapp.models.SessionStatus",
        "ErrorCodeEnum": "whatsapp.rest.ERROR_CODES",
    },
    # Swagger UI's assets come from the drf-spectacular-sidecar package: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- WhatsApp linking engine ---------------------------------------------------------------
WHATSAPP_BACKEND = env.choice("WHATSAPP_BACKEND", "neonize", ("neonize", "sandbox"))
# "inprocess": the worker runs inside the web process (embedded default).
# "external": run `manage.py whatsapp_worker` processes next to the web processes.
WHATSAPP_WORKER_MODE = env.choice(
    "WHATSAPP_WORKER_MODE",
    "inprocess" if REDIS_URL is None else "external",
    ("inprocess", "external"),
)
if WHATSAPP_WORKER_MODE == "external" and REDIS_URL is None:
    raise ImproperlyConfigured(
        "WHATSAPP_WORKER_MODE=external needs REDIS_URL: a separate worker cannot reach the web "
        "process through the in-memory channel layer"
    )
WHATSAPP_OPERATION_TIMEOUT = env.number(
    "WHATSAPP_OPERATION_TIMEOUT", 20.0, minimum=0.1, maximum=300
)
WHATSAPP_PAIRING_CODE_CAP = env.integer("WHATSAPP_PAIRING_CODE_CAP", 3, minimum=1, maximum=1000)
WHATSAPP_PAIRING_CODE_CAP_WINDOW = env.integer(
    "WHATSAPP_PAIRING_CODE_CAP_WINDOW", 600, minimum=1, maximum=86400
)
WHATSAPP_RATE_LIMIT_COOLDOWN = env.integer(
    "WHATSAPP_RATE_LIMIT_COOLDOWN", 7200, minimum=1, maximum=30 * 86400
)
# A live pairing code is handed out again only while this many seconds of its window are left.
WHATSAPP_MIN_CODE_LIFETIME = env.number("WHATSAPP_MIN_CODE_LIFETIME", 15.0, minimum=0, maximum=120)
WHATSAPP_ABANDON_GRACE = env.number("WHATSAPP_ABANDON_GRACE", 30.0, minimum=0)
WHATSAPP_LEASE_TTL = env.number("WHATSAPP_LEASE_TTL", 15.0, minimum=1, maximum=600)
WHATSAPP_HEARTBEAT_INTERVAL = env.number(
    "WHATSAPP_HEARTBEAT_INTERVAL", 3.0, minimum=0.05, maximum=300
)
if WHATSAPP_HEARTBEAT_INTERVAL * 2 > WHATSAPP_LEASE_TTL:
    raise ImproperlyConfigured(
        "WHATSAPP_HEARTBEAT_INTERVAL must be at most half of WHATSAPP_LEASE_TTL, or leases expire "
        "between heartbeats"
    )
WHATSAPP_MAX_SESSIONS_PER_WORKER = env.integer("WHATSAPP_MAX_SESSIONS_PER_WORKER", 500, minimum=1)
WHATSAPP_RECONNECT_MAX_DELAY = env.number("WHATSAPP_RECONNECT_MAX_DELAY", 60.0, minimum=0.1)
WHATSAPP_SANDBOX_SPEED = env.number("WHATSAPP_SANDBOX_SPEED", 1.0, minimum=0.01, maximum=10000)
NEONIZE_HOST_MAX_CONNECTS = env.integer("NEONIZE_HOST_MAX_CONNECTS", 20, minimum=1, maximum=1000)
# The name the phone lists this linked device under (docs/whatsapp.md, "Device name").
WHATSAPP_DEVICE_NAME = (
    env.string("WHATSAPP_DEVICE_NAME", "Pairing Service")[:50] or "Pairing Service"
)
# A linking attempt whose login socket shows no QR within this many seconds has failed.
NEONIZE_FIRST_QR_TIMEOUT = env.number("NEONIZE_FIRST_QR_TIMEOUT", 30.0, minimum=1, maximum=300)
# Linking attempts run in short-lived processes of their own: at most this many at once per worker.
NEONIZE_MAX_LINKING_HOSTS = env.integer("NEONIZE_MAX_LINKING_HOSTS", 16, minimum=1, maximum=500)
# Where whatsmeow's store is reached, when not through Django's own database settings: a
# postgres:// URL, e.g. PgBouncer in transaction mode (docs/whatsapp.md, "Database connections").
NEONIZE_STORE_URL = env.string("NEONIZE_STORE_URL", "")
if NEONIZE_STORE_URL and not NEONIZE_STORE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("NEONIZE_STORE_URL must be a postgres:// URL")
# Extra environment of the neonize host processes; tests point it at the WhatsApp emulator.
NEONIZE_HOST_EXTRA_ENV: dict[str, str] = {}
NEONIZE_SQLITE_PATH = env.string("NEONIZE_SQLITE_PATH", str(DATA_DIR / "whatsmeow.sqlite3"))
PAIRING_LINK_TTL = env.integer("PAIRING_LINK_TTL", 86400, minimum=60, maximum=30 * 86400)
API_THROTTLE_WRITES_PER_MINUTE = env.integer("API_THROTTLE_WRITES_PER_MINUTE", 30, minimum=1)
API_THROTTLE_READS_PER_MINUTE = env.integer("API_THROTTLE_READS_PER_MINUTE", 300, minimum=1)
WEBSOCKET_MAX_FRAME_BYTES = env.integer("WEBSOCKET_MAX_FRAME_BYTES", 4096, minimum=64)

# --- Metrics (GET /metrics, Prometheus) --------------------------------------------------------
# Loopback may always scrape; other callers need this token (Authorization: Bearer) or an address
# in METRICS_ALLOWED_IPS (comma-separated addresses or networks).
METRICS_TOKEN = env.string("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env.networks("METRICS_ALLOWED_IPS")

# --- Logging and error reporting -----------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phones": {"()": "whatsapp.privacy.MaskPhonesFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_phones"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

SENTRY_DSN = env.raw("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    from whatsapp.privacy import sentry_before_send

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        send_default_pii=False,
        before_send=sentry_before_send,
        environment=env.string("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=env.number("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0, maximum=1),
    )
