"""fastbase: a fast, strict HTTP/1.1 server for WSGI and ASGI applications.

``import fastbase`` stays light (no asyncio server, no Django): the server
modules load when ``run``, ``Config`` or ``Server`` are first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "run", "Config", "Server"]


def run(app: Any, **options: Any) -> None:
    """Serve ``app`` (a WSGI/ASGI callable or a "module:attr" string) until
    SIGINT/SIGTERM. Options are the ``Config`` fields (``host``, ``port``, ...)."""
    from .server import run as _run

    _run(app, **options)


def __getattr__(name: str) -> Any:
    if name == "Config":
        from .config import Config

        return Config
    if name == "Server":
        from .server import Server

        return Server
    raise AttributeError(f"module 'fastbase' has no attribute {name!r}")
