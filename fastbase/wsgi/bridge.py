"""The WSGI bridge (PEP 3333): what a server needs to serve a WSGI app.

``WSGIBridge`` holds what a connection's requests share (the app, the
thread pool, the base environ) and makes a ``WSGICycle`` (cycle.py) for each
request; the app runs in a pool thread (threads.py), or inline on the loop
with ``threads=0``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

from .. import __version__
from ..http.parser import Request
from ..protocol import HttpProtocol
from .cycle import FileWrapper, WSGICycle
from .threads import LoopCaller, ThreadPool

SERVER_SOFTWARE = f"fastbase/{__version__}"


def with_room(base: dict) -> dict:
    """``base`` in a dict whose hash table has room to spare.

    Each request's environ is a copy of the connection's base, and a copy
    keeps the base's table size, so the dozen variables a request adds
    overflow it: CPython then rebuilds the table, on every request (about
    3% of a small request's work). Here keys are added until the table grows
    once (its size shows in sys.getsizeof), then taken out again: the copies
    start with that larger table. Should a dict not behave that way (another
    interpreter), the base comes back as it was."""
    roomy = dict(base)
    size = sys.getsizeof(roomy)
    for i in range(256):
        roomy[i] = None
        if sys.getsizeof(roomy) > size:
            break
    for key in [key for key in roomy if type(key) is int]:
        del roomy[key]
    if sys.getsizeof(roomy.copy()) <= size:
        return base
    return roomy


class WSGIBridge:
    def __init__(
        self,
        app: Callable[..., Any],
        loop: Any,
        *,
        threads: int = 8,
        root_path: str = "",
        server_header: bool = True,
        needs_content_length: Optional[bool] = None,
        multiprocess: bool = False,
        close_unknown_length: bool = False,
    ) -> None:
        self.app = app
        self.loop = loop
        self.caller = LoopCaller(loop)
        self.pool: Optional[ThreadPool] = ThreadPool(threads, loop, self.caller) if threads > 0 else None
        self.root_path = root_path
        self.server = b"fastbase" if server_header else None
        if needs_content_length is None:
            # Django reads CONTENT_LENGTH bytes and ignores wsgi.input_terminated,
            # so chunked bodies are collected first and their length passed on.
            needs_content_length = type(app).__module__.startswith("django.")
        self.needs_content_length = needs_content_length
        #: runserver's framing: a response of unknown length is sent
        #: close-delimited with "Connection: close" instead of chunked.
        self.close_unknown_length = close_unknown_length
        self.base_environ = {
            "SCRIPT_NAME": root_path,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": threads > 0,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }

    def new_cycle(self, protocol: HttpProtocol, request: Request) -> "WSGICycle":
        return WSGICycle(self, protocol, request)

    def connection_environ(self, protocol: HttpProtocol) -> dict:
        environ = self.base_environ.copy()
        server = protocol.server
        client = protocol.client
        environ["SERVER_NAME"] = server[0] if server else "localhost"
        environ["SERVER_PORT"] = str(server[1]) if server else ("443" if protocol.scheme == "https" else "80")
        environ["REMOTE_ADDR"] = client[0] if client else ""
        environ["REMOTE_PORT"] = str(client[1]) if client else ""
        environ["wsgi.url_scheme"] = protocol.scheme
        if protocol.state.proxy is None:
            # Not with --proxy-headers, where a connection from a proxy may
            # rebuild its base for every request (a new client each time):
            # making the room costs more than one resize.
            environ = with_room(environ)
        protocol.bridge_cache = environ
        return environ

    async def startup(self) -> None:
        """Nothing to start: WSGI has no lifespan."""

    async def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(1.0)
