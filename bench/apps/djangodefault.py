"""A Django project with ``startproject``'s settings in one module: the default
INSTALLED_APPS and MIDDLEWARE (sessions, auth, messages included), SQLite, a
13-byte sync view at ``/`` and an async one at ``/async``.

``BENCH_DJANGO_HANDLER=django`` serves ``asgi`` with Django's own ASGIHandler,
anything else with fastbase's. ``BENCH_DJANGO_FASTBASE=1`` puts ``"fastbase"``
first in INSTALLED_APPS (for ``manage.py runserver``).
"""

from __future__ import annotations

import os
import tempfile

import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

_apps = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
if os.environ.get("BENCH_DJANGO_FASTBASE") == "1":
    _apps.insert(0, "fastbase")

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="fastbase-benchmarks-only",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=_apps,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        ROOT_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(tempfile.gettempdir(), "fastbase-bench-djangodefault.sqlite3"),
            }
        },
        STATIC_URL="static/",
        USE_TZ=True,
        WSGI_APPLICATION=f"{__name__}.wsgi",
        ASGI_APPLICATION=f"{__name__}.asgi",
    )
    django.setup(set_prefix=False)


def index(request):
    return HttpResponse("Hello, World!", content_type="text/plain")


async def async_index(request):
    return HttpResponse("Hello, World!", content_type="text/plain")


urlpatterns = [path("", index), path("async", async_index)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

wsgi = get_wsgi_application()
if os.environ.get("BENCH_DJANGO_HANDLER") == "django":
    from django.core.handlers.asgi import ASGIHandler as _Handler
else:
    from fastbase.django import ASGIHandler as _Handler  # type: ignore[assignment]
asgi = _Handler()
