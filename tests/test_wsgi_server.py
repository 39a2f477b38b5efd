"""The WSGI bridge and transport over real sockets."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import wsgiref.validate

import httpx
import pytest

from servers import connect, exchange_after_app_errors, read_response, recv_until_closed, serve
from subprocess_server import loop_params


def hello(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


class Recorder:
    """A WSGI app that records each environ it was called with."""

    def __init__(self, app=hello):
        self.app = app
        self.environs = []

    def __call__(self, environ, start_response):
        self.environs.append(environ)
        return self.app(environ, start_response)


@pytest.fixture(params=[8, 0], ids=["threads", "inline"])
def threads(request):
    return request.param


def test_hello_with_http_client(threads):
    with serve(wsgiref.validate.validator(hello), threads=threads) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(3):  # keep-alive: one connection, three requests
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == b"Hello, world!"
            assert response.getheader("content-length") == "13"
            assert response.getheader("server") == "fastbase"
            assert response.getheader("date").endswith(" GMT")
            assert response.getheader("connection") is None
        conn.close()


def test_pipelined_requests_answered_in_order(threads):
    def app(environ, start_response):
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    with serve(app, threads=threads) as server, connect(server) as sock:
        requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
        sock.sendall(requests)
        buffered = bytearray()
        bodies = [read_response(sock, buffered)[2] for _ in range(20)]
        assert bodies == [b"/%d" % i for i in range(20)]


def test_connection_close_is_honoured(threads):
    with serve(hello, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(sock)
        assert data.count(b"HTTP/1.1 200") == 1
        assert b"\r\nconnection: close\r\n" in data.lower()


def test_http10_keep_alive_only_when_asked(threads):
    with serve(hello, threads=threads) as server:
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = recv_until_closed(sock)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"connection: close" in data.lower()
        with connect(server) as sock:
            buffered = bytearray()
            for _ in range(2):
                sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                status, headers, body = read_response(sock, buffered)
                assert status == 200 and body == b"Hello, world!"
                assert headers["connection"] == ["keep-alive"]


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, id="cl-and-te"),
        pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, id="uri-too-long"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, id="field-too-long"),
        pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, id="http2"),
        pytest.param(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, id="te-gzip"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="no-host"),
        pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", 400, id="bare-lf"),
    ],
)
def test_malformed_requests_get_status_and_close(threads, request_bytes, status):
    recorder = Recorder()
    with serve(recorder, threads=threads) as server, connect(server) as sock:
        sock.sendall(request_bytes)
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert data.lower().count(b"connection: close") == 1
    assert recorder.environs == []


def test_error_after_good_pipelined_request(threads):
    """The good request is answered, then the error, then the connection
    closes; nothing after the faulty bytes reaches the app."""
    recorder = Recorder()
    with serve(recorder, threads=threads) as server, connect(server) as sock:
        sock.sendall(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.count(b"HTTP/1.1 400 Bad Request\r\n") == 1
    assert data.index(b"HTTP/1.1 400") > data.index(b"Hello, world!")
    assert [e["PATH_INFO"] for e in recorder.environs] == ["/one"]


def test_post_bodies_content_length_and_chunked(threads):
    with serve(echo, threads=threads) as server:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client() as client:
            assert client.post(base + "/", content=b"x" * 100_000).content == b"x" * 100_000

            def gen():
                for i in range(50):
                    yield b"%05d" % i * 1000

            response = client.post(base + "/", content=gen())
            assert response.content == b"".join(b"%05d" % i * 1000 for i in range(50))


def test_chunked_body_gets_content_length_when_app_needs_it():
    seen = {}

    def app(environ, start_response):
        seen["length"] = environ.get("CONTENT_LENGTH")
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("204 No Content", [])
        return []

    with serve(app) as server:
        server.bridge.needs_content_length = True
        with connect(server) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            sock.sendall(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
            status, headers, body = read_response(sock, bytearray())
    assert status == 204
    assert seen == {"length": "11", "body": b"hello world"}


def test_expect_100_continue_sent_when_app_reads(threads):
    with serve(echo, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        buffered = bytearray()
        status, _, _ = read_response(sock, buffered)
        assert status == 100
        sock.sendall(b"hello")
        status, _, body = read_response(sock, buffered)
        assert (status, body) == (200, b"hello")


def test_expect_100_continue_not_sent_when_app_does_not_read():
    with serve(hello) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        data = recv_until_closed(sock)
    # The final response comes without a 100, and since the body was never
    # requested the connection closes instead of waiting for it.
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in data


def streaming(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(5):
        yield b"part %d\n" % i


def test_streaming_response_chunked_on_11_and_close_delimited_on_10(threads):
    with serve(streaming, threads=threads) as server:
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(sock, bytearray())
            assert headers["transfer-encoding"] == ["chunked"]
            assert body == b"".join(b"part %d\n" % i for i in range(5))
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = recv_until_closed(sock)
            head, _, body = data.partition(b"\r\n\r\n")
            assert b"transfer-encoding" not in head.lower()
            assert body == b"".join(b"part %d\n" % i for i in range(5))


def test_head_sends_no_body(threads):
    with serve(hello, threads=threads) as server, connect(server) as sock:
        buffered = bytearray()
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock, buffered, head=True)
        assert headers["content-length"] == ["13"]
        status, headers, body = read_response(sock, buffered)
        assert body == b"Hello, world!"  # the HEAD response carried no body bytes


def test_app_exception_before_headers_is_500(threads, caplog):
    def broken(environ, start_response):
        raise ValueError("boom")

    with serve(broken, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert any("Exception in WSGI application" in r.message and r.exc_info for r in caplog.records)


def fails_on_boom(environ, start_response):
    """Raises for /boom before starting a response; the body it never read
    is still on its way or already in for POSTs."""
    if environ["PATH_INFO"] == "/boom":
        raise ValueError("boom")
    return hello(environ, start_response)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_keep_alive_survives_an_app_error_before_the_response(threads, loop, caplog):
    """A client with a keep-alive connection (a browser, requests.Session)
    sends its next request on it after a 500: the whole request was in and
    nothing was sent, so the connection is still in step."""
    pytest.importorskip(loop)
    with serve(fails_on_boom, threads=threads, loop=loop) as server, connect(server) as sock:
        exchange_after_app_errors(sock)
    assert sum("Exception in WSGI application" in r.getMessage() for r in caplog.records) == 3


def test_app_error_with_the_body_still_arriving_closes(caplog):
    """Part of the body is still to come: the connection is out of step
    and closes after the 500. (Threaded: inline, the app runs only once
    the whole body is in.)"""
    with serve(fails_on_boom, threads=8) as server, connect(server) as sock:
        sock.sendall(b"POST /boom HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"\r\nconnection: close\r\n" in data.lower()
    assert data.count(b"HTTP/1.1") == 1


@pytest.mark.parametrize("status", ["200", "2OO OK", "200-OK", "200 \u00f6k", b"200 OK", 200])
def test_malformed_status_is_a_500_every_time(threads, status, caplog):
    def app(environ, start_response):
        start_response(status, [])
        return [b"never sent"]

    with serve(app, threads=threads) as server:
        for _ in range(2):  # the second call must not find it validated
            with connect(server) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert recv_until_closed(sock).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert sum("invalid WSGI status" in r.getMessage() or "invalid WSGI status" in str(r.exc_info) for r in caplog.records) == 2


def test_status_reason_passes_through(threads):
    class Status(str):
        pass

    statuses = ["299 Custom Reason", Status("299 Custom Reason"), "404 Not Here", "299 Custom Reason"]

    def app(environ, start_response):
        start_response(statuses[int(environ["PATH_INFO"][1:])], [("Content-Length", "0")])
        return [b""]

    with serve(app, threads=threads) as server:
        for i, line in enumerate([b"299 Custom Reason", b"299 Custom Reason", b"404 Not Here", b"299 Custom Reason"]):
            with connect(server) as sock:
                sock.sendall(b"GET /%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
                assert recv_until_closed(sock).startswith(b"HTTP/1.1 " + line + b"\r\n")


def test_app_exception_after_headers_aborts(threads):
    closed = threading.Event()

    class Body:
        def __iter__(self):
            yield b"first"
            raise RuntimeError("mid-body failure")

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    with serve(app, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = recv_until_closed(sock)
        except ConnectionResetError:
            data = b""
    # The chunked body never gets its terminating chunk: the client sees the failure.
    assert not data.endswith(b"0\r\n\r\n")
    assert closed.is_set()


def test_hop_by_hop_headers_from_app(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Connection", "close"), ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked")])
        return [b"abc"]

    with serve(app, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"keep-alive" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"abc"


def test_write_callable_and_close_called(threads):
    closed = threading.Event()

    class Result(list):
        def close(self):
            closed.set()

    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", "10")])
        write(b"01234")
        return Result([b"56789"])

    with serve(app, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, bytearray())[2] == b"0123456789"
    assert closed.is_set()


def test_environ(threads):
    recorder = Recorder()
    with serve(recorder, threads=threads, root_path="/mnt") as server, connect(server) as sock:
        sock.sendall(
            b"GET /mnt/caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\n"
            b"X-Multi: a\r\nX-Multi: b\r\nX_Spoof: 1\r\nCookie: a=1\r\nCookie: b=2\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"
        )
        read_response(sock, bytearray())
        port = sock.getsockname()[1]
    environ = recorder.environs[0]
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == "/mnt"
    assert environ["PATH_INFO"] == "/café/a/b".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["RAW_URI"] == "/mnt/caf%C3%A9/a%2Fb?x=1&y=%20"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(server.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == str(port)
    assert environ["HTTP_HOST"] == "example.com:8080"
    assert environ["HTTP_X_MULTI"] == "a,b"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SPOOF" not in environ
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.multithread"] is (threads > 0)
    assert environ["wsgi.input_terminated"] is True


def test_absolute_form_host_wins(threads):
    recorder = Recorder()
    with serve(recorder, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET http://real.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
        read_response(sock, bytearray())
    environ = recorder.environs[0]
    assert (environ["HTTP_HOST"], environ["PATH_INFO"], environ["QUERY_STRING"]) == ("real.example", "/p", "q")


def test_input_stream_methods_on_streamed_body():
    seen = {}

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        seen["first"] = stream.readline()
        seen["limited"] = stream.readline(3)
        seen["rest"] = stream.readlines()
        start_response("200 OK", [("Content-Length", "0")])
        return []

    with serve(app) as server, connect(server) as sock:
        body = b"line one\nline two\nline three\nend"
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 4):  # dribble the body so it streams
            sock.sendall(body[i : i + 4])
        assert read_response(sock, bytearray())[0] == 200
    assert seen == {"first": b"line one\n", "limited": b"lin", "rest": [b"e two\n", b"line three\n", b"end"]}


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="no-body"),
        pytest.param(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", id="content-length-0"),
        pytest.param(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", id="chunked-empty"),
    ],
)
def test_input_stream_of_a_bodiless_request(threads, request_bytes):
    """Every reading method of wsgi.input gives an empty body, and what an app
    does to the stream (reading, closing) does not reach the next request."""
    seen = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        with stream as entered:
            seen.append(
                (
                    entered.read(),
                    stream.read(10),
                    stream.read(None),
                    stream.readline(),
                    stream.readline(5),
                    stream.readlines(),
                    list(stream),
                    stream.readable(),
                    stream.seek(0),
                    stream.tell(),
                    stream.closed,
                )
            )
        stream.close()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, threads=threads) as server, connect(server) as sock:
        buffered = bytearray()
        for _ in range(3):
            sock.sendall(request_bytes)
            assert read_response(sock, buffered)[:3:2] == (200, b"ok")
        # A request with a body on the same connection still reads it.
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde")
        assert read_response(sock, buffered)[0] == 200
    empty = (b"", b"", b"", b"", b"", [], [], True, 0, 0, False)
    assert seen[:3] == [empty] * 3
    assert seen[3][0] == b"abcde"


def test_limits_from_config():
    with serve(echo, limit_request_body=10) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890")
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 413 ")
    with serve(echo, limit_request_fields=3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 431 ")


def test_limit_concurrency_answers_503():
    with serve(hello, limit_concurrency=1) as server, connect(server) as first:
        first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(first, bytearray())[0] == 200
        with connect(server) as second:
            second.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert recv_until_closed(second).startswith(b"HTTP/1.1 503 ")


def test_slowloris_gets_408():
    with serve(hello, timeout_request_header=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never completes
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_idle_keep_alive_connection_is_closed():
    with serve(hello, timeout_keep_alive=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        assert read_response(sock, buffered)[0] == 200
        assert sock.recv(100) == b""  # the server closes it, no second response


def test_file_wrapper(tmp_path, threads):
    path = tmp_path / "data.bin"
    payload = bytes(range(256)) * 20_000  # ~5 MB
    path.write_bytes(payload)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    with serve(app, threads=threads) as server:
        response = httpx.get(f"http://127.0.0.1:{server.port}/", timeout=30)
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(payload))
        assert response.content == payload


def test_access_log_escapes_control_characters(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="fastbase.access"):
        with serve(hello, access_log=True, log_level="info") as server, connect(server) as sock:
            sock.sendall(b"GET /a%0d%0a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_response(sock, bytearray())
    assert status == 400  # DEL is refused in a request target
    with caplog.at_level(logging.INFO, logger="fastbase.access"):
        with serve(hello, access_log=True, log_level="info") as server, connect(server) as sock:
            sock.sendall(b"GET /x?\xff HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(sock, bytearray())
    lines = [r.getMessage() for r in caplog.records if r.name == "fastbase.access"]
    assert any('"GET /x?\xff HTTP/1.1" 200 13' in line for line in lines), lines
    assert any('"-" 400' in line for line in lines), lines


def test_escape_changes_only_c0_controls_and_del():
    """Every code point: C0 controls and DEL become \\xNN, all else is kept
    (printable text takes a shortcut; C1 controls and other non-printables
    must come out as they went in)."""
    from fastbase.logs import escape

    changed = {c: escape(c) for c in map(chr, range(0x110000)) if escape(c) != c}
    assert changed == {chr(i): f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}
    assert escape("GET /\x85\xa0\u2028\r\n HTTP/1.1") == "GET /\x85\xa0\u2028\\x0d\\x0a HTTP/1.1"


def test_shutdown_lets_in_flight_request_finish():
    entered = threading.Event()
    release = threading.Event()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(10)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    with serve(app) as server:
        idle = connect(server)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle, bytearray())[2] == b"done"  # now an idle keep-alive connection
        sock = connect(server)
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert entered.wait(10)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        assert idle.recv(10) == b""  # idle keep-alive connections close at once
        release.set()
        data = recv_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"done")
        assert b"connection: close" in data.lower()
        stopper.join()
        sock.close()
        idle.close()


def test_shutdown_of_a_wsgi_server_loads_no_asgi_code():
    """Stopping a WSGI server waits for no ASGI request tasks, so it does not
    import the ASGI package to look for them (~20 ms of imports in a process
    about to exit: runserver's autoreload waits for it). A fresh interpreter,
    for a clean sys.modules."""
    code = """
import http.client, sys
from fastbase.config import Config
from fastbase.server import Server

def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]

