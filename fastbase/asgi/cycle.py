"""One ASGI 3 HTTP request/response exchange (spec 2.4), on the event loop.

Each request runs the app as a task; ``receive`` hands out the body as it
arrives (reading pauses while the app lags), ``send`` writes the response.
A one-message body goes out with its head in one write and a Content-Length,
so the common response needs no chunked framing.
"""

from __future__ import annotations

import asyncio
import os
import stat
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from ..environ import http_scope
from ..http.errors import ClientDisconnected, InvalidResponse, ProtocolError
from ..http.parser import (
    CHUNKED,
    CLOSE_DELIMITED,
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    ONE_WRITE_LIMIT,
    Request,
    encode_chunk,
    encode_error,
    encode_head,
    encode_response,
    encode_trailers,
)
from ..logs import error_log
from ..protocol import PAUSE_BODY, HttpProtocol

if TYPE_CHECKING:
    from .bridge import ASGIBridge

#: Request body bytes buffered for the app before reading pauses.
BODY_HIGH_WATER = 256 * 1024

#: The name of every task that runs a request (or WebSocket session).
TASK_NAME = "fastbase.request"


class ASGICycle:
    """One request/response exchange, driven by the app's task."""

    # Per-request state starts at these class-level values: a cycle is made
    # for every request, and only what differs is stored on it.
    _chunks: Optional[List[bytes]] = None  # received body pieces, while the app has not taken them
    _buffered = 0
    _more_body = True
    _body_delivered = False
    _waiter: Optional[asyncio.Future] = None
    _continue_sent = False
    _discarding = False
    disconnected = False
    response_started = False
    response_complete = False
    _status = 0
    _headers: Any = ()
    _trailers = False
    _head_sent = False
    _framing = NO_BODY
    _remaining = -1
    _bytes = 0
    _t0 = 0.0
    task: Optional[asyncio.Task] = None
    #: Called once, with no arguments, if the client goes away before the
    #: response is complete: fastbase.django's handler cancels the request's
    #: processing with it, where Django's handler keeps a task waiting on
    #: receive() for the disconnect.
    on_client_gone: Optional[Callable[[], None]] = None

    def __init__(self, bridge: ASGIBridge, protocol: HttpProtocol, request: Request) -> None:
        self.bridge = bridge
        self.protocol = protocol
        self.request = request
        self.keep_alive = request.keep_alive
        # Read on every request before anything sets them: an instance
        # attribute reads faster than a class-level default.
        self._waiter = None
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self._head_sent = False

    # -- events from the connection (loop) ---------------------------------------

    def on_body(self, data: bytes) -> None:
        if self._discarding:
            return
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = []
        chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= BODY_HIGH_WATER:
            self.protocol.pause_reading(PAUSE_BODY)
        self._wake()

    def on_end(self, eom: Any) -> None:
        # Inlined in start(complete=True) for speed.
        self._more_body = False
        if self._waiter is not None:
            self._wake()

    def on_body_error(self, exc: ProtocolError) -> None:
        # To the app it looks like the client left; the client gets the status.
        if not self._head_sent and not self.disconnected:
            self.protocol.write(encode_error(exc.status, exc.reason, server=self.bridge.server))
            self._log(exc.status, 0)
        self.disconnected = True
        self._wake()
        if not self.response_complete:
            self.response_complete = True
            self.protocol.finish(False)

    def on_disconnect(self) -> None:
        self.disconnected = True
        self._wake()
        callback = self.on_client_gone
        if callback is not None and not self.response_complete:
            self.on_client_gone = None
            callback()

    def on_write_paused(self, paused: bool) -> None:
        """Flow control reaches the app through protocol.drain()."""

    def body_discardable(self) -> bool:
        if self.request.expect_continue and not self._continue_sent:
            return False
        self._discarding = True
        self._chunks = None
        self._buffered = 0
        self.protocol.resume_reading(PAUSE_BODY)
        return True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def start(self, complete: bool = False) -> None:
        if complete:
            # Fast-path copy of on_end (ASGICycle.on_end): no body, no waiter
            # yet; keep in step.
            self._more_body = False
        loop = self.bridge.loop
        if loop.get_task_factory() is None:
            # Fast-path copy of start_task's common case (ASGIBridge.start_task),
            # without its frame; keep in step.
            self.task = asyncio.Task(self.run(), loop=loop, name=TASK_NAME)
        else:
            self.task = self.bridge.start_task(self.run())

    # -- the app -----------------------------------------------------------------

    async def run(self) -> None:
        request = self.request
        protocol = self.protocol
        bridge = self.bridge
        if protocol.state.access_log is not None:
            self._t0 = perf_counter()
        try:
            base = protocol.bridge_cache
            if base is None:
                base = bridge.connection_scope(protocol)
            scope = http_scope(base, request, bridge.state)
            await bridge.app(scope, self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, asyncio.CancelledError) and not self.disconnected:
                self._failed(None)
                raise
            if isinstance(exc, ClientDisconnected) or (self.disconnected and isinstance(exc, OSError)):
                self.protocol.state.log_disconnect(self.protocol)
                self._complete(False)
                return
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self._failed(exc)
                raise
            self._failed(exc)
            return
        if not self.response_complete:
            if self.disconnected:
                self._complete(False)
            elif not self.response_started:
                self._failed(RuntimeError("the ASGI application returned without sending a response"))
            else:
                self._failed(RuntimeError("the ASGI application returned before the response was complete"))

    def _failed(self, exc: Optional[BaseException]) -> None:
        request = self.request
        if exc is not None:
            where = (request.method.decode("latin-1"), request.target.decode("latin-1")[:200])
            if exc.__traceback__ is not None:
                error_log.error("Exception in ASGI application (%s %s)", *where, exc_info=exc)
            else:  # the server's own finding, no traceback to show
                error_log.error("ASGI application error (%s %s): %s", *where, exc)
        if self.response_complete:
            return
        if self._head_sent or self.disconnected:
            # Part of the response is out: abort so the client sees the failure.
            self.protocol.abort()
            self._complete(False)
            return
        # Nothing was sent: when the whole request body has arrived the
        # connection stays usable for the next request (not after a
        # cancellation: the server is stopping the app).
        keep_alive = self.keep_alive and isinstance(exc, Exception) and not self._more_body and not self.protocol.state.shutting_down
        data = encode_error(500, "", keep_alive, self.request.http_version == "1.1", server=self.bridge.server)
        self.protocol.write(data)
        self._status = 500
        self._bytes = len(data)
        self._complete(keep_alive)

    def _complete(self, keep_alive: bool) -> None:
        # Inlined (with _head and _send_body) in send's one-message fast path for speed.
        if self.response_complete:
            return
        self.response_complete = True
        if self._waiter is not None:
            self._wake()
        protocol = self.protocol
        protocol.finish(keep_alive)
        access_log = protocol.state.access_log
        if access_log is not None:
            access_log(protocol, self.request, self._status, self._bytes, perf_counter() - self._t0, self._headers)

    def _log(self, status: int, size: int) -> None:
        access_log = self.protocol.state.access_log
        if access_log is not None:
            access_log(self.protocol, self.request, status, size, perf_counter() - self._t0, self._headers)

    async def receive(self) -> dict:
        if not self._body_delivered:
            if not self._chunks and self._more_body and not self.disconnected:
                if self.request.expect_continue and not self._continue_sent and not self._head_sent:
                    # RFC 9110 10.1.1: the client waits for this before the body.
                    self._continue_sent = True
                    self.protocol.write(CONTINUE_RESPONSE)
                self._waiter = self.bridge.loop.create_future()
                await self._waiter
            if self.disconnected:
                return {"type": "http.disconnect"}
            chunks = self._chunks
            if not chunks:
                body = b""
            else:
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
            if self._buffered >= BODY_HIGH_WATER:
                self.protocol.resume_reading(PAUSE_BODY)
            self._buffered = 0
            more = self._more_body
            if not more:
                self._body_delivered = True
            return {"type": "http.request", "body": body, "more_body": more}
        # The body is all read: the next event is the end of the exchange.
        if not self.disconnected and not self.response_complete:
            self._waiter = self.bridge.loop.create_future()
            await self._waiter
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise RuntimeError(f"ASGI message must be a dict with a 'type' key, got {message!r}") from None
        if not self.response_started:
            if kind == "http.response.start":
                status: Any = message.get("status")
                if type(status) is not int or status < 200 or status > 999:
                    self._bad_status(status)
                self._status = status
                self._headers = message.get("headers", ())
                self._trailers = message.get("trailers", False)  # only its truth is used
                self.response_started = True
                return
            if kind == "http.response.early_hint":
                self._early_hint(message)
                return
            raise RuntimeError(f"expected ASGI message 'http.response.start', got {kind!r}")
        if self.response_complete:
            if self.disconnected and kind in ("http.response.body", "http.response.pathsend"):
                raise ClientDisconnected("client disconnected")
            raise RuntimeError(f"ASGI message {kind!r} sent after the response was complete")
        if kind == "http.response.body":
            if not self._head_sent:
                body = message.get("body", b"")
                protocol = self.protocol
                if (
                    type(body) is bytes
                    and not message.get("more_body", False)
                    and not self._trailers
                    and not self.disconnected
                    and not protocol.state.shutting_down
                ):
                    # The common response: the whole body in one message,
                    # written with its head in one call. Fast-path copy of
                    # _head + _send_body + _complete (ASGICycle), without
                    # their frames; keep in step.
                    request = self.request
                    try:
                        response = encode_response(
                            self._status,
                            self._headers,
                            body,
                            None,
                            request.http_version == "1.1",
                            self.keep_alive,
                            request.method == b"HEAD",
                            self.bridge.server,
                        )
                    except InvalidResponse as exc:
                        raise RuntimeError(f"invalid ASGI response: {exc}") from None
                    if response is not None:
                        # Complete with this write: only what a late event (a
                        # body error, a disconnect) or the log may still read
                        # is recorded.
                        data, keep_alive = response
                        self._head_sent = True
                        self._bytes = size = len(body)
                        self.response_complete = True
                        if self._waiter is not None:
                            self._wake()
                        protocol.respond(data, keep_alive)
                        access_log = protocol.state.access_log
                        if access_log is not None:  # (_log's work, one call less)
                            access_log(protocol, request, self._status, size, perf_counter() - self._t0, self._headers)
                        return
                    # Otherwise (HEAD, a status without a body, a declared
                    # length that differs, a large body) _send_body frames it.
            if self._send_body(message):
                await self.protocol.drain()
        elif kind == "http.response.pathsend":
            await self._send_path(message)
        elif kind == "http.response.trailers":
            self._send_trailers(message)
        else:
            raise RuntimeError(f"expected ASGI message 'http.response.body', got {kind!r}")

    @staticmethod
    def _bad_status(status: Any) -> None:
        if type(status) is int and 100 <= status < 200:
            raise RuntimeError("1xx responses are sent by the server, not with http.response.start")
        raise RuntimeError(f"ASGI http.response.start needs an integer 'status', got {status!r}")

    def _early_hint(self, message: dict) -> None:
        # The http.response.early_hint extension: a 103 with Link fields.
        if self.request.http_version != "1.1" or self.disconnected:
            return
        links = message.get("links", ())
        try:
            head, _, _, _ = encode_head(103, [(b"link", link) for link in links], server=None)
        except InvalidResponse as exc:
            raise RuntimeError(f"invalid early hint: {exc}") from None
        self.protocol.write(head)

    def _head(self, body_length: int) -> bytes:
        # Inlined in send's one-message fast path (encode_response) for speed.
        request = self.request
        protocol = self.protocol
        closing = protocol.state.shutting_down and protocol.last_before_close(self)
        try:
            head, framing, length, keep_alive = encode_head(
                self._status,
                self._headers,
                http11=request.http_version == "1.1",
                keep_alive=self.keep_alive and not closing,
                head_request=request.method == b"HEAD",
                body_length=-1 if self._trailers else body_length,
                server=self.bridge.server,
            )
        except InvalidResponse as exc:
            raise RuntimeError(f"invalid ASGI response: {exc}") from None
        self._framing = framing
        self._remaining = length
        self.keep_alive = keep_alive
        self._head_sent = True
        return head

    def _send_body(self, message: dict) -> bool:
        """Write one http.response.body; True when the app should wait for
        the socket to drain before its next message. Inlined in send's
        one-message fast path for speed."""
        body = message.get("body", b"")
        if type(body) is not bytes:
            if isinstance(body, (bytearray, memoryview)):
                body = bytes(body)
            else:
                raise RuntimeError(f"ASGI response body must be bytes, got {type(body).__name__}")
        more = message.get("more_body", False)
        protocol = self.protocol
        if self.disconnected:
            raise ClientDisconnected("client disconnected")
        if self._head_sent:
            head = b""
        else:
            head = self._head(-1 if more else len(body))
        framing = self._framing
        if framing == LENGTH:
            if len(body) > self._remaining:
                error_log.error("The app sent more than its Content-Length; the excess is dropped")
                body = body[: self._remaining]
                self.keep_alive = False
            self._remaining -= len(body)
            if head and len(body) >= ONE_WRITE_LIMIT:
                # A large body goes out with writev, not copied behind its head.
                protocol.writelines([head, body])
                data = b""
            else:
                data = head + body if head else body
        elif framing == CHUNKED:
            data = head + encode_chunk(body)
            if not more and not self._trailers:
                data += LAST_CHUNK
        elif framing == NO_BODY:
            data = head
            body = b""
        else:  # CLOSE_DELIMITED
            data = head + body if head else body
        self._bytes += len(body)
        if data:
            protocol.write(data)
        if more:
            return protocol.write_paused
        if self._trailers and framing == CHUNKED:
            return False  # http.response.trailers completes the response
        if framing == LENGTH and self._remaining > 0:
            error_log.error("The app sent %d bytes less than its Content-Length; closing the connection", self._remaining)
            self.keep_alive = False
        self._complete(self.keep_alive and framing != CLOSE_DELIMITED)
        return False

    def _send_trailers(self, message: dict) -> None:
        if not self._trailers:
            raise RuntimeError("http.response.trailers sent without 'trailers': True in http.response.start")
        if not self._head_sent or self._remaining > 0 and self._framing == LENGTH:
            raise RuntimeError("http.response.trailers sent before the body was complete")
        headers = message.get("headers", ())
        more = message.get("more_trailers", False)
        if self._framing == CHUNKED:
            if more:
                raise RuntimeError("more_trailers is not supported: send all trailers in one message")
            try:
                self.protocol.write(encode_trailers(headers))
            except InvalidResponse as exc:
                raise RuntimeError(f"invalid trailers: {exc}") from None
        # Without chunked framing (HTTP/1.0, HEAD) trailers cannot be sent.
        if not more:
            self._complete(self.keep_alive)

    async def _send_path(self, message: dict) -> None:
        # The http.response.pathsend extension: the server sends the file.
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise RuntimeError(f"http.response.pathsend needs an absolute 'path', got {path!r}")
        if self._head_sent:
            raise RuntimeError("http.response.pathsend after http.response.body")
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise RuntimeError(f"http.response.pathsend: {path!r} is not a regular file")
            head = self._head(info.st_size)
            self.protocol.write(head)
            count = self._remaining if self._framing == LENGTH else 0
            sent = await self.protocol.send_file(file, 0, count) if count else 0
        self._bytes = sent
        if sent < count:
            if self.disconnected or self.protocol.closed:
                raise ClientDisconnected("client disconnected")
            raise RuntimeError(f"http.response.pathsend: {path!r} shrank while being sent")
        self._remaining = 0
        if self._trailers and self._framing == CHUNKED:
            return
        self._complete(self.keep_alive)
