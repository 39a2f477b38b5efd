"""``gunicorn -k fastbase.workers.FastbaseWorker module:app``: gunicorn as
the process manager, fastbase serving in every worker.

The gunicorn master binds, forks, restarts and kills; each worker runs a
fastbase ``Server`` on the inherited listening sockets in a fresh event loop
(uvloop when installed) and serves the app gunicorn loaded as WSGI or ASGI,
whichever it is (ASGI apps get lifespan events in every worker).

gunicorn setting            fastbase
--------------------------  ------------------------------------------------
bind, backlog               the master's sockets; their listen backlog
timeout                     a heartbeat from the event loop; a blocked loop
                            stops it and the master kills the worker
graceful_timeout            timeout_graceful_shutdown (slightly shorter, so
                            the worker closes before the master's SIGKILL)
keepalive                   timeout_keep_alive; 0 closes after each response
limit_request_line/fields/  the parser limits (0 means gunicorn's maximum /
  field_size                unlimited, as in gunicorn)
max_requests (+ jitter)     a graceful restart after that many requests
threads                     WSGI worker threads; 0 runs the app on the loop
                            (gunicorn's default is 1; fastbase's own is 8)
forwarded_allow_ips         --proxy-headers trusting those proxies (as
                            uvicorn's worker does)
accesslog, access_log_format  gunicorn's access log and format, every atom
                            (``%({name}o)s`` reads the response's headers)
pre_request, post_request   called as gunicorn calls them: pre_request(worker,
                            req) on the event loop before the app runs,
                            post_request(worker, req, environ, resp) after the
                            response (on the WSGI thread that ran the app);
                            ``req`` carries method, uri, path, query,
                            fragment, version, headers (upper-cased names),
                            scheme, remote_addr, peer_addr; ``resp`` status
                            ("200 OK"), status_code, headers, sent
loglevel, errorlog          fastbase's error log goes to gunicorn's
certfile, keyfile, ca_certs, cert_reqs, ciphers   TLS
root_path, asgi_loop, asgi_lifespan   (gunicorn 24+) as named
worker signals              TERM graceful, QUIT/INT quick, USR1 reopens the
                            log files, ABRT (the master's timeout) exits now
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http
import logging
import os
import signal
import sys
from typing import Any, List, Optional
from urllib.parse import unquote_to_bytes

from gunicorn.workers.base import Worker  # type: ignore[import-untyped,import-not-found]

from .http import limits
from .config import Config, ConfigError
from .server import Server, StartupError, new_event_loop

__all__ = ["FastbaseWorker"]

#: The master treats this worker exit code as "cannot boot" and stops
#: instead of forking replacements forever (gunicorn.arbiter.Arbiter).
WORKER_BOOT_ERROR = 3
#: gunicorn's own caps (gunicorn.http.message): a larger or 0 request-line
#: limit means 8190, a larger or 0 field count 32768.
GUNICORN_MAX_REQUEST_LINE = 8190
GUNICORN_MAX_HEADERS = 32768
#: Heartbeats at most this far apart, however long --timeout is.
MAX_HEARTBEAT_INTERVAL = 1.0


class FastbaseWorker(Worker):
    """A gunicorn worker serving through fastbase (WSGI or ASGI)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.server: Optional[Server] = None
        self._log_access = _access_log_enabled(self.log)
        #: The server hooks the configuration sets (None: gunicorn's defaults,
        #: which do nothing worth a call per request).
        self._pre_request = _custom_hook(self.cfg, "pre_request")
        self._post_request = _custom_hook(self.cfg, "post_request")

    # -- gunicorn's worker API -----------------------------------------------------

    def init_process(self) -> None:
        # The base class installs signal handlers and then calls run(); loop
        # signal handlers need the loop first.
        self.loop = new_event_loop(getattr(self.cfg, "asgi_loop", None) or "auto")
        asyncio.set_event_loop(self.loop)
        super().init_process()

    def init_signals(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        loop = self.loop
        assert loop is not None
        loop.add_signal_handler(signal.SIGTERM, self._stop, False)
        loop.add_signal_handler(signal.SIGQUIT, self._quit)
        loop.add_signal_handler(signal.SIGINT, self._quit)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGWINCH, lambda: None)  # gunicorn workers ignore it
        # The master sends SIGABRT to a worker that missed its heartbeat: the
        # loop is blocked, so a loop handler would never run. A plain handler
        # runs as soon as the blocking Python code is interrupted.
        signal.signal(signal.SIGABRT, self._abort)

    def run(self) -> None:
        from .asgi import LifespanError
        from .importer import AppLoadError

        loop = self.loop
        assert loop is not None
        try:
            loop.run_until_complete(self._serve())
        except (AppLoadError, StartupError, ConfigError, LifespanError) as exc:
            self.log.error("fastbase worker could not start: %s", exc)
            sys.exit(WORKER_BOOT_ERROR)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    # -- serving -------------------------------------------------------------------

    def fastbase_config(self) -> Config:
        """gunicorn's settings as a fastbase Config (see the module docstring)."""
        cfg = self.cfg
        line = cfg.limit_request_line
        if line <= 0 or line > GUNICORN_MAX_REQUEST_LINE:
            line = GUNICORN_MAX_REQUEST_LINE
        fields = cfg.limit_request_fields
        if fields <= 0 or fields > GUNICORN_MAX_HEADERS:
            fields = GUNICORN_MAX_HEADERS
        field_size = cfg.limit_request_field_size
        if field_size <= 0:  # gunicorn: unlimited; the head size still bounds it
            field_size = limits.MAX_HEADER_SIZE
        graceful = float(cfg.graceful_timeout)
        trusted = cfg.forwarded_allow_ips
        if not isinstance(trusted, str):
            trusted = ",".join(trusted)
        options: dict = {}
        if cfg.is_ssl:
            options.update(
                ssl_certfile=cfg.certfile,
                ssl_keyfile=cfg.keyfile or None,
                ssl_ca_certs=cfg.ca_certs or None,
                ssl_cert_reqs=int(cfg.cert_reqs),
                ssl_ciphers=cfg.ciphers or None,
            )
        return Config(
            app=self.wsgi,
            app_dir=None,
            interface="auto",
            threads=cfg.threads,
            loop=getattr(cfg, "asgi_loop", None) or "auto",
            lifespan=getattr(cfg, "asgi_lifespan", None) or "auto",
            root_path=getattr(cfg, "root_path", None) or "",
            backlog=cfg.backlog,
            # keepalive 0: every response closes its connection (_on_started),
            # so the idle timeout is never used; Config wants a positive one.
            timeout_keep_alive=float(cfg.keepalive) if cfg.keepalive > 0 else 1.0,
            timeout_graceful_shutdown=max(0.1, graceful - min(1.0, graceful / 4)),
            limit_request_line=line,
            limit_request_fields=fields,
            limit_request_field_size=field_size,
            limit_request_header_size=max(limits.MAX_HEADER_SIZE, field_size),
            # The post_request hook is called from the access-log callback.
            access_log=self._log_access or self._post_request is not None,
            log_level=str(cfg.loglevel).lower(),
            proxy_headers=True,
            forwarded_allow_ips=trusted,
            gc_freeze=True,  # a gunicorn worker is a process of its own
            **options,
        )

    async def _serve(self) -> None:
        self._route_error_log()
        config = self.fastbase_config()
        server = self.server = Server(config)
        if self.max_requests < sys.maxsize:  # gunicorn's max_requests plus its jitter
            server.max_requests = self.max_requests
        if config.access_log:
            server.access_logger = self._access_log
        server.on_started = self._on_started
        if not self.alive:  # a signal arrived while booting
            server.should_exit = True
        heartbeat = asyncio.ensure_future(self._heartbeat())
        try:
            await server.serve([listener.sock for listener in self.sockets], install_signal_handlers=False)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    def _on_started(self, server: Server) -> None:
        state = server.state
        assert state is not None
        bridge = state.bridge
        if hasattr(bridge, "base_environ"):  # WSGI
            bridge.base_environ["wsgi.multiprocess"] = self.cfg.workers > 1
        if self._pre_request is not None:
            self._call_pre_request_hook(bridge)
        if self.cfg.keepalive <= 0:
            new_cycle = bridge.new_cycle

            def new_cycle_without_keep_alive(protocol: Any, request: Any) -> Any:
                cycle = new_cycle(protocol, request)
                cycle.keep_alive = False
                return cycle

            bridge.new_cycle = new_cycle_without_keep_alive
        limit_reached = state.on_request_limit
        if limit_reached is not None:

            def recycle() -> None:
                self.alive = False
                # Synchronously, before this request's response is encoded:
                # it says "Connection: close", and no further connection is
                # accepted here, so the next request goes to a live worker.
                state.shutting_down = True
                for listener in server.servers:
                    listener.close()
                limit_reached()

            state.on_request_limit = recycle

    def _call_pre_request_hook(self, bridge: Any) -> None:
        new_cycle = bridge.new_cycle
        hook = self._pre_request

        def new_cycle_after_hook(protocol: Any, request: Any) -> Any:
            try:
                hook(self, HookRequest(protocol, request))
            except Exception:  # noqa: BLE001 - as gunicorn: the request goes on
                self.log.exception("Exception in pre_request hook")
            return new_cycle(protocol, request)

        bridge.new_cycle = new_cycle_after_hook

    async def _heartbeat(self) -> None:
        """Tell the master the loop is alive; it kills a worker that stops.
        Runs through graceful shutdown too, which may outlast --timeout."""
        interval = MAX_HEARTBEAT_INTERVAL
        if self.timeout:  # already half of --timeout (the master halves it)
            interval = min(interval, self.timeout / 2)
        while True:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self._stop(False)
            server = self.server
            if not self.alive and server is not None and not server.should_exit:
                server.stop()  # gunicorn's code reloader (--reload) only clears alive
            await asyncio.sleep(interval)

    # -- signals -------------------------------------------------------------------

    def _stop(self, quick: bool) -> None:
        server = self.server
        if self.alive:
            if quick:
                self.log.info("Worker stopping now (pid: %s)", self.pid)
            else:
                seconds = server.config.timeout_graceful_shutdown if server is not None else 0
                self.log.info("Worker stopping gracefully; requests in flight get %gs (pid: %s)", seconds, self.pid)
        self.alive = False
        if server is not None:
            if quick:
                server.force_exit = True
            server.stop()

    def _quit(self) -> None:
        first = self.alive
        self._stop(True)
        if first:
            self.cfg.worker_int(self)

    def _abort(self, sig: int, frame: Any) -> None:
        self.alive = False
        self.cfg.worker_abort(self)
        # Not sys.exit(): the interrupted frame is the application's, and an
        # app (or the WSGI bridge's error handling) may catch SystemExit; a
        # worker its master considers hung must not go on serving.
        os._exit(1)

    # -- logging -------------------------------------------------------------------

    def _route_error_log(self) -> None:
        """fastbase's own messages go where gunicorn's error log goes."""
        handlers = self.log.error_log.handlers
        if handlers:
            root = logging.getLogger("fastbase")
            root.handlers = list(handlers)
            root.propagate = False

    def _access_log(self, protocol: Any, request: Any, status: int, size: int, seconds: float, headers: Any = None) -> None:
        response = _Response(status, size, headers)
        environ = _access_environ(protocol, request)
        if self._log_access:
            self.log.access(response, _Request(request), environ, datetime.timedelta(seconds=seconds))
        hook = self._post_request
        if hook is not None and request is not None:  # (None: refused before it was a request)
            try:
                hook(self, HookRequest(protocol, request), environ, response)
            except Exception:  # noqa: BLE001
                self.log.exception("Exception in post_request hook")


