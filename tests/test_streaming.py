"""1 GiB uploads and downloads through a ``python -m fastbase`` subprocess,
with the server's peak memory read from /proc: memory must not grow with the
size of a body.

Each test runs in two phases. First one side stops (the app stops reading
the upload, or the client stops reading the download) while the other goes
on; flow control must stop the other side too, so a marker that only a
runaway transfer reaches never shows up within HOLD_WINDOW (the test waits
for the marker; passing means the window passes without it). Then the whole
GiB moves at full speed and the server's peak RSS (VmHWM) is compared with
its value before the transfer.

The tests at the end pin the flow-control mechanisms in-process: an inline
(--threads 0) response suspended while writing is paused, and wsgi.input
pausing the socket once a waiting read is satisfied.
"""

from __future__ import annotations

import functools
import http.client
import json
import signal
import socket
import sys
import threading
import time
import zlib

import pytest

from proc_apps import BLOCK_SIZE, RUNAWAY_BYTES, piece
from servers import read_response
from subprocess_server import loop_params, server_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")

GIB = 1 << 30
PIECES = GIB // BLOCK_SIZE
#: Pieces per client send.
BATCH = 16
#: How much the server's peak RSS may grow while 1 GiB goes through it. Its
#: own buffers are bounded by a few hundred KiB (wsgi.BODY_HIGH_WATER,
#: RESPONSE_HIGH_WATER, transport limits); kernel socket buffers do not count.
GROWTH_LIMIT_KIB = 32 * 1024
PEAK_LIMIT_KIB = 150 * 1024
#: How long a stopped side is watched for a runaway transfer.
HOLD_WINDOW = 1.0
IO_TIMEOUT = 60.0


@pytest.fixture(params=loop_params())
def loop(request):
    return request.param


@pytest.fixture(params=[8, 0], ids=["threads", "inline"])
def threads(request):
    return request.param


class Served:
    def __init__(self, process, port, threads):
        self.process = process
        self.port = port
        self.threads = threads
        self.baseline_kib = 0

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)

    def release_app(self) -> None:
        stdin = self.process.proc.stdin
        stdin.write(b"go\n")
        stdin.flush()

    def assert_memory_bounded(self, what: str) -> int:
        peak = self.process.peak_rss_kib()
        report = f"{what}: server peak RSS {self.baseline_kib / 1024:.1f} MiB before, {peak / 1024:.1f} MiB after"
        print(report)
        assert peak - self.baseline_kib < GROWTH_LIMIT_KIB, report
        assert peak < PEAK_LIMIT_KIB, report
        return peak


@pytest.fixture
def served(loop, threads):
    args = ["proc_apps:app", "--port", "0", "--loop", loop, "--threads", str(threads)]
    with server_process(*args) as process:
        port = process.wait_serving()
        server = Served(process, port, threads)
        _warm_up(server)
        server.baseline_kib = process.peak_rss_kib()
        yield server
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, process.output()


