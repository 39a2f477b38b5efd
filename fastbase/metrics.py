"""``--metrics``: Prometheus text (exposition format 0.0.4) on its own address.

Nothing here runs unless ``--metrics`` is given. Then the server installs a
subclass of the connection protocol that counts connections and parser
rejections, and reads the kernel's byte counts of a connection (TCP_INFO)
when it ends, and as its access-log callback a ``Tally``'s ``record``,
which counts each response by method and status class and its duration
(the bridges already time a response and call the callback when one is
set): one call per request, into C (``fastbase._tally``, or its pure-Python
twin ``fastbase._tally_py``). What is a state rather than an event (open
connections, requests in flight, WebSocket sessions, the WSGI pool, the
bytes of open connections) is read from the server when scraped, costing
the request path nothing.

WSGI responses are recorded on the pool's threads: the tally takes no lock
and loses no increment (see ``fastbase._tally``). Everything else is
counted on the event loop's thread, into one row.

With ``--workers N`` the supervisor serves the endpoint: every worker copies
its numbers into its row of a shared-memory array the supervisor created
(every ``PUBLISH_INTERVAL`` seconds), and the supervisor sums the rows. The
counters of a worker that exits are kept (added to the supervisor's own
total), so they never go down, and the supervisor counts worker restarts.
"""

from __future__ import annotations

import ctypes
import errno
import multiprocessing.sharedctypes
import select
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .http.twins import load

# The per-response counts: the compiled tally, or its twin when it is missing
# or FASTBASE_NO_EXTENSIONS=1; TALLY_IMPLEMENTATION says which ("c" or "py").
_tally, TALLY_IMPLEMENTATION = load("fastbase._tally", "fastbase._tally_py")
if TYPE_CHECKING:
    from ._tally_py import STATUS_COLUMNS, Tally
else:
    Tally = _tally.Tally
    STATUS_COLUMNS = _tally.STATUS_COLUMNS

__all__ = ["MetricsError", "bind_endpoint", "install", "render"]

#: A worker's numbers reach the supervisor's endpoint at most this late.
PUBLISH_INTERVAL = 0.5
#: A scrape client gets this long to send its request.
CLIENT_TIMEOUT = 5.0
#: The request head a scrape may send, at most.
MAX_HEAD = 8192

# Upper bounds (seconds) of the request-duration histogram buckets: the
# Prometheus client libraries' defaults.
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other")
# Each method has STATUS_COLUMNS (the tally's) columns: the status divided by
# 100 (0: no response was sent, the client left first).
REJECTED = (400, 408, 413, 414, 431, 501, 505)

# The layout of a row of numbers (a process's totals; one per worker in the
# supervisor's shared array).
REQUESTS = 0
HISTOGRAM = REQUESTS + len(METHODS) * STATUS_COLUMNS
DURATION_SUM = HISTOGRAM + len(BOUNDS) + 1
RECEIVED = DURATION_SUM + 1
SENT = RECEIVED + 1
REJECTIONS = SENT + 1  # one per REJECTED status, then one for any other
CONNECTIONS_TOTAL = REJECTIONS + len(REJECTED) + 1
WS_SESSIONS_TOTAL = CONNECTIONS_TOTAL + 1
#: Above this index the numbers are gauges, read when scraped.
GAUGES = WS_SESSIONS_TOTAL + 1
CONNECTIONS_OPEN = GAUGES
IN_FLIGHT = CONNECTIONS_OPEN + 1
WS_SESSIONS_OPEN = IN_FLIGHT + 1
POOL_THREADS = WS_SESSIONS_OPEN + 1
POOL_BUSY = POOL_THREADS + 1
POOL_QUEUE = POOL_BUSY + 1
WIDTH = POOL_QUEUE + 1

_REJECTION_COLUMN = {status: REJECTIONS + i for i, status in enumerate(REJECTED)}
_OTHER_REJECTION = REJECTIONS + len(REJECTED)


