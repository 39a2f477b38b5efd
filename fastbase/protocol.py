"""The transport layer: one asyncio Protocol object per connection.

It feeds received bytes to the sans-IO parser and hands the resulting events
to the bridge (WSGI or ASGI) in order, and responses go out in order: a
request's response is finished before the next pipelined one is written.
Bridges that allow it (``bridge.early_start``) may have pipelined safe
requests started while an earlier response is in progress; such a cycle
writes into a ``PendingOutput`` until its turn comes.

What the bridge needs from a connection is the small API at the end of
``HttpProtocol`` (write, finish, respond, flow control, switch_protocol); what the
connection needs from the bridge is a *cycle* object per request:

    cycle = bridge.new_cycle(protocol, request)   # on the request head
    cycle.on_body(data) / cycle.on_end(eom)       # body events, in order
    cycle.start()                                 # after the batch holding the head
    cycle.start(True)                             # the same for a bodiless request
                                                  # (on_end and start in one call)
    cycle.on_disconnect()                         # the client went away
    cycle.on_body_error(exc)                      # the body was malformed
    cycle.on_write_paused(paused)                 # transport flow control

Timeouts are enforced by one sweeper per server instead of a timer per
request: it costs the request path nothing.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
from typing import Any, Callable, Optional

from . import logs
from .config import Config
from .http.errors import ProtocolError, RequestTimeout
from .http.parser import END, Request, RequestParser, encode_error

# Reasons reading is paused; reading resumes when none is left.
PAUSE_BODY = 1  # the app has not consumed the request body yet
PAUSE_PIPELINE = 2  # a pipelined request waits behind the one in flight
PAUSE_SHUTDOWN = 4

#: Pipelined responses are collected up to this many bytes, or this long,
#: before being written together.
CORK_LIMIT = 64 * 1024
CORK_DELAY = 0.002
#: On graceful shutdown, how long after it was accepted a connection with
#: nothing received yet may take to send its first request. One silent for
#: longer is a browser's or a pool's spare connection (Chromium opens them in
#: advance and may never use them): it closes at once, not holding a restart up.
FRESH_SHUTDOWN_GRACE = 1.0
#: At most this many pipelined requests run ahead of the response in progress.
EARLY_LIMIT = 16

# Phases the timeout sweeper distinguishes.
_FRESH = 0  # connected, nothing received yet
_IDLE = 1  # keep-alive, between requests
_HEAD = 2  # part of a request head received
_BUSY = 3  # a request is being served, or the connection was upgraded


class ServerState:
    """What all connections of one server share."""

    def __init__(self, config: Config, bridge: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.bridge = bridge
        self.loop = loop
        self.connections: set = set()
        self.parser_limits = config.parser_limits()
        self.limit_concurrency = config.limit_concurrency
        self.shutting_down = False
        #: On shutdown, a connection accepted less than this long ago with
        #: nothing received yet waits for its first request (0: closes now).
        self.fresh_shutdown_grace = FRESH_SHUTDOWN_GRACE
        self.access_log: Optional[Callable[..., None]] = default_access_log if config.access_log else None
        #: The Server field of the server's own answers (None: --no-server-header).
        self.server_header = config.server_field
        #: Called when a client leaves before its response is complete.
        self.log_disconnect: Callable[["HttpProtocol"], None] = default_log_disconnect
        #: Requests started, counted while a limit is in play (limit_requests
        #: or one of the other edges below): nothing else reads it.
        self.total_requests = 0
        #: When total_requests reaches this (0: never), on_request_limit runs.
        self.request_limit = 0
        self.on_request_limit: Optional[Callable[[], None]] = None
        #: --proxy-headers: resolves each request's client/scheme/server.
        self.proxy: Any = None
        if config.proxy_headers:
            from .proxy import ProxyHeaders

            self.proxy = ProxyHeaders(config.forwarded_allow_ips or "127.0.0.1", config.forwarded_headers)
        #: No per-request edge in play (--limit-concurrency, --proxy-headers,
        #: a request limit): a request starts by the connection's fast path
        #: (HttpProtocol.data_received). False takes the slow path, which
        #: `pytest --slow-path` forces to check the fast-path copies against.
        self.plain = self.limit_concurrency is None and self.proxy is None
        #: Pipelined safe requests may start while an earlier response is in
        #: progress (RFC 9112 9.3.2); not with --proxy-headers, where each
        #: request rewrites the connection's client address.
        self.early_start = bool(getattr(bridge, "early_start", False)) and self.proxy is None
        #: A future the server awaits during shutdown; set when a connection closes.
        self.on_connection_closed: Optional[asyncio.Future] = None
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self.sweep_interval = min(1.0, config.timeout_keep_alive / 4, config.timeout_request_header / 4)

    def limit_requests(self, limit: int, on_reached: Callable[[], None]) -> None:
        """Call on_reached when the limit-th request starts (--max-requests)."""
        self.request_limit = limit
        self.on_request_limit = on_reached
        self.plain = False

    def start_sweeper(self) -> None:
        self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)

    def stop_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _sweep(self) -> None:
        now = self.loop.time()
        keep_alive = self.config.timeout_keep_alive
        header = self.config.timeout_request_header
        for conn in list(self.connections):
            conn.check_timeouts(now, keep_alive, header)
        self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)


def default_access_log(
    protocol: "HttpProtocol", request: Optional[Request], status: int, size: int, seconds: float, headers: Any = None
) -> None:
    if request is None:
        line = "-"
    else:
        line = f"{request.method.decode('latin-1')} {request.target.decode('latin-1')} HTTP/{request.http_version}"
    logs.access_log.info(logs.access_line(protocol.client, line, status, size, seconds))


class RequestView:
    """A connection as one request saw it: that request's client, scheme and
    server, everything else the connection's. A keep-alive connection from a
    proxy carries requests of many clients, and a response is logged after
    the connection may have moved on to the next request."""

    __slots__ = ("_protocol", "client", "scheme", "server")

    def __init__(self, protocol: "HttpProtocol", view: tuple) -> None:
        self._protocol = protocol
        self.client, self.scheme, self.server = view

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol, name)


def per_request_access_log(log: Callable[..., None], proxy: Any) -> Callable[..., None]:
    """``log`` called with the logged request's own view (--proxy-headers)."""

    def access_log(
        protocol: "HttpProtocol", request: Optional[Request], status: int, size: int, seconds: float, headers: Any = None
    ) -> None:
        view = protocol.socket_view
        if request is not None and view is not None:
            protocol = RequestView(protocol, proxy.resolve(view[0], request.headers, view[1], view[2]))  # type: ignore[assignment]
        log(protocol, request, status, size, seconds, headers)

    return access_log


