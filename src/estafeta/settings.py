"""Django settings, all from the environment.

``DATABASE_URL``: ``postgres://user@host:port/name`` or ``sqlite:///ABSOLUTE/PATH``; unset means
the SQLite file ``estafeta.sqlite3`` in the data directory.
``ESTAFETA_DATA_DIR``: where the SQLite file, uploaded evidence, static files and the generated
secret key live (default ``~/.local/share/estafeta``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, default).split(",") if p.strip()]


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(
    os.environ.get("ESTAFETA_DATA_DIR") or Path.home() / ".local" / "share" / "estafeta"
).resolve()


def _secret_key() -> str:
    """From the environment, else generated once per data directory (never in the repository)."""
    if key := os.environ.get("ESTAFETA_SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
    except PermissionError:  # a read-only data directory: sessions will not survive a restart
        return secrets.token_urlsafe(50)


SECRET_KEY = _secret_key()
DEBUG = _env_bool("ESTAFETA_DEBUG")
ALLOWED_HOSTS = _env_list("ESTAFETA_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = _env_list("ESTAFETA_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "estafeta.core",
    "estafeta.accounts",
    "estafeta.clients",
    "estafeta.pipelines",
    "estafeta.tickets",
    "estafeta.tasks",
    "estafeta.history",
    "estafeta.calendars",
    "estafeta.control",
    "estafeta.demo",
    "estafeta.web",
    "estafeta.api",
    "estafeta.notifications",
    "estafeta.analytics",
    "estafeta.ratings",
    "estafeta.targets",
    "estafeta.intake",
    "estafeta.mailin",
    "estafeta.webforms",
    "estafeta.hooks",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
]

MIDDLEWARE = [
    "estafeta.web.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "estafeta.web.middleware.UserLanguageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "estafeta.web.middleware.UnstorableTextMiddleware",
]

ROOT_URLCONF = "estafeta.urls"
WSGI_APPLICATION = "estafeta.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "estafeta.web.context.nav",
                "estafeta.notifications.context.bell",
                "estafeta.control.context.control",
            ]
        },
    }
]


def _database() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{DATA_DIR / 'estafeta.sqlite3'}"
    config: dict[str, Any] = dict(dj_database_url.parse(url))
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        # Several processes (web workers, the monitor, console commands) write to one file:
        # WAL lets readers go on during a write, IMMEDIATE takes the write lock at BEGIN so that
        # two writers never deadlock upgrading their locks, and the timeout makes them queue.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
                "PRAGMA busy_timeout=30000"
            ),
        }
        config["TEST"] = {"NAME": os.environ.get("ESTAFETA_TEST_SQLITE") or None}
    elif engine in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
        config["ENGINE"] = "django.db.backends.postgresql"
        config["CONN_MAX_AGE"] = int(os.environ.get("ESTAFETA_CONN_MAX_AGE", "60"))
        config["CONN_HEALTH_CHECKS"] = True
        config.setdefault("OPTIONS", {})
        config["OPTIONS"].setdefault("application_name", "estafeta")
    else:
        raise RuntimeError(f"DATABASE_URL: Estafeta runs on PostgreSQL or SQLite, not {engine}")
    config["ATOMIC_REQUESTS"] = False
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("ESTAFETA_LANGUAGE", "ru")
LANGUAGES = [("ru", "Русский"), ("en", "English")]
TIME_ZONE = os.environ.get("ESTAFETA_TIME_ZONE", "Europe/Moscow")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "files"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if _env_bool("ESTAFETA_HTTPS"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "web:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "estafeta.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Every API error is {code, message, params} (docs/api.md).
    "EXCEPTION_HANDLER": "estafeta.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "estafeta.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Estafeta API",
    "DESCRIPTION": "Tickets, stages, tasks and history of a sales department.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the app's own static files (drf-spectacular-sidecar): no CDN. (Redoc is
    # not offered: its page links web fonts from another site.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Several API fields share a name ("kind", "status", "outcome"): name their enums.
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "estafeta.api.schema.TICKET_STATUS",
        "TaskStatusEnum": "estafeta.api.schema.TASK_STATUS",
        "TaskKindEnum": "estafeta.api.schema.TASK_KIND",
        "TaskResultEnum": "estafeta.api.schema.TASK_RESULT",
        "ActivityKindEnum": "estafeta.api.schema.ACTIVITY_KIND",
        "ActivityOutcomeEnum": "estafeta.api.schema.ACTIVITY_OUTCOME",
        "DocumentKindEnum": "estafeta.api.schema.DOCUMENT_KIND",
        "ClientKindEnum": "estafeta.api.schema.CLIENT_KIND",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ESTAFETA_LOG_LEVEL", "WARNING")},
}

# --- Estafeta ------------------------------------------------------------------------------
# Ticket numbers look like Z-2026-000123; a pipeline may set its own prefix.
ESTAFETA_TICKET_PREFIX = os.environ.get("ESTAFETA_TICKET_PREFIX", "Z")
# Largest evidence file accepted for a checklist item.
ESTAFETA_MAX_EVIDENCE_BYTES = int(os.environ.get("ESTAFETA_MAX_EVIDENCE_BYTES", str(20 << 20)))
# A checkpoint seals events older than this many seconds (see docs/history.md).
ESTAFETA_CHECKPOINT_EVERY = int(os.environ.get("ESTAFETA_CHECKPOINT_EVERY", "3600"))
# Business hours by weekday (docs/calendar.md); days not named are days off.
ESTAFETA_WORK_HOURS = os.environ.get("ESTAFETA_WORK_HOURS", "mon-fri 09:00-13:00 14:00-18:00")
# Public holidays and moved working days of this country (the holidays package); empty: none.
ESTAFETA_HOLIDAYS = os.environ.get("ESTAFETA_HOLIDAYS", "RU")
# A stage is at risk once this share of its SLA target (in business time) has passed.
ESTAFETA_SLA_RISK_SHARE = float(os.environ.get("ESTAFETA_SLA_RISK_SHARE", "0.8"))

# Notifications (docs/notifications.md). Without ESTAFETA_SMTP_HOST mail is printed to the console.
ESTAFETA_SMTP_HOST = os.environ.get("ESTAFETA_SMTP_HOST", "")
ESTAFETA_SMTP_PORT = int(os.environ.get("ESTAFETA_SMTP_PORT", "25"))
ESTAFETA_SMTP_USER = os.environ.get("ESTAFETA_SMTP_USER", "")
ESTAFETA_SMTP_PASSWORD = os.environ.get("ESTAFETA_SMTP_PASSWORD", "")
ESTAFETA_SMTP_TLS = os.environ.get("ESTAFETA_SMTP_TLS", "none")  # none | starttls | ssl
ESTAFETA_MAIL_FROM = os.environ.get("ESTAFETA_MAIL_FROM", "estafeta@localhost")
ESTAFETA_BASE_URL = os.environ.get("ESTAFETA_BASE_URL", "")  # for links in emails
ESTAFETA_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("ESTAFETA_NOTIFY_MAX_ATTEMPTS", "10"))
ESTAFETA_DIGEST_HOUR = int(os.environ.get("ESTAFETA_DIGEST_HOUR", "9"))  # local hour of digests
# Telephony and messenger webhooks (docs/webhooks-in.md): the largest body accepted, bytes.
ESTAFETA_HOOKS_MAX_BODY = int(os.environ.get("ESTAFETA_HOOKS_MAX_BODY", "65536"))

# Email intake (docs/email.md): limits per message, and a CA file for IMAP servers with a
# private certificate authority (the system's trust store otherwise).
ESTAFETA_MAIL_MAX_MESSAGE = int(os.environ.get("ESTAFETA_MAIL_MAX_MESSAGE", str(50 << 20)))
ESTAFETA_MAIL_MAX_ATTACHMENT = int(os.environ.get("ESTAFETA_MAIL_MAX_ATTACHMENT", str(10 << 20)))
ESTAFETA_MAIL_MAX_TEXT = int(os.environ.get("ESTAFETA_MAIL_MAX_TEXT", "100000"))
ESTAFETA_MAIL_CA_FILE = os.environ.get("ESTAFETA_MAIL_CA_FILE", "")

# K11 energy level (docs/ratings.md): may sellers see the ratings their heads give them?
ESTAFETA_SELLERS_SEE_OWN_ENERGY = _env_bool("ESTAFETA_SELLERS_SEE_OWN_ENERGY")

# Public web forms (docs/webforms.md): accepted submissions per hour from one client address and
# for one email or phone; a form opened longer ago than this many seconds is sent again.
ESTAFETA_WEBFORM_PER_IP_HOUR = int(os.environ.get("ESTAFETA_WEBFORM_PER_IP_HOUR", "10"))
ESTAFETA_WEBFORM_PER_CONTACT_HOUR = int(os.environ.get("ESTAFETA_WEBFORM_PER_CONTACT_HOUR", "3"))
ESTAFETA_WEBFORM_TOKEN_AGE = int(os.environ.get("ESTAFETA_WEBFORM_TOKEN_AGE", str(24 * 3600)))
# Behind a reverse proxy: the client address is the last one the proxy adds to X-Forwarded-For.
ESTAFETA_WEBFORM_BEHIND_PROXY = _env_bool("ESTAFETA_WEBFORM_BEHIND_PROXY")
