#!/usr/bin/env python3
"""WebSocket load generator: the wrk of bench/ws_bench.py.

    python bench/ws_load.py echo --port 8000 -c 16 -d 5 --size 32
    python bench/ws_load.py echo --port 8000 -c 16 -d 5 --size 16384 --binary
    python bench/ws_load.py connect --port 8000 -c 16 -d 5

``echo``: opens ``-c`` connections, checks that each one echoes a first
message byte for byte, then for ``-d`` seconds keeps one message in flight
per connection (send, wait for the echo, send again) and counts the round
trips. ``connect``: ``-c`` loops that each open a TCP connection, do the
opening handshake, one echo round trip and the closing handshake, again and
again; it counts the connections completed.

Built to cost the client as little as possible so that it is not what is
measured: asyncio Protocols (no streams) on uvloop when installed, client
frames built and masked once before the run (a fixed masking key is legal:
RFC 6455 5.3 only asks the client to mask), and a reply reader that looks at
frame headers and skips payloads without copying them. It prints one JSON
object with the rate, latency percentiles, errors and its own CPU use over
the measured window, so the caller can tell when the client was the
bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import resource
import struct
import sys
import time

#: RFC 6455 1.3's sample nonce and its accept value: every connection sends
#: the same key (servers do not remember keys), so the answer is precomputed.
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: RFC 6455 5.7's sample masking key.
MASK_KEY = b"\x37\xfa\x21\x3d"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: Largest response head read before the handshake is declared broken.
MAX_HEAD = 16 * 1024


class LoadError(Exception):
    """The server answered something other than what the benchmark expects."""


def accept_value(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


ACCEPT = accept_value(KEY)


def mask(payload: bytes, key: bytes = MASK_KEY) -> bytes:
    """XOR ``payload`` with the repeating 4-byte ``key`` (RFC 6455 5.3);
    the same call unmasks."""
    if not payload:
        return b""
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


def frame_header(opcode: int, length: int, masked: bool, fin: bool = True) -> bytes:
    """First bytes of a frame up to (not including) any masking key."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first, bit | length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, bit | 126, length)
    return struct.pack("!BBQ", first, bit | 127, length)


def client_frame(opcode: int, payload: bytes, key: bytes = MASK_KEY, fin: bool = True) -> bytes:
    """A whole masked client frame, as it goes on the wire."""
    return frame_header(opcode, len(payload), True, fin) + key + mask(payload, key)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A whole unmasked server frame (what an echo should send back)."""
    return frame_header(opcode, len(payload), False, fin) + payload


def close_payload(code: int = 1000, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def upgrade_request(host: str, port: int, path: str = "/") -> bytes:
    """The opening handshake's request (RFC 6455 4.1), no extensions offered,
    so no server compresses."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def check_upgrade_response(head: bytes) -> None:
    """Raise LoadError unless ``head`` (up to and including the blank line)
    is a 101 carrying the expected Sec-WebSocket-Accept."""
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 101"):
        raise LoadError(f"handshake refused: {status.decode('latin-1')[:80]!r}")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-accept":
            if value.strip() != ACCEPT:
                raise LoadError(f"wrong Sec-WebSocket-Accept {value.strip()!r}")
            return
    raise LoadError("101 without Sec-WebSocket-Accept")


