"""Connector Studio settings, read from the environment.

Every value has a default that works on a fresh checkout (SQLite under DATA_DIR, a generated
secret key and credentials key kept in DATA_DIR with mode 0600). Bad values raise
ImproperlyConfigured at start-up rather than failing later.
"""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy

from connectors_site.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    """Read a boolean: 1/true/yes/on or 0/false/no/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    """Read an integer, optionally bounded below."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def envfloat(name: str, default: float, *, minimum: float = 0.0) -> float:
    """Read a float, bounded below."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# The files secrets were read from (NAME_FILE): user code must never see them (engine_config).
SECRET_FILES: list[Path] = []


def envsecret(name: str) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE (noted in SECRET_FILES)."""
    if value := os.environ.get(name):
        return value
    if path := os.environ.get(f"{name}_FILE"):
        SECRET_FILES.append(Path(path).resolve())
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from None
    return None


def generated_secret(path: Path, make: Callable[[], str]) -> str:
    """Return the secret kept in `path`, creating it once (mode 0600) when missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = make()
    try:
        # O_EXCL: two processes starting at once must not write two different keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def database_from_url(url: str, data_dir: Path) -> dict:
    """Turn DATABASE_URL (sqlite:///path or postgres://user:pass@host:port/name) into settings."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative.db is relative to DATA_DIR; sqlite:////abs/path.db is absolute.
        raw = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if not raw:
            raise ImproperlyConfigured("DATABASE_URL: sqlite URL needs a file path")
        path = Path(raw) if raw.startswith("/") else data_dir / raw
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme in {"postgres", "postgresql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL: PostgreSQL URL needs a database name")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured("DATABASE_URL: the port is not a number") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:// or postgres://, not {parts.scheme or url!r}://"
    )


# Private (mode 0700): it holds the database, the generated keys and ingested data. The entry
# points (manage.py, wsgi, asgi) create it; importing settings creates and writes nothing.
DATA_DIR = Path(os.environ.get("DATA_DIR") or BASE_DIR / "data").resolve()

