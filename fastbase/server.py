"""Server lifecycle: pick the loop, load the app, bind, serve, shut down.

``Server(config).run()`` blocks until SIGINT/SIGTERM (or ``should_exit``);
``await server.serve()`` does the same inside a running loop, and
``start_in_thread()`` runs it on a background thread for tests and embedding.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import gc
import os
import signal
import socket
import sys
import threading
from typing import Any, Awaitable, Dict, List, Optional

from . import logs
from .config import Config, ConfigError
from .importer import load_app
from .logs import error_log
from .protocol import HttpProtocol, ServerState, per_request_access_log
from .sockets import BindError, bind_sockets


class StartupError(Exception):
    """The server could not start; the message is one line."""


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new loop: uvloop when asked for or (``auto``) when installed."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop" and sys.platform == "win32":
                raise ConfigError("--loop uvloop: uvloop does not run on Windows; use --loop asyncio") from None
            if kind == "uvloop":
                raise ConfigError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        else:
            return uvloop.new_event_loop()
    # Windows: IOCP, not the select()-based selector loop (512 sockets at most).
    if sys.platform == "win32":
        return asyncio.ProactorEventLoop()
    return asyncio.SelectorEventLoop()


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = False
        self.force_exit = False
        self.started = threading.Event()
        self.state: Optional[ServerState] = None
        self.interface = ""
        self.servers: List[Any] = []
        self.sockets: List[socket.socket] = []
        self.bridge: Any = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._exit: Optional[asyncio.Event] = None
        self.startup_error: Optional[BaseException] = None
        self.owns_sockets = False
        #: Replacements for the access-log and disconnect-log functions
        #: (fastbase.django logs through "django.server" this way).
        self.access_logger: Optional[Any] = None
        self.disconnect_logger: Optional[Any] = None
        #: Signal -> (installed on the loop?, its handler before serve()).
        self._signal_handlers: Dict[int, Any] = {}
        #: Called on the loop thread once listening, with the server.
        self.on_started: Optional[Any] = None
        #: Called on the loop every heartbeat_interval seconds while serving
        #: (a --workers worker proves its loop is not blocked this way).
        self.heartbeat: Optional[Any] = None
        self.heartbeat_interval = 1.0
        #: Stop gracefully after this many requests (0: never); --workers
        #: sets it from --max-requests.
        self.max_requests = 0
        #: --metrics: called at the end of shutdown (fastbase.metrics).
        self.metrics_stop: Optional[Any] = None
        #: Awaited on the loop once the app is loaded and the listeners made,
        #: before they accept (a --reload server process waits there until
        #: the previous one has stopped accepting); False: stop without
        #: accepting anything. The signal handlers are in place while it
        #: runs, and a stop asked for meanwhile cancels it.
        self.before_serving: Optional[Any] = None
        self._handle_signals = False
        #: Called on the loop when shutting down, once no connection can be
        #: accepted any more and those already accepted are in hand.
        self.on_stopped_accepting: Optional[Any] = None

    # -- entry points ------------------------------------------------------

    def run(self, sockets: Optional[List[socket.socket]] = None, install_signal_handlers: bool = True) -> None:
        loop = new_event_loop(self.config.loop)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.serve(sockets, install_signal_handlers))
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    def start_in_thread(self, sockets: Optional[List[socket.socket]] = None) -> threading.Thread:
        """Serve on a daemon thread; returns once listening (or raises the
        startup error)."""

        def target() -> None:
            try:
                self.run(sockets, install_signal_handlers=False)
            except BaseException as exc:  # noqa: BLE001
                self.startup_error = exc
                self.started.set()

        thread = threading.Thread(target=target, name="fastbase-server", daemon=True)
        thread.start()
        self.started.wait()
        if self.startup_error is not None:
            thread.join()
            raise self.startup_error
        return thread

    def stop(self) -> None:
        """Ask for a graceful shutdown from any thread."""
        self.should_exit = True
        loop, event = self.loop, self._exit
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def serve(self, sockets: Optional[List[socket.socket]] = None, install_signal_handlers: bool = True) -> None:
        self.loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        if self.should_exit:
            self._exit.set()
        self._handle_signals = install_signal_handlers
        try:
            # (Startup installs them already when it waits in before_serving.)
            await self.startup(sockets)
            self.started.set()
            if self.on_started is not None:
                self.on_started(self)
            if self.heartbeat is not None:
                self._beat()
            if install_signal_handlers:
                self._install_signal_handlers()
            try:
                await self._exit.wait()
            finally:
                await self.shutdown()
        finally:
            self._restore_signal_handlers()

    def _beat(self) -> None:
        assert self.heartbeat is not None and self.loop is not None
        if not self.should_exit:
            self.heartbeat()
            self.loop.call_later(self.heartbeat_interval, self._beat)

    # -- startup / shutdown ------------------------------------------------

    async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
        config = self.config
        logs.configure(config.log_level, config.log_config)
        loop = asyncio.get_running_loop()
        # Bind first: a taken port is reported before the app loads.
        self.owns_sockets = not sockets
        if not sockets:
            try:
                sockets = bind_sockets(config)
            except BindError as exc:
                raise StartupError(str(exc)) from None
        try:
            await self._start_serving(loop, sockets)
        except BaseException:
            if self.owns_sockets:
                for sock in sockets:
                    sock.close()
                self._remove_uds()
            raise
        if self.should_exit:
            return  # told to stop before accepting anything
        for address in self.addresses():
            error_log.info("fastbase %s serving %s on %s (%s)", _version(), self.interface.upper(), address, _loop_name(loop))

    async def _start_serving(self, loop: asyncio.AbstractEventLoop, sockets: List[socket.socket]) -> None:
        config = self.config
        app, interface = load_app(config)
        self.interface = interface
        listen_factory: Any = None
        context = config.ssl_context() if config.is_ssl else None
        self.bridge = self.make_bridge(app, interface, loop)
        if config.headers or config.static:
            self._wrap_bridge(interface)
        await self.bridge.startup()
        if config.gc_freeze:
            _freeze_heap()
        state = self.state = ServerState(config, self.bridge, loop)
        if self.max_requests:

            def request_limit_reached() -> None:
                # At once, not when stop() gets its turn: the response in
                # progress already says "Connection: close" and no further
                # connection is accepted by this worker.
                error_log.info("Served %d requests (--max-requests): restarting this worker", self.max_requests)
                state.shutting_down = True
                self._stop_accepting()
                self.stop()

            state.limit_requests(self.max_requests, request_limit_reached)
        if config.access_log and config.access_log_format:
            from .accesslog import make_access_log

            state.access_log = make_access_log(config.access_log_format)
        if self.access_logger is not None and config.access_log:
            state.access_log = self.access_logger
        if state.proxy is not None and state.access_log is not None:
            state.access_log = per_request_access_log(state.access_log, state.proxy)
        if self.disconnect_logger is not None:
            state.log_disconnect = self.disconnect_logger
        protocol_class: Any = HttpProtocol
        if config.metrics:
            from .metrics import MetricsError, install

            try:
                protocol_class = await install(self, state, HttpProtocol)
            except MetricsError as exc:
                raise StartupError(str(exc)) from None

        def factory() -> HttpProtocol:
            return protocol_class(state)

        listen_factory = factory
        if context is not None:
            from .tls import TLSSniffer

            def listen_factory() -> asyncio.Protocol:
                return TLSSniffer(loop, context, factory, state.server_header)

        before_serving = self.before_serving
        for sock in sockets:
            self.servers.append(
                await loop.create_server(listen_factory, sock=sock, backlog=config.backlog, start_serving=before_serving is None)
            )
        for server in self.servers:
            self.sockets.extend(server.sockets)
        state.start_sweeper()
        if before_serving is not None:
            if not await self._unless_stopped(before_serving()):
                self.stop()
                return
            for server in self.servers:
                await server.start_serving()

    async def _unless_stopped(self, hook: Awaitable[Any]) -> bool:
        """Await a before_serving hook: False if it says so or a stop is
        asked for first (it is then cancelled). The app is loaded (and its
        lifespan started), so from here a signal is a clean stop, the app's
        shutdown run, not a KeyboardInterrupt or a death by signal; the
        handlers stay while serving, so one that comes as the wait ends is
        not lost."""
        if self._handle_signals:
            self._install_signal_handlers()
        assert self._exit is not None
        waiting = asyncio.ensure_future(hook)
        stop = asyncio.ensure_future(self._exit.wait())
        try:
            await asyncio.wait([waiting, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
        return not self.should_exit and waiting.result() is not False

    def _stop_accepting(self) -> None:
        """Accept no more connections. asyncio's own loop makes the transport
        of a connection it has accepted in a task, a loop pass later, and
        that task drops the connection unanswered (the client sees a reset)
        if the Server was closed meanwhile: there only the listeners'
        readers go now, and shutdown closes the Servers once those tasks
        have run. uvloop makes the transport in the accept itself."""
        loop = self.loop
        if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
            for sock in self.sockets:
                if sock.fileno() >= 0:
                    loop.remove_reader(sock.fileno())
        else:
            for server in self.servers:
                server.close()

    def _wrap_bridge(self, interface: str) -> None:
        """--header and --static: the app adds the default headers; the
        static mounts are answered before the app."""
        config = self.config
        if config.headers:
            from .headers import wrap_app

            self.bridge.app = wrap_app(self.bridge.app, interface, config.headers)
        if config.static:
            from .static import StaticBridge

            self.bridge = StaticBridge(self.bridge, config.static, config.server_field, config.headers)

    def _remove_uds(self) -> None:
        if self.config.uds and self.owns_sockets:
            with contextlib.suppress(OSError):
                os.unlink(self.config.uds)

    def make_bridge(self, app: Any, interface: str, loop: asyncio.AbstractEventLoop) -> Any:
        config = self.config
        if interface == "asgi":
            from .asgi import ASGIBridge

            return ASGIBridge(app, loop, config)
        from .wsgi import WSGIBridge

        return WSGIBridge(
            app,
            loop,
            threads=config.threads,
            root_path=config.root_path,
            server_header=config.server_header,
            close_unknown_length=config.close_unknown_length,
        )

    def addresses(self) -> List[str]:
        out = []
        for sock in self.sockets:
            name = sock.getsockname()
            if isinstance(name, tuple):
                host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
                scheme = "https" if self.config.is_ssl else "http"
                out.append(f"{scheme}://{host}:{name[1]}")
            else:
                out.append(f"unix:{name}")
        return out

    @property
    def port(self) -> int:
        """The first bound TCP port (the real one when asked for port 0)."""
        for sock in self.sockets:
            name = sock.getsockname()
            if isinstance(name, tuple):
                return name[1]
        raise RuntimeError("not listening on TCP")

    @property
    def loop_name(self) -> str:
        """Which loop serves: "uvloop" or "asyncio" ("" before it runs)."""
        return _loop_name(self.loop) if self.loop is not None else ""

    async def shutdown(self) -> None:
        state = self.state
        if state is None:
            return
        state.shutting_down = True
        busy = sum(1 for conn in state.connections if getattr(conn, "_active", None) is not None)
        error_log.info("Shutting down: %d connection(s) open, %d request(s) in flight", len(state.connections), busy)
        self._stop_accepting()
        # A connection accepted just before gets its protocol a loop pass or
        # two later (both loops schedule connection_made): let those run, so
        # it is in state.connections and answered, not dropped when the
        # process exits with the accept already done.
        for _ in range(4):
            await asyncio.sleep(0)
        for server in self.servers:
            server.close()
        if self.on_stopped_accepting is not None:
            self.on_stopped_accepting()
        for conn in list(state.connections):
            conn.shutdown()
        deadline = state.loop.time() + self.config.timeout_graceful_shutdown
        while state.connections and not self.force_exit:
            remaining = deadline - state.loop.time()
            if remaining <= 0:
                error_log.warning("Graceful shutdown timed out; closing %d connection(s)", len(state.connections))
                break
            waiter = state.loop.create_future()
            state.on_connection_closed = waiter
            await asyncio.wait([waiter], timeout=min(remaining, 0.5))
            for conn in list(state.connections):
                conn.shutdown()
        for conn in list(state.connections):
            conn.abort()
        await self._finish_app_tasks(deadline)
        state.stop_sweeper()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        await self.bridge.shutdown()
        self._remove_uds()
        if self.metrics_stop is not None:
            await self.metrics_stop()

    async def _finish_app_tasks(self, deadline: float) -> None:
        """An ASGI app's task may outlive its response: Django's handler
        closes the response and sends request_finished after the last byte
        is out. Those tasks get what is left of the graceful period, then
        are cancelled, and never left pending on a loop about to close."""
        if self.interface != "asgi":
            # A WSGI app runs on the thread pool: no request tasks. Importing
            # the ASGI package here would cost a stopping WSGI server ~20 ms
            # (a runserver autoreload waits for the old process to exit).
            return
        from .asgi.cycle import TASK_NAME

        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks(loop) if task is not me and task.get_name() == TASK_NAME]
        if not tasks:
            return
        if not self.force_exit:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            tasks = list(pending)
        if tasks:
            error_log.warning("Cancelling %d application task(s) still running", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1.0)

    # -- signals -----------------------------------------------------------

    def handle_exit(self, sig: int = 0, frame: Any = None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.stop()

    def _install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM (Ctrl+Break on Windows) ask for a graceful stop,
        a second SIGINT for a forced one; main thread only. Installed once:
        they stay until _restore_signal_handlers()."""
        if self._signal_handlers or threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        # SIGBREAK: Ctrl+Break, how a Windows console asks a program to stop.
        for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGBREAK", None)):
            if sig is None:
                continue
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
                self._signal_handlers[sig] = (True, previous)
            except NotImplementedError:  # Windows: no loop signal handlers
                signal.signal(sig, self.handle_exit)
                self._signal_handlers[sig] = (False, previous)

    def _restore_signal_handlers(self) -> None:
        # After serving, Ctrl+C interrupts the program again (fastbase.run()
        # returns; a test or an embedding loop goes on).
        handlers, self._signal_handlers = self._signal_handlers, {}
        for sig, (on_loop, previous) in handlers.items():
            if on_loop:
                asyncio.get_running_loop().remove_signal_handler(sig)
            if previous is not None:  # None: not set from Python, cannot be put back
                signal.signal(sig, previous)


def _version() -> str:
    from . import __version__

    return __version__


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _freeze_heap() -> None:
    """Collect what startup left behind, then move every object alive now
    into the GC's permanent generation (Config.gc_freeze).

    Objects made at import time (modules, classes, Django's settings, URL
    patterns, templates) live as long as the process, yet every full
    collection walks them all again. Frozen, they are left out: a Django
    project over ASGI with 64 connections spent about a third of its CPU in
    full collections, about half of that with the heap frozen
    (bench/results/django-asgi-latest.md). What is frozen is still freed by
    reference counting; only a cycle among frozen objects is never
    collected, so the collection runs first."""
    gc.collect()
    gc.freeze()


def run(app: Any, **options: Any) -> None:
    """``fastbase.run(app, host=..., port=...)``: serve until interrupted."""
    options.setdefault("gc_freeze", True)
    config = Config(app=app, **options)
    if config.reload:
        raise ConfigError("--reload needs the fastbase command (fastbase --reload module:app), not fastbase.run()")
    if config.env_file:
        from .envfile import load_env_file

        load_env_file(config.env_file)
    from .pidfile import pid_file

    with pid_file(config.pid_file):
        Server(config).run()
