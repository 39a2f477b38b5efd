"""Drop-ins for Django's socketserver-based servers.

``DevServer`` replaces ``django.core.servers.basehttp.WSGIServer`` (what
``manage.py runserver`` builds, mixed with ``ThreadingMixIn`` unless
``--nothreading``); ``LiveServer`` replaces ``ThreadedWSGIServer`` (what
``LiveServerThread`` builds). They are subclasses of those, with the same
constructors and the socketserver surface Django and other code call
(``server_address``, ``handle_error``, ``shutdown``, ``server_close``,
``handle_request``, ...); the socket is bound in the constructor, as
Django's bind-error handling expects, and ``serve_forever`` runs a fastbase
server on it until ``shutdown()``. Requests are logged the way the request
handler class given to the constructor logs them.
"""

from __future__ import annotations

import atexit
import errno
import gc
import socket
import socketserver
import sys
import threading
from typing import Any, Callable, Optional

from django.core.servers import basehttp
from django.db import connections

from ..config import Config
from ..server import Server
from . import requestlog

#: The request handler classes whose logging fastbase writes itself (the
#: same lines, faster): Django's, and socketserver's when none is given.
_STOCK_LOG_MESSAGE = basehttp.WSGIRequestHandler.log_message
_STOCK_LOG_REQUEST = basehttp.WSGIRequestHandler.log_request


def _is_quiet(handler: Any) -> bool:
    """Django's QuietWSGIRequestHandler (what LiveServerThread passes), or
    a subclass that keeps its silent log_message."""
    testcases = sys.modules.get("django.test.testcases")
    quiet = getattr(testcases, "QuietWSGIRequestHandler", None)
    return quiet is not None and handler.log_message is quiet.log_message and handler.log_request is _STOCK_LOG_REQUEST


