"""``wsgi.input`` (PEP 3333) for a WSGI request: ``EmptyInput`` (one shared
object for the requests without a body) and ``StreamInput`` (a body still
arriving, fed by the loop and read by the app's thread, with backpressure).
Small bodies that arrive whole are a plain ``BytesIO`` (cycle.py).
"""

from __future__ import annotations

import collections
import io
import sys
import threading
from typing import TYPE_CHECKING, Any, Iterable, List, Optional

from ..http.parser import CONTINUE_RESPONSE
from ..protocol import PAUSE_BODY

if TYPE_CHECKING:
    from .cycle import WSGICycle

#: The request body buffered for the app before reading pauses, and the level
#: it must fall to before reading resumes.
BODY_HIGH_WATER = 256 * 1024
BODY_LOW_WATER = 64 * 1024


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

    # app side (pool thread)

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
