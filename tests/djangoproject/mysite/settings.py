"""A small project for fastbase's Django tests. Environment knobs:
FASTBASE_TEST_DEBUG (1/0), FASTBASE_TEST_DB (sqlite path, default in-memory),
FASTBASE_TEST_ASGI (1: set ASGI_APPLICATION), FASTBASE_TEST_STATIC (extra
static dir), FASTBASE_TEST_APPS_ORDER ("late": fastbase after staticfiles),
FASTBASE_TEST_ASGI_HANDLER (sets FASTBASE_ASGI_HANDLER),
FASTBASE_TEST_AUTORELOAD_LOG (1: the autoreloader's debug log on stderr)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "fastbase-tests-only"
DEBUG = os.environ.get("FASTBASE_TEST_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "fastbase",
    "django.contrib.staticfiles",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "mysite",
]
if os.environ.get("FASTBASE_TEST_APPS_ORDER") == "late":
    INSTALLED_APPS.remove("fastbase")
    INSTALLED_APPS.append("fastbase")

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
if os.environ.get("FASTBASE_TEST_ASGI") == "1":
    ASGI_APPLICATION = "mysite.asgi.application"
if os.environ.get("FASTBASE_TEST_ASGI_HANDLER"):
    FASTBASE_ASGI_HANDLER = os.environ["FASTBASE_TEST_ASGI_HANDLER"]
if os.environ.get("FASTBASE_TEST_CHANNELS") == "1":
    # A Django Channels project: HTTP and WebSocket routing (mysite/routing.py).
    INSTALLED_APPS.append("channels")
    ASGI_APPLICATION = "mysite.routing.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FASTBASE_TEST_DB", ":memory:"),
    }
}
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
if os.environ.get("FASTBASE_TEST_STATIC"):
    STATICFILES_DIRS.append(os.environ["FASTBASE_TEST_STATIC"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = "logging.config.dictConfig"

if os.environ.get("FASTBASE_TEST_FRESH_GRACE"):
    # A long grace for connections that sent nothing yet, so a test can tell
    # "closed at once" from "closed when the grace ran out".
    import fastbase.protocol

    fastbase.protocol.FRESH_SHUTDOWN_GRACE = float(os.environ["FASTBASE_TEST_FRESH_GRACE"])

if os.environ.get("FASTBASE_TEST_AUTORELOAD_LOG") == "1":
    # The autoreloader logs "File ... first seen" as it takes a file's
    # baseline mtime: a test edits a file only after that line, since an edit
    # made before the baseline is never noticed.
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"django.utils.autoreload": {"handlers": ["stderr"], "level": "DEBUG", "propagate": False}},
    }
