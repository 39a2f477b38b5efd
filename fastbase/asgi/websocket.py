"""The ASGI WebSocket session (spec 2.4) on the HTTP/1.1 transport.

``WebSocketCycle`` is the request cycle of an Upgrade request: it validates
the opening handshake (RFC 6455 4.2.1), runs the app with a ``websocket``
scope, and answers ``websocket.accept`` with the 101 response, after which
the connection is handed to a ``WebSocketProtocol`` (frames in, ASGI events
out). Before the accept the app may deny with ``websocket.close`` (403) or the
``websocket.http.response`` extension.

Keep-alive pings and graceful shutdown go through the server's sweeper and
connection set, like HTTP connections: ``check_timeouts`` pings and enforces
the pong timeout, ``shutdown`` closes with 1001.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING, Any, Optional

from ..environ import request_headers, scope_paths
from ..http.errors import ClientDisconnected, InvalidResponse, ProtocolError
from ..http.parser import CHUNKED, LAST_CHUNK, NO_BODY, encode_chunk, encode_error, encode_head
from ..logs import error_log
from ..protocol import Connection, HttpProtocol
from ..websocket.deflate import negotiate_deflate
from ..websocket.errors import WebSocketProtocolError
from ..websocket.frames import (
    Close,
    FrameParser,
    Message,
    Ping,
    Pong,
    encode_binary,
    encode_close,
    encode_ping,
    encode_pong,
    encode_text,
)
from ..websocket.handshake import HandshakeError, check_request, encode_accept, encode_refusal

if TYPE_CHECKING:
    # Only a type: the bridge imports this module, not the reverse.
    from .bridge import ASGIBridge

# Session states, as the ASGI spec names them.
_CONNECTING = 0  # handshake received, app not yet accepted
_RESPONDING = 1  # the app is sending a denial response (websocket.http.response)
_CONNECTED = 2
_CLOSING = 3  # our Close frame is sent, the client's not yet received
_CLOSED = 4

#: Messages buffered for an app that is not receiving before reading pauses.
RECEIVE_HIGH_WATER = 32
#: After sending Close, the client gets this long to answer before the socket closes.
CLOSE_TIMEOUT = 5.0
#: 1006 is never sent on the wire: it marks a connection that ended without Close.
ABNORMAL_CLOSURE = 1006


class WebSocketCycle:
    """One WebSocket session, from the Upgrade request to the disconnect."""

    def __init__(self, bridge: ASGIBridge, protocol: HttpProtocol, request: Any) -> None:
        self.bridge = bridge
        self.protocol = protocol
        self.request = request
        self.config = bridge.config
        self.state = _CONNECTING
        self.handshake: Any = None
        self.session: Optional[WebSocketProtocol] = None
        self._queue: collections.deque = collections.deque()
        self._waiter: Optional[asyncio.Future] = None
        self._connect_delivered = False
        self._disconnected = False
        self._response_started = False
        self._response_status = 0
        self._response_headers: Any = ()
        self._response_framing = NO_BODY
        self.task: Optional[asyncio.Task] = None
        self._t0 = time.perf_counter()

    # -- the HTTP cycle interface (until the 101 is sent) ----------------------

    def on_body(self, data: bytes) -> None:
        """An Upgrade request's body (rare) is not the app's business."""

    def on_end(self, eom: Any) -> None:
        pass

    def on_body_error(self, exc: ProtocolError) -> None:
        self.on_disconnect()

    def on_disconnect(self) -> None:
        if self.state in (_CONNECTING, _RESPONDING):
            self._client_gone(ABNORMAL_CLOSURE, "")

    def on_write_paused(self, paused: bool) -> None:
        pass

    def body_discardable(self) -> bool:
        return True

    def start(self, complete: bool = False) -> None:
        request = self.request
        try:
            self.handshake = check_request(request.method, request.http_version, request.headers)
        except HandshakeError as error:
            data = encode_refusal(error, server=self.bridge.server)
            self.protocol.write(data)
            self._log(error.status, 0)
            self.state = _CLOSED
            self.protocol.finish(False)
            return
        self.task = self.bridge.start_task(self.run())

    # -- the app -------------------------------------------------------------------

    def scope(self) -> dict:
        request = self.request
        protocol = self.protocol
        bridge = self.bridge
        path, raw_path = scope_paths(request.path, bridge.root_path)
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": request.http_version,
            "scheme": "wss" if protocol.scheme == "https" else "ws",
            "server": protocol.server,
            "client": protocol.client,
            "root_path": bridge.root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": request.query,
            "headers": request_headers(request),
            "subprotocols": list(self.handshake.subprotocols),
            "state": bridge.state.copy(),
            "extensions": {"websocket.http.response": {}},
        }

    async def run(self) -> None:
        try:
            await self.bridge.app(self.scope(), self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, ClientDisconnected) or (self._disconnected and isinstance(exc, OSError)):
                return
            error_log.error(
                "Exception in ASGI application (WebSocket %s)",
                self.request.target.decode("latin-1")[:200],
                exc_info=exc,
            )
            self._fail(1011, "internal error", 500)
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            return
        if self.state == _CONNECTING:
            # The app returned without accepting: the handshake is denied.
            self._deny(403)
        elif self.state == _RESPONDING:
            error_log.error("ASGI application returned before finishing its WebSocket denial response")
            self.protocol.abort()
            self._finish_http()
        elif self.state == _CONNECTED and self.session is not None:
            self.session.close(1000, "")

    def _fail(self, code: int, reason: str, status: int) -> None:
        if self.state == _CONNECTING:
            self._deny(status)
        elif self.state == _RESPONDING:
            self.protocol.abort()
            self._finish_http()
        elif self.state == _CONNECTED and self.session is not None:
            self.session.close(code, reason)

    def _deny(self, status: int) -> None:
        data = encode_error(status, "WebSocket connection refused" if status == 403 else "", server=self.bridge.server)
        self.protocol.write(data)
        self._log(status, len(data))
        self._finish_http()

    def _finish_http(self) -> None:
        self.state = _CLOSED
        self._client_gone(ABNORMAL_CLOSURE, "")
        self.protocol.finish(False)

    def _log(self, status: int, size: int) -> None:
        access_log = self.protocol.state.access_log
        if access_log is not None:
            access_log(self.protocol, self.request, status, size, time.perf_counter() - self._t0)

    # -- receive / send --------------------------------------------------------------

    def deliver(self, message: dict) -> None:
        """A message for the app (loop); reading pauses while too many wait."""
        self._queue.append(message)
        if len(self._queue) >= RECEIVE_HIGH_WATER and self.session is not None:
            self.session.pause_reading()
        self._wake()

    def _client_gone(self, code: int, reason: str) -> None:
        if not self._disconnected:
            self._disconnected = True
            self._queue.append({"type": "websocket.disconnect", "code": code, "reason": reason})
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> dict:
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        while not self._queue:
            self._waiter = self.bridge.loop.create_future()
            await self._waiter
        message = self._queue.popleft()
        session = self.session
        if session is not None and session.reading_paused and len(self._queue) < RECEIVE_HIGH_WATER // 2:
            session.resume_reading()
        if message["type"] == "websocket.disconnect":
            # Every later receive() sees the disconnect too.
            self._queue.appendleft(message)
        return message

    async def send(self, message: dict) -> None:
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise RuntimeError(f"ASGI message must be a dict with a 'type' key, got {message!r}") from None
        state = self.state
        if state == _CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._deny(403)
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(f"expected 'websocket.accept', 'websocket.close' or 'websocket.http.response.start', got {kind!r}")
        elif state == _RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"expected 'websocket.http.response.body', got {kind!r}")
            self._denial_body(message)
        elif state == _CONNECTED:
            session = self.session
            assert session is not None
            if self._disconnected:
                raise ClientDisconnected("the WebSocket client disconnected")
            if kind == "websocket.send":
                text = message.get("text")
                data = message.get("bytes")
                if (text is None) == (data is None):
                    raise RuntimeError("websocket.send needs exactly one of 'text' and 'bytes'")
                if text is not None:
                    if not isinstance(text, str):
                        raise RuntimeError(f"websocket.send 'text' must be str, got {type(text).__name__}")
                    session.write(encode_text(text, session.deflate))
                else:
                    if not isinstance(data, (bytes, bytearray, memoryview)):
                        raise RuntimeError(f"websocket.send 'bytes' must be bytes, got {type(data).__name__}")
                    session.write(encode_binary(bytes(data), session.deflate))
                await session.drain()
            elif kind == "websocket.close":
                code = message.get("code", 1000)
                reason = message.get("reason") or ""
                session.close(code, reason)
            else:
                raise RuntimeError(f"expected 'websocket.send' or 'websocket.close', got {kind!r}")
        else:
            if kind in ("websocket.send",) or self._disconnected:
                raise ClientDisconnected("the WebSocket is closed")
            raise RuntimeError(f"ASGI message {kind!r} sent after the WebSocket closed")

    def _accept(self, message: dict) -> None:
        deflate = None
        extensions = None
        if self.config.ws_per_message_deflate and self.handshake.extensions is not None:
            extensions, deflate = negotiate_deflate(self.handshake.extensions)
        headers = message.get("headers") or ()
        try:
            head = encode_accept(self.handshake, message.get("subprotocol"), extensions, headers, server=self.bridge.server)
        except InvalidResponse as exc:
            raise RuntimeError(f"invalid websocket.accept: {exc}") from None
        protocol = self.protocol
        if protocol.closed:
            raise ClientDisconnected("the client disconnected before the handshake completed")
        protocol.write(head)
        self._log(101, 0)
        self.state = _CONNECTED
        session = self.session = WebSocketProtocol(self, FrameParser(max_message_size=self.config.ws_max_size, deflate=deflate), deflate)
        protocol.switch_protocol(session)

    def _start_denial(self, message: dict) -> None:
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 999:
            raise RuntimeError(f"websocket.http.response.start needs an integer 'status' >= 200, got {status!r}")
        self._response_status = status
        self._response_headers = message.get("headers") or ()
        self.state = _RESPONDING

    def _denial_body(self, message: dict) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        protocol = self.protocol
        if not self._response_started:
            self._response_started = True
            try:
                head, self._response_framing, _, _ = encode_head(
                    self._response_status,
                    self._response_headers,
                    keep_alive=False,
                    body_length=-1 if more else len(body),
                    server=self.bridge.server,
                )
            except InvalidResponse as exc:
                raise RuntimeError(f"invalid websocket.http.response.start: {exc}") from None
            protocol.write(head)
        if self._response_framing == CHUNKED:
            protocol.write(encode_chunk(body) + (b"" if more else LAST_CHUNK))
        elif self._response_framing != NO_BODY:
            protocol.write(body)
        if not more:
            self._log(self._response_status, len(body))
            self._finish_http()

    # -- called by the session ---------------------------------------------------------

    def session_closed(self, code: int, reason: str) -> None:
        self.state = _CLOSED
        self._client_gone(code, reason)


class WebSocketProtocol(Connection):
    """An accepted WebSocket connection: frames in, ASGI events out."""

    def __init__(self, cycle: WebSocketCycle, parser: FrameParser, deflate: Any) -> None:
        super().__init__()
        self.cycle = cycle
        self.parser = parser
        self.deflate = deflate
        self.state = cycle.protocol.state
        self.transport: Any = None
        self.closed = False
        self.close_sent = False
        self.reading_paused = False
        self._close_timer: Optional[asyncio.TimerHandle] = None
        self._ping_sent_at = 0.0
        self._last_ping = 0.0
        self._awaiting_pong = False

    # -- asyncio ------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.state.connections.add(self)
        self._last_ping = self.state.loop.time()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
            error = None
        except WebSocketProtocolError as exc:
            events = exc.events
            error = exc
        cycle = self.cycle
        for event in events:
            kind = type(event)
            if kind is Message:
                if isinstance(event.data, str):
                    cycle.deliver({"type": "websocket.receive", "text": event.data})
                else:
                    cycle.deliver({"type": "websocket.receive", "bytes": event.data})
            elif kind is Ping:
                # RFC 6455 5.5.2: answer a Ping with a Pong carrying its payload.
                if not self.close_sent:
                    self.write(encode_pong(event.payload))
            elif kind is Pong:
                self._awaiting_pong = False
            elif kind is Close:
                self._on_close_frame(event.code, event.reason)
        if error is not None:
            error_log.info("WebSocket protocol error from %s: %s", self.cycle.protocol.client, error.reason)
            self.close(error.code, error.reason)
            cycle.session_closed(error.code, error.reason)
            self._close_transport()

    def _on_close_frame(self, code: int, reason: str) -> None:
        # RFC 6455 5.5.1: "If an endpoint receives a Close frame and did not
        # previously send a Close frame, the endpoint MUST send a Close frame
        # in response"; then the server closes the TCP connection (7.1.1).
        if not self.close_sent:
            self.close_sent = True
            self.transport.write(encode_close(code if code != 1005 else 1000, ""))
        self.cycle.session_closed(code, reason)
        self._close_transport()

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._forget()
        if self._close_timer is not None:
            self._close_timer.cancel()
        self.cycle.session_closed(ABNORMAL_CLOSURE, "")

    # -- for the cycle -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self, code: int, reason: str) -> None:
        """Send our Close frame; the socket closes when the client answers
        (or after CLOSE_TIMEOUT)."""
        if self.close_sent or self.closed:
            return
        self.close_sent = True
        try:
            frame = encode_close(code, reason)
        except ValueError as exc:
            raise RuntimeError(f"invalid websocket.close: {exc}") from None
        self.transport.write(frame)
        self.cycle.state = _CLOSING
        self._close_timer = self.state.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    def _close_transport(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    # -- the server's sweeper and shutdown -------------------------------------------

    def check_timeouts(self, now: float, keep_alive: float, header: float) -> None:
        if self.closed or self.close_sent:
            return
        config = self.cycle.config
        if self._awaiting_pong:
            if now - self._ping_sent_at >= config.ws_ping_timeout:
                error_log.info("WebSocket client %s did not answer a ping in time", self.cycle.protocol.client)
                self.close(1011, "keepalive ping timeout")
                self.cycle.session_closed(1011, "keepalive ping timeout")
        elif now - self._last_ping >= config.ws_ping_interval:
            self._last_ping = self._ping_sent_at = now
            self._awaiting_pong = True
            self.write(encode_ping(b"fastbase"))

    def shutdown(self) -> None:
        """Graceful server shutdown: RFC 6455 7.4.1's 1001, "going away"."""
        self.close(1001, "server shutting down")

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()