server = Server(Config(app=app, host="127.0.0.1", port=0, log_level="warning"))
thread = server.start_in_thread()
conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
conn.request("GET", "/")
assert conn.getresponse().read() == b"ok"
server.stop()
thread.join(10)
assert not thread.is_alive()
print(sorted(name for name in sys.modules if name.startswith("fastbase.asgi")))
"""
    # From tests/, so the installed package is imported, never a source
    # checkout at the current directory (CI installs it, not in place).
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.abspath(__file__))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_shutdown_answers_a_request_arriving_on_a_connection_accepted_before_it():
    """A connection accepted just before a graceful shutdown has its first
    request on the way: it is answered (with Connection: close), not dropped.
    One that sends nothing is closed after a short grace."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app) as server:
        fresh = connect(server)
        silent = connect(server)
        state = server.state
        while len(state.connections) < 2:  # both accepted by the server
            time.sleep(0.005)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        while not all(conn._close_after_response for conn in list(state.connections)):
            time.sleep(0.005)  # shutdown has reached both connections
        fresh.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(fresh)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok")
        assert b"connection: close" in data.lower()
        assert silent.recv(10) == b""
        stopper.join()
        fresh.close()
        silent.close()


@pytest.mark.parametrize("loop", loop_params())
def test_shutdown_closes_a_long_silent_connection_at_once(monkeypatch, loop):
    """A connection silent since long before the shutdown (a browser's spare,
    never used) is closed at once, while one accepted just before it still
    gets its grace: the shutdown waits for that one, not for the spare."""
    import fastbase.protocol

    monkeypatch.setattr(fastbase.protocol, "FRESH_SHUTDOWN_GRACE", 60.0)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, loop=loop) as server:
        spare = connect(server)
        state = server.state
        while len(state.connections) < 1:
            time.sleep(0.005)
        (old,) = list(state.connections)
        old._accepted -= 120.0  # accepted two minutes ago, never used
        fresh = connect(server)
        while len(state.connections) < 2:
            time.sleep(0.005)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        assert spare.recv(10) == b""  # closed now, not after the grace
        fresh.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(fresh)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok")
        stopper.join()
        spare.close()
        fresh.close()


