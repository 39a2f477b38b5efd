"""fastbase in Django: ``"fastbase"`` first in INSTALLED_APPS swaps it into
``manage.py runserver``; ``LiveServer``/``DevServer`` are drop-ins for
basehttp's servers; ``LiveServerTestCase``/``StaticLiveServerTestCase`` use
fastbase for live-server tests."""

from __future__ import annotations

from typing import Any

from .servers import DevServer, LiveServer

__all__ = ["DevServer", "LiveServer", "LiveServerTestCase", "StaticLiveServerTestCase", "LiveServerThread"]


def __getattr__(name: str) -> Any:
    # The test cases import django.test; runserver does not need it.
    if name in ("LiveServerTestCase", "StaticLiveServerTestCase", "LiveServerThread"):
        from . import testcases

        return getattr(testcases, name)
    raise AttributeError(f"module 'fastbase.django' has no attribute {name!r}")
