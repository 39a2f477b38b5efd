"""The WSGI environ and ASGI HTTP scope builders the bridges use.

A package of its own because both bridges (``fastbase.wsgi``,
``fastbase.asgi``, the latter's WebSocket session too) share it and it
belongs to neither; it sits on the HTTP core (the compiled builder reads the
compiled parser's ``Request`` through its .pxd) but speaks WSGI and ASGI,
which the sans-IO core does not.

Exports the compiled implementation (``fastbase.environ._environ``) and falls
back to the pure-Python twin (``fastbase.environ._environ_py``) when it is missing or
``FASTBASE_NO_EXTENSIONS=1``; ``IMPLEMENTATION`` says which ("c" or "py").
The compiled module takes the compiled parser's ``Request``; both choices
follow the same switch, so they always match.

    environ = wsgi_environ(base, request, root_path, body)
    scope = http_scope(base, request, state)
    path, raw_path = scope_paths(request.path, root_path)   # a WebSocket scope's
    headers = request_headers(request)   # a WebSocket scope's (Host per RFC 9112 3.2.2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastbase.http.twins import load

_impl, IMPLEMENTATION = load("fastbase.environ._environ", "fastbase.environ._environ_py")

if TYPE_CHECKING:
    from ._environ_py import http_scope, request_headers, scope_paths, wsgi_environ
else:
    wsgi_environ = _impl.wsgi_environ
    http_scope = _impl.http_scope
    scope_paths = _impl.scope_paths
    request_headers = _impl.request_headers
