"""Drop-ins for Django's socketserver-based servers.

``DevServer`` replaces ``django.core.servers.basehttp.WSGIServer`` (what
``manage.py runserver`` builds, mixed with ``ThreadingMixIn`` unless
``--nothreading``); ``LiveServer`` replaces ``ThreadedWSGIServer`` (what
``LiveServerThread`` builds). Same constructors and methods; the socket is
bound in the constructor, as Django's bind-error handling expects, and
``serve_forever`` runs a fastbase server on it until ``shutdown()``.
"""

from __future__ import annotations

import atexit
import socket
import socketserver
import threading
from typing import Any, Callable, Optional

from django.db import connections

from ..config import Config
from ..server import Server
from . import requestlog


class DevServer:
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
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        self.connections_override = connections_override
        self.application: Any = None
        self.interface = ""
        self._server: Optional[Server] = None
        self._lock = threading.Lock()
        self._shutdown_request = False
        self._stopped = threading.Event()
        self._stopped.set()
        self.socket = socket.socket(self.address_family, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    # -- socketserver's API ----------------------------------------------------

    def server_bind(self) -> None:
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        # No socket.getfqdn(): runserver's reverse-DNS lookup at start-up can
        # take seconds on a badly configured network.
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

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
            access_log=True,
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
        server.access_logger = requestlog.access_log
        server.disconnect_logger = requestlog.log_disconnect
        announce = type(self).announce

        def on_started(started: Server) -> None:
            self.interface = started.interface
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

    def server_close(self) -> None:
        self.socket.close()

    def _stop_at_exit(self) -> None:
        server = self._server
        if server is not None and not self._stopped.is_set():
            if server.state is not None:
                # A dev restart: a browser's spare connection, however new,
                # closes now (the browser retries on the new process).
                server.state.fresh_shutdown_grace = 0.0
            server.stop()
            self._stopped.wait(self.graceful_timeout + 1)

    def _close_connections(self) -> None:
        # Used for mocking in tests, as in ThreadedWSGIServer.
        connections.close_all()


class LiveServer(DevServer):
    """``LiveServerThread``'s server: threaded, sharing the test's database
    connections with its worker threads and closing them after each request,
    as ``ThreadedWSGIServer`` does."""

    threads = 8

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