def _warm_up(server: Served) -> None:
    """A 1 MiB upload and download, so the baseline includes what any
    transfer allocates once (thread stacks, buffers)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=IO_TIMEOUT)
    try:
        conn.request("POST", "/upload", body=b"".join(piece(i) for i in range(16)))
        response = conn.getresponse()
        assert json.loads(response.read())["bytes"] == 16 * BLOCK_SIZE
        conn.request("GET", f"/download?bytes={16 * BLOCK_SIZE}")
        response = conn.getresponse()
        assert len(response.read()) == 16 * BLOCK_SIZE
    finally:
        conn.close()


@functools.lru_cache(maxsize=None)
def expected_crc(pieces: int) -> int:
    crc = 0
    for index in range(pieces):
        crc = zlib.crc32(piece(index), crc)
    return crc


class Sender(threading.Thread):
    """Sends a request head, then ``pieces`` pieces (Content-Length or
    chunked), computing the CRC of what it sent; ``sent`` counts body bytes."""

    def __init__(self, sock: socket.socket, target: str, pieces: int, chunked: bool) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.pieces = pieces
        self.chunked = chunked
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (pieces * BLOCK_SIZE)
        self.head = b"POST %s HTTP/1.1\r\nHost: test\r\n%s\r\n\r\n" % (target.encode(), framing)
        self.crc = 0
        self.sent = 0
        self.error = None
        self._cond = threading.Condition()

    def run(self) -> None:
        try:
            self.sock.sendall(self.head)
            for start in range(0, self.pieces, BATCH):
                data = b"".join(piece(i) for i in range(start, min(start + BATCH, self.pieces)))
                self.crc = zlib.crc32(data, self.crc)
                if self.chunked:
                    # Uneven chunk sizes, so chunk edges never line up with the app's reads.
                    cut = 1000 + start % 7919
                    data = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n" % (cut, data[:cut], len(data) - cut, data[cut:])
                self.sock.sendall(data)
                with self._cond:
                    self.sent += len(data)
                    self._cond.notify_all()
            if self.chunked:
                self.sock.sendall(b"0\r\n\r\n")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        with self._cond:
            self.sent = -1 if self.error else self.sent
            self._cond.notify_all()

    def reaches(self, count: int, timeout: float) -> bool:
        """Whether ``count`` bytes get sent within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.sent < count:
                if self.sent < 0:
                    raise AssertionError(f"sending failed: {self.error!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_upload_1gib_with_bounded_memory(served, framing):
    chunked = framing == "chunked"
    # Inline (--threads 0), the body is spooled to a temporary file before the
    # app runs, so there is no app to hold; memory must stay bounded anyway.
    hold = served.threads > 0
    with served.connect() as sock:
        sender = Sender(sock, "/upload?hold=1" if hold else "/upload", PIECES, chunked)
        started = time.monotonic()
        sender.start()
        if hold:
            served.process.wait_for_line("app: entered upload hold")
            # The app reads nothing more: the server must stop reading, and
            # the client stall once the socket buffers are full.
            ran_away = sender.reaches(RUNAWAY_BYTES, HOLD_WINDOW)
            assert not ran_away, "the client sent 128 MiB while the app read nothing: no backpressure"
            served.assert_memory_bounded("upload held")
            served.release_app()
        sender.join(IO_TIMEOUT)
        assert not sender.is_alive() and sender.error is None, sender.error
        status, headers, body = read_response(sock, bytearray())
        elapsed = time.monotonic() - started
    assert status == 200, body
    assert json.loads(body) == {
        "bytes": GIB,
        "crc32": sender.crc,
        "largest_read": BLOCK_SIZE,
        "content_length": None if chunked else str(GIB),
    }
    served.assert_memory_bounded(f"1 GiB upload ({framing}) in {elapsed:.1f}s")


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_download_1gib_with_bounded_memory(served, framing):
    want = expected_crc(PIECES)
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=IO_TIMEOUT)
    try:
        started = time.monotonic()
        conn.request("GET", f"/download?bytes={GIB}&length={int(framing == 'length')}")
        response = conn.getresponse()
        assert response.status == 200
        if framing == "length":
            assert response.getheader("content-length") == str(GIB)
        else:
            assert response.getheader("transfer-encoding") == "chunked"
        # The client reads nothing more: the app must be stopped long before
        # it has produced RUNAWAY_BYTES.
        with pytest.raises(AssertionError, match="no line matching"):
            served.process.wait_for_line("app: download produced", timeout=HOLD_WINDOW)
        served.assert_memory_bounded("download held")
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        total = crc = 0
        while True:
            n = response.readinto(buffer)
            if not n:
                break
            total += n
            crc = zlib.crc32(view[:n], crc)
        view.release()
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    assert total == GIB
    assert crc == want
    served.assert_memory_bounded(f"1 GiB download ({framing}) in {elapsed:.1f}s")


def test_inline_response_stops_while_writing_is_paused_and_ends_on_disconnect():
    """--threads 0: an endless response is suspended by flow control (the
    loop stays free for other connections), and when the client goes away
    the iterable is closed."""
    from servers import connect, serve

    produced = []
    closed = threading.Event()

    class Endless:
        def __iter__(self):
            index = 0
            while True:
                produced.append(index)
                yield piece(index)
                index += 1

        def close(self):
            closed.set()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/endless":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return Endless()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, threads=0) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
            # The loop is not stuck in the endless iterable: another
            # connection is served while this one is not read.
            with connect(server) as other:
                other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(other, bytearray())[2] == b"ok"
            assert len(produced) * BLOCK_SIZE < RUNAWAY_BYTES
        assert closed.wait(10), "the response iterable was not closed after the client left"
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock, bytearray())[2] == b"ok"


