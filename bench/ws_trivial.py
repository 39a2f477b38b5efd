#!/usr/bin/env python3
"""The cheapest WebSocket echo server this benchmark can write: the yardstick
for the load generator's own ceiling, not a server to compare.

    python bench/ws_trivial.py PORT

An asyncio Protocol on uvloop that answers the opening handshake with a 101
built once, and echoes each client frame from a cache keyed on the frame's
header and masking key: the load generator sends the same frame over and
over, so after the first one an echo costs a dict lookup and a write. It is
only correct for such a client. A close frame is answered with a close and
the connection closed; any other HTTP request gets 13 bytes and a close (so
the benchmark script can see it is up).

Run on its own core against ``bench/ws_load.py``, it is cheaper per message
than the client; the rate measured is therefore the client's ceiling.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from ws_load import ACCEPT, KEY, OP_CLOSE, OP_PING, OP_PONG, accept_value, mask, server_frame

RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n"
)
HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!"
CLOSE_REPLY = server_frame(OP_CLOSE, b"\x03\xe8")

_REPLIES: dict = {}


def reply_for(frame: bytes, header_len: int) -> bytes:
    """The server frame echoing a whole masked client ``frame``, whose
    header (masking key included) is ``header_len`` bytes."""
    key = frame[:header_len]
    reply = _REPLIES.get(key)
    if reply is None:
        payload = mask(frame[header_len:], frame[header_len - 4 : header_len])
        opcode = frame[0] & 0x0F
        reply = server_frame(OP_PONG if opcode == OP_PING else opcode, payload)
        _REPLIES[key] = reply
    return reply


class Trivial(asyncio.Protocol):
    def __init__(self):
        self.buffer = b""
        self.open = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buffer = self.buffer + data if self.buffer else data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            head = buffer[:end].lower()
            if b"upgrade: websocket" not in head:
                self.transport.write(HELLO)
                self.transport.close()
                return
            if KEY.lower() in head:
                self.transport.write(RESPONSE_101)
            else:
                key = head.split(b"sec-websocket-key:", 1)[1].split(b"\r\n", 1)[0].strip()
                original = buffer[buffer.lower().find(key) :][: len(key)]
                self.transport.write(RESPONSE_101.replace(ACCEPT, accept_value(original)))
            self.open = True
            buffer = buffer[end + 4 :]
        replies = []
        pos, n = 0, len(buffer)
        while n - pos >= 6:
            length = buffer[pos + 1] & 0x7F
            header = 6
            if length == 126:
                if n - pos < 8:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                header = 8
            elif length == 127:
                if n - pos < 14:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 14
            stop = pos + header + length
            if stop > n:
                break
            if buffer[pos] & 0x0F == OP_CLOSE:
                replies.append(CLOSE_REPLY)
                self.transport.write(b"".join(replies))
                self.transport.close()
                self.buffer = b""
                return
            replies.append(reply_for(buffer[pos:stop] if pos or stop != n else buffer, header))
            pos = stop
        self.buffer = buffer[pos:] if pos < n else b""
        if replies:
            self.transport.write(replies[0] if len(replies) == 1 else b"".join(replies))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    port = int(argv[0])
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = loop.run_until_complete(loop.create_server(Trivial, sock=sock, backlog=2048))
    # Stop on SIGTERM, and on SIGINT even when started with it ignored (a
    # background job of a non-interactive shell).
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