class MetricsError(Exception):
    """The metrics endpoint could not start; the message is one line."""


# -- counting ----------------------------------------------------------------------


def new_tally(log: Optional[Callable[..., None]] = None) -> Tally:
    """The tally of responses; ``log``, the access log it passes them on to."""
    return Tally([method.encode() for method in METHODS[:-1]], BOUNDS, log)


def totals(row: List[Any], tally: Tally) -> List[Any]:
    """A row of every counter: the loop thread's ``row`` with the tally's
    counts in their places; the gauges 0."""
    out: List[Any] = list(row[:GAUGES]) + [0] * (WIDTH - GAUGES)
    requests, buckets, duration_sum, upgrades = tally.counts()
    for i, count in enumerate(requests):
        out[REQUESTS + i] += count
    for i, count in enumerate(buckets):
        out[HISTOGRAM + i] += count
    out[DURATION_SUM] += duration_sum
    out[WS_SESSIONS_TOTAL] += upgrades
    return out


def tcp_bytes(transport: Any) -> Optional[Tuple[int, int]]:
    """(bytes sent and acknowledged, bytes received) of a TCP connection, as
    the kernel counts them (Linux TCP_INFO); None where it cannot tell."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6) or _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, AttributeError, ValueError):
        return None
    if len(info) < _TCP_INFO_SIZE:
        return None
    return struct.unpack_from("=QQ", info, _TCP_BYTES_OFFSET)  # type: ignore[return-value]


# struct tcp_info (linux/tcp.h): tcpi_bytes_acked and tcpi_bytes_received
# are two u64 at byte 120 (Linux 4.1+).
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
_TCP_BYTES_OFFSET = 120
_TCP_INFO_SIZE = 136


def protocol_class(base: Any, row: List[Any]) -> type:
    """``base`` (the HTTP connection protocol) counting into ``row``, the
    event loop thread's row: every method below runs on that thread. Nothing
    here runs per request: bytes are the kernel's counts, taken when the
    connection ends (or is handed to WebSocket), and a rejection is counted
    when it is answered. (No property or ``__dict__`` use on the instance
    either: that would take CPython's fast attribute access away from every
    connection attribute.)"""

    class MetricsProtocol(base):  # type: ignore[valid-type,misc]
        _tallied = False

        def connection_made(self, transport: Any) -> None:
            row[CONNECTIONS_TOTAL] += 1
            base.connection_made(self, transport)

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            self._tally()
            base.connection_lost(self, exc)

        def switch_protocol(self, protocol: Any) -> None:
            self._tally()  # (what the WebSocket session moves is not counted)
            base.switch_protocol(self, protocol)

        def _tally(self) -> None:
            if not self._tallied:
                self._tallied = True
                counts = tcp_bytes(self.transport)
                if counts is not None:
                    row[SENT] += counts[0]
                    row[RECEIVED] += counts[1]

        # A malformed request is counted when it is answered (the
        # connection calls this only while an error waits).
        def _answer_error(self) -> None:
            exc = self._pending_error
            base._answer_error(self)
            if exc is not None and self._pending_error is None:
                row[_REJECTION_COLUMN.get(exc.status, _OTHER_REJECTION)] += 1

        def _reject(self, request: Any, status: int, message: str) -> None:
            if status == 408:  # the timeout sweeper's, not the parser's
                row[_REJECTION_COLUMN[408]] += 1
            base._reject(self, request, status, message)

    return MetricsProtocol


def read_gauges(state: Any, out: List[Any]) -> None:
    """The numbers that are states, read from the server (loop thread)."""
    from .protocol import HttpProtocol

    http = ws = busy = 0
    for conn in state.connections:
        if isinstance(conn, HttpProtocol):
            http += 1
            if conn._active is not None:
                busy += 1
            busy += len(conn._early)
            if not getattr(conn, "_tallied", True):  # what open connections moved so far
                counts = tcp_bytes(conn.transport)
                if counts is not None:
                    out[SENT] += counts[0]
                    out[RECEIVED] += counts[1]
        elif type(conn).__name__ == "WebSocketProtocol":
            ws += 1
    out[CONNECTIONS_OPEN] = http
    out[IN_FLIGHT] = busy
    out[WS_SESSIONS_OPEN] = ws
    pool = getattr(state.bridge, "pool", None)
    if pool is not None:
        threads = pool._size
        out[POOL_THREADS] = threads
        out[POOL_BUSY] = max(0, threads - len(pool._idle))
        out[POOL_QUEUE] = len(pool._jobs)


# -- the text format ---------------------------------------------------------------


def _number(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    return str(value)


def render(values: List[Any], restarts: Optional[int] = None, workers: Optional[int] = None) -> bytes:
    """The exposition text (format 0.0.4) for a row of totals."""
    lines: List[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family(
        "fastbase_requests_total",
        "counter",
        'HTTP requests answered, by method and status class (status "none": the client left before a response).',
    )
    for m, method in enumerate(METHODS):
        for column in range(STATUS_COLUMNS):
            value = values[REQUESTS + m * STATUS_COLUMNS + column]
            if 1 <= column <= 5 or value:
                status = f"{column}xx" if column else "none"
                lines.append(f'fastbase_requests_total{{method="{method}",status="{status}"}} {_number(value)}')
    family("fastbase_request_duration_seconds", "histogram", "Time from the start of a request to the end of its response.")
    cumulative = 0
    for i, bound in enumerate(BOUNDS):
        cumulative += values[HISTOGRAM + i]
        lines.append(f'fastbase_request_duration_seconds_bucket{{le="{bound}"}} {_number(cumulative)}')
    cumulative += values[HISTOGRAM + len(BOUNDS)]
    lines.append(f'fastbase_request_duration_seconds_bucket{{le="+Inf"}} {_number(cumulative)}')
    lines.append(f"fastbase_request_duration_seconds_sum {_number(values[DURATION_SUM])}")
    lines.append(f"fastbase_request_duration_seconds_count {_number(cumulative)}")
    family("fastbase_received_bytes_total", "counter", "Bytes received on HTTP connections, as the kernel counts them (TCP, Linux).")
    lines.append(f"fastbase_received_bytes_total {_number(values[RECEIVED])}")
    family(
        "fastbase_sent_bytes_total",
        "counter",
        "Bytes sent on HTTP connections and acknowledged by the client, as the kernel counts them (TCP, Linux).",
    )
    lines.append(f"fastbase_sent_bytes_total {_number(values[SENT])}")
    family("fastbase_parser_rejections_total", "counter", "Requests refused before reaching the app, by the status answered.")
    for i, rejected in enumerate(REJECTED):
        lines.append(f'fastbase_parser_rejections_total{{status="{rejected}"}} {_number(values[REJECTIONS + i])}')
    if values[_OTHER_REJECTION]:
        lines.append(f'fastbase_parser_rejections_total{{status="other"}} {_number(values[_OTHER_REJECTION])}')
    family("fastbase_connections_total", "counter", "HTTP connections accepted.")
    lines.append(f"fastbase_connections_total {_number(values[CONNECTIONS_TOTAL])}")
    family("fastbase_open_connections", "gauge", "HTTP connections open.")
    lines.append(f"fastbase_open_connections {_number(values[CONNECTIONS_OPEN])}")
    family("fastbase_requests_in_flight", "gauge", "Requests being served.")
    lines.append(f"fastbase_requests_in_flight {_number(values[IN_FLIGHT])}")
    family("fastbase_websocket_sessions_total", "counter", "WebSocket sessions accepted.")
    lines.append(f"fastbase_websocket_sessions_total {_number(values[WS_SESSIONS_TOTAL])}")
    family("fastbase_open_websocket_sessions", "gauge", "WebSocket sessions open.")
    lines.append(f"fastbase_open_websocket_sessions {_number(values[WS_SESSIONS_OPEN])}")
    family("fastbase_wsgi_threads", "gauge", "WSGI pool threads.")
    lines.append(f"fastbase_wsgi_threads {_number(values[POOL_THREADS])}")
    family("fastbase_wsgi_threads_busy", "gauge", "WSGI pool threads running a request.")
    lines.append(f"fastbase_wsgi_threads_busy {_number(values[POOL_BUSY])}")
    family("fastbase_wsgi_queue_depth", "gauge", "WSGI requests waiting for a pool thread.")
    lines.append(f"fastbase_wsgi_queue_depth {_number(values[POOL_QUEUE])}")
    if workers is not None:
        family("fastbase_workers", "gauge", "Worker processes running.")
        lines.append(f"fastbase_workers {workers}")
    family("fastbase_worker_restarts_total", "counter", "Worker processes replaced (died, killed, recycled or reloaded).")
    lines.append(f"fastbase_worker_restarts_total {restarts or 0}")
    return ("\n".join(lines) + "\n").encode()


CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def answer(head: bytes, render_body: Callable[[], bytes]) -> bytes:
    """The whole response to a scrape request's head."""
    line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(line) != 3 or not line[2].startswith(b"HTTP/1."):
        return _response(b"400 Bad Request", b"text/plain", b"bad request\n")
    method, target = line[0], line[1].split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        return _response(b"405 Method Not Allowed", b"text/plain", b"only GET and HEAD\n", b"allow: GET, HEAD\r\n")
    if target != b"/metrics":
        return _response(b"404 Not Found", b"text/plain", b"the metrics are at /metrics\n")
    body = render_body()
    response = _response(b"200 OK", CONTENT_TYPE, body)
    if method == b"HEAD":
        response = response[: len(response) - len(body)]
    return response


