"""A request head as an application sees it: the CGI-style variables of a
WSGI environ (PEP 3333) and the scope of an ASGI HTTP request; pure Python,
the readable spec of ``fastbase.environ._environ``.

``wsgi_environ(base, request, root_path, body)`` returns a new dict: a copy
of ``base`` (the connection's variables: SERVER_*, REMOTE_*, wsgi.*) plus
the request's own. The WSGI bridge adds nothing on the common path.

``http_scope(base, request, state)`` does the same for ASGI: ``base`` holds
the connection's entries (type, server, client, scheme, root_path) and a
placeholder for each of the request's, so that filling them in never grows
the copy.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple
from urllib.parse import unquote_to_bytes

from ..http._parser_py import Request as _TwinRequest
from ..http.parser import Request as _Request

# Bound on the per-name caches below: names are chosen by clients, and a
# stream of made-up ones must not grow the process.
MAX_CACHED_NAMES = 1024

# HTTP_* keys for header names, computed once per distinct name. None marks
# a name that is never passed on: one containing "_", which would be
# indistinguishable from "-" once converted (Django's runserver drops them
# too, against header spoofing behind proxies).
_header_keys: dict = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}

# REQUEST_METHOD strings for method tokens.
_methods: dict = {}


def _header_key(name: bytes) -> Optional[str]:
    if name.find(b"_") >= 0:
        key = None
    else:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_header_keys) < MAX_CACHED_NAMES:
        _header_keys[name] = key
    return key


# The compiled builder's typed arguments refuse anything else with TypeError;
# the twin refuses the same, rather than failing somewhere inside.
_REQUESTS = (_TwinRequest, _Request)


def _check(base: Any, request: Any, root_path: Any) -> None:
    if not isinstance(base, dict):
        raise TypeError(f"base must be a dict, not {type(base).__name__}")
    if not isinstance(request, _REQUESTS):
        raise TypeError(f"request must be a Request, not {type(request).__name__}")
    if root_path is not None and not isinstance(root_path, str):
        raise TypeError(f"root_path must be str, not {type(root_path).__name__}")


def _method(method: bytes) -> str:
    text = method.decode("latin-1")
    if len(_methods) < MAX_CACHED_NAMES:
        _methods[method] = text
    return text


def wsgi_environ(base: dict, request: Any, root_path: str, body: Any) -> dict:
    _check(base, request, root_path)
    environ = base.copy()
    try:
        environ["REQUEST_METHOD"] = _methods[request.method]
    except KeyError:
        environ["REQUEST_METHOD"] = _method(request.method)
    # PATH_INFO is the percent-decoded path as latin-1 text (PEP 3333: bytes
    # as code points 0-255), the query string stays raw.
    path = request.path
    if path.find(b"%") >= 0:  # find(), not "in": bytes.__contains__ tries an int first
        path = unquote_to_bytes(path)
    path_info = path.decode("latin-1")
    if root_path and path_info.startswith(root_path) and path_info[len(root_path) : len(root_path) + 1] in ("", "/"):
        path_info = path_info[len(root_path) :]
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = request.query.decode("latin-1")
    environ["RAW_URI"] = environ["REQUEST_URI"] = request.target.decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.http_version == "1.1" else "HTTP/1.0"
    keys = _header_keys
    for name, value in request.headers:
        try:
            key = keys[name]
        except KeyError:
            key = _header_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            # PEP 3333 / RFC 9110 5.3: repeated fields combine with ","
            # (cookies with "; ", RFC 6265 5.4).
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + text
        environ[key] = text
    target = request.target
    if request.host is not None and target[:1] != b"/" and target != b"*":
        # RFC 9112 3.2.2: the absolute-form's authority wins over Host.
        environ["HTTP_HOST"] = request.host.decode("latin-1")
    if request.chunked:
        # The body reaches the app de-chunked.
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input"] = body
    return environ


def scope_paths(raw_path: bytes, root_path: str) -> Tuple[str, bytes]:
    """``path`` and ``raw_path`` of an ASGI scope (HTTP or WebSocket): the
    percent-decoded path as UTF-8 text and the bytes as sent, both including
    root_path (put back when a proxy stripped it)."""
    if not isinstance(raw_path, bytes):
        raise TypeError(f"raw_path must be bytes, not {type(raw_path).__name__}")
    if root_path is not None and not isinstance(root_path, str):
        raise TypeError(f"root_path must be str, not {type(root_path).__name__}")
    path = (unquote_to_bytes(raw_path) if raw_path.find(b"%") >= 0 else raw_path).decode("utf-8", "replace")
    if root_path and not (path.startswith(root_path) and path[len(root_path) : len(root_path) + 1] in ("", "/")):
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    return path, raw_path


def authority_headers(headers: list, authority: bytes) -> list:
    """``headers`` with the Host field carrying ``authority``: RFC 9112
    3.2.2, "When an origin server receives a request with an absolute-form
    of request-target, the origin server MUST ignore the received Host
    header field (if any) and instead use the host information of the
    request-target." A new list, the Host field where it was (first when
    there was none)."""
    replaced = []
    found = False
    for name, value in headers:
        if name == b"host":
            found = True
            replaced.append((b"host", authority))
        else:
            replaced.append((name, value))
    if not found:  # (an HTTP/1.0 request may have none)
        replaced.insert(0, (b"host", authority))
    return replaced


def request_headers(request: Any) -> list:
    """The request's header list as an ASGI scope carries it: for an
    absolute-form target, with the target's authority as Host."""
    target = request.target
    if target[0] == 0x2F or target == b"*":  # origin-form (nearly every request) or asterisk-form
        return request.headers
    return authority_headers(request.headers, request.host)


def http_scope(base: dict, request: Any, state: dict) -> dict:
    _check(base, request, None)
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, not {type(state).__name__}")
    scope = base.copy()
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
    scope["http_version"] = request.http_version
    try:
        scope["method"] = _methods[request.method]
    except KeyError:
        scope["method"] = _method(request.method)
    scope["path"], scope["raw_path"] = scope_paths(request.path, base["root_path"])
    scope["query_string"] = request.query
    target = request.target
    if target[0] == 0x2F or target == b"*":
        scope["headers"] = request.headers
    else:
        # An absolute-form target (rare): its authority is the Host.
        scope["headers"] = authority_headers(request.headers, request.host)
    # A shallow copy of the lifespan state per request (ASGI lifespan spec).
    scope["state"] = state.copy()
    scope["extensions"] = {
        "http.response.trailers": {},
        "http.response.pathsend": {},
        "http.response.early_hint": {},
    }
    return scope
