"""Helpers to run a real fastbase server on 127.0.0.1:0 and talk to it."""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterator

from fastbase.config import Config
from fastbase.server import Server


@contextlib.contextmanager
def serve(app: Any, **options: Any) -> Iterator[Server]:
    """A server on a background thread, listening before the body runs."""
    options.setdefault("port", 0)
    options.setdefault("log_level", "warning")
    server = Server(Config(app=app, app_dir=None, **options))
    thread = server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()
        thread.join(30)
        assert not thread.is_alive(), "server did not stop"


def connect(server: Server, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def recv_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def read_response(sock: socket.socket, buffered: bytearray, head: bool = False) -> tuple:
    """Read one response (status, headers dict of lists, body) off ``sock``;
    ``buffered`` carries bytes read past it into the next call."""
    while b"\r\n\r\n" not in buffered:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a full response head: {bytes(buffered)!r}")
        buffered += data
    end = buffered.index(b"\r\n\r\n")
    head_text = bytes(buffered[:end]).decode("latin-1")
    del buffered[: end + 4]
    status_line, *lines = head_text.split("\r\n")
    status = int(status_line.split(" ")[1])
    headers: dict = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if head or status < 200 or status in (204, 304):
        return status, headers, b""

    def need(n: int) -> None:
        while len(buffered) < n:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed mid-body")
            buffered.extend(data)

    if "content-length" in headers:
        n = int(headers["content-length"][0])
        need(n)
        body = bytes(buffered[:n])
        del buffered[:n]
    elif headers.get("transfer-encoding") == ["chunked"]:
        body = b""
        while True:
            while b"\r\n" not in buffered:
                need(len(buffered) + 1)
            line_end = buffered.index(b"\r\n")
            size = int(bytes(buffered[:line_end]), 16)
            del buffered[: line_end + 2]
            if size == 0:
                while not buffered.startswith(b"\r\n"):
                    need(2)
                    if not buffered.startswith(b"\r\n"):
                        # a trailer line
                        while b"\r\n" not in buffered:
                            need(len(buffered) + 1)
                        del buffered[: buffered.index(b"\r\n") + 2]
                del buffered[:2]
                break
            need(size + 2)
            body += bytes(buffered[:size])
            del buffered[: size + 2]
    else:
        body = bytes(buffered) + recv_until_closed(sock)
        buffered.clear()
    return status, headers, body


def exchange_after_app_errors(sock) -> None:
    """On one keep-alive connection, requests to /boom (the app raises
    before responding), each followed by one that must still be answered:
    a GET, a POST whose body is all sent, an HTTP/1.0 keep-alive GET (told
    "Connection: keep-alive" in its 500)."""
    buffered = bytearray()
    sock.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = read_response(sock, buffered)
    assert status == 500 and "connection" not in headers
    sock.sendall(b"POST /boom HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    status, headers, _ = read_response(sock, buffered)
    assert status == 500 and "connection" not in headers
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock, buffered)[:3:2] == (200, b"Hello, world!")
    sock.sendall(b"GET /boom HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _ = read_response(sock, buffered)
    assert status == 500 and headers["connection"] == ["keep-alive"]
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock, buffered)[0] == 200