@pytest.mark.parametrize("loop", loop_params())
def test_before_serving_runs_with_the_app_loaded_and_nothing_accepted(loop):
    """Server.before_serving (what a --reload server process waits in for
    its go) runs with the listeners made but not accepting: a connection
    made meanwhile is accepted, and answered, only after it returns."""
    import asyncio

    from fastbase.config import Config
    from fastbase.server import Server

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = Server(Config(app=app, app_dir=None, port=0, log_level="warning", loop=loop))
    seen: dict = {}
    early: list = []

    async def before_serving() -> None:
        seen["serving"] = [listener.is_serving() for listener in server.servers]
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        early.append(sock)
        for _ in range(20):  # passes in which a serving listener would accept it
            await asyncio.sleep(0)
        seen["accepted while waiting"] = len(server.state.connections)

    server.before_serving = before_serving
    thread = server.start_in_thread()
    try:
        assert seen == {"serving": [False], "accepted while waiting": 0}
        assert all(listener.is_serving() for listener in server.servers)
        data = recv_until_closed(early[0])
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok"), data
    finally:
        for sock in early:
            sock.close()
        server.stop()
        thread.join(30)


@pytest.mark.parametrize("loop", loop_params())
def test_signal_handlers_installed_twice_are_restored_to_what_was_there_before(loop):
    """Startup installs the server's signal handlers before serve() does
    when it waits in a before_serving hook: the second install keeps the
    first, so the restore puts back Python's own handlers, not the loop's
    placeholder (which would leave Ctrl+C doing nothing afterwards)."""
    import asyncio
    import signal

    from fastbase.config import Config
    from fastbase.server import Server, new_event_loop

    server = Server(Config(app="x:y", loop=loop))
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    async def twice() -> dict:
        server._install_signal_handlers()
        server._install_signal_handlers()
        server._restore_signal_handlers()
        return {sig: signal.getsignal(sig) for sig in before}

    event_loop = new_event_loop(loop)
    try:
        assert event_loop.run_until_complete(twice()) == before
    finally:
        event_loop.close()
        asyncio.set_event_loop(None)


