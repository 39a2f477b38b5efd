"""The WSGI bridge (PEP 3333): a request cycle per request, the app in a
worker thread (or inline on the loop with ``threads=0``).

A cycle starts after the parser batch that held its request head, so a small
request reaches the app with its whole body (``wsgi.input`` is then a plain
``BytesIO``, or the shared ``EmptyInput`` when there is none); a larger one
streams through ``StreamInput`` with backpressure.
The response goes back to the loop in as few hops as possible: a one-piece
body travels with its head in a single write.
"""

from __future__ import annotations

import asyncio
import collections
import io
import os
import stat
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, List, Optional

from . import __version__
from .environ import wsgi_environ
from .errors import ClientDisconnected, InvalidResponse, ProtocolError
from .logs import error_log
from .parser import (
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
from .protocol import PAUSE_BODY, HttpProtocol, PendingOutput
from .threads import LoopCaller, WorkerPool

#: The request body buffered for the app before reading pauses, and the level
#: it must fall to before reading resumes.
BODY_HIGH_WATER = 256 * 1024
BODY_LOW_WATER = 64 * 1024
#: Response bytes a worker posts before it waits for the socket to drain.
RESPONSE_HIGH_WATER = 256 * 1024
#: Bodies that must be complete before the app runs are kept in memory up to
#: this size, then in a temporary file.
SPOOL_MEMORY = 1024 * 1024

SERVER_SOFTWARE = f"fastbase/{__version__}"


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
        self.pool: Optional[WorkerPool] = WorkerPool(threads, loop, self.caller) if threads > 0 else None
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
            # _submit's work for a request without a body, inline (nearly
            # every request).
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
            self.protocol.write(encode_error(exc.status, exc.reason))
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
            self._t0 = time.perf_counter()
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
                # _encode_head's work for a body of known length, without
                # its frame (this runs for nearly every response).
                http11 = request.http_version == "1.1"
                keep_alive = self.keep_alive and not protocol.state.shutting_down
                head_request = request.method == b"HEAD"
                response = encode_response(
                    self.status, self.headers, body_bytes, self.reason, http11, keep_alive, head_request, bridge.server
                )
                if response is None:
                    # Not one write: HEAD, a status without a body, a declared
                    # length that differs from the body, or a large body.
                    head, framing, length, keep_alive = encode_head(
                        self.status,
                        self.headers,
                        reason=self.reason,
                        http11=http11,
                        keep_alive=keep_alive,
                        head_request=head_request,
                        body_length=len(body_bytes),
                        server=bridge.server,
                    )
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
                    # _deliver_whole's work, from the connection itself.
                    if bridge.pool is None:
                        protocol.respond(payload, keep_alive)
                    else:
                        # The worker hands the batch's responses over when it
                        # runs dry.
                        bridge.caller.defer(protocol.respond, payload, keep_alive)
                    if protocol.state.access_log is not None:
                        self._log(request)
                    return
            else:
                self.keep_alive = keep_alive
                self._framing = framing
                self._remaining = length
                if framing == NO_BODY:
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
                # _post's work, inline: the worker hands the batch's
                # responses over when it runs dry.
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
        common response, so without _deliver's choices."""
        protocol = self.protocol
        if type(data) is list:
            protocol.writelines(data)
        else:
            protocol.write(data)
        if self._spool is not None:
            self._spool.close()
        protocol.finish(keep_alive)

    def _sync(self) -> None:
        """Wait (worker thread) until the socket accepts more, so a large
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
        self.keep_alive = keep_alive = (
            self.keep_alive and status == 500 and self._body_complete and not protocol.state.shutting_down
        )
        data = encode_error(status, message, keep_alive, self.request.http_version == "1.1")
        self._bytes = len(data)
        self._post(data, True)
        self._log(self.request)

    def _log(self, request: Request) -> None:
        access_log = self.protocol.state.access_log
        if access_log is not None:
            access_log(self.protocol, request, self.status or 0, self._bytes, time.perf_counter() - self._t0)


class EmptyInput:
    """``wsgi.input`` for a request without a body: one shared, stateless
    object (a BytesIO per request costs its making and unmaking, on nearly
    every request)."""

    __slots__ = ()

    def read(self, size: Optional[int] = -1) -> bytes:
        return b""

    def read1(self, size: Optional[int] = -1) -> bytes:
        return b""

    def readline(self, size: Optional[int] = -1) -> bytes:
        return b""

    def readlines(self, hint: Optional[int] = -1) -> List[bytes]:
        return []

    def readinto(self, buffer: Any) -> int:
        return 0

    def __iter__(self) -> "EmptyInput":
        return self

    def __next__(self) -> bytes:
        raise StopIteration

    def readable(self) -> bool:
        return True

    # What BytesIO offers beyond PEP 3333 and some middleware uses (rewinding
    # a body it has read, closing it, a with block): an empty stream is
    # always at 0, and never closed, since it is shared.
    closed = False

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def getvalue(self) -> bytes:
        return b""

    def writable(self) -> bool:
        return False

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Nothing to release (and still readable after: it is shared)."""

    def __enter__(self) -> "EmptyInput":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        pass


NO_INPUT = EmptyInput()


class StreamInput:
    """``wsgi.input`` for a body still arriving: the loop feeds it, the app's
    thread reads it; reading pauses while too much is unread.

    Received pieces are kept as they came (no copying into one buffer) and a
    read joins what it takes: one copy of each body byte on the way to the
    app."""

    def __init__(self, cycle: WSGICycle, chunks: Iterable[bytes]) -> None:
        self._cycle = cycle
        self._chunks: collections.deque = collections.deque(bytes(chunk) for chunk in chunks if chunk)
        #: How far into the first piece reads have taken.
        self._offset = 0
        #: Bytes buffered and not read yet.
        self._size = sum(len(chunk) for chunk in self._chunks)
        self._eof = False
        self._error: Optional[BaseException] = None
        self._cond = threading.Condition(threading.Lock())
        self._paused = False
        self._discarding = False
        #: What a reader waiting in _wait needs buffered to return (0: none waits).
        self._wanted = 0
        #: The buffer size at which feed() wakes the waiting reader: waking it
        #: for every piece of a large read() costs a thread switch each.
        self._notify_at = sys.maxsize

    # loop side

    def feed(self, data: bytes) -> None:
        if self._discarding or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # kept as is and handed out: it must not change
        with self._cond:
            self._chunks.append(data)
            self._size += len(data)
            size = self._size
            if size >= self._notify_at:
                self._cond.notify()
            # Pause unless a waiting reader still needs more: a read() of the
            # whole body must be able to fill the buffer past the mark, but a
            # read(n) that is satisfied must not let it grow while the app's
            # thread waits to be scheduled.
            if size >= BODY_HIGH_WATER and size >= self._wanted:
                self._paused = True
                self._cycle.protocol.pause_reading(PAUSE_BODY)

    def feed_eof(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            if not self._eof:
                self._error = exc
            self._cond.notify()

    def discard(self) -> None:
        self._discarding = True
        with self._cond:
            self._chunks.clear()
            self._offset = self._size = 0
        if self._paused:
            self._paused = False
            self._cycle.protocol.resume_reading(PAUSE_BODY)

    # app side (worker thread)

    def _wait(self, wanted: int = sys.maxsize, notify_at: Optional[int] = None) -> None:
        # Called with the lock held, when more data is needed: ``wanted``
        # bytes in all (sys.maxsize: up to the end of the body).
        if self._error is not None:
            raise self._error
        cycle = self._cycle
        caller = cycle.bridge.caller
        if cycle.request.expect_continue and not cycle._continue_sent and not cycle._head_sent:
            # RFC 9110 10.1.1: the client waits for 100 before sending the
            # body; it is sent only now that the app asks for the body.
            cycle._continue_sent = True
            caller.call(cycle.protocol.write, CONTINUE_RESPONSE)
        if self._paused:
            # The app wants more than is buffered: read on, whatever the size.
            self._paused = False
            caller.call(cycle.protocol.resume_reading, PAUSE_BODY)
        self._wanted = wanted
        self._notify_at = wanted if notify_at is None else notify_at
        try:
            self._cond.wait()
        finally:
            self._wanted = 0
            self._notify_at = sys.maxsize
        if self._error is not None:
            raise self._error

    def _maybe_resume(self) -> None:
        if self._paused and self._size < BODY_LOW_WATER:
            self._paused = False
            self._cycle.bridge.caller.call(self._cycle.protocol.resume_reading, PAUSE_BODY)

    def _take(self, n: int) -> bytes:
        """The next ``n`` buffered bytes (at most what is buffered)."""
        chunks = self._chunks
        n = min(n, self._size)
        if n <= 0:
            return b""
        self._size -= n
        offset = self._offset
        first = chunks[0] if chunks else b""
        if len(first) - offset >= n:
            # Within the first piece: often all of it, taken without a copy.
            if offset == 0 and n == len(first):
                chunks.popleft()
                return first
            self._offset = offset + n
            if self._offset == len(first):
                chunks.popleft()
                self._offset = 0
            return first[offset : offset + n]
        pieces = []
        while n:
            chunk = chunks[0]
            available = len(chunk) - offset
            if available <= n:
                pieces.append(memoryview(chunk)[offset:] if offset else chunk)
                chunks.popleft()
                offset = 0
                n -= available
            else:
                pieces.append(memoryview(chunk)[offset : offset + n])
                offset += n
                n = 0
        self._offset = offset
        return b"".join(pieces)

    def read(self, size: Optional[int] = -1) -> bytes:
        with self._cond:
            if size is None or size < 0:
                while not self._eof:
                    self._wait()
                data = self._take(self._size)
            else:
                while self._size < size and not self._eof:
                    self._wait(size)
                data = self._take(size)
            self._maybe_resume()
            return data

    def _line_end(self) -> int:
        """Bytes up to and including the first buffered newline, or -1."""
        seen = 0
        offset = self._offset
        for chunk in self._chunks:
            nl = chunk.find(b"\n", offset)
            if nl >= 0:
                return seen + nl - offset + 1
            seen += len(chunk) - offset
            offset = 0
        return -1

    def readline(self, size: Optional[int] = -1) -> bytes:
        with self._cond:
            limit = -1 if size is None else size
            while True:
                end = self._line_end()
                if end >= 0:
                    break
                if 0 <= limit <= self._size or self._eof:
                    end = self._size
                    break
                # Any new byte may hold the newline: wake on every piece.
                self._wait(limit if limit >= 0 else sys.maxsize, notify_at=self._size + 1)
            if 0 <= limit < end:
                end = limit
            data = self._take(end)
            self._maybe_resume()
            return data

    def readlines(self, hint: Optional[int] = -1) -> List[bytes]:
        lines: List[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> "StreamInput":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        pass