class FrameReader:
    """Reads server frames from a byte stream split anywhere.

    ``feed(data)`` returns ``(messages, controls)``: how many data messages
    (a text, binary or continuation frame with FIN set) ``data`` completed,
    and the control frames it completed as ``(opcode, payload)``. Data
    payloads are skipped without a copy unless ``collect`` is true, in which
    case each whole message is appended to ``payloads``.
    """

    __slots__ = ("collect", "payloads", "_head", "_remaining", "_opcode", "_fin", "_parts", "_control", "_in_message")

    def __init__(self, collect: bool = False):
        self.collect = collect
        self.payloads: list = []
        self._head = b""  # a header split across reads
        self._remaining = -1  # payload bytes still to come; -1: reading a header
        self._opcode = 0
        self._fin = True
        self._parts: list = []  # payload pieces of the current data message (when collecting)
        self._control: list = []  # payload pieces of the current control frame
        self._in_message = False  # a fragmented data message has begun

    def feed(self, data: bytes):
        messages = 0
        controls = None
        if self._head:
            data = self._head + data
            self._head = b""
        pos, end = 0, len(data)
        while pos < end:
            if self._remaining < 0:
                # RFC 6455 5.2: 2 bytes, then 2 or 8 of extended length; a
                # server frame has no masking key (5.1).
                if end - pos < 2:
                    self._head = data[pos:]
                    break
                b0, b1 = data[pos], data[pos + 1]
                if b1 & 0x80:
                    raise LoadError("masked frame from the server")
                if b0 & 0x70:
                    raise LoadError("reserved bits set (no extension was negotiated)")
                length = b1 & 0x7F
                start = pos + 2
                if length == 126:
                    if end - pos < 4:
                        self._head = data[pos:]
                        break
                    length = (data[start] << 8) | data[start + 1]
                    start += 2
                elif length == 127:
                    if end - pos < 10:
                        self._head = data[pos:]
                        break
                    (length,) = struct.unpack_from("!Q", data, start)
                    start += 8
                self._opcode = b0 & 0x0F
                self._fin = bool(b0 & 0x80)
                self._remaining = length
                pos = start
            if self._remaining:
                take = min(self._remaining, end - pos)
                if take <= 0:
                    break
                if self._opcode >= OP_CLOSE:
                    self._control.append(data[pos : pos + take])
                elif self.collect:
                    self._parts.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining:
                    break
            # A whole frame.
            self._remaining = -1
            opcode = self._opcode
            if opcode >= OP_CLOSE:
                if controls is None:
                    controls = []
                controls.append((opcode, b"".join(self._control)))
                self._control = []
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                if (opcode == OP_CONT) != self._in_message:
                    raise LoadError("unexpected continuation frame" if opcode == OP_CONT else "new message inside a fragmented one")
                if self._fin:
                    messages += 1
                    self._in_message = False
                    if self.collect:
                        self.payloads.append(b"".join(self._parts))
                        self._parts = []
                else:
                    self._in_message = True
            else:
                raise LoadError(f"unknown opcode {opcode:#x}")
        return messages, controls


