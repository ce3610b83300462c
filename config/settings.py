"""Django settings: everything comes from the environment (see config/env.py)."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

from common import components
from config import env as env_module
from config.env import ConfigError, dotenv_read, load

BASE_DIR = Path(__file__).resolve().parent.parent

dotenv_read(BASE_DIR)  # only a checkout where `make run` ran has one
try:
    CONFIG = load(os.environ, BASE_DIR)
except ConfigError as error:
    # One line naming the variable, not a traceback: the operator knows what to fix.
    sys.exit(f"ensemble: configuration error: {error}")

VAR_DIR = CONFIG.var_dir
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key
ALLOWED_HOSTS = CONFIG.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "common",
    "crm",
    "sales",
    "marketing",
    "correspondence",
    "integration",
    "shop_api",
    "staff",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "common.middleware.DatabaseUnavailableMiddleware",
    "shop_api.middleware.ApiProblemMiddleware",
    # Last, as django-axes requires: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out login before the password is checked; then the ordinary backend.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Without collectstatic (tests, a fresh checkout) WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# The shop API accepts at most 1 MiB; larger bodies answer 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- email -------------------------------------------------------------------------------------
for _key, _value in CONFIG.email.items():
    globals()[_key] = _value
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Ensemble <hello@ensemble.invalid>")

# --- security ----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if CONFIG.secure_https:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- login throttling (django-axes) ------------------------------------------------------------
# Both login pages (/accounts/login/, /admin/login/) authenticate through AUTHENTICATION_BACKENDS,
# so both are throttled; the shop API's bearer tokens never go through authenticate().
AXES_FAILURE_LIMIT = CONFIG.login_failure_limit
AXES_COOLOFF_TIME = timedelta(seconds=CONFIG.login_lockout)
# Separate entries, not one combined list: a username reaching the limit is locked from every
# address, and an address reaching it is locked for every username.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Counts live in the database, so every web process sees the same ones.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# Failures count for LOGIN_LOCKOUT seconds whatever happens meanwhile (operations.md): a success
# does not wipe them, or anyone with an account could log in from an address between guesses
# at another person's password and never be locked out.
AXES_RESET_ON_SUCCESS = False
# A lockout ends LOGIN_LOCKOUT seconds after the failure that caused it: attempts refused during
# it are not counted and do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "staff.lockout.lockout_response"
# The app is reached directly (no proxy by default), so the client is REMOTE_ADDR; a proxy in
# front needs django-ipware and the AXES_IPWARE_* settings, or every client is the proxy.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "shop_api.problems.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ensemble shop API",
    "DESCRIPTION": "The REST API the online shop uses to register clients, record purchases and "
    "follow the processes they start.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ComponentEnum": "common.components.COMPONENTS",
        "ModeEnum": "integration.models.IntegrationMode",
        "ProcessKindEnum": "integration.models.ProcessKind",
        "ProcessStatusEnum": "integration.models.ProcessStatus",
        "TraceKindEnum": "integration.models.TraceKind",
    },
}

# --- channels ----------------------------------------------------------------------------------
CHANNEL_LAYERS = {"default": CONFIG.channel_layer}

# --- celery ------------------------------------------------------------------------------------
COMPONENTS = components.COMPONENTS
CELERY_BROKER_URL = CONFIG.broker_url
CELERY_BROKER_TRANSPORT_OPTIONS = CONFIG.broker_transport_options
for _key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder"):
    if _key in CELERY_BROKER_TRANSPORT_OPTIONS:
        Path(CELERY_BROKER_TRANSPORT_OPTIONS[_key]).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = CONFIG.result_backend
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# The relay must not hold an HTTP answer on a dead or hung broker: a connection (AMQP: with its
# handshake) that is not made in half a second is given up, and the request still answers in 1 s.
CELERY_BROKER_CONNECTION_TIMEOUT = 0.5
CELERY_TASK_DEFAULT_QUEUE = "integration"
CELERY_TASK_CREATE_MISSING_QUEUES = True
CELERY_RESULT_EXPIRES = 300  # results are lookup answers, read within LOOKUP_TIMEOUT
# A result backend that is down costs a lookup one short try, not Celery's 20 reconnections.
CELERY_REDIS_SOCKET_TIMEOUT = env_module.REDIS_SOCKET_TIMEOUT
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = env_module.REDIS_SOCKET_TIMEOUT
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.1,
        "interval_max": 0.1,
    }
}
# A step or delivery is small work; one that runs longer is hung (a retry will tell). Both limits
# stay far below the Redis visibility timeout, so a running task is never delivered twice.
CELERY_TASK_SOFT_TIME_LIMIT = env_module.TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = env_module.TASK_TIME_LIMIT
CELERY_RESULT_EXTENDED = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# The filesystem transport has no fanout for remote control; nothing here needs it.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = not CELERY_BROKER_URL.startswith("filesystem")
CELERY_WORKER_SEND_TASK_EVENTS = False

# --- Ensemble ----------------------------------------------------------------------------------
INTEGRATION_MODE = CONFIG.integration_mode
ORCHESTRATOR_STEP_TIMEOUT = CONFIG.step_timeout
ORCHESTRATOR_MAX_ATTEMPTS = CONFIG.max_attempts
# Runs of one step or delivery that killed their worker before it is dead, not run again.
WORKER_CRASH_LIMIT = CONFIG.worker_crash_limit
LOOKUP_TIMEOUT = CONFIG.lookup_timeout
STUCK_AFTER = CONFIG.stuck_after
# Seconds a process reuses the runtime mode, paused components and shop tokens it read.
RECENT_MAX_AGE = CONFIG.recent_max_age
# Seconds between the scheduler's replica comparisons (integration/choreography/reconcile.py);
# 0: none.
RECONCILE_INTERVAL = CONFIG.reconcile_interval
API_RATE_LIMIT = CONFIG.api_rate_limit
REDIS_URL = CONFIG.redis_url
# When set, /metrics asks for it as a bearer token; unset, it answers loopback clients only.
METRICS_TOKEN = CONFIG.metrics_token

# Shared by every process (the API's rate limit counts across web processes).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # The rate limit counts here; a Redis that is down or paused must cost a request
            # little (the limiter then counts in the process, see shop_api.views).
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "correlation": {"()": "common.logging.CorrelationIdFilter"},
        "refusal_without_traceback": {"()": "staff.log_filters.RefusalWithoutTraceback"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["correlation"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["refusal_without_traceback"]},
        # Task results are lookup answers (personal data): never written to the log.
        "celery.app.trace": {"level": "WARNING"},
    },
}