DEBUG = envbool("DEBUG", False)
# Without SECRET_KEY, a key generated into DATA_DIR the first time it is used.
SECRET_KEY = envsecret("SECRET_KEY") or lazy(generated_secret, str)(
    DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

# Fernet keys for connection credentials, newest first (comma-separated). Rotating: put a new key
# in front and run `manage.py rotate_credentials`. Without the variable, a key file in DATA_DIR.
CREDENTIALS_KEYS_FILE = DATA_DIR / "credentials_keys"


def _generated_fernet_keys() -> list[str]:
    """The Fernet keys of CREDENTIALS_KEYS_FILE, generating the file on first use."""
    raw = generated_secret(CREDENTIALS_KEYS_FILE, lambda: Fernet.generate_key().decode())
    return fernet_keys(raw, str(CREDENTIALS_KEYS_FILE))


def fernet_keys(raw: str, source: str) -> list[str]:
    """Split a comma- or newline-separated list of Fernet keys and check each one."""
    keys = [key.strip() for key in raw.replace("\n", ",").split(",") if key.strip()]
    if not keys:
        raise ImproperlyConfigured(f"{source} holds no key")
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ImproperlyConfigured(
                f"{source}: key {number} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


_credentials_keys = envsecret("CREDENTIALS_KEYS")
CREDENTIALS_KEYS = (
    fernet_keys(_credentials_keys, "CREDENTIALS_KEYS")
    if _credentials_keys is not None
    else lazy(_generated_fernet_keys, list)()
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "connections",
    "environments",
    "runs",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Who made a change, for the audit log (connections.audit).
    "connections.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Widgets render through TEMPLATES, so the project's own widget templates are found.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
ROOT_URLCONF = "connectors_site.urls"
WSGI_APPLICATION = "connectors_site.wsgi.application"

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
    "default": database_from_url(os.environ["DATABASE_URL"], DATA_DIR)
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3"}
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web server read while the worker writes; busy timeout instead of "locked".
    # A file, not memory, for the test database too: tests read its raw bytes for plaintext.
    DATABASES["default"]["TEST"] = {"NAME": DATA_DIR / "test-db.sqlite3"}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files from the source folders too, so `runserver` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# Where ingests write Parquet partitions (a local directory by default).
PARTITIONS_DIR = Path(os.environ.get("PARTITIONS_DIR") or DATA_DIR / "partitions")
# PARTITIONS_URL: the partitions store (runs.storage.location). Empty: PARTITIONS_DIR. Else an
# absolute local directory, or s3://bucket/prefix on AWS S3 or any S3 API, reached with:
# PARTITIONS_S3_ENDPOINT_URL (http(s)://host[:port]; empty: AWS), PARTITIONS_S3_REGION, and
# PARTITIONS_S3_ACCESS_KEY_ID with PARTITIONS_S3_SECRET_ACCESS_KEY (or its _FILE); without keys,
# the AWS credential chain (AWS_* variables, the instance's role). Checked on first use: a bad
# value raises ImproperlyConfigured.
PARTITIONS_URL = os.environ.get("PARTITIONS_URL", "").strip()
PARTITIONS_S3_ENDPOINT_URL = os.environ.get("PARTITIONS_S3_ENDPOINT_URL", "").strip()
PARTITIONS_S3_REGION = os.environ.get("PARTITIONS_S3_REGION", "").strip()
PARTITIONS_S3_ACCESS_KEY_ID = os.environ.get("PARTITIONS_S3_ACCESS_KEY_ID", "").strip()
PARTITIONS_S3_SECRET_ACCESS_KEY = envsecret("PARTITIONS_S3_SECRET_ACCESS_KEY") or ""

# Package environments (one pip-built directory per requirement set; see README "Packages").
# ENVIRONMENT_PIP_ARGS are extra pip options (shell syntax), e.g. "--no-index" or
# "--index-url https://mirror/simple"; otherwise pip uses the server's pip configuration.
ENVIRONMENTS_DIR = Path(os.environ.get("ENVIRONMENTS_DIR") or DATA_DIR / "environments")
ENVIRONMENT_PIP_ARGS = shlex.split(os.environ.get("ENVIRONMENT_PIP_ARGS", ""))
ENVIRONMENT_BUILD_TIMEOUT_S = envfloat("ENVIRONMENT_BUILD_TIMEOUT_S", 900.0, minimum=1.0)
# A build's private /tmp (also its HOME) and its address space (pip and sdists' build code).
ENVIRONMENT_BUILD_TMP_MB = envint("ENVIRONMENT_BUILD_TMP_MB", 2048, minimum=16)
ENVIRONMENT_BUILD_MEMORY_MB = envint("ENVIRONMENT_BUILD_MEMORY_MB", 4096, minimum=256)
# pip backtracking (trying version after version of a requirement) for longer fails the build
# and names the requirement to pin; a build directory larger than ENVIRONMENT_MAX_MB is stopped.
ENVIRONMENT_RESOLVE_TIMEOUT_S = envfloat("ENVIRONMENT_RESOLVE_TIMEOUT_S", 120.0, minimum=1.0)
ENVIRONMENT_MAX_MB = envint("ENVIRONMENT_MAX_MB", 4096, minimum=16)
ENVIRONMENT_MAX_IDLE_DAYS = envfloat("ENVIRONMENT_MAX_IDLE_DAYS", 30.0, minimum=0.0)
ENVIRONMENT_WORKER_IDLE_S = envfloat("ENVIRONMENT_WORKER_IDLE_S", 300.0, minimum=0.1)
ENVIRONMENT_UPLOAD_MAX_MB = envint("ENVIRONMENT_UPLOAD_MAX_MB", 100, minimum=1)

# Sandbox limits for previews (ingests reuse them per partition).
PREVIEW_TIMEOUT_S = envfloat("PREVIEW_TIMEOUT_S", 30.0, minimum=0.1)
SANDBOX_MEMORY_MB = envint("SANDBOX_MEMORY_MB", 2048, minimum=64)
# Each sandbox request gets its own /tmp (and HOME in it): a tmpfs of this size, gone after it.
SANDBOX_TMP_MB = envint("SANDBOX_TMP_MB", 256, minimum=1)
# Connector code sees only the system, the interpreter, its packages and the engine: host
# folders it may read (local source files) are listed here, separated by ":" (the examples'
# CSV files by default). They are shown read-only, to every connection's code.
SANDBOX_READABLE_PATHS = [
    Path(path).resolve()
    for path in os.environ.get(
        "SANDBOX_READABLE_PATHS", str(BASE_DIR / "connections" / "examples" / "files")
    ).split(":")
    if path
]
PREVIEW_ROW_LIMIT = envint("PREVIEW_ROW_LIMIT", 100, minimum=1)
# A read preview's column profile covers the partition the reader returned up to this many rows
# (its first rows beyond it, and the profile says so); never fewer than the rows shown.
PREVIEW_PROFILE_ROW_BUDGET = envint("PREVIEW_PROFILE_ROW_BUDGET", 100_000, minimum=1)
# A listing preview stores up to this many objects (a folder of 20,000 files fits, in about 3 MB
# of its result: PREVIEW_MAX_RESULT_BYTES still bounds it); the tree shows them a page at a time.
PREVIEW_MAX_OBJECTS = envint("PREVIEW_MAX_OBJECTS", 25_000, minimum=1)

# Bounds on what users can make the server store and run. A preview's stored result (rows,
# profile, context, listing, error) has every string cut at PREVIEW_MAX_CELL_BYTES with a
# visible marker, and is at most PREVIEW_MAX_RESULT_BYTES in all (the first rows that fit are
# kept). A preview is refused at once while SANDBOX_MAX_PER_USER previews of its user, or
# SANDBOX_MAX_TOTAL of everyone's, are running. Finished runs older than RUN_RETENTION_DAYS are
# deleted by the worker daily (0 keeps them); ingests that own committed partitions are kept.
PREVIEW_MAX_CELL_BYTES = envint("PREVIEW_MAX_CELL_BYTES", 10_000, minimum=100)
PREVIEW_MAX_RESULT_BYTES = envint("PREVIEW_MAX_RESULT_BYTES", 5_000_000, minimum=10_000)
SANDBOX_MAX_PER_USER = envint("SANDBOX_MAX_PER_USER", 4, minimum=1)
SANDBOX_MAX_TOTAL = envint("SANDBOX_MAX_TOTAL", 16, minimum=1)
RUN_RETENTION_DAYS = envint("RUN_RETENTION_DAYS", 30, minimum=0)

# Spark (the spark interface, infer_schema(spark=...)): without SPARK_REMOTE, a local Spark
# Connect server (pyspark's own) is started on demand under SPARK_DIR, bound to loopback with a
# generated token, and kept. SPARK_REMOTE (or SPARK_REMOTE_FILE), e.g.
# "sc://spark.example:15002/;token=...", uses that server or cluster instead.
SPARK_REMOTE = envsecret("SPARK_REMOTE")
SPARK_DIR = Path(os.environ.get("SPARK_DIR") or DATA_DIR / "spark")
SPARK_MASTER = os.environ.get("SPARK_MASTER", "local[*]")
SPARK_DRIVER_MEMORY = os.environ.get("SPARK_DRIVER_MEMORY", "1g")
SPARK_START_TIMEOUT_S = envfloat("SPARK_START_TIMEOUT_S", 90.0, minimum=1.0)
# Opening a spark connector's editor starts the local server in the background when it is down
# (off: it starts with the first preview that needs it; the tests turn it off).
SPARK_START_ON_OPEN = envbool("SPARK_START_ON_OPEN", True)
# The local server is restarted when it (with its Python workers) uses more memory; 0: no bound.
SPARK_MAX_MEMORY_MB = envint("SPARK_MAX_MEMORY_MB", 4096, minimum=0)
# Where Spark itself writes Parquet for ingests; the local server (under bubblewrap, where the
# rest of DATA_DIR is hidden from it) sees this directory writable and ENVIRONMENTS_DIR read-only.
SPARK_STAGING_DIR = Path(os.environ.get("SPARK_STAGING_DIR") or SPARK_DIR / "staging")
# Previews and reads lease Spark Connect sessions (stable ids leased across processes; the
# server keeps Python workers per session, SPARK-54055): at most SPARK_SESSION_POOL of one
# connection at once and SPARK_MAX_SESSIONS in all (a connection without a free one of its own
# takes a never-used one or the least recently used free one of another connection, whose
# session is ended); a request waits for a free one. A session idle for SPARK_SESSION_IDLE_S is
# ended by the local server (a cluster's own timeout applies to SPARK_REMOTE).
SPARK_SESSION_POOL = envint("SPARK_SESSION_POOL", 4, minimum=1)
SPARK_MAX_SESSIONS = envint("SPARK_MAX_SESSIONS", 8, minimum=1)
SPARK_SESSION_IDLE_S = envfloat("SPARK_SESSION_IDLE_S", 600.0, minimum=1.0)

# Ingests: every leaf is listed (a listing cut at INGEST_MAX_OBJECTS fails the run, so nothing
# is ever deleted on a partial listing); INGEST_CONCURRENCY partition reads run at once, each
# in its own sandboxed child, within INGEST_TIMEOUT_S. A running ingest writes a heartbeat
# every INGEST_HEARTBEAT_S; one silent for INGEST_STALE_AFTER_S is considered dead.
INGEST_MAX_OBJECTS = envint("INGEST_MAX_OBJECTS", 1_000_000, minimum=1)
INGEST_CONCURRENCY = envint("INGEST_CONCURRENCY", os.cpu_count() or 2, minimum=1)
# At most this many partitions are read by one sandboxed child (connector_engine.ingest.batching).
INGEST_BATCH_SIZE = envint("INGEST_BATCH_SIZE", 64, minimum=1)
INGEST_TIMEOUT_S = envfloat("INGEST_TIMEOUT_S", 600.0, minimum=0.1)
INGEST_LIST_TIMEOUT_S = envfloat("INGEST_LIST_TIMEOUT_S", 300.0, minimum=0.1)
INGEST_HEARTBEAT_S = envfloat("INGEST_HEARTBEAT_S", 2.0, minimum=0.05)
INGEST_STALE_AFTER_S = envfloat("INGEST_STALE_AFTER_S", 30.0, minimum=0.1)
# Several workers share the queue: each records a heartbeat every WORKER_HEARTBEAT_S; one silent
# for WORKER_STALE_AFTER_S (or whose process is gone from this host) is dead, and the others
# finish the task rows it left running. An ingest whose executor is dead is queued again for
# another worker to go on from its committed partitions, INGEST_MAX_ATTEMPTS attempts in all
# (then it ends "interrupted", as before).
WORKER_HEARTBEAT_S = envfloat("WORKER_HEARTBEAT_S", 2.0, minimum=0.05)
WORKER_STALE_AFTER_S = envfloat("WORKER_STALE_AFTER_S", 30.0, minimum=0.1)
INGEST_MAX_ATTEMPTS = envint("INGEST_MAX_ATTEMPTS", 3, minimum=1)
# Deletion guard: a plan that deletes every committed partition, or more than this fraction of
# them, stops the ingest before it writes anything, unless deletes are allowed (--allow-deletes,
# the run page's "Delete anyway").
INGEST_MAX_DELETE_FRACTION = envfloat("INGEST_MAX_DELETE_FRACTION", 0.5, minimum=0.0)

# One format for every process (connectors_site.logs): time, level, logger, process and the run
# being executed; LOG_FORMAT=json writes JSON lines. gunicorn's configuration uses the same.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
try:
    LOGGING = logging_config(LOG_FORMAT, os.environ.get("LOG_LEVEL", "INFO"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
