"""A whole Django project in one module: settings, one URLconf, the views and
the WSGI/ASGI entry points. ``manage.py`` beside it runs ``runserver`` on it.

Environment knobs, read once at import:

- ``BENCH_DJANGO_FASTBASE=1`` puts ``"fastbase"`` first in INSTALLED_APPS (the
  fastbase ``runserver`` run; the stock run leaves it out).
- ``BENCH_DJANGO_DAPHNE=1`` puts ``"daphne"`` first instead (daphne's runserver).
- ``BENCH_DJANGO_ASGI=1`` sets ASGI_APPLICATION (runserver in ASGI mode).

The middleware is Django's default stack minus what needs a database
(sessions, auth, messages): what a typical request goes through.
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

_apps = ["django.contrib.contenttypes"]
if os.environ.get("BENCH_DJANGO_FASTBASE") == "1":
    _apps.insert(0, "fastbase")
if os.environ.get("BENCH_DJANGO_DAPHNE") == "1":
    _apps.insert(0, "daphne")

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="fastbase-benchmarks-only",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=_apps,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        ROOT_URLCONF=__name__,
        WSGI_APPLICATION=f"{__name__}.wsgi",
        **({"ASGI_APPLICATION": f"{__name__}.asgi"} if os.environ.get("BENCH_DJANGO_ASGI") == "1" else {}),
        DATABASES={},
        USE_TZ=True,
    )
    django.setup(set_prefix=False)


def index(request):
    return HttpResponse("Hello, World!", content_type="text/plain")


async def async_index(request):
    return HttpResponse("Hello, World!", content_type="text/plain")


urlpatterns = [path("", index), path("async", async_index)]

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

wsgi = get_wsgi_application()
asgi = get_asgi_application()
