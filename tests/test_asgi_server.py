"""The ASGI bridge over real sockets: scope, receive, send, extensions, lifespan."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

from fastbase.asgi import LifespanError
from fastbase.config import Config
from fastbase.server import Server
from servers import connect, exchange_after_app_errors, read_response, recv_until_closed
from servers import serve as _serve


def serve(app, **options):
    # These apps speak only HTTP; lifespan has tests of its own below.
    options.setdefault("lifespan", "off")
    return _serve(app, **options)


async def hello(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def echo(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message["body"]
        if not message["more_body"]:
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_interface_auto_detects_asgi():
    with serve(hello) as server:
        assert server.interface == "asgi"
        response = httpx.get(f"http://127.0.0.1:{server.port}/")
        assert response.status_code == 200
        assert response.text == "Hello, world!"
        # A single-message body gets a Content-Length, not chunked framing.
        assert response.headers["content-length"] == "13"
        assert "transfer-encoding" not in response.headers


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_a_one_message_response_is_framed_and_logged_whole(caplog, version):
    """What the one-write fast path sends, and what its original (_head +
    _send_body + _complete) sends under --slow-path: head, Server header,
    Content-Length, keep-alive as the request asked, the size logged."""
    with caplog.at_level(logging.INFO, logger="fastbase.access"):
        with serve(hello, access_log=True, log_level="info") as server, connect(server) as sock:
            sock.sendall(f"GET /one HTTP/{version}\r\nHost: x\r\n\r\n".encode())
            if version == "1.0":
                data = recv_until_closed(sock)  # HTTP/1.0 without keep-alive: closed after it
                assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nHello, world!"), data
                head = data.split(b"\r\n\r\n")[0].decode().lower()
                assert "content-length: 13" in head and "transfer-encoding" not in head
                assert "server: fastbase" in head and "connection: close" in head
            else:
                status, headers, body = read_response(sock, bytearray())
                assert (status, body) == (200, b"Hello, world!")
                assert headers["content-length"] == ["13"] and headers["server"] == ["fastbase"]
                assert "transfer-encoding" not in headers and "connection" not in headers
                sock.sendall(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection stays open
                assert read_response(sock, bytearray())[2] == b"Hello, world!"
    lines = [r.getMessage() for r in caplog.records if r.name == "fastbase.access"]
    assert any(f'"GET /one HTTP/{version}" 200 13' in line for line in lines), lines


def test_scope():
    scopes = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            scopes.append(scope)
        await hello(scope, receive, send)

    with serve(app, root_path="/mnt") as server, connect(server) as sock:
        sock.sendall(
            b"GET /caf%C3%A9/x?a=1&b=%20 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
            b"GET /mnt/y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        )
        buffered = bytearray()
        read_response(sock, buffered)
        read_response(sock, buffered)
        local = sock.getsockname()
    first, second = scopes
    assert first["type"] == "http"
    assert first["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert first["http_version"] == "1.1"
    assert first["method"] == "GET"
    assert first["scheme"] == "http"
    assert first["root_path"] == "/mnt"
    assert first["path"] == "/mnt/café/x"  # the proxy stripped /mnt: it is put back
    assert first["raw_path"] == b"/mnt/caf%C3%A9/x"
    assert first["query_string"] == b"a=1&b=%20"
    assert list(first["headers"]) == [(b"host", b"example.com"), (b"x-a", b"1"), (b"x-a", b"2")]
    assert first["client"] == (local[0], local[1])
    assert first["server"] == ("127.0.0.1", server.port)
    assert set(first["extensions"]) >= {"http.response.trailers", "http.response.pathsend", "http.response.early_hint"}
    assert second["http_version"] == "1.0"
    assert second["path"] == "/mnt/y"  # already under the mount point


def test_request_body_streams_with_more_body():
    pieces = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            pieces.append(message)
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"5\r\nhello\r\n")
        sock.sendall(b"6\r\n world\r\n0\r\n\r\n")
        assert read_response(sock, bytearray())[0] == 204
    assert b"".join(p["body"] for p in pieces) == b"hello world"
    assert all(p["type"] == "http.request" for p in pieces)
    assert pieces[-1]["more_body"] is False


def test_large_upload_and_download_with_backpressure():
    size = 20 * 1024 * 1024

    async def app(scope, receive, send):
        total = 0
        while True:
            message = await receive()
            total += len(message["body"])
            await asyncio.sleep(0)
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-received", str(total).encode())]})
        chunk = b"z" * 65536
        for _ in range(size // len(chunk)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve(app) as server, httpx.Client(timeout=60) as client:
        with client.stream("POST", f"http://127.0.0.1:{server.port}/", content=b"a" * size) as response:
            assert response.headers["x-received"] == str(size)
            assert response.headers["transfer-encoding"] == "chunked"
            assert sum(len(c) for c in response.iter_bytes()) == size


def test_expect_continue_sent_on_first_receive():
    with serve(echo) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        buffered = bytearray()
        assert read_response(sock, buffered)[0] == 100
        sock.sendall(b"data")
        assert read_response(sock, buffered)[1:][1] == b"data"


def test_disconnect_after_response_and_on_client_close():
    events = []
    gone = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/wait":
            await receive()  # the (empty) body
            message = await receive()  # blocks until the client leaves
            events.append(message["type"])
            gone.set()
            return
        await hello(scope, receive, send)
        events.append((await receive())["type"])  # body
        events.append((await receive())["type"])  # response complete

    with serve(app) as server:
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(sock, bytearray())
        with connect(server) as sock:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        assert gone.wait(10)
    assert events == ["http.request", "http.disconnect", "http.disconnect"]


def test_streaming_response_and_disconnect_mid_stream(caplog):
    stopped = threading.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(100000):
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await asyncio.sleep(0)
        except OSError:
            stopped.set()
            raise

    with caplog.at_level(logging.INFO, logger="fastbase.error"):
        with serve(app, log_level="info") as server:
            with connect(server) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(10)
            assert stopped.wait(10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("disconnected" in r.getMessage() for r in caplog.records)


def test_head_sends_no_body():
    with serve(hello) as server, connect(server) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        status, headers, _ = read_response(sock, buffered, head=True)
        assert headers["content-length"] == ["13"]
        assert read_response(sock, buffered)[2] == b"Hello, world!"


@pytest.mark.parametrize(
    "messages, expected",
    [
        pytest.param([{"type": "http.response.body", "body": b"x"}], "expected ASGI message 'http.response.start'", id="body-first"),
        pytest.param(
            [{"type": "http.response.start", "status": 200}, {"type": "http.response.start", "status": 200}],
            "expected ASGI message 'http.response.body'",
            id="start-twice",
        ),
        pytest.param([{"type": "http.response.start", "status": "200"}], "integer 'status'", id="status-str"),
        pytest.param(
            [{"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb")]}, {"type": "http.response.body"}],
            "invalid ASGI response",
            id="header-crlf",
        ),
        pytest.param(
            [{"type": "http.response.start", "status": 200}, {"type": "http.response.body", "body": "text"}], "must be bytes", id="body-str"
        ),
        pytest.param([{"no": "type"}], "'type' key", id="no-type"),
    ],
)
def test_wrong_messages_raise_clear_runtime_error_and_500(messages, expected, caplog):
    raised = []

    async def app(scope, receive, send):
        try:
            for message in messages:
                await send(message)
        except RuntimeError as exc:
            raised.append(str(exc))
            raise

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_until_closed(sock)
    assert expected in raised[0]
    assert data.startswith(b"HTTP/1.1 500 ")


def test_send_after_complete_is_runtime_error():
    raised = []

    async def app(scope, receive, send):
        await hello(scope, receive, send)
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except RuntimeError as exc:
            raised.append(str(exc))

    with serve(app) as server:
        assert httpx.get(f"http://127.0.0.1:{server.port}/").text == "Hello, world!"
    assert "after the response was complete" in raised[0]


def test_app_returning_without_response_is_500(caplog):
    async def app(scope, receive, send):
        return None

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_until_closed(sock)
    # Nothing was sent before the failure: each is a 500 on the same connection.
    assert data.count(b"HTTP/1.1 500 ") == 2
    assert any("returned without sending a response" in r.getMessage() for r in caplog.records)


def test_exception_before_start_is_500_and_after_is_abort(caplog):
    async def app(scope, receive, send):
        if scope["path"] == "/after":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    with serve(app) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /before HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert recv_until_closed(sock).startswith(b"HTTP/1.1 500 Internal Server Error")
        with connect(server) as sock:
            sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = recv_until_closed(sock)
            except ConnectionResetError:
                data = b""
            assert not data.endswith(b"0\r\n\r\n")
        # The server goes on serving.
        assert httpx.get(f"http://127.0.0.1:{server.port}/before").status_code == 500
    assert sum("Exception in ASGI application" in r.getMessage() for r in caplog.records) == 3


def test_pathsend_trailers_and_early_hints(tmp_path):
    path = tmp_path / "file.bin"
    payload = b"0123456789" * 100_000
    path.write_bytes(payload)

    async def app(scope, receive, send):
        if scope["path"] == "/file":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": str(path)})
        elif scope["path"] == "/trailers":
            await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
            await send({"type": "http.response.body", "body": b"data"})
            await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
        else:
            await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
            await hello(scope, receive, send)

    with serve(app) as server:
        response = httpx.get(f"http://127.0.0.1:{server.port}/file")
        assert response.content == payload
        assert response.headers["content-length"] == str(len(payload))
        with connect(server) as sock:
            sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
            sock.sendall(b"GET /hint HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"Hello, world!"):
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
    assert b"transfer-encoding: chunked" in data
    assert b"4\r\ndata\r\n0\r\nx-checksum: abc\r\n\r\n" in data
    hint = data.index(b"HTTP/1.1 103 Early Hints\r\n")
    assert b"link: </style.css>; rel=preload; as=style\r\n" in data[hint:]
    assert data.index(b"HTTP/1.1 200 OK", hint) > hint


def lifespan_app(fail=False):
    log = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                log.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
                        return
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["db"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app, log


def test_lifespan_state_and_shutdown():
    app, log = lifespan_app()
    with serve(app, lifespan="auto") as server:
        assert log == ["lifespan.startup"]
        assert httpx.get(f"http://127.0.0.1:{server.port}/").text == "connected"
    assert log == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_failed_startup_stops_the_server():
    app, _ = lifespan_app(fail=True)
    server = Server(Config(app=app, port=0, app_dir=None, log_level="critical"))
    with pytest.raises(LifespanError, match="database unreachable"):
        server.start_in_thread()


def test_lifespan_auto_tolerates_apps_without_it(caplog):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            raise ValueError("only http")
        await hello(scope, receive, send)

    with caplog.at_level(logging.INFO, logger="fastbase.error"):
        with serve(app, lifespan="auto", log_level="info") as server:
            assert httpx.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    assert any("lifespan' is not supported" in r.getMessage() for r in caplog.records)
    with pytest.raises(LifespanError, match="only http"):
        Server(Config(app=app, port=0, app_dir=None, lifespan="on", log_level="critical")).start_in_thread()
    with serve(app, lifespan="off") as server:
        assert httpx.get(f"http://127.0.0.1:{server.port}/").status_code == 200


@pytest.mark.parametrize("first_delay", [0.0, 0.02])
def test_pipelined_responses_are_written_together(first_delay):
    """Sixteen pipelined requests: their responses leave in one write, in
    order, also when the first takes longer than the cork's time limit (the
    limit counts from the first response kept, not from the batch's arrival)."""
    from fastbase.asgi import ASGIBridge
    from fastbase.protocol import HttpProtocol, ServerState

    class Transport:
        def __init__(self):
            self.writes = []

        def write(self, data):
            self.writes.append([data])

        def writelines(self, chunks):
            self.writes.append(list(chunks))

        def get_extra_info(self, name, default=None):
            return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

        def pause_reading(self):
            pass

        def resume_reading(self):
            pass

    async def app(scope, receive, send):
        if scope["path"] == "/0":
            await asyncio.sleep(first_delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    async def main():
        loop = asyncio.get_running_loop()
        config = Config(app=None, lifespan="off", app_dir=None)
        state = ServerState(config, ASGIBridge(app, loop, config), loop)
        protocol = HttpProtocol(state)
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(16)))
        for _ in range(200):
            if transport.writes:
                break
            await asyncio.sleep(first_delay / 10)
        await asyncio.sleep(0.01)  # anything written separately shows up
        return transport.writes

    writes = asyncio.run(main())
    assert len(writes) == 1
    bodies = [chunk.rsplit(b"\r\n\r\n", 1)[1] for chunk in writes[0]]
    assert bodies == [b"/%d" % i for i in range(16)]