def test_shutdown_answers_connections_accepted_in_the_pass_it_begins():
    """Connections accepted in the same loop pass as the shutdown begins are
    answered. asyncio's own loop makes an accepted connection's transport in
    a task, a pass after the accept: a listener closed in between drops the
    connection unanswered and the client sees a reset (what --reload's
    restarts hit now and then). uvloop makes the transport in the accept
    itself, and orders its passes differently: the sequence below is
    asyncio's."""
    loop = "asyncio"

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, loop=loop) as server:
        clients: list = []
        connected = threading.Event()

        def begin_shutdown() -> None:
            # As stop() does, without its extra loop pass: the serving task
            # wakes in the next pass, ahead of the tasks the accept makes.
            server.should_exit = True
            server._exit.set()

        def connect_then_stop() -> None:
            # On the loop's thread: the connections are complete (loopback)
            # and wait in the accept queue; the next pass runs
            # begin_shutdown, then the accept.
            for _ in range(8):
                sock = connect(server)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(sock)
            server.loop.call_soon(begin_shutdown)
            connected.set()

        server.loop.call_soon_threadsafe(connect_then_stop)
        assert connected.wait(10)
        for sock in clients:
            data = recv_until_closed(sock)
            assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok"), data
            sock.close()


@pytest.mark.parametrize("loop", loop_params())
def test_shutdown_keeps_a_connection_whose_request_the_loop_has_not_read(loop):
    """Shutdown reaches an idle keep-alive connection whose next request is
    already in the socket but not yet read (a busy loop): it is answered
    (with Connection: close), not dropped with the connection."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, loop=loop) as server:
        sock = connect(server)
        buffered = bytearray()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, buffered)[0] == 200
        blocked, sent = threading.Event(), threading.Event()

        def shut_down_before_reading() -> None:
            blocked.set()
            sent.wait(10)
            time.sleep(0.05)  # let the request bytes land in the socket buffer
            server.state.shutting_down = True  # as Server.shutdown() begins
            for conn in list(server.state.connections):
                conn.shutdown()  # the loop has not read the request yet
            server.stop()

        server.loop.call_soon_threadsafe(shut_down_before_reading)
        assert blocked.wait(10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sent.set()
        data = bytes(buffered) + recv_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok"), data
        assert b"connection: close" in data.lower()
        sock.close()


def test_reading_a_whole_large_body_at_once(threads):
    """read() with no size on a body far above the pause mark: reading must
    resume for the waiting app instead of deadlocking on backpressure."""
    payload = bytes(range(256)) * 16384  # 4 MiB

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        digest = str(len(body)).encode() + (b" ok" if body == payload else b" bad")
        start_response("200 OK", [("Content-Length", str(len(digest)))])
        return [digest]

    with serve(app, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload))
        sock.sendall(payload)
        assert read_response(sock, bytearray())[2] == b"%d ok" % len(payload)


def test_inline_app_does_not_see_the_event_loop():
    """With threads=0 the app runs on the loop's thread, but as synchronous
    code: no running loop is visible (Django's ORM refuses to run inside one)."""
    import asyncio

    seen = []

    def app(environ, start_response):
        try:
            asyncio.get_running_loop()
            seen.append("loop visible")
        except RuntimeError:
            seen.append("no loop")
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, threads=0) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, bytearray())[2] == b"ok"
    assert seen == ["no loop"]


