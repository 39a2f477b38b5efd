"""One WSGI request/response exchange (PEP 3333): ``WSGICycle`` runs the app
in a pool thread (or inline on the loop with ``threads=0``).

A cycle starts after the parser batch that held its request head, so a small
request reaches the app with its whole body (``wsgi.input`` is then a plain
``BytesIO``, or the shared ``EmptyInput`` when there is none); a larger one
streams through ``StreamInput`` (input.py) with backpressure.
The response goes back to the loop in as few hops as possible: a one-piece
body travels with its head in a single write.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tempfile
import threading
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from ..http.errors import ClientDisconnected, InvalidResponse, ProtocolError
from ..http.parser import (
    CHUNKED,
    CLOSE_DELIMITED,
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    Request,
    encode_chunk,
    encode_error,
    encode_head,
    encode_response,
)
from ..environ import wsgi_environ
from ..logs import error_log
from ..protocol import HttpProtocol, PendingOutput
from .input import NO_INPUT, StreamInput

if TYPE_CHECKING:
    from .bridge import WSGIBridge

#: Response bytes the app's thread posts before it waits for the socket to drain.
RESPONSE_HIGH_WATER = 256 * 1024
#: Bodies that must be complete before the app runs are kept in memory up to
#: this size, then in a temporary file.
SPOOL_MEMORY = 1024 * 1024


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks; a real file on a
    plain-TCP connection is sent with sendfile instead."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> "FileWrapper":
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


# WSGI status strings ("200 OK") as (code, reason), each validated once: an
# app sends the same few statuses all day. A malformed one is never stored,
# so it fails on every call.
_statuses: dict = {}
_MAX_CACHED_STATUSES = 256


def _parse_status(status: Any) -> tuple:
    if not isinstance(status, str) or len(status) < 4 or status[3] != " " or not status[:3].isdigit() or not status.isascii():
        raise InvalidResponse(f"invalid WSGI status {status!r}: expected 'NNN Reason'")
    parsed = (int(status[:3]), status[4:])
    if len(_statuses) < _MAX_CACHED_STATUSES:
        _statuses[status] = parsed
    return parsed


def outside_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Run WSGI code on the loop's thread (threads=0) as if no event loop
    were running there: it is synchronous code, and some of it refuses to
    run inside a loop (Django's ORM raises SynchronousOnlyOperation)."""
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return fn(*args)
    finally:
        asyncio._set_running_loop(loop)