def test_a_corked_response_is_not_held_behind_a_slow_pipelined_request():
    """The first response goes out while the second request is still being
    served (the client may need it to finish the second one)."""
    first_seen = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/slow":
            while not first_seen.is_set():
                await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        assert read_response(sock, buffered)[2] == b"/fast"
        first_seen.set()
        assert read_response(sock, buffered)[2] == b"/slow"


def test_pipelined_gets_run_concurrently_and_answer_in_order():
    """RFC 9112 9.3.2: pipelined safe requests may be served in parallel. The
    first request's app finishes only once the third one's app has run (it
    would wait forever if they ran one after the other), yet the responses
    keep the requests' order."""
    third_ran = asyncio.Event()
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        if scope["path"] == "/first":
            await asyncio.wait_for(third_ran.wait(), 5)
        if scope["path"] == "/third":
            third_ran.set()
        body = scope["path"].encode() * (30000 if scope["path"] == "/second" else 1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        # /second streams more than the connection keeps for a request
        # waiting its turn: it must wait for the socket, not pile up.
        for offset in range(0, len(body), 50000):
            await send({"type": "http.response.body", "body": body[offset : offset + 50000], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name for name in (b"first", b"second", b"third")))
        buffered = bytearray()
        assert read_response(sock, buffered)[2] == b"/first"
        assert read_response(sock, buffered)[2] == b"/second" * 30000
        assert read_response(sock, buffered)[2] == b"/third"
    assert calls == ["/first", "/second", "/third"]


def test_unsafe_or_closing_pipelined_requests_wait_their_turn():
    """A POST, a request with a body, or one that closes the connection
    starts only after the response before it is complete."""
    events = []

    async def app(scope, receive, send):
        events.append(("start", scope["method"], scope["path"]))
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await asyncio.sleep(0.05)  # long enough for a started-early app to run
        events.append(("end", scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body or scope["path"].encode()})

    requests = (
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nxy"
        b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with serve(app) as server, connect(server) as sock:
        sock.sendall(requests)
        buffered = bytearray()
        assert [read_response(sock, buffered)[2] for _ in range(4)] == [b"/a", b"abc", b"xy", b"/d"]
    starts_and_ends = [(kind, path) for kind, _, path in events]
    assert starts_and_ends == [
        ("start", "/a"),
        ("end", "/a"),
        ("start", "/b"),
        ("end", "/b"),
        ("start", "/c"),
        ("end", "/c"),
        ("start", "/d"),
        ("end", "/d"),
    ]


def test_pipelined_gets_behind_a_closing_response_are_dropped():
    """The first response closes the connection: the requests started early
    behind it ran, but none of their bytes is sent."""
    seen = []
    both_ran = asyncio.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/first":
            await asyncio.wait_for(both_ran.wait(), 5)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"close")]})
            await send({"type": "http.response.body", "body": b"first"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"early"})
        seen.append(scope["path"])
        if len(seen) == 2:
            both_ran.set()

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name for name in (b"first", b"2", b"3")))
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nfirst")
    assert b"early" not in data
    assert sorted(seen) == ["/2", "/3"]