def test_declined_upgrade_then_malformed_request_gets_400():
    """An Upgrade the WSGI app cannot accept is answered as plain HTTP; the
    bytes held behind it are parsed afterwards, and a malformed request
    there is a 400, not a server error."""
    recorder = Recorder()
    with serve(recorder) as server, connect(server) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /bad HTTP/1.1\nHost: x\n\n"
        )
        data = recv_until_closed(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.rstrip().endswith(b"bare LF in request")
    assert [e["PATH_INFO"] for e in recorder.environs] == ["/ws", "/next"]


def test_body_tail_after_an_early_response_is_drained():
    """The app (in a worker thread) answers without reading the body; the
    body's last piece and its end then arrive together. They belong to the
    finished request (and are dropped), not to a new one. (With threads=0 the
    app only runs once the body is complete, so it cannot answer early.)"""

    def early(environ, start_response):
        start_response("403 Forbidden", [("Content-Length", "2")])
        return [b"no"]

    with serve(early) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        buffered = bytearray()
        assert read_response(sock, buffered)[:1] == (403,)
        sock.sendall(b"56789")  # the rest of the body, [bytes, END] in one feed
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock, buffered)
        assert (status, body) == (403, b"no")


def test_client_leaving_mid_body_with_threads_0():
    """threads=0 collects the body before the app runs; a client that leaves
    halfway leaves nothing behind (the spool is closed, the app never runs)."""
    recorder = Recorder(echo)
    with serve(recorder, threads=0) as server:
        with connect(server) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
        with connect(server) as sock:  # the server goes on
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
            assert read_response(sock, bytearray())[2] == b"ok"
    assert [e["PATH_INFO"] for e in recorder.environs] == ["/"]