class PendingOutput:
    """The connection as a pipelined request started early sees it: what it
    writes is kept until the responses before it are out, and its finish is
    recorded, not acted on. Everything else is the connection's. The
    connection swaps itself in (``cycle.protocol``) when the turn comes."""

    def __init__(self, protocol: "HttpProtocol") -> None:
        self._protocol = protocol
        self.chunks: list = []
        self.size = 0
        #: keep_alive as the cycle's finish() gave it; None until then.
        self.finished: Optional[bool] = None
        self.aborted = False
        self._turn: Optional[asyncio.Future] = None
        #: The turn came, or never will (the connection is gone).
        self._released = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol, name)

    # What a bridge caches for the connection belongs to the connection,
    # whichever cycle happens to build it.
    @property
    def bridge_cache(self) -> Any:
        return self._protocol.bridge_cache

    @bridge_cache.setter
    def bridge_cache(self, value: Any) -> None:
        self._protocol.bridge_cache = value

    def write(self, data: bytes) -> None:
        if data:
            self.chunks.append(data)
            self.size += len(data)

    def writelines(self, chunks: list) -> None:
        for chunk in chunks:
            self.write(chunk)

    def finish(self, keep_alive: bool = True) -> None:
        self.finished = keep_alive

    def respond(self, data: bytes, keep_alive: bool) -> None:
        self.write(data)
        self.finish(keep_alive)

    def abort(self) -> None:
        self.aborted = True

    @property
    def write_paused(self) -> bool:
        return self.size >= CORK_LIMIT

    async def drain(self) -> None:
        if self.size >= CORK_LIMIT:
            await self.wait_turn()

    async def send_file(self, file: Any, offset: int, count: int) -> int:
        await self.wait_turn()
        return await self._protocol.send_file(file, offset, count)

    async def wait_turn(self) -> None:
        """Wait until the responses before this one are out (or the
        connection is gone)."""
        if self._released:
            return
        if self._turn is None:
            self._turn = self._protocol.state.loop.create_future()
        await self._turn

    def release(self) -> None:
        self._released = True
        turn = self._turn
        if turn is not None and not turn.done():
            turn.set_result(None)