class _FakeProtocol:
    def __init__(self):
        self.calls = []

    def pause_reading(self, reason):
        self.calls.append(("pause", reason))

    def resume_reading(self, reason):
        self.calls.append(("resume", reason))

    def write(self, data):
        self.calls.append(("write", data))


class _FakeCycle:
    """What StreamInput uses of its cycle. The request expects 100-continue,
    so the reader's first wait announces itself through caller.call."""

    def __init__(self):
        from types import SimpleNamespace

        self.protocol = _FakeProtocol()
        self.request = SimpleNamespace(expect_continue=True)
        self._continue_sent = False
        self._head_sent = False
        self.waiting = threading.Event()
        self.bridge = SimpleNamespace(caller=SimpleNamespace(call=self._call))

    def _call(self, fn, *args):
        fn(*args)
        self.waiting.set()  # called with the stream's lock held, just before it waits


def _reader(stream, size, out):
    thread = threading.Thread(target=lambda: out.append(stream.read(size)), daemon=True)
    thread.start()
    return thread


def test_input_pauses_once_a_waiting_read_is_satisfied():
    """A read(n) waiting for data must not keep reading open: if its thread
    is slow to be scheduled, the loop would buffer without bound (it did: 20
    MiB on a loaded machine)."""
    from fastbase.protocol import PAUSE_BODY
    from fastbase.wsgi import BODY_HIGH_WATER, StreamInput

    cycle = _FakeCycle()
    stream = StreamInput(cycle, [])
    out = []
    thread = _reader(stream, BLOCK_SIZE, out)
    assert cycle.waiting.wait(10)
    # feed() takes the lock the reader holds until it waits: this runs with
    # the reader waiting and not yet awake.
    stream.feed(b"x" * BODY_HIGH_WATER)
    assert ("pause", PAUSE_BODY) in cycle.protocol.calls
    thread.join(10)
    assert out == [b"x" * BLOCK_SIZE]


def test_input_read_all_of_a_body_larger_than_the_pause_mark():
    """read() of the whole body needs it all buffered: reading must not pause."""
    from fastbase.wsgi import BODY_HIGH_WATER, StreamInput

    cycle = _FakeCycle()
    stream = StreamInput(cycle, [])
    out = []
    thread = _reader(stream, -1, out)
    assert cycle.waiting.wait(10)
    stream.feed(b"y" * (2 * BODY_HIGH_WATER))
    stream.feed(b"z")
    stream.feed_eof()
    thread.join(10)
    assert out == [b"y" * (2 * BODY_HIGH_WATER) + b"z"]
    assert not any(call[0] == "pause" for call in cycle.protocol.calls)


@pytest.mark.parametrize("seed", range(40))
def test_input_reads_match_bytesio_whatever_the_pieces(seed):
    """The body is kept in the pieces it arrived in; every mix of read(n),
    read(), readline(n), readline() and iteration must see exactly what a
    BytesIO of the whole body gives."""
    import io
    import random

    from fastbase.wsgi import StreamInput

    rng = random.Random(seed)
    body = bytes(rng.choice(b"ab\ncd\n\n") for _ in range(rng.randrange(0, 3000)))
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randrange(0, 30)))) if len(body) > 1 else []
    pieces = [body[i:j] for i, j in zip([0, *cuts], [*cuts, len(body)])]
    first = rng.randrange(0, len(pieces) + 1)
    stream = StreamInput(_FakeCycle(), pieces[:first])
    for arrived in pieces[first:]:
        stream.feed(arrived)
    stream.feed_eof()
    expected = io.BytesIO(body)
    for _ in range(60):
        op = rng.randrange(5)
        n = rng.choice([-1, 0, 1, 2, 7, 100, 1000, None])
        if op == 0:
            assert stream.read(n) == expected.read(n)
        elif op == 1:
            assert stream.readline(n) == expected.readline(n)
        elif op == 2:
            assert stream.readline() == expected.readline()
        elif op == 3:
            assert stream.read() == expected.read()
        else:
            assert next(stream, None) == next(expected, None)
    assert stream.read() == expected.read()
    assert stream.read(5) == b"" and stream.readline() == b""
