"""ASGI WebSockets over real sockets: the `websockets` library's client, and
raw sockets for what a well-behaved client never sends."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import threading

import pytest

from servers import connect, read_response, recv_until_closed
from servers import serve as _serve

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402


def serve(app, **options):
    options.setdefault("lifespan", "off")
    return _serve(app, **options)


class Recorder:
    def __init__(self):
        self.scopes = []
        self.events = []
        self.errors = []
        self.done = threading.Event()


def echo_app(recorder=None, accept_extra=None):
    recorder = recorder or Recorder()

    async def app(scope, receive, send):
        recorder.scopes.append(scope)
        try:
            assert (await receive()) == {"type": "websocket.connect"}
            accept = {"type": "websocket.accept"}
            if scope["subprotocols"]:
                accept["subprotocol"] = scope["subprotocols"][-1]
            accept.update(accept_extra or {})
            await send(accept)
            while True:
                message = await receive()
                recorder.events.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == "close please":
                    await send({"type": "websocket.close", "code": 4001, "reason": "as asked"})
                    continue
                if message.get("text") is not None:
                    await send({"type": "websocket.send", "text": "echo:" + message["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": message["bytes"]})
        except BaseException as exc:
            recorder.errors.append(exc)
            raise
        finally:
            recorder.done.set()

    return app, recorder


def run(coro):
    return asyncio.run(coro)


def test_echo_text_and_binary_with_subprotocol_and_scope():
    app, recorder = echo_app()
    with serve(app, root_path="/mnt") as server:

        async def client():
            uri = f"ws://127.0.0.1:{server.port}/chat%20room?x=1"
            async with ws_connect(uri, subprotocols=["one", "two"]) as ws:
                assert ws.subprotocol == "two"
                await ws.send("hello")
                assert await ws.recv() == "echo:hello"
                payload = os.urandom(300_000)
                await ws.send(payload)
                assert await ws.recv() == payload

        run(client())
        assert recorder.done.wait(10)
    scope = recorder.scopes[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/mnt/chat room" and scope["raw_path"] == b"/mnt/chat%20room"
    assert scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == ["one", "two"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ("127.0.0.1", server.port)
    assert "websocket.http.response" in scope["extensions"]
    assert recorder.events[-1]["type"] == "websocket.disconnect"
    assert recorder.events[-1]["code"] == 1000


@pytest.mark.parametrize("deflate", [True, False])
def test_permessage_deflate_negotiation(deflate):
    app, _ = echo_app()
    with serve(app, ws_per_message_deflate=deflate) as server:

        async def client():
            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                header = ws.response.headers.get("Sec-WebSocket-Extensions")
                assert (header is not None and header.startswith("permessage-deflate")) is deflate
                text = "compressible " * 10_000
                await ws.send(text)
                assert await ws.recv() == "echo:" + text

        run(client())


def test_server_close_code_reaches_client_and_client_code_reaches_app():
    app, recorder = echo_app()
    with serve(app) as server:

        async def client():
            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("close please")
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 4001 and info.value.rcvd.reason == "as asked"

            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.close(code=4321, reason="bye")

        run(client())
        assert recorder.done.wait(10)
    codes = [e["code"] for e in recorder.events if e["type"] == "websocket.disconnect"]
    assert 4321 in codes


def test_denial_with_close_and_with_http_response():
    async def app(scope, receive, send):
        await receive()
        if scope["path"] == "/close":
            await send({"type": "websocket.close"})
        else:
            await send({"type": "websocket.http.response.start", "status": 401, "headers": [(b"x-why", b"token")]})
            await send({"type": "websocket.http.response.body", "body": b"no token"})

    with serve(app) as server:

        async def client():
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(f"ws://127.0.0.1:{server.port}/close"):
                    pass
            assert info.value.response.status_code == 403
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(f"ws://127.0.0.1:{server.port}/http"):
                    pass
            assert info.value.response.status_code == 401
            assert info.value.response.headers["x-why"] == "token"
            assert info.value.response.body == b"no token"

        run(client())


def handshake(path: bytes = b"/", version: bytes = b"13", key: bytes = None, extra: bytes = b"") -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16))
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n"
    )


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(sock: socket.socket, buffered: bytearray) -> tuple:
    def need(n):
        while len(buffered) < n:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            buffered.extend(data)

    need(2)
    opcode = buffered[0] & 0x0F
    n = buffered[1] & 0x7F
    offset = 2
    if n == 126:
        need(4)
        n = struct.unpack("!H", buffered[2:4])[0]
        offset = 4
    elif n == 127:
        need(10)
        n = struct.unpack("!Q", buffered[2:10])[0]
        offset = 10
    need(offset + n)
    payload = bytes(buffered[offset : offset + n])
    del buffered[: offset + n]
    return opcode, payload


@pytest.mark.parametrize(
    "request_bytes, status, needle",
    [
        pytest.param(handshake(version=b"12"), 426, b"sec-websocket-version: 13", id="version"),
        pytest.param(handshake(key=b"short"), 400, b"Sec-WebSocket-Key", id="bad-key"),
    ],
)
def test_bad_handshakes_are_refused_with_a_reason(request_bytes, status, needle):
    app, recorder = echo_app()
    with serve(app) as server, connect(server) as sock:
        sock.sendall(request_bytes)
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert needle.lower() in data.lower()
    assert recorder.scopes == []


def open_raw(server, app_path=b"/") -> tuple:
    sock = connect(server)
    sock.sendall(handshake(app_path))
    buffered = bytearray()
    status, headers, _ = read_response(sock, buffered)
    assert status == 101
    return sock, buffered


def test_unmasked_frame_is_a_protocol_error_1002():
    app, recorder = echo_app()
    with serve(app) as server:
        sock, buffered = open_raw(server)
        with sock:
            sock.sendall(frame(0x1, b"hello", mask=False))
            opcode, payload = read_frame(sock, buffered)
            assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
            assert recv_until_closed(sock) == b""
        assert recorder.done.wait(10)
    assert recorder.events[-1]["code"] == 1002


def test_message_over_max_size_is_1009():
    app, recorder = echo_app()
    with serve(app, ws_max_size=1000) as server:
        sock, buffered = open_raw(server)
        with sock:
            sock.sendall(frame(0x2, b"x" * 1001))
            opcode, payload = read_frame(sock, buffered)
            assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009


def test_ping_is_answered_and_keepalive_pings_time_out():
    app, recorder = echo_app()
    with serve(app, ws_ping_interval=0.2, ws_ping_timeout=0.2) as server:
        sock, buffered = open_raw(server)
        with sock:
            sock.sendall(frame(0x9, b"are you there"))
            assert read_frame(sock, buffered) == (0xA, b"are you there")
            # The server pings; this client never answers, so it is closed 1011.
            opcode, payload = read_frame(sock, buffered)
            while opcode == 0x9:
                opcode, payload = read_frame(sock, buffered)
            assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1011
        assert recorder.done.wait(10)
    assert recorder.events[-1] == {"type": "websocket.disconnect", "code": 1011, "reason": "keepalive ping timeout"}


def test_app_exception_after_accept_closes_1011(caplog):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        raise ValueError("boom")

    with serve(app) as server:

        async def client():
            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 1011

        run(client())
    assert any("Exception in ASGI application (WebSocket" in r.getMessage() for r in caplog.records)


def test_app_that_never_accepts_is_denied_403():
    async def app(scope, receive, send):
        await receive()

    with serve(app) as server, connect(server) as sock:
        sock.sendall(handshake())
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 403 ")


def test_send_after_client_disconnect_raises_oserror():
    raised = threading.Event()
    gone = threading.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        gone.set()
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError:
            raised.set()

    with serve(app) as server:
        sock, buffered = open_raw(server)
        sock.close()
        assert gone.wait(10) and raised.wait(10)


def test_graceful_shutdown_closes_with_1001():
    app, recorder = echo_app()
    server_cm = serve(app)
    server = server_cm.__enter__()
    sock, buffered = open_raw(server)
    try:
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        opcode, payload = read_frame(sock, buffered)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1001
        sock.sendall(frame(0x8, struct.pack("!H", 1001)))
        stopper.join(10)
    finally:
        sock.close()
        server_cm.__exit__(None, None, None)
    assert recorder.done.wait(10)
    assert recorder.events[-1]["code"] == 1001