def _response(status: bytes, content_type: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n%s\r\n" % (status, content_type, len(body), extra)
        + body
    )


def bind_endpoint(host: str, port: int) -> socket.socket:
    """The metrics listening socket; a one-line MetricsError if it cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise MetricsError(f"--metrics-host {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        if exc.errno == errno.EADDRINUSE:
            raise MetricsError(f"--metrics-port {port}: address {shown}:{port} is already in use") from None
        raise MetricsError(f"--metrics-port {port}: cannot listen on {shown}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


# -- one process: the endpoint on the server's loop -------------------------------


class _ScrapeProtocol:
    """One scrape connection on the event loop: read the head, answer, close."""

    def __init__(self, render_body: Callable[[], bytes], loop: Any) -> None:
        self._render = render_body
        self._loop = loop
        self._buffer = b""
        self._transport: Any = None
        self._timer: Any = None

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._timer = self._loop.call_later(CLIENT_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\r\n\r\n" in self._buffer or len(self._buffer) > MAX_HEAD:
            self._transport.write(answer(self._buffer, self._render))
            self._transport.close()

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


#: Set in a --workers worker (by the supervisor, before fork): the shared
#: array and the worker's row in it.
_shared: Optional[tuple] = None


async def install(server: Any, state: Any, base: type) -> type:
    """Count into this server; return the protocol class to serve with. In a
    single process, serve the endpoint on the server's loop; in a --workers
    worker, publish to the supervisor's shared array."""
    config = server.config
    loop = state.loop
    loop_row: List[Any] = [0] * GAUGES  # (written on the loop's thread only)
    tally = new_tally(state.access_log)
    state.access_log = tally.record

    def values() -> List[Any]:
        out = totals(loop_row, tally)
        read_gauges(state, out)
        return out

    if _shared is None:
        sock = bind_endpoint(config.metrics_host, config.metrics_port)
        scrape = await loop.create_server(lambda: _ScrapeProtocol(lambda: render(values()), loop), sock=sock)
        host, port = sock.getsockname()[:2]
        from .logs import error_log

        shown = f"[{host}]" if ":" in host else host
        error_log.info("Metrics at http://%s:%d/metrics", shown, port)

        async def stop() -> None:
            scrape.close()
            await scrape.wait_closed()

    else:
        array, index, inherited = _shared
        for sock in inherited:  # the supervisor's endpoint is not this process's
            sock.close()
        timer: List[Any] = [None]

        def publish() -> None:
            array[index * WIDTH : (index + 1) * WIDTH] = values()
            timer[0] = loop.call_later(PUBLISH_INTERVAL, publish)

        async def stop() -> None:  # the last numbers, after the last response
            if timer[0] is not None:
                timer[0].cancel()
            array[index * WIDTH : (index + 1) * WIDTH] = values()

        publish()
    server.metrics_stop = stop
    return protocol_class(base, loop_row)