def percentile(ordered: list, q: float):
    """Nearest-rank percentile (``q`` in 0..100) of an ascending list; None
    when empty."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[min(int(rank), len(ordered)) - 1]


class Run:
    """What one run shares between its connections."""

    def __init__(self):
        self.measuring = False
        self.stopped = False
        self.count = 0
        self.latencies: list = []
        self.errors = 0
        self.first_error = ""

    def error(self, exc) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"[:200]


_HEAD, _VERIFY, _OPEN, _CLOSING, _DONE = range(5)


class _Client(asyncio.Protocol):
    """The part both modes share: the handshake and control frames."""

    def __init__(self, request: bytes, frame: bytes):
        self.request = request
        self.frame = frame
        self.state = _HEAD
        self.head = b""
        self.reader = FrameReader()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        try:
            if self.state == _HEAD:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > MAX_HEAD:
                        raise LoadError("response head too large")
                    return
                check_upgrade_response(self.head[: end + 4])
                data = self.head[end + 4 :]
                self.head = b""
                self.opened()
                if not data:
                    return
            messages, controls = self.reader.feed(data)
            if controls:
                for opcode, payload in controls:
                    if opcode == OP_PING:
                        self.transport.write(client_frame(OP_PONG, payload))
                    elif opcode == OP_CLOSE:
                        self.closed_by_server(payload)
                        return
            if messages:
                self.echoed(messages)
        except LoadError as exc:
            self.failed(exc)

    def opened(self):
        raise NotImplementedError

    def echoed(self, messages: int):
        raise NotImplementedError

    def closed_by_server(self, payload: bytes):
        raise NotImplementedError

    def failed(self, exc):
        raise NotImplementedError


class EchoClient(_Client):
    """One connection of the echo mode."""

    def __init__(self, run: Run, request: bytes, frame: bytes, expected: bytes, ready: asyncio.Future):
        super().__init__(request, frame)
        self.run = run
        self.expected = expected
        self.ready = ready
        self.sent_at = 0.0
        self.reader.collect = True

    def opened(self):
        self.state = _VERIFY
        self.transport.write(self.frame)

    def send(self):
        self.sent_at = time.perf_counter()
        self.transport.write(self.frame)

    def echoed(self, messages):
        if self.state == _VERIFY:
            payload = self.reader.payloads.pop()
            self.reader.collect = False
            if payload != self.expected:
                self.failed(LoadError(f"echo differs: sent {len(self.expected)} bytes, got {len(payload)}"))
                return
            self.state = _OPEN
            if not self.ready.done():
                self.ready.set_result(self)
            return
        if messages != 1 or self.state != _OPEN:
            self.failed(LoadError(f"{messages} messages back for one sent"))
            return
        run = self.run
        if run.stopped:
            return
        now = time.perf_counter()
        run.count += 1
        run.latencies.append(now - self.sent_at)
        self.sent_at = now
        self.transport.write(self.frame)

    def closed_by_server(self, payload):
        self.failed(LoadError(f"server closed the WebSocket ({payload[:2].hex() or 'no code'})"))

    def failed(self, exc):
        if self.state == _DONE:
            return
        self.state = _DONE
        if not self.ready.done():
            self.ready.set_exception(exc)
        elif not self.run.stopped:
            self.run.error(exc)
        self.transport.abort()

    def connection_lost(self, exc):
        if self.state != _DONE:
            self.failed(exc or LoadError("connection closed by the server"))


class ConnectClient(_Client):
    """One connection of the connect mode: handshake, one echo, close."""

    def __init__(self, request: bytes, frame: bytes, close: bytes, done: asyncio.Future):
        super().__init__(request, frame)
        self.close_frame = close
        self.done = done

    def opened(self):
        self.state = _VERIFY
        self.transport.write(self.frame)

    def echoed(self, messages):
        if self.state != _VERIFY or messages != 1:
            self.failed(LoadError(f"{messages} messages back for one sent"))
            return
        self.state = _CLOSING
        self.transport.write(self.close_frame)

    def closed_by_server(self, payload):
        if self.state != _CLOSING:
            self.failed(LoadError("server closed before the echo"))
            return
        self.state = _DONE
        if not self.done.done():
            self.done.set_result(None)
        # RFC 6455 7.1.1: the server closes TCP first; closing here too
        # does not wait for it (a server that never does is not stalled on).
        self.transport.close()

    def failed(self, exc):
        if self.state == _DONE:
            return
        self.state = _DONE
        if not self.done.done():
            self.done.set_exception(exc)
        self.transport.abort()

    def connection_lost(self, exc):
        if self.state != _DONE:
            self.failed(exc or LoadError("connection closed before the closing handshake"))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarize_run(run: Run, elapsed: float, cpu: float) -> dict:
    """The JSON a run prints: rate per second, latency percentiles (ms),
    errors and the client's CPU use as a fraction of one core."""
    ordered = sorted(run.latencies)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    return {
        "count": run.count,
        "elapsed_s": elapsed,
        "rate": run.count / elapsed if elapsed > 0 else 0.0,
        "p50_ms": p50 * 1e3 if p50 is not None else None,
        "p99_ms": p99 * 1e3 if p99 is not None else None,
        "errors": run.errors,
        "first_error": run.first_error,
        "client_cpu": cpu / elapsed if elapsed > 0 else 0.0,
    }