class WSGICycle:
    """One request/response exchange."""

    # Per-request state starts at these class-level values: a cycle is made
    # for every request, and only what differs is stored on it.
    _body_size = 0
    _body_complete = False
    _started = False
    #: Body pieces received before the app started (a list made with the first).
    _chunks: Optional[List[bytes]] = None
    _stream: Optional["StreamInput"] = None
    _spool: Any = None
    _discard_body = False
    _continue_sent = False
    disconnected = False
    #: The response's last byte went to the connection (loop thread): a
    #: client closing after that has read a complete response.
    _all_sent = False
    status: Optional[int] = None
    reason: Optional[str] = None
    headers: Any = None
    _head_sent = False
    _framing = NO_BODY
    _remaining = -1
    _bytes = 0
    _unsynced = 0
    _writable: Optional[threading.Event] = None
    _sync_waiting = False
    _t0 = 0.0
    _result: Any = None
    _iter: Any = None
    _input: Any = None

    def __init__(self, bridge: WSGIBridge, protocol: HttpProtocol, request: Request) -> None:
        self.bridge = bridge
        self.protocol = protocol
        self.request = request
        self.keep_alive = request.keep_alive
        # Read on every request before anything sets them: an instance
        # attribute reads faster than a class-level default.
        self._head_sent = False
        self._spool = None

    # -- loop side: events from the connection -------------------------------

    def on_body(self, data: bytes) -> None:
        self._body_size += len(data)
        if not self._started:
            if self._chunks is None:
                self._chunks = [data]
            else:
                self._chunks.append(data)
        elif self._discard_body:
            pass
        elif self._stream is not None:
            self._stream.feed(data)
        elif self._spool is not None:
            self._spool.write(data)

    def on_end(self, eom: Any) -> None:
        self._body_complete = True
        if not self._started or self._discard_body:
            return
        if self._stream is not None:
            self._stream.feed_eof()
        elif self._spool is not None:
            self._spool.seek(0)
            self._submit(self._spool)

    def start(self, complete: bool = False) -> None:
        self._started = True
        if complete:
            # Fast-path copy of on_end + start + _submit (WSGICycle) for a
            # request without a body (nearly every request); keep in step.
            self._body_complete = True
            self._input = NO_INPUT
            pool = self.bridge.pool
            if pool is None:
                outside_loop(self._run)
            else:
                pool.submit(self._run)
            return
        request = self.request
        bridge = self.bridge
        if self._body_complete:
            chunks = self._chunks
            if chunks:
                self._chunks = None
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._submit(io.BytesIO(body))
            else:
                self._submit(NO_INPUT)
            return
        must_buffer = bridge.pool is None or (request.chunked and bridge.needs_content_length)
        if must_buffer:
            # The body must be complete before the app runs: keep it in a
            # spool (memory, then disk) so its size stays bounded.
            self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
            for chunk in self._chunks or ():
                self._spool.write(chunk)
            self._chunks = None
            if request.expect_continue:
                self._continue_sent = True
                self.protocol.write(CONTINUE_RESPONSE)
            return
        self._stream = StreamInput(self, self._chunks or ())
        self._chunks = None
        self._submit(self._stream)

    def on_body_error(self, exc: ProtocolError) -> None:
        if self._stream is not None:
            self._stream.fail(exc)
        elif self._spool is not None:
            # The app never ran: answer the malformed body ourselves.
            self._spool.close()
            self._spool = None
            self.protocol.write(encode_error(exc.status, exc.reason, server=self.bridge.server))
            self.protocol.finish(False)

    def on_disconnect(self) -> None:
        protocol = self.protocol
        if self._all_sent and type(protocol) is not PendingOutput and not protocol._cork:
            # The client closed after the whole response was handed to the
            # transport (curl, urllib and health checks close at once): the
            # response is complete and is logged as such, whatever the
            # worker is still doing (closing the iterable, posting an empty
            # final piece).
            if self._writable is not None:
                self._writable.set()
            if self._sync_waiting and self.bridge.pool is None:
                self._sync_waiting = False
                self.bridge.loop.call_soon(outside_loop, self._continue)
            return
        self.disconnected = True
        if self._spool is not None and not self._body_complete:
            # The app never ran (it waits for the whole body): drop the spool.
            self._spool.close()
        if self._stream is not None:
            self._stream.fail(ClientDisconnected("client disconnected"))
        if self._writable is not None:
            self._writable.set()
        if self._sync_waiting and self.bridge.pool is None:
            self._sync_waiting = False
            self.bridge.loop.call_soon(outside_loop, self._continue)  # ends in ClientDisconnected

    def on_write_paused(self, paused: bool) -> None:
        if not paused and self._sync_waiting:
            self._sync_waiting = False
            if self.bridge.pool is None:
                self.bridge.loop.call_soon(outside_loop, self._continue)
                return
            assert self._writable is not None
            self._writable.set()

    def body_discardable(self) -> bool:
        """The response is done but the body is still arriving: may the
        connection read and drop the rest, or must it close?"""
        if self.request.expect_continue and not self._continue_sent:
            return False
        self._discard_body = True
        if self._stream is not None:
            self._stream.discard()
        return True

    # -- running the app -----------------------------------------------------

    def _submit(self, body: Any) -> None:
        # Inlined in start(complete=True) for speed.
        self._input = body
        pool = self.bridge.pool
        if pool is None:
            outside_loop(self._run)
        else:
            pool.submit(self._run)

    def _run(self) -> None:
        protocol = self.protocol
        bridge = self.bridge
        request = self.request
        if protocol.state.access_log is not None:
            self._t0 = perf_counter()
        try:
            base = protocol.bridge_cache
            if base is None:
                base = bridge.connection_environ(protocol)
            environ = wsgi_environ(base, request, bridge.root_path, self._input)
            if bridge.needs_content_length and request.chunked and self._body_complete:
                environ["CONTENT_LENGTH"] = str(self._body_size)
            result = bridge.app(environ, self.start_response)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            return
        # The fast path: a one-piece body goes out with its head in one write.
        if type(result) is list and len(result) == 1 and self.status is not None and not self._head_sent:
            try:
                body_bytes = result[0]
                if type(body_bytes) is not bytes:
                    raise TypeError(f"WSGI body items must be bytes, not {type(body_bytes).__name__}")
                # Fast-path copy of _encode_head (WSGICycle._encode_head) for
                # a body of known length, without its frame (this runs for
                # nearly every response); keep in step.
                response = encode_response(
                    self.status,
                    self.headers,
                    body_bytes,
                    self.reason,
                    request.http_version == "1.1",
                    self.keep_alive and not protocol.state.shutting_down,
                    request.method == b"HEAD",
                    bridge.server,
                )
                if response is None:
                    # Not one write: HEAD, a status without a body, a declared
                    # length that differs from the body, or a large body.
                    head = self._encode_head(len(body_bytes))
            except BaseException as exc:  # noqa: BLE001
                self._fail(exc)
                return
            self._head_sent = True
            payload: Any
            if response is not None:
                # The response is complete with this write: what the cycle
                # records of it is the size, for the access log.
                payload, keep_alive = response
                self._bytes = len(body_bytes)
                if self._spool is None:
                    # Fast-path copy of _deliver_whole (and _post), from the
                    # connection itself; keep in step.
                    if bridge.pool is None:
                        protocol.respond(payload, keep_alive)
                    else:
                        # The worker hands the batch's responses over when it
                        # runs dry.
                        bridge.caller.defer(protocol.respond, payload, keep_alive)
                    access_log = protocol.state.access_log
                    if access_log is not None:  # (_log's work, one call less)
                        access_log(protocol, request, self.status, self._bytes, perf_counter() - self._t0, self.headers)
                    return
            else:
                keep_alive = self.keep_alive
                length = self._remaining
                if self._framing == NO_BODY:
                    self._post(head, True)
                    if protocol.state.access_log is not None:
                        self._log(request)
                    return
                if len(body_bytes) != length:
                    # The app's Content-Length disagrees with its body: send
                    # the head, then let _send enforce the declared length.
                    self._post(head, False)
                    self._result = result
                    self._iter = iter(result)
                    self._continue()
                    return
                # A large body goes out with writelines (writev), not copied
                # into one bytes object with its head.
                self._bytes = length
                payload = [head, body_bytes]
            if bridge.pool is None:
                self._deliver_whole(payload, keep_alive)
            else:
                # Fast-path copy of _post(payload, True); keep in step: the
                # worker hands the batch's responses over when it runs dry.
                bridge.caller.defer(self._deliver_whole, payload, keep_alive)
            if protocol.state.access_log is not None:
                self._log(request)
            return
        if isinstance(result, FileWrapper) and self._try_sendfile(result):
            return
        self._result = result
        try:
            self._iter = iter(result)
        except BaseException as exc:  # noqa: BLE001
            self._close_result()
            self._fail(exc)
            return
        self._continue()

    def _continue(self) -> None:
        """Send the rest of the body, waiting for the socket between large
        pieces (with threads=0 the loop cannot wait on itself: iteration
        stops while the transport's writing is paused, and on_write_paused
        calls this again)."""
        try:
            for chunk in self._iter:
                if chunk:
                    self._send(chunk)
                    if self.disconnected:
                        raise ClientDisconnected("client disconnected")
                    if self._unsynced >= RESPONSE_HIGH_WATER:
                        if self.bridge.pool is None and self.protocol.write_paused:
                            self._unsynced = 0
                            self._sync_waiting = True
                            return
                        self._sync()
            if self.status is None:
                raise RuntimeError("the WSGI application returned without calling start_response")
            self._finish_body()
        except BaseException as exc:  # noqa: BLE001
            self._close_result()
            self._fail(exc)
            return
        self._close_result()
        self._log(self.request)

    def _close_result(self) -> None:
        result = self._result
        self._result = None
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001
                error_log.exception("Error closing the WSGI response iterable")

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self._head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response() called a second time without exc_info")
        try:
            parsed = _statuses[status]
        except (KeyError, TypeError):  # TypeError: an unhashable status
            parsed = _parse_status(status)
        if type(headers) is not list:
            raise InvalidResponse(f"WSGI response headers must be a list, not {type(headers).__name__}")
        # Nothing is stored until all of it is valid.
        self.status, self.reason = parsed
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy write() callable of start_response."""
        if self.status is None:
            raise RuntimeError("write() called before start_response()")
        if self.disconnected:
            raise ClientDisconnected("client disconnected")
        if data:
            self._send(data)
            if self._unsynced >= RESPONSE_HIGH_WATER:
                self._sync()

    # -- response bytes --------------------------------------------------------

    def _encode_head(self, body_length: int = -1) -> bytes:
        # Inlined in _run's one-piece fast path (encode_response) for speed.
        request = self.request
        assert self.status is not None
        http11 = request.http_version == "1.1"
        if (
            http11
            and body_length < 0
            and self.bridge.close_unknown_length
            and request.method != b"HEAD"
            and self.status >= 200
            and self.status not in (204, 304)
        ):
            http11 = any(str(name).lower() == "content-length" for name, _ in self.headers)
        head, framing, length, keep_alive = encode_head(
            self.status,
            self.headers,
            reason=self.reason,
            http11=http11,
            keep_alive=self.keep_alive and not self.protocol.state.shutting_down,
            head_request=request.method == b"HEAD",
            body_length=body_length,
            server=self.bridge.server,
        )
        self._framing = framing
        self._remaining = length
        self.keep_alive = keep_alive
        self._head_sent = True
        return head

    def _send(self, chunk: bytes) -> None:
        if type(chunk) is not bytes:
            if isinstance(chunk, (bytearray, memoryview)):
                chunk = bytes(chunk)
            else:
                raise TypeError(f"WSGI body items must be bytes, not {type(chunk).__name__}")
        head = b"" if self._head_sent else self._encode_head()
        framing = self._framing
        if framing == NO_BODY:
            data = head
        elif framing == CHUNKED:
            data = head + encode_chunk(chunk)
        else:
            if framing == LENGTH:
                if len(chunk) > self._remaining:
                    error_log.error(
                        "The app sent more than its Content-Length (%d bytes); the excess is dropped",
                        self._bytes + self._remaining,
                    )
                    chunk = chunk[: self._remaining]
                    self.keep_alive = False
                self._remaining -= len(chunk)
            data = head + chunk if head else chunk
        if framing != NO_BODY:
            # (A HEAD response or a 304 sends no body: none is logged.)
            self._bytes += len(chunk)
        if data:
            self._unsynced += len(data)
            if framing == NO_BODY or (framing == LENGTH and self._remaining == 0):
                self._post_last(data)
            else:
                self._post(data, False)

    def _finish_body(self) -> None:
        head = b"" if self._head_sent else self._encode_head(0)
        framing = self._framing
        if framing == CHUNKED:
            tail = LAST_CHUNK
        else:
            tail = b""
            if framing == LENGTH and self._remaining > 0:
                error_log.error(
                    "The app sent %d bytes less than its Content-Length; closing the connection",
                    self._remaining,
                )
                self.keep_alive = False
            elif framing == CLOSE_DELIMITED:
                self.keep_alive = False
        self._post(head + tail, True)

    def _post(self, data: Any, final: bool) -> None:
        # Inlined in _run's one-piece fast path for speed.
        if self.bridge.pool is None:
            self._deliver(data, final, self.keep_alive)
        elif final:
            # The worker hands the batch's last pieces over when it runs dry.
            self.bridge.caller.defer(self._deliver, data, final, self.keep_alive)
        else:
            self.bridge.caller.call(self._deliver, data, final, self.keep_alive)

    def _post_last(self, data: bytes) -> None:
        """_post for the response's last bytes (the ones that complete a
        known length): the loop records that they went out."""
        if self.bridge.pool is None:
            self._deliver_last(data)
        else:
            self.bridge.caller.call(self._deliver_last, data)

    def _deliver_last(self, data: bytes) -> None:
        protocol = self.protocol
        if not protocol.closed:
            protocol.write(data)
            self._all_sent = True

    def _deliver(self, data: Any, final: bool, keep_alive: bool) -> None:
        # Inlined in _deliver_whole (and _run) for speed.
        protocol = self.protocol
        if type(data) is list:
            protocol.writelines(data)
        elif data:
            protocol.write(data)
        if final:
            if self._spool is not None:
                self._spool.close()
            protocol.finish(keep_alive)

    def _deliver_whole(self, data: Any, keep_alive: bool) -> None:
        """_deliver for a whole response in one piece (loop thread): the
        common response, so without _deliver's choices. Fast-path copy of
        _deliver(data, True, keep_alive) (WSGICycle._deliver); keep in step."""
        protocol = self.protocol
        if type(data) is list:
            protocol.writelines(data)
        else:
            protocol.write(data)
        if self._spool is not None:
            self._spool.close()
        protocol.finish(keep_alive)

    def _sync(self) -> None:
        """Wait (pool thread) until the socket accepts more, so a large
        response never piles up in memory."""
        self._unsynced = 0
        if self.bridge.pool is None:
            return  # inline: the transport buffers; the loop cannot wait on itself
        event = self._writable
        if event is None:
            event = self._writable = threading.Event()
        event.clear()
        self.bridge.caller.call(self._sync_on_loop)
        event.wait()
        if self.disconnected:
            raise ClientDisconnected("client disconnected")

    def _sync_on_loop(self) -> None:
        assert self._writable is not None
        if self.protocol.closed or not self.protocol.write_paused:
            self._writable.set()
        else:
            self._sync_waiting = True

    def _try_sendfile(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with the loop's sendfile (the loop finishes the
        response; the worker is free at once). False: iterate it instead."""
        if self.status is None:
            return False
        filelike = wrapper.filelike
        try:
            info = os.fstat(filelike.fileno())
            offset = filelike.tell()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        self._result = wrapper
        try:
            head = self._encode_head(max(0, info.st_size - offset))
        except BaseException as exc:  # noqa: BLE001
            self._close_result()
            self._fail(exc)
            return True
        if self._framing == LENGTH and self._remaining > 0:
            if self.bridge.pool is None:
                self._start_sendfile(head, filelike, offset)
            else:
                self.bridge.caller.call(self._start_sendfile, head, filelike, offset)
            return True
        # Nothing to send (HEAD, 304, an empty file): the ordinary path ends it.
        self._post_last(head)
        self._iter = iter(wrapper)
        self._continue()
        return True

    def _start_sendfile(self, head: bytes, filelike: Any, offset: int) -> None:
        protocol = self.protocol
        loop = self.bridge.loop
        count = self._remaining

        async def send() -> None:
            sent = 0
            try:
                protocol.write(head)
                sent = await protocol.send_file(filelike, offset, count)
                if sent < count:
                    raise ClientDisconnected("client disconnected") if protocol.closed else OSError("the file shrank")
            except BaseException as exc:  # noqa: BLE001
                self._bytes = sent
                self._close_result()
                if isinstance(exc, ClientDisconnected) or protocol.closed:
                    protocol.state.log_disconnect(protocol)
                else:
                    error_log.error("Error sending a file response", exc_info=exc)
                    protocol.abort()
                protocol.finish(False)
                return
            self._bytes = sent
            self._remaining = 0
            self._close_result()
            protocol.finish(self.keep_alive)
            self._log(self.request)

        loop.create_task(send())

    # -- failure -----------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        protocol = self.protocol
        if isinstance(exc, ClientDisconnected) or (self.disconnected and isinstance(exc, OSError)):
            protocol.state.log_disconnect(protocol)
            self._post(b"", True)
            return
        if isinstance(exc, ProtocolError):
            status, message = exc.status, exc.reason
        else:
            status, message = 500, ""
            error_log.error(
                "Exception in WSGI application (%s %s)",
                self.request.method.decode("latin-1"),
                self.request.target.decode("latin-1")[:200],
                exc_info=exc,
            )
        if self._head_sent:
            # Part of the response is out: the client must see it fail, so
            # the connection is aborted rather than the body ended cleanly.
            if self.bridge.pool is None:
                protocol.abort()
            else:
                self.bridge.caller.call(protocol.abort)
            self._post(b"", True)
            return
        self.status = status
        self._head_sent = True
        # An application error before anything was sent leaves the
        # connection usable when the whole request body has arrived (the
        # next request starts right after it); a malformed or unfinished
        # body closes it.
        self.keep_alive = keep_alive = self.keep_alive and status == 500 and self._body_complete and not protocol.state.shutting_down
        data = encode_error(status, message, keep_alive, self.request.http_version == "1.1", server=self.bridge.server)
        self._bytes = len(data)
        self._post(data, True)
        self._log(self.request)

    def _log(self, request: Request) -> None:
        access_log = self.protocol.state.access_log
        if access_log is not None:
            access_log(self.protocol, request, self.status or 0, self._bytes, perf_counter() - self._t0, self.headers)