class DevServer(basehttp.WSGIServer):
    """``manage.py runserver``'s server."""

    address_family = socket.AF_INET
    socket_type = socket.SOCK_STREAM
    request_queue_size = 1024
    allow_reuse_address = True
    daemon_threads = True
    #: Worker threads when threaded (runserver's default; --nothreading runs
    #: the app on the event loop instead).
    threads = 8
    #: Seconds in-flight requests get when the server stops.
    graceful_timeout = 5.0
    #: Called with the server once it is bound (runserver prints a line).
    announce: Optional[Callable[["DevServer"], None]] = None

    def __init__(
        self,
        server_address: Any,
        RequestHandlerClass: Any = None,
        bind_and_activate: bool = True,
        *,
        ipv6: bool = False,
        allow_reuse_address: bool = True,
        connections_override: Optional[dict] = None,
    ) -> None:
        if ipv6:
            self.address_family = socket.AF_INET6
        self.allow_reuse_address = allow_reuse_address
        self.connections_override = connections_override
        self.application: Any = None
        self.interface = ""
        self.loop_name = ""  # "uvloop" or "asyncio" once serving
        self._server: Optional[Server] = None
        self._lock = threading.Lock()
        self._shutdown_request = False
        self._stopped = threading.Event()
        self._stopped.set()
        # socketserver's own set-up: server_address, RequestHandlerClass,
        # the socket, bound and listening (closed again if that fails).
        socketserver.TCPServer.__init__(self, server_address, RequestHandlerClass, bind_and_activate)

    # -- socketserver's API ----------------------------------------------------

    def server_bind(self) -> None:
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address: Any = self.socket.getsockname()
        # No socket.getfqdn(): runserver's reverse-DNS lookup at start-up can
        # take seconds on a badly configured network.
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])
        self.setup_environ()

    def server_activate(self) -> None:
        self.socket.listen(self.request_queue_size)

    def fileno(self) -> int:
        return self.socket.fileno()

    def set_app(self, application: Any) -> None:
        self.application = application

    def get_app(self) -> Any:
        return self.application

    @property
    def threaded(self) -> bool:
        return isinstance(self, socketserver.ThreadingMixIn)

    def make_config(self) -> Config:
        return Config(
            app=self.wrap_app(self.application),
            app_dir=None,
            threads=self.threads if self.threaded else 0,
            access_log=self.request_logger() is not None,
            log_level="warning",
            timeout_graceful_shutdown=self.graceful_timeout,
            close_unknown_length=True,
        )

    def wrap_app(self, application: Any) -> Any:
        return application

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        with self._lock:
            if self._shutdown_request:
                return
            self._stopped.clear()
            server = self._server = Server(self.make_config())
        server.access_logger = self.request_logger()
        server.disconnect_logger = self._log_disconnect
        announce = type(self).announce

        def on_started(started: Server) -> None:
            self.interface = started.interface
            self.loop_name = started.loop_name
            if announce is not None:
                announce(self)

        server.on_started = on_started
        # Under Django's autoreloader the server runs on a daemon thread and
        # a reload is sys.exit(3) on the main thread: without this, requests
        # in flight would be cut off by the interpreter's exit. Stopping at
        # exit lets them finish while idle and never-used connections close
        # at once (a browser's spare connections do not hold the restart up).
        on_exit = None if threading.current_thread() is threading.main_thread() else self._stop_at_exit
        if on_exit is not None:
            atexit.register(on_exit)
        try:
            server.run(sockets=[self.socket], install_signal_handlers=False)
        finally:
            self._stopped.set()
            if on_exit is not None:
                atexit.unregister(on_exit)

    def shutdown(self) -> None:
        """Stop serve_forever and wait for it to return (from another thread)."""
        with self._lock:
            self._shutdown_request = True
            server = self._server
        if server is not None:
            server.stop()
            self._stopped.wait()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """As Django's servers: a client gone mid-response (the exception
        being handled is a broken pipe or a reset) is one INFO line on
        "django.server", anything else a traceback on stderr."""
        if basehttp.is_broken_pipe_error():
            requestlog.logger.info(
                "- Broken pipe from %s", client_address, extra={"server_time": requestlog.server_time(), "request": request}
            )
        else:
            socketserver.BaseServer.handle_error(self, request, client_address)

    def _log_disconnect(self, protocol: Any) -> None:
        # A client left before its response was complete: reported through
        # handle_error, as Django's servers report it, so a subclass that
        # overrides handle_error sees it too.
        transport = protocol.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        try:
            raise BrokenPipeError(errno.EPIPE, "the client left before the response was complete")
        except BrokenPipeError:
            self.handle_error(sock, protocol.client)

    def request_logger(self) -> Optional[Callable[..., None]]:
        """How a response is logged: as RequestHandlerClass's log_request
        would log it. Django's WSGIRequestHandler's lines are written by
        fastbase itself, QuietWSGIRequestHandler logs nothing, any other
        handler class has its own log_request/log_message called."""
        handler: Any = self.RequestHandlerClass
        if not isinstance(handler, type):
            return requestlog.access_log
        if getattr(handler, "log_message", None) is _STOCK_LOG_MESSAGE and getattr(handler, "log_request", None) is _STOCK_LOG_REQUEST:
            return requestlog.access_log
        if _is_quiet(handler):
            return None
        return requestlog.handler_access_log(handler, self)

    def _stop_at_exit(self) -> None:
        server = self._server
        if server is not None and not self._stopped.is_set():
            if server.state is not None:
                # A dev restart: a browser's spare connection, however new,
                # closes now (the browser retries on the new process).
                server.state.fresh_shutdown_grace = 0.0
            server.stop()
            self._stopped.wait(self.graceful_timeout + 1)
        # The autoreloader starts the new process once this one is gone, and
        # the interpreter's last collections walk every object left (~0.1 s
        # for a project with the admin, as long as the restart's own stop and
        # start): frozen, they are skipped. What refcounting frees is still
        # freed; finalizers of objects in reference cycles do not run at exit,
        # which Python never promised (the later atexit hooks, logging's
        # flush among them, still run).
        gc.freeze()

    def _close_connections(self) -> None:
        # Used for mocking in tests, as in ThreadedWSGIServer.
        connections.close_all()


class LiveServer(basehttp.ThreadedWSGIServer, DevServer):
    """``LiveServerThread``'s server (a ``ThreadedWSGIServer``): threaded, sharing the test's database
    connections with its worker threads and closing them after each request,
    as ``ThreadedWSGIServer`` does."""

    threads = 8
    daemon_threads = True

    @property
    def threaded(self) -> bool:
        return True

    def make_config(self) -> Config:
        config = super().make_config()
        config.close_unknown_length = False
        return config

    def wrap_app(self, application: Any) -> Any:
        from ..importer import detect_interface

        if detect_interface(application) != "wsgi":
            return application
        return _SharedConnections(application, self)


class _SharedConnections:
    """WSGI middleware: the test's connections in, a close_all() after."""

    def __init__(self, app: Any, server: LiveServer) -> None:
        self.app = app
        self.server = server

    def __call__(self, environ: dict, start_response: Any) -> Any:
        overrides = self.server.connections_override
        if overrides:
            for alias, conn in overrides.items():
                connections[alias] = conn
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.server._close_connections()
            raise
        return _ClosingResult(result, self.server._close_connections)


class _ClosingResult:
    def __init__(self, result: Any, after: Callable[[], None]) -> None:
        self.result = result
        self.after = after

    def __iter__(self) -> Any:
        return iter(self.result)

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.after()
