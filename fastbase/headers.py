"""``--header NAME:VALUE``: default response headers.

Each is added to a response of the application (and of ``--static``) unless
the response already has a header of that name: the app's value wins, and no
header is sent twice. (uvicorn's ``--header`` sends both when the app sets
the same name.) The server's own error responses (400, 408, 413, ...) are not
changed. Nothing is wrapped when no ``--header`` is given.
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Tuple

from .config import ConfigError

__all__ = ["parse_headers", "wrap_app"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 9110 5.5: field values are visible characters, spaces and tabs (and
# obs-text); CR, LF, NUL and other controls would split or corrupt a response.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The server frames every response itself.
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive", "upgrade"})


def parse_headers(items: List[Any]) -> List[Tuple[str, str]]:
    """("Name", "value") pairs from "Name:Value" strings or pairs; ConfigError
    (one line) for a bad name or value."""
    out = []
    for item in items:
        if isinstance(item, str):
            name, sep, value = item.partition(":")
            if not sep:
                raise ConfigError(f"--header {item!r}: expected NAME:VALUE")
        else:
            name, value = item
        name, value = str(name).strip(), str(value).strip(" \t")
        if not _TOKEN.match(name):
            raise ConfigError(f"--header {name!r}: not a valid header name")
        if name.lower() in _HOP_BY_HOP:
            raise ConfigError(f"--header {name}: the server sets this header itself")
        if _BAD_VALUE.search(value):
            raise ConfigError(f"--header {name}: the value contains a control character (CR, LF, NUL, ...)")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"--header {name}: the value must be Latin-1 text") from None
        out.append((name, value))
    return out


def _wrap_wsgi(app: Callable[..., Any], headers: List[Tuple[str, str]]) -> Callable[..., Any]:
    names = [(name.lower(), (name, value)) for name, value in headers]

    def with_headers(environ: dict, start_response: Callable[..., Any]) -> Any:
        def start(status: str, response_headers: list, exc_info: Any = None) -> Any:
            present = {str(name).lower() for name, _ in response_headers}
            added = [pair for lower, pair in names if lower not in present]
            return start_response(status, response_headers + added if added else response_headers, exc_info)

        return app(environ, start)

    return with_headers


def _wrap_asgi(app: Callable[..., Any], headers: List[Tuple[str, str]]) -> Callable[..., Any]:
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def with_headers(scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                response_headers = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in response_headers}
                response_headers.extend(pair for pair in encoded if pair[0] not in present)
                message = {**message, "headers": response_headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return with_headers


def wrap_app(app: Callable[..., Any], interface: str, headers: List[Tuple[str, str]]) -> Callable[..., Any]:
    """``app`` adding the default headers to its responses."""
    return _wrap_asgi(app, headers) if interface == "asgi" else _wrap_wsgi(app, headers)
