"""WSGI apps the tests serve from a ``python -m fastbase`` subprocess.

The apps announce on stderr when a request reaches them (``app: entered
...``), so a test can wait for that line instead of guessing with a sleep.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import zlib
from urllib.parse import parse_qs

#: Bodies move in 64 KB pieces; piece ``i`` of a body starts with ``i`` as 8
#: big-endian bytes, so a lost, repeated or reordered piece changes the CRC.
BLOCK_SIZE = 64 * 1024
_FILL = bytes(range(256)) * (BLOCK_SIZE // 256)
#: A download announces (on stderr) when it has produced this much; a client
#: that stops reading must never see it, because flow control stops the app.
RUNAWAY_BYTES = 128 * 1024 * 1024


def piece(index: int) -> bytes:
    """Piece ``index``: a new bytes object each call, like an app that
    produces its data (a transport may keep a reference to a reused one)."""
    return index.to_bytes(8, "big") + _FILL[8:]


def _announce(what: str) -> None:
    print(f"app: entered {what}", file=sys.stderr, flush=True)


def _reply(start_response, status: str, body: bytes, content_type: str = "text/plain"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def hello(environ, start_response):
    return _reply(start_response, "200 OK", b"hello")


def environ_json(environ, start_response):
    data = {key: value for key, value in environ.items() if isinstance(value, str)}
    return _reply(start_response, "200 OK", json.dumps(data).encode(), "application/json")


def upload(environ, start_response):
    """Reads the body in 64 KB pieces; answers its length and CRC-32. With
    ``?hold=1`` it stops after the first piece until a line arrives on the
    server's stdin, while the client goes on sending."""
    stream = environ["wsgi.input"]
    hold = parse_qs(environ["QUERY_STRING"]).get("hold") == ["1"]
    crc = 0
    total = 0
    largest = 0
    while True:
        data = stream.read(BLOCK_SIZE)
        if not data:
            break
        largest = max(largest, len(data))
        total += len(data)
        crc = zlib.crc32(data, crc)
        if hold:
            hold = False
            _announce("upload hold")
            sys.stdin.buffer.readline()
    body = json.dumps({"bytes": total, "crc32": crc, "largest_read": largest, "content_length": environ.get("CONTENT_LENGTH")}).encode()
    return _reply(start_response, "200 OK", body, "application/json")


def download(environ, start_response):
    """Yields ``?bytes=N`` (a multiple of 64 KB) in 64 KB pieces; with
    ``&length=1`` it declares a Content-Length, else the body is chunked."""
    query = parse_qs(environ["QUERY_STRING"])
    size = int(query["bytes"][0])
    assert size % BLOCK_SIZE == 0
    headers = [("Content-Type", "application/octet-stream")]
    if query.get("length") == ["1"]:
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)
    return _pieces(size // BLOCK_SIZE)


def _pieces(count: int):
    runaway = RUNAWAY_BYTES // BLOCK_SIZE
    for index in range(count):
        if index == runaway:
            print(f"app: download produced {RUNAWAY_BYTES} bytes", file=sys.stderr, flush=True)
        yield piece(index)


def block(environ, start_response):
    """Blocks until the test writes a line to the server's stdin."""
    _announce(environ["PATH_INFO"])
    line = sys.stdin.buffer.readline()
    return _reply(start_response, "200 OK", b"released by " + line.strip())


_never = threading.Event()


def hang(environ, start_response):
    """Never answers (the server's graceful-shutdown timeout has to end it)."""
    _announce(environ["PATH_INFO"])
    _never.wait()
    return _reply(start_response, "200 OK", b"unreachable")


def app(environ, start_response):
    """Routes by the first path segment."""
    route = environ["PATH_INFO"].strip("/").split("/")[0]
    handler = ROUTES.get(route)
    if handler is None:
        return _reply(start_response, "404 Not Found", b"no route " + route.encode())
    return handler(environ, start_response)


ROUTES = {
    "": hello,
    "hello": hello,
    "environ": environ_json,
    "upload": upload,
    "download": download,
    "block": block,
    "hang": hang,
}

#: Not an application: ``fastbase proc_apps:NOT_CALLABLE`` must refuse it.
NOT_CALLABLE = {"this": "is a dict"}


def create_app():
    """For ``--factory``: returns the app, tagging its responses."""

    def factory_app(environ, start_response):
        return _reply(start_response, "200 OK", b"made by the factory")

    return factory_app


def two_piece_list(environ, start_response):
    """A list body of two pieces with its Content-Length (not the one-write
    fast path)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"hello", b"world"]


def length_iterator(environ, start_response):
    """An iterator body with a Content-Length, as Django's responses are."""
    body = environ.get("QUERY_STRING", "").encode() or b"-"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return iter([body])


def huge_body(environ, start_response):
    """A 1 GiB Content-Length a client never reads to the end: flow control
    holds the app back, so the client leaves mid-body for certain."""
    count = 16384
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(count * BLOCK_SIZE))])
    return (piece(i) for i in range(count))


async def loop_kind(scope, receive, send):
    """ASGI: answers with the class of the event loop it runs on."""
    if scope["type"] != "http":
        return
    loop = asyncio.get_running_loop()
    body = f"{type(loop).__module__}.{type(loop).__qualname__}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def gc_frozen(environ, start_response):
    """How many objects the server froze out of the cyclic GC's reach
    (fastbase's --gc-freeze default)."""
    import gc

    return _reply(start_response, "200 OK", str(gc.get_freeze_count()).encode())
