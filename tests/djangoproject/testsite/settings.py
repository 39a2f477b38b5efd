"""Settings for the testsite package: DEBUG off (errors are plain 500 pages),
CSRF protection on, no templates, an in-memory database, static files from
the project's ``static/`` (shared with mysite).

``TESTSITE_DEBUG=1`` turns DEBUG on (by hand: ``DJANGO_SETTINGS_MODULE=testsite.settings
TESTSITE_DEBUG=1 python manage.py runserver``).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "fastbase-tests-not-a-secret"
DEBUG = os.environ.get("TESTSITE_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "testsite.urls"
WSGI_APPLICATION = "testsite.wsgi.application"
ASGI_APPLICATION = "testsite.asgi.application"

# Nothing is stored; an in-memory database keeps runserver's migration check
# and the test runner happy without leaving a file behind.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
