"""fastbase in Django: ``"fastbase"`` first in INSTALLED_APPS swaps it into
``manage.py runserver``; ``LiveServer``/``DevServer`` are drop-ins for
basehttp's servers; ``LiveServerTestCase``/``StaticLiveServerTestCase`` use
fastbase for live-server tests; ``ASGIHandler``/``get_asgi_application`` are
Django's ASGI handler with pooled request threads and one thread hop per run
of sync middleware."""

from __future__ import annotations

from typing import Any

from .servers import DevServer, LiveServer

__all__ = [
    "ASGIHandler",
    "DevServer",
    "LiveServer",
    "LiveServerTestCase",
    "LiveServerThread",
    "StaticLiveServerTestCase",
    "get_asgi_application",
]


def __getattr__(name: str) -> Any:
    # The test cases import django.test and the handler Django's request
    # machinery; runserver over WSGI needs neither.
    if name in ("LiveServerTestCase", "StaticLiveServerTestCase", "LiveServerThread"):
        from . import testcases

        return getattr(testcases, name)
    if name in ("ASGIHandler", "get_asgi_application"):
        from . import handler

        return getattr(handler, name)
    raise AttributeError(f"module 'fastbase.django' has no attribute {name!r}")