# -- --workers: the supervisor's endpoint ------------------------------------------


class SupervisorMetrics:
    """The shared array the workers publish into, the totals of workers that
    exited, worker restarts, and the endpoint (served from the supervisor's
    select loop: no thread in a process that forks)."""

    def __init__(self, host: str, port: int, slots: int, workers: int) -> None:
        self.sock = bind_endpoint(host, port)
        self.array = multiprocessing.sharedctypes.RawArray(ctypes.c_double, slots * WIDTH)
        self.slots = slots
        self.workers = workers
        self.restarts = 0
        self.spawned = 0
        self.running = 0
        self.retired: List[Any] = [0.0] * WIDTH
        self._clients: Dict[socket.socket, list] = {}

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{'[%s]' % host if ':' in host else host}:{port}/metrics"

    def before_fork(self, slot: int) -> None:
        """Called for each worker about to be forked, with its row."""
        global _shared
        self.spawned += 1
        if self.spawned > self.workers:
            self.restarts += 1
        _shared = (self.array, slot, [self.sock, *self._clients])

    def retire(self, slot: int) -> None:
        """A worker exited: keep its counters, clear its row for the next one."""
        array = self.array
        start = slot * WIDTH
        for i in range(GAUGES):
            self.retired[i] += array[start + i]
        array[start : start + WIDTH] = [0.0] * WIDTH

    def totals(self) -> List[Any]:
        out = list(self.retired[:GAUGES]) + [0.0] * (WIDTH - GAUGES)
        array = self.array
        for slot in range(self.slots):
            start = slot * WIDTH
            for i in range(WIDTH):
                out[i] += array[start + i]
        return out

    # the endpoint

    def fds(self) -> List[Any]:
        return [self.sock, *self._clients]

    @staticmethod
    def wait(rlist: List[Any], timeout: float) -> List[Any]:
        """select() on the supervisor's descriptors."""
        try:
            ready, _, _ = select.select(rlist, [], [], timeout)
        except InterruptedError:
            return []
        return ready

    def handle(self, ready: List[Any], running: int) -> None:
        """Serve what select() found ready; drop clients that took too long."""
        now = time.monotonic()
        for sock in ready:
            if sock is self.sock:
                self._accept(now)
            elif sock in self._clients:
                self._read(sock, running)
        for sock, (_, deadline) in list(self._clients.items()):
            if now > deadline:
                self._close(sock)

    def _accept(self, now: float) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            client.setblocking(False)
            self._clients[client] = [b"", now + CLIENT_TIMEOUT]

    def _read(self, sock: socket.socket, running: int) -> None:
        entry = self._clients[sock]
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return
        entry[0] += data
        if b"\r\n\r\n" in entry[0] or len(entry[0]) > MAX_HEAD:
            response = answer(entry[0], lambda: render(self.totals(), self.restarts, running))
            try:
                sock.settimeout(1.0)  # a few KB: the socket buffer takes it at once
                sock.sendall(response)
            except OSError:
                pass
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        self._clients.pop(sock, None)
        sock.close()

    def close(self) -> None:
        for sock in list(self._clients):
            self._close(sock)
        self.sock.close()