def message_for(size: int, binary: bool) -> bytes:
    """The payload sent: ``size`` bytes, printable ASCII for text (valid
    UTF-8, which every server checks), all byte values for binary."""
    if binary:
        return (bytes(range(256)) * (size // 256 + 1))[:size]
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return (alphabet * (size // len(alphabet) + 1))[:size]


async def run_echo(host, port, path, connections, duration, size, binary, timeout=10.0) -> dict:
    loop = asyncio.get_running_loop()
    run = Run()
    payload = message_for(size, binary)
    frame = client_frame(OP_BINARY if binary else OP_TEXT, payload)
    request = upgrade_request(host, port, path)
    readies = []
    transports = []
    for _ in range(connections):
        ready = loop.create_future()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda r=ready: EchoClient(run, request, frame, payload, r), host, port), timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise LoadError(f"cannot connect: {exc!r}") from None
        readies.append(ready)
        transports.append(transport)
    try:
        try:
            clients = await asyncio.wait_for(asyncio.gather(*readies), timeout)
        except asyncio.TimeoutError:
            raise LoadError("no echo within the timeout") from None
        except OSError as exc:
            raise LoadError(f"connection failed during setup: {exc!r}") from None
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        run.measuring = True
        for client in clients:
            client.send()
        await asyncio.sleep(duration)
        run.stopped = True
        elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    finally:
        for transport in transports:
            transport.close()
    await asyncio.sleep(0.05)
    return summarize_run(run, elapsed, cpu)


async def run_connect(host, port, path, connections, duration, size, binary, timeout=10.0) -> dict:
    loop = asyncio.get_running_loop()
    run = Run()
    payload = message_for(size, binary)
    frame = client_frame(OP_BINARY if binary else OP_TEXT, payload)
    close = client_frame(OP_CLOSE, close_payload(1000))
    request = upgrade_request(host, port, path)

    def expire(done):
        if not done.done():
            done.set_exception(asyncio.TimeoutError(f"not done within {timeout:g} s"))

    async def worker():
        while not run.stopped:
            started = time.perf_counter()
            done = loop.create_future()
            timer = loop.call_later(timeout, expire, done)
            transport = None
            try:
                transport, _ = await loop.create_connection(lambda d=done: ConnectClient(request, frame, close, d), host, port)
                await done
            except (OSError, LoadError, asyncio.TimeoutError) as exc:
                if transport is not None:
                    transport.abort()
                if not run.stopped:
                    run.error(exc)
                    # A server that refuses connections is not hammered.
                    await asyncio.sleep(0.01)
                continue
            finally:
                timer.cancel()
            if not run.stopped:
                run.count += 1
                run.latencies.append(time.perf_counter() - started)

    def stop():
        run.stopped = True

    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    run.measuring = True
    loop.call_later(duration, stop)
    workers = [loop.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(duration)
    run.stopped = True
    elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    # In-flight connections finish (or time out) and are not counted.
    await asyncio.gather(*workers)
    return summarize_run(run, elapsed, cpu)


MODES = {"echo": run_echo, "connect": run_connect}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/ws_load.py", description="WebSocket load generator.")
    p.add_argument("mode", choices=sorted(MODES), help="echo: messages/s; connect: connections/s")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws")
    p.add_argument("-c", "--connections", type=int, default=16, help="connections (echo) or parallel loops (connect)")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds measured")
    p.add_argument("--size", type=int, default=32, help="message payload bytes")
    p.add_argument("--binary", action="store_true", help="binary messages (default: text)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before a connection is given up")
    p.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if args.size < 0:
        parser.error("--size cannot be negative")
    return args


def loop_factory(name: str):
    """(factory, name) of the event loop to run on: uvloop unless told
    otherwise or not installed."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return uvloop.new_event_loop, "uvloop"
    return asyncio.new_event_loop, "asyncio"


def main(argv=None) -> int:
    args = parse_args(argv)
    factory, loop_name = loop_factory(args.loop)
    coro = MODES[args.mode](args.host, args.port, args.path, args.connections, args.duration, args.size, args.binary, args.timeout)
    loop = factory()
    try:
        result = loop.run_until_complete(coro)
    except LoadError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    finally:
        loop.close()
    result.update(mode=args.mode, connections=args.connections, size=args.size, binary=args.binary, loop=loop_name)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
