"""``--access-log-format``: the access-log line in gunicorn's atoms.

The atoms mean what gunicorn's documentation says they mean:

    h  remote address          l  "-"                   u  user name (Basic auth)
    t  date of the request     r  status line ("GET / HTTP/1.1")
    m  request method          U  URL path (decoded)     q  query string
    H  protocol                s  status                 B  response length
    b  response length, or "-" (as the Common Log Format writes it)
    f  referer                 a  user agent
    T  request time (s)        D  request time (µs)      M  request time (ms)
    L  request time in decimal seconds                   p  process ID ("<pid>")
    {name}i  a request header  {name}o  a response header
    {name}e  a CGI/WSGI variable of the request (e.g. {remote_addr}e)

The format is checked once, at startup: an unknown atom is an error naming
it. Each line computes only the atoms the format uses.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

from .config import ConfigError
from .logs import access_log as access_logger, escape

__all__ = ["compile_format", "make_access_log"]

_ATOM = re.compile(r"%\(([^)]*)\)")
_SIMPLE = frozenset("hlutrmUqHsbBfaTDMLp")


def _atoms_of(fmt: str) -> List[str]:
    return _ATOM.findall(fmt)


def compile_format(fmt: str) -> List[str]:
    """The atoms ``fmt`` uses; ConfigError (one line) for an unknown atom or
    a format that does not apply."""
    if not isinstance(fmt, str) or not fmt:
        raise ConfigError("--access-log-format must be a non-empty string")
    atoms = _atoms_of(fmt)
    for atom in atoms:
        if atom in _SIMPLE:
            continue
        if len(atom) > 3 and atom[0] == "{" and atom[-2] == "}" and atom[-1] in "ioe":
            continue
        raise ConfigError(f"--access-log-format: unknown atom %({atom})s (see fastbase --help and docs/deployment.md)")
    try:
        fmt % {atom: "-" for atom in atoms}
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"--access-log-format: {fmt!r} is not a valid format ({exc})") from None
    return atoms


def _header(headers: Any, name: bytes) -> Optional[bytes]:
    for key, value in headers or ():
        if type(key) is str:
            key = key.encode("latin-1")
        if key.lower() == name:
            return value.encode("latin-1") if type(value) is str else value
    return None


def _text(value: Optional[bytes]) -> str:
    return "-" if value is None else escape(value.decode("latin-1"))


def _user(request: Any) -> str:
    auth = _header(request.headers, b"authorization")
    if auth is None or not auth[:6].lower() == b"basic ":
        return "-"
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return "-"
    return escape(decoded.split(b":", 1)[0].decode("latin-1"))


def _request_line(request: Any) -> str:
    return escape(f"{request.method.decode('latin-1')} {request.target.decode('latin-1')} HTTP/{request.http_version}")


def _environ_variable(protocol: Any, request: Any, name: str) -> str:
    """``%({name}e)s``: what the request's WSGI environ would hold under NAME."""
    key = name.upper()
    client, server = protocol.client, protocol.server
    if key == "REMOTE_ADDR":
        return client[0] if client else "-"
    if key == "REMOTE_PORT":
        return str(client[1]) if client else "-"
    if key == "SERVER_NAME":
        return server[0] if server else "-"
    if key == "SERVER_PORT":
        return str(server[1]) if server else "-"
    if key == "WSGI.URL_SCHEME":
        return protocol.scheme
    if request is None:
        return "-"
    if key == "REQUEST_METHOD":
        return request.method.decode("latin-1")
    if key == "RAW_URI":
        return escape(request.target.decode("latin-1"))
    if key == "PATH_INFO":
        path = request.path
        return escape((unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"))
    if key == "QUERY_STRING":
        return escape(request.query.decode("latin-1"))
    if key == "SERVER_PROTOCOL":
        return f"HTTP/{request.http_version}"
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return _text(_header(request.headers, key.lower().replace("_", "-").encode()))
    if key.startswith("HTTP_"):
        return _text(_header(request.headers, key[5:].lower().replace("_", "-").encode()))
    return "-"


def _getter(atom: str) -> Callable[..., str]:
    """A function (protocol, request, status, size, seconds, headers) -> text."""
    if atom[0] == "{":
        name, kind = atom[1:-2], atom[-1]
        if kind == "i":
            wanted = name.lower().encode("latin-1")
            return lambda p, r, s, n, t, h: "-" if r is None else _text(_header(r.headers, wanted))
        if kind == "o":
            wanted = name.lower().encode("latin-1")
            return lambda p, r, s, n, t, h: _text(_header(h, wanted))
        return lambda p, r, s, n, t, h: _environ_variable(p, r, name)
    getters: Dict[str, Callable[..., str]] = {
        "h": lambda p, r, s, n, t, h: p.client[0] if p.client else "-",
        "l": lambda p, r, s, n, t, h: "-",
        "u": lambda p, r, s, n, t, h: "-" if r is None else _user(r),
        "t": lambda p, r, s, n, t, h: time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
        "r": lambda p, r, s, n, t, h: "-" if r is None else _request_line(r),
        "m": lambda p, r, s, n, t, h: "-" if r is None else r.method.decode("latin-1"),
        "U": lambda p, r, s, n, t, h: "-" if r is None else _environ_variable(p, r, "PATH_INFO"),
        "q": lambda p, r, s, n, t, h: "-" if r is None else escape(r.query.decode("latin-1")),
        "H": lambda p, r, s, n, t, h: "-" if r is None else f"HTTP/{r.http_version}",
        "s": lambda p, r, s, n, t, h: str(s),
        "B": lambda p, r, s, n, t, h: str(n),
        "b": lambda p, r, s, n, t, h: str(n),
        "f": lambda p, r, s, n, t, h: "-" if r is None else _text(_header(r.headers, b"referer")),
        "a": lambda p, r, s, n, t, h: "-" if r is None else _text(_header(r.headers, b"user-agent")),
        "T": lambda p, r, s, n, t, h: str(int(t)),
        "D": lambda p, r, s, n, t, h: str(int(t * 1_000_000)),
        "M": lambda p, r, s, n, t, h: str(int(t * 1000)),
        "L": lambda p, r, s, n, t, h: "%.6f" % t,
        "p": lambda p, r, s, n, t, h: f"<{os.getpid()}>",
    }
    return getters[atom]


def make_access_log(fmt: str) -> Callable[..., None]:
    """The access-log callback writing ``fmt`` lines to "fastbase.access"."""
    atoms: List[Tuple[str, Callable[..., str]]] = [(atom, _getter(atom)) for atom in dict.fromkeys(compile_format(fmt))]
    info = access_logger.info

    def access_log(protocol: Any, request: Any, status: int, size: int, seconds: float, headers: Any = None) -> None:
        values = {atom: get(protocol, request, status, size, seconds, headers) for atom, get in atoms}
        info(fmt % values)

    return access_log