def test_a_pipelined_get_failing_early_is_a_500_in_its_place(caplog):
    async def app(scope, receive, send):
        if scope["path"] == "/boom":
            raise ValueError("boom")
        if scope["path"] == "/first":
            await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with caplog.at_level(logging.ERROR, logger="fastbase.error"), serve(app) as server, connect(server) as sock:
        sock.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name for name in (b"first", b"boom", b"last")))
        buffered = bytearray()
        first = read_response(sock, buffered)
        boom = read_response(sock, buffered)
        last = read_response(sock, buffered)
        assert (first[0], first[2]) == (200, b"/first")
        assert boom[0] == 500 and "connection" not in boom[1]
        # The 500 came before anything was sent: the connection goes on.
        assert (last[0], last[2]) == (200, b"/last")
    assert "boom" in caplog.text


def _protocol_of(server, sock):
    """The server's connection object for the client socket ``sock`` (None
    once it has closed)."""
    name = sock.getsockname()
    for conn in list(server.state.connections):
        if conn.client == name:
            return conn
    return None


def _poll(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_pipelined_get_over_the_connection_limit_waits_for_the_response_in_progress():
    """--limit-concurrency answers a request 503 and closes; for a pipelined
    GET that arrives while the response before it is in progress, that 503
    comes after that response, not instead of it."""
    release = asyncio.Event()
    first_started = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/first":
            first_started.set()
            await asyncio.wait_for(release.wait(), 5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with serve(app, limit_concurrency=1) as server, connect(server) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        assert first_started.wait(5)
        with connect(server):
            _poll(lambda: len(server.state.connections) == 2)
            conn = _protocol_of(server, sock)
            sock.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
            _poll(lambda: conn._queue or conn._early or conn.closed)  # /second is parsed
            server.state.loop.call_soon_threadsafe(release.set)
            buffered = bytearray()
            first = read_response(sock, buffered)
            assert (first[0], first[2]) == (200, b"/first")
            assert read_response(sock, buffered)[0] == 503


def test_max_requests_does_not_drop_the_pipelined_get_that_reaches_it():
    """The request that reaches --max-requests switches the server to
    shutting down: started early, the response in progress would close the
    connection without it."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = Server(Config(app=app, app_dir=None, port=0, log_level="warning", lifespan="off"))
    server.max_requests = 2
    thread = server.start_in_thread()
    try:
        with connect(server) as sock:
            sock.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
            buffered = bytearray()
            assert read_response(sock, buffered)[2] == b"/1"
            second = read_response(sock, buffered)
            assert second[2] == b"/2" and second[1]["connection"] == ["close"]
    finally:
        server.stop()
        thread.join(30)
    assert not thread.is_alive()


def test_a_pipelined_get_failing_after_its_head_does_not_take_the_response_before_it():
    """An early request's app fails after its head: the connection aborts,
    but the complete response before it is still sent first."""
    failed = asyncio.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/first":
            await asyncio.wait_for(failed.wait(), 5)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        failed.set()
        raise ValueError("boom")

    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        first = read_response(sock, buffered)
        assert (first[0], first[2]) == (200, b"first")


def test_pathsend_from_a_pipelined_get_after_the_client_left(tmp_path):
    """An early request whose turn never came (the client left) and that
    then sends a file ends like any request whose client left: it does not
    wait forever for its turn."""
    path = tmp_path / "file.txt"
    path.write_bytes(b"x" * 1000)
    started = threading.Event()
    ended = threading.Event()
    outcome = []

    async def app(scope, receive, send):
        if scope["path"] == "/first":
            started.set()
            await receive()
            await receive()  # http.disconnect
            return
        await receive()
        assert (await receive())["type"] == "http.disconnect"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": str(path)})
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            ended.set()

    with serve(app) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /file HTTP/1.1\r\nHost: x\r\n\r\n")
            assert started.wait(5)
            conn = _protocol_of(server, sock)
            _poll(lambda: conn._early)  # /file started early
        assert ended.wait(5), "the early request still waits for its turn"
    assert outcome == ["ClientDisconnected"]


def _shutdown_behind_pipeline(app, names, started, release):
    """Send three pipelined GETs, wait until ``started`` holds two paths,
    begin a graceful shutdown, then set ``release`` (an asyncio.Event the app
    waits on): the responses read before the connection closes."""
    with serve(app) as server, connect(server) as sock:
        sock.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name for name in names))
        while len(started) < 2:
            time.sleep(0.005)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        while not server.state.shutting_down:
            time.sleep(0.005)
        server.state.loop.call_soon_threadsafe(release.set)
        buffered = bytearray()
        responses = [read_response(sock, buffered) for _ in names]
        assert recv_until_closed(sock) == bytes(buffered)
        stopper.join()
    return responses


def test_graceful_shutdown_answers_pipelined_gets_already_started():
    """Shutdown while the first response is pending and the GETs pipelined
    behind it have already run: all three are answered, then the connection
    closes (the last two were complete before the shutdown, so their heads
    could not announce it; closing an idle keep-alive connection is allowed)."""
    release = asyncio.Event()
    ran = []

    async def app(scope, receive, send):
        if scope["path"] == "/first":
            await asyncio.wait_for(release.wait(), 5)
        else:
            ran.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    responses = _shutdown_behind_pipeline(app, (b"first", b"2", b"3"), ran, release)
    assert [body for _, _, body in responses] == [b"/first", b"/2", b"/3"]
    assert responses[0][1].get("connection") is None  # answered as not the last


def test_graceful_shutdown_closes_after_the_last_started_pipelined_get():
    """The first and last of three pipelined GETs answer after the shutdown
    began: the first keeps the connection open for the ones behind it, the
    last says Connection: close."""
    release = asyncio.Event()
    waiting = []

    async def app(scope, receive, send):
        if scope["path"] != "/2":
            waiting.append(scope["path"])
            await asyncio.wait_for(release.wait(), 5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    responses = _shutdown_behind_pipeline(app, (b"1", b"2", b"3"), waiting, release)
    assert [body for _, _, body in responses] == [b"/1", b"/2", b"/3"]
    assert responses[0][1].get("connection") is None
    assert responses[2][1].get("connection") == ["close"]


def test_shutdown_waits_for_app_work_after_the_response():
    """An app that goes on after its response is out (Django's handler closes
    the response and sends request_finished then) finishes before the server
    stops, instead of being left pending on a closed loop."""
    finished = threading.Event()
    release = asyncio.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await release.wait()  # set once the shutdown has begun
        finished.set()

    with serve(app) as server:
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert recv_until_closed(sock).endswith(b"done")
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        while not server.state.shutting_down:
            time.sleep(0.005)
        server.state.loop.call_soon_threadsafe(release.set)
        stopper.join()
    assert finished.is_set()


def test_shutdown_cancels_app_work_that_outlives_the_graceful_period(caplog):
    cancelled = threading.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with caplog.at_level(logging.WARNING, logger="fastbase.error"):
        with serve(app, timeout_graceful_shutdown=0.2) as server, connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert recv_until_closed(sock).endswith(b"done")
    assert cancelled.is_set()
    assert "Cancelling 1 application task(s) still running" in caplog.text


def test_each_request_runs_in_its_own_named_task_and_a_task_factory_is_honoured():
    seen = []
    made = []

    def factory(loop, coro, **kwargs):
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().set_task_factory(factory)
                await send({"type": "lifespan.startup.complete"})
            message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        task = asyncio.current_task()
        seen.append((task, task.get_name()))
        await hello(scope, receive, send)

    async def plain(scope, receive, send):
        task = asyncio.current_task()
        seen.append((task, task.get_name()))
        await hello(scope, receive, send)

    with serve(plain) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        assert [client.get("/").status_code for _ in range(2)] == [200, 200]
    # Two requests on one connection: two tasks, both named for what they run.
    assert [name for _, name in seen] == ["fastbase.request"] * 2
    assert seen[0][0] is not seen[1][0]

    seen.clear()
    with serve(app, lifespan="on") as server:
        assert httpx.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    # With a task factory on the loop, the request's task comes from it.
    assert seen[0][0].get_coro() in made and seen[0][1] == "fastbase.request"


def test_a_failure_while_building_the_scope_is_a_500(monkeypatch, caplog):
    import fastbase.asgi.cycle

    def broken(base, request, state):
        raise ValueError("scope trouble")

    monkeypatch.setattr(fastbase.asgi.cycle, "http_scope", broken)
    with serve(hello, root_path="/mnt") as server, connect(server) as sock:
        sock.sendall(b"GET /mnt/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert any("scope trouble" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_an_early_started_cycle_caches_the_scope_base_on_its_connection():
    """A pipelined request started early sees the connection through a
    PendingOutput; what the bridge caches there (the scope base) is the
    connection's, for the requests after it too."""
    from fastbase.protocol import PendingOutput

    class Connection:
        bridge_cache = None
        client = ("10.0.0.1", 5000)

    connection = Connection()
    pending = PendingOutput(connection)  # type: ignore[arg-type]
    assert pending.bridge_cache is None and pending.client == ("10.0.0.1", 5000)
    pending.bridge_cache = {"base": 1}
    assert connection.bridge_cache == {"base": 1} and pending.bridge_cache is connection.bridge_cache


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_absolute_form_authority_replaces_host_in_the_scope(loop):
    """RFC 9112 3.2.2, as the WSGI bridge does it: the target's authority
    is the Host the app sees (Django's ASGIHandler trusts the header)."""
    pytest.importorskip(loop)
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    with serve(app, loop=loop) as server, connect(server) as sock:
        buffered = bytearray()
        sock.sendall(b"GET http://good.example/p HTTP/1.1\r\nHost: evil.example\r\nX-A: 1\r\n\r\n")
        assert read_response(sock, buffered)[0] == 200
        sock.sendall(b"GET /p HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        assert read_response(sock, buffered)[0] == 200
    assert seen == [[(b"host", b"good.example"), (b"x-a", b"1")], [(b"host", b"evil.example")]]


async def fails_on_boom(scope, receive, send):
    if scope["path"] == "/boom":
        raise ValueError("boom")
    await hello(scope, receive, send)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_keep_alive_survives_an_app_error_before_the_response(loop, caplog):
    """As the WSGI bridge: a 500 for an exception before anything was sent
    keeps the connection when the whole request was in."""
    pytest.importorskip(loop)
    with serve(fails_on_boom, loop=loop) as server, connect(server) as sock:
        exchange_after_app_errors(sock)
    assert sum("Exception in ASGI application" in r.getMessage() for r in caplog.records) == 3


def test_app_error_with_the_body_still_arriving_closes(caplog):
    with serve(fails_on_boom) as server, connect(server) as sock:
        sock.sendall(b"POST /boom HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"\r\nconnection: close\r\n" in data.lower()
    assert data.count(b"HTTP/1.1") == 1


def test_no_server_header_covers_the_servers_own_answers():
    async def app(scope, receive, send):
        if scope["path"] == "/fail":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    seen = []
    with serve(app, server_header=False) as server:
        for request in (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        ):
            with connect(server) as sock:
                sock.sendall(request)
                status, headers, _ = read_response(sock, bytearray())
                seen.append(status)
                assert "server" not in headers, (request, headers)
    assert seen == [200, 500, 400]