def _access_log_enabled(log: Any) -> bool:
    enabled = getattr(log, "access_log_enabled", None)  # gunicorn 23.1+
    if enabled is not None:
        return bool(enabled)
    cfg = log.cfg
    return bool(
        cfg.accesslog or cfg.logconfig or getattr(cfg, "logconfig_dict", None) or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
    )


def _custom_hook(cfg: Any, name: str) -> Any:
    """The hook ``cfg`` sets, or None when it is gunicorn's default."""
    setting = cfg.settings.get(name)
    if setting is None:
        return None
    hook = setting.get()
    return None if hook is type(setting).default else hook


class _Response:
    """What gunicorn's access-log atoms and post_request hooks read from a
    response."""

    __slots__ = ("status", "status_code", "sent", "response_length", "headers")

    def __init__(self, status: int, sent: int, headers: Any = None) -> None:
        self.status_code = status
        self.status = f"{status} {_reason(status)}".rstrip()
        self.sent = self.response_length = sent
        self.headers: List[tuple] = [(_text(name), _text(value)) for name, value in headers or ()]


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


class HookRequest:
    """The request as gunicorn's pre_request/post_request hooks read it
    (gunicorn.http.message.Request's attributes)."""

    __slots__ = ("method", "uri", "path", "query", "fragment", "version", "headers", "scheme", "remote_addr", "peer_addr")

    def __init__(self, protocol: Any, request: Any) -> None:
        self.method = request.method.decode("latin-1")
        self.uri = request.target.decode("latin-1")
        path = request.path
        self.path = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        self.query = request.query.decode("latin-1")
        self.fragment = ""
        major, _, minor = str(request.http_version).partition(".")
        self.version = (int(major), int(minor or 0))
        self.headers = [(name.decode("latin-1").upper(), value.decode("latin-1")) for name, value in request.headers]
        self.scheme = protocol.scheme
        self.remote_addr = self.peer_addr = protocol.client


class _Request:
    """What the atoms read from a request: its headers."""

    __slots__ = ("headers",)

    def __init__(self, request: Any) -> None:
        if request is None:
            self.headers: List[tuple] = []
        else:
            self.headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]


def _access_environ(protocol: Any, request: Any) -> dict:
    """The WSGI-style variables the atoms read (h, r, m, U, q, H, f, a, u, and
    ``%({NAME}e)s``)."""
    client = protocol.client
    environ = {"REMOTE_ADDR": client[0] if client else "-", "wsgi.url_scheme": protocol.scheme}
    if request is None:  # the request head was malformed
        environ.update(REQUEST_METHOD="-", RAW_URI="-", SERVER_PROTOCOL="-")
        return environ
    path = request.path
    environ.update(
        REQUEST_METHOD=request.method.decode("latin-1"),
        RAW_URI=request.target.decode("latin-1"),
        PATH_INFO=(unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"),
        QUERY_STRING=request.query.decode("latin-1"),
        SERVER_PROTOCOL=f"HTTP/{request.http_version}",
    )
    for name, value in request.headers:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        environ.setdefault(key, value.decode("latin-1"))
    return environ
