"""A sample WSGI app: ``fastbase fastbase.demo:app``."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable


def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/environ":
        data = {k: v for k, v in environ.items() if isinstance(v, str)}
        body = json.dumps(data, indent=2, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    body = b"Hello from fastbase!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