class Connection(asyncio.Protocol):
    """What every connection in ``ServerState.connections`` shares: flow
    control for writers (``drain``) and leaving the set when it closes.
    Subclasses also provide ``check_timeouts``, ``shutdown`` and ``abort``."""

    state: ServerState
    closed = False

    def __init__(self) -> None:
        self.write_paused = False
        self._drain_waiters: list = []

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain_waiters()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport accepts more data (or the client is gone)."""
        if self.write_paused and not self.closed:
            waiter = self.state.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _forget(self) -> None:
        """Closed: leave the server's set and wake a shutdown waiting for it."""
        self.closed = True
        state = self.state
        state.connections.discard(self)
        waiter = state.on_connection_closed
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._wake_drain_waiters()


def default_log_disconnect(protocol: "HttpProtocol") -> None:
    logs.error_log.info("Client %s disconnected before the response was complete", logs.format_client(protocol.client))


class HttpProtocol(Connection):
    """One HTTP/1.1 connection."""

    def __init__(self, state: ServerState) -> None:
        super().__init__()
        self.state = state
        self.transport: Any = None
        self.parser = RequestParser(**state.parser_limits)
        self.client: Optional[tuple] = None
        self.server: Optional[tuple] = None
        self.scheme = "http"
        self.closed = False
        #: The bytes that broke the parser looked like a TLS handshake.
        self.tls_probe = False
        # Per-connection data a bridge caches (the WSGI environ base, the
        # ASGI scope base).
        self.bridge_cache: Any = None
        #: (client, scheme, server) of the socket itself, kept once
        #: --proxy-headers starts replacing the three per request.
        self.socket_view: Optional[tuple] = None
        self._queue: collections.deque = collections.deque()
        self._pumping = False
        self._active: Any = None  # the cycle whose response is in progress
        #: Cycles of pipelined requests started early, in request order.
        self._early: collections.deque = collections.deque()
        self._reading: Any = None  # the cycle whose request body is being parsed
        self._paused_reading = 0
        self._pending_error: Optional[ProtocolError] = None
        self._errored = False
        self._close_after_response = False
        #: Requests started: the timeout sweeper's sign of progress (with the
        #: phase, which changes when a response completes).
        self._counter = 0
        self._cork: Optional[list] = None
        self._cork_size = 0
        self._cork_timer: Optional[asyncio.TimerHandle] = None
        self._mark: tuple = ()
        self._mark_time = 0.0
        self._accepted = 0.0

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.state.connections.add(self)
        self._accepted = self.state.loop.time()
        self.client = address_tuple(transport.get_extra_info("peername"))
        self.server = address_tuple(transport.get_extra_info("sockname"))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"

    def data_received(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            if self._errored or self.closed:
                return
            self._errored = True
            self._pending_error = exc
            # 0x16 = TLS handshake record, 0x03 = SSL 3.0 / TLS 1.x
            self.tls_probe = data[:2] == b"\x16\x03"
            self._queue.extend(exc.events)  # type: ignore[attr-defined]
            if not self._pumping:
                self._pump()
            return
        if len(events) == 2 and self._active is None and not self._queue and not self._pumping:
            request, end = events
            if end is END and type(request) is Request:
                # The common case, a bodiless request on an idle connection,
                # without the queue.
                state = self.state
                if state.plain:
                    # Fast-path copy of _start_request (HttpProtocol._start_request)
                    # with none of its limits in play, and of _pump's on_end + start
                    # (the cycle's start(True)); keep in step. One call less per
                    # request; `pytest --slow-path` runs the suites without it.
                    self._counter += 1
                    cycle = state.bridge.new_cycle(self, request)
                    self._active = cycle
                    if not request.keep_alive or state.shutting_down:
                        self._close_after_response = True
                    self._reading = None
                    cycle.start(True)
                    return
                # The slow path (a limit or --proxy-headers in play): the
                # originals of the copies above, in _pump's order.
                cycle = self._start_request(request)
                if cycle is None:
                    return
                self._reading = None
                cycle.on_end(end)
                cycle.start()
                return
        elif not events:
            return
        self._queue.extend(events)
        if not self._pumping:
            self._pump()

    # eof_received is not overridden: a client's FIN closes the connection and
    # the cycle in flight sees a disconnect, as long-polls and event streams
    # need (uvicorn and nginx treat it the same way).

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._forget()
        for cycle in (self._active, self._reading, *self._early):
            if cycle is not None:
                cycle.on_disconnect()
        for cycle in self._early:
            cycle.protocol.release()
        self._active = self._reading = None
        self._early.clear()
        self._queue.clear()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._active is not None:
            self._active.on_write_paused(True)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._active is not None:
            self._active.on_write_paused(False)

    # -- dispatch ----------------------------------------------------------

    def _pump(self) -> None:
        """Hand queued events to cycles in order; one request in flight at a time."""
        self._pumping = True
        queue = self._queue
        try:
            while queue:
                event = queue[0]
                kind = type(event)
                if kind is bytes:
                    queue.popleft()
                    if self._reading is not None:
                        self._reading.on_body(event)
                elif kind is Request:
                    if self.closed:
                        break
                    if self._active is not None:
                        if self._start_early():
                            continue
                        break
                    queue.popleft()
                    cycle = self._start_request(event)
                    if cycle is None:
                        return
                    # Body events already parsed go in before the app starts,
                    # so a small request reaches the app complete.
                    while queue and type(queue[0]) is not Request:
                        event = queue.popleft()
                        if type(event) is bytes:
                            cycle.on_body(event)
                        else:
                            self._reading = None
                            cycle.on_end(event)
                    if queue:
                        self._cork_pipeline()
                    cycle.start()
                else:  # EndOfMessage
                    queue.popleft()
                    reading = self._reading
                    if reading is not None:
                        self._reading = None
                        reading.on_end(event)
            if self._pending_error is not None and not queue:
                self._answer_error()
        finally:
            self._pumping = False
        if queue:
            self.pause_reading(PAUSE_PIPELINE)
        elif self._paused_reading & PAUSE_PIPELINE:
            self.resume_reading(PAUSE_PIPELINE)

    def _start_early(self) -> bool:
        """Start the queued request ahead of its turn if that is safe: a
        bodiless GET or HEAD that keeps the connection open, while the
        request before it is fully received (RFC 9112 9.3.2)."""
        queue = self._queue
        state = self.state
        if (
            not state.early_start
            or len(queue) < 2
            or queue[1] is not END
            or self._reading is not None
            or len(self._early) >= EARLY_LIMIT
            or self._close_after_response
            or state.shutting_down
            # A request that would be turned away (503, written at once) or
            # stop the server (--max-requests: the response in progress
            # would close the connection without it) waits for its turn.
            or (state.limit_concurrency is not None and len(state.connections) > state.limit_concurrency)
            or state.total_requests + 1 == state.request_limit
        ):
            return False
        request = queue[0]
        if request.method not in (b"GET", b"HEAD") or not request.keep_alive or request.upgrade is not None or request.expect_continue:
            return False
        queue.popleft()
        queue.popleft()
        active = self._active
        cycle = self._start_request(request)
        if cycle is None:
            return False
        self._active = active
        self._reading = None
        cycle.protocol = PendingOutput(self)
        self._early.append(cycle)
        cycle.on_end(END)
        self._cork_pipeline()
        cycle.start()
        return True

    def _next_early(self) -> None:
        """The response in progress is done: the first early cycle's turn.
        Its kept output goes out, and if it already finished, so does its
        finish."""
        cycle = self._early.popleft()
        out = cycle.protocol
        cycle.protocol = self
        self._active = cycle
        if out.chunks:
            self.writelines(out.chunks)
        if out.aborted:
            self.abort()
        elif out.finished is not None:
            self.finish(out.finished)
        out.release()

    def last_before_close(self, cycle: Any) -> bool:
        """Whether ``cycle``'s response is the last one a closing connection
        (graceful shutdown) sends: the pipelined requests started behind it
        are answered first."""
        early = self._early
        return not early or early[-1] is cycle

    def _start_request(self, request: Request) -> Any:
        # Inlined in data_received (the ServerState.plain branch) for speed.
        state = self.state
        self._counter += 1
        state.total_requests += 1
        if state.total_requests == state.request_limit and state.on_request_limit is not None:
            state.on_request_limit()
        if state.limit_concurrency is not None and len(state.connections) > state.limit_concurrency:
            self._reject(request, 503, "Service Unavailable: too many connections")
            return None
        if state.proxy is not None:
            self._apply_proxy_headers(state.proxy, request)
        cycle = state.bridge.new_cycle(self, request)
        self._active = self._reading = cycle
        if not request.keep_alive or state.shutting_down:
            self._close_after_response = True
        return cycle

    def _apply_proxy_headers(self, proxy: Any, request: Request) -> None:
        """This request's client/scheme/server as trusted proxies report them;
        the bridges and logs read them from the protocol as usual."""
        view = self.socket_view
        if view is None:
            view = self.socket_view = (self.client, self.scheme, self.server)
        resolved = proxy.resolve(view[0], request.headers, view[1], view[2])
        if resolved != (self.client, self.scheme, self.server):
            self.client, self.scheme, self.server = resolved
            self.bridge_cache = None  # the environ or scope base holds the old values

    def _reject(self, request: Optional[Request], status: int, message: str) -> None:
        body = encode_error(status, message, server=self.state.server_header)
        self.write(body)  # behind any corked responses; close() flushes them
        if self.state.access_log is not None:
            self.state.access_log(self, request, status, len(body), 0.0)
        self.close()

    def _answer_error(self) -> None:
        exc = self._pending_error
        assert exc is not None
        reading = self._reading
        if reading is not None:
            # The body of a request in flight was malformed: that request's
            # cycle answers (or aborts); the connection closes after it.
            self._pending_error = None
            self._reading = None
            self._close_after_response = True
            reading.on_body_error(exc)
        elif self._active is None:
            # A malformed head: answer it once the requests before it are.
            self._pending_error = None
            self._reject(None, exc.status, exc.reason)

    # -- what cycles use (loop thread only) ----------------------------------

    def write(self, data: bytes) -> None:
        # Inlined in respond() for speed; writelines repeats its corking.
        if not self.closed:
            cork = self._cork
            if cork is None:
                self.transport.write(data)
            else:
                if not cork and self._cork_timer is None:
                    self._arm_cork_timer()
                cork.append(data)
                self._cork_size += len(data)
                if self._cork_size >= CORK_LIMIT:
                    self._flush_cork()

    def respond(self, data: bytes, keep_alive: bool) -> None:
        """A whole response in one piece: write(data), then finish()."""
        if self._cork is None and not self.closed:
            # Fast-path copy of write()'s common case (HttpProtocol.write),
            # one call less; keep in step.
            self.transport.write(data)
        else:
            self.write(data)
        self.finish(keep_alive)

    # write and writelines repeat the corking lines on purpose (fast-path
    # copies of each other; keep in step): a shared helper costs a call per
    # pipelined response (measurable in the 16-deep pipelining benchmark).

    def writelines(self, chunks: list) -> None:
        if not self.closed:
            cork = self._cork
            if cork is None:
                self.transport.writelines(chunks)
            else:
                if not cork and self._cork_timer is None:
                    self._arm_cork_timer()
                cork.extend(chunks)
                self._cork_size += sum(len(chunk) for chunk in chunks)
                if self._cork_size >= CORK_LIMIT:
                    self._flush_cork()

    # Pipelined requests are answered one after the other; while more are
    # queued, their responses are collected ("corked") and written together
    # when the queue runs dry, so sixteen pipelined responses cost one send
    # instead of sixteen. A timer bounds how long a response can wait: it
    # starts with the first response kept, not when corking starts, since a
    # busy loop may take longer than that to run the first request at all.

    def _cork_pipeline(self) -> None:
        if self._cork is None:
            self._cork = []
            self._cork_size = 0

    def _arm_cork_timer(self) -> None:
        self._cork_timer = self.state.loop.call_later(CORK_DELAY, self._uncork)

    def _flush_cork(self) -> None:
        cork = self._cork
        if cork:
            self._cork = []
            self._cork_size = 0
            if not self.closed:
                self.transport.writelines(cork)

    def _uncork(self) -> None:
        self._flush_cork()
        self._cork = None
        timer = self._cork_timer
        if timer is not None:
            # A timer left running would uncork a later batch half-way.
            self._cork_timer = None
            timer.cancel()

    def finish(self, keep_alive: bool = True) -> None:
        """The active cycle's response is complete."""
        cycle = self._active
        self._active = None
        if self.closed:
            return
        reading = self._reading
        if reading is not None and reading is cycle and not reading.body_discardable():
            # The app did not read a body the client has not sent (it waits
            # for 100 Continue): the connection cannot be reused.
            keep_alive = False
        if not keep_alive or ((self._close_after_response or self.state.shutting_down) and not self._early):
            # (Pipelined requests already started behind this one are still
            # answered: their handlers ran, dropping their responses would
            # have the client send them again.)
            self.close()
            return
        if self.parser.paused:
            # An Upgrade request was answered without switching protocols:
            # what followed it is parsed as HTTP/1.1 after all.
            try:
                events = self.parser.resume()
            except ProtocolError as exc:
                self._errored = True
                self._pending_error = exc
                events = exc.events  # type: ignore[attr-defined]
            self._queue.extend(events)
        if self._early:
            self._next_early()
            return
        if (self._queue or self._pending_error is not None) and not self._pumping:
            self._pump()
        if self._cork is not None and not self._queue and self._active is None:
            self._uncork()

    def close(self) -> None:
        if self._cork is not None:
            self._uncork()
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        # The complete responses kept in the cork go out before the failed
        # one is cut off, as they would have uncorked.
        self._flush_cork()
        self._cork = None
        if self._cork_timer is not None:
            self._cork_timer.cancel()
            self._cork_timer = None
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def pause_reading(self, reason: int) -> None:
        if not self._paused_reading and not self.closed:
            try:
                self.transport.pause_reading()
            except (AttributeError, RuntimeError):  # closing transports refuse it
                pass
        self._paused_reading |= reason

    def resume_reading(self, reason: int) -> None:
        was = self._paused_reading
        self._paused_reading &= ~reason
        if was and not self._paused_reading and not self.closed:
            try:
                self.transport.resume_reading()
            except (AttributeError, RuntimeError):
                pass

    async def send_file(self, file: Any, offset: int, count: int) -> int:
        """Write ``count`` bytes of ``file`` from ``offset``: the loop's
        sendfile on plain TCP, else reads and writes with flow control.
        Returns the bytes sent (fewer only if the client left or the file
        shrank)."""
        if self._cork is not None:
            self._uncork()
        sent = 0
        sendfile = getattr(self.state.loop, "sendfile", None)  # uvloop has none
        plain = (self.socket_view or (None, self.scheme))[1] == "http"  # the socket's, not a proxy's
        if sendfile is not None and plain and not self.closed:
            try:
                sent = await sendfile(self.transport, file, offset, count)
            except (NotImplementedError, RuntimeError):
                sent = 0
        if sent < count:
            file.seek(offset + sent)
            while sent < count and not self.closed:
                data = file.read(min(count - sent, 65536))
                if not data:
                    break
                self.transport.write(data)
                sent += len(data)
                if self.write_paused:
                    await self.drain()
        return sent

    def switch_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if self._cork is not None:
            self._uncork()
        """Hand the connection to another protocol (after a 101 response);
        bytes that followed the Upgrade request go with it."""
        data = self.parser.take_buffer()
        self.state.connections.discard(self)
        self._active = self._reading = None
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if self._paused_reading:
            self._paused_reading = 0
            self.transport.resume_reading()
        if data:
            protocol.data_received(data)  # type: ignore[attr-defined]

    # -- timeouts and shutdown (called by the server) -----------------------

    def _phase(self) -> int:
        if self._active is not None or self._reading is not None or self.parser.paused:
            return _BUSY
        if self.parser.in_head:
            return _HEAD
        return _FRESH if self._counter == 0 else _IDLE

    def check_timeouts(self, now: float, keep_alive: float, header: float) -> None:
        if self.closed:
            return
        phase = self._phase()
        mark = (phase, self._counter)
        if mark != self._mark:
            self._mark = mark
            self._mark_time = now
            return
        elapsed = now - self._mark_time
        if phase == _HEAD:
            if elapsed >= header:
                # RFC 9110 15.5.9: 408 "the server did not receive a complete
                # request message within the time that it was prepared to wait".
                exc = RequestTimeout("request head not received in time")
                self._reject(None, exc.status, exc.reason)
        elif phase == _IDLE:
            if elapsed >= keep_alive:
                self.close()
        elif phase == _FRESH:
            if elapsed >= header:
                self.close()

    def shutdown(self) -> None:
        """Graceful shutdown (called again every half second until the
        connection is gone): idle keep-alive connections close now, busy ones
        after their response. A connection accepted less than
        state.fresh_shutdown_grace (FRESH_SHUTDOWN_GRACE) ago with nothing
        received yet may have its first request on the way: it gets until
        then for it to arrive (answered with Connection: close). An older
        silent one closes now."""
        self._close_after_response = True
        if self._active is None and self._reading is None and not self._queue and not self.parser.in_head:
            state = self.state
            if self._counter == 0 and state.loop.time() - self._accepted < state.fresh_shutdown_grace:
                return
            if not self._paused_reading and _unread(self.transport):
                # A request arrived that the loop has not read yet (a busy
                # or starved loop): closing now would lose it. It is read on
                # the loop's next pass and answered with Connection: close.
                return
            self.close()


def _unread(transport: Any) -> bool:
    """Whether bytes wait in the connection's socket, unread by the loop."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        # A duplicate: uvloop's transports expose a stand-in without recv().
        with socket.socket(fileno=os.dup(sock.fileno())) as peek:
            return bool(peek.recv(1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)))
    except (OSError, ValueError):  # nothing waiting (EAGAIN), closed, or not a socket
        return False


def address_tuple(value: Any) -> Optional[tuple]:
    """A peername/sockname as (host, port), or None (UNIX sockets)."""
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None