def test_rejected_start_response_can_be_retried(threads):
    def app(environ, start_response):
        try:
            start_response("200 OK", ("not", "a list"))
        except Exception:  # noqa: BLE001 - the app recovers and answers properly
            start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, threads=threads) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nok")


def test_connection_environ_base_has_room_for_a_request():
    """The per-connection base the environs are copied from is the same
    mapping with a larger table, so a request's variables fit without the copy
    growing (on an interpreter where that cannot be arranged, the base is
    returned as it was)."""
    import sys

    from fastbase.http._parser_py import RequestParser
    from fastbase.environ._environ_py import wsgi_environ
    from fastbase.wsgi.bridge import with_room

    plain = {f"KEY_{i}": i for i in range(14)}
    roomy = with_room(plain)
    assert roomy == plain and list(roomy) == list(plain)
    assert with_room({}) == {}
    request = RequestParser().feed(b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(10)) + b"\r\n")[0]
    environ = wsgi_environ(roomy, request, "", None)
    assert environ["HTTP_X_F9"] == "v" and roomy == plain
    if roomy is not plain:
        assert sys.getsizeof(environ) == sys.getsizeof(roomy.copy()) > sys.getsizeof(plain.copy())


def test_no_server_header_covers_the_servers_own_answers():
    """--no-server-header: no Server field on a malformed request's 400 or an
    app failure's 500 either, not only on the app's responses."""

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/fail":
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with serve(app, server_header=False) as server:
        for request in (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        ):
            with connect(server) as sock:
                sock.sendall(request)
                status, headers, _ = read_response(sock, bytearray())
                assert status in (200, 500, 400)
                assert "server" not in headers, (request, headers)
