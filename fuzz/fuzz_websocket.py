"""Fuzz the WebSocket frame parser and encoders (fastbase.websocket._frames,
instrumented), with and without permessage-deflate.

    python fuzz/fuzz_websocket.py -runs=100000 -seed=1       # compiled only
    python fuzz/fuzz_websocket.py --diff -max_total_time=600 # compiled vs twin

The first byte of each input is a control byte: bit 0 negotiates
permessage-deflate, bit 1 client_no_context_takeover (the parser drops its
window after each message), bit 2 a small max_message_size (64 bytes, so
1009 is reachable; with bit 1 too, no limit at all), bit 3 feeds byte by byte, bit 4 feeds memoryviews, bit 5
picks the encoder round trip instead of raw frames; the high two bits are
the number of random split points (0, 1, 3 or 7).

Server role (raw frames): the rest of the input is what a client sent;
FrameParser must return events or raise WebSocketProtocolError (anything
else is a finding), and refuse input after an error.

Client role (round trip): the rest is a list of messages (an opcode byte, a
length byte, the payload; the opcode byte's high bits ask for a payload over
64 KiB, a memoryview payload, arguments of the wrong type, a Close without a
code); each is written by the encoders as the server
would (encode_text/encode_binary with the negotiated Deflate, encode_ping,
encode_pong, encode_close, encode_frame for fragments), checked to be a
well-formed unmasked frame a client can read, then masked as a client would
and fed back to a FrameParser, which must return the same messages.

``--diff`` runs both twins and requires the same events, the same error
(code and reason) and the same encoded bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instrumented  # noqa: E402

(C,) = instrumented.modules("websocket._frames")
from fastbase.websocket.deflate import Deflate  # noqa: E402
from fastbase.websocket.errors import WebSocketProtocolError  # noqa: E402

IMPLS = [C]
if instrumented.DIFF:
    IMPLS.append(instrumented.twin("websocket._frames_py"))

ENCODE_ERRORS = (ValueError, TypeError, UnicodeError)


def describe(event):
    name = type(event).__name__
    if name == "Message":
        return ("message", event.opcode, event.data)
    if name in ("Ping", "Pong"):
        return (name, event.payload)
    if name == "Close":
        return ("close", event.code, event.reason)
    raise AssertionError(f"unexpected event {event!r}")


def chunks(data, control):
    source = memoryview(bytearray(data)) if control & 16 else data
    if control & 8 and len(data) <= 1024:
        return [source[i : i + 1] for i in range(len(data))]
    cuts = []
    x = control * 7919 + len(data)
    for _ in range((1, 2, 4, 8)[control >> 6] - 1):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        cuts.append(x % (len(data) + 1))
    cuts.sort()
    bounds = [0, *cuts, len(data)]
    return [source[a:b] for a, b in zip(bounds, bounds[1:])]


def parse(impl, control, data):
    deflate = Deflate(client_no_context_takeover=bool(control & 2)) if control & 1 else None
    # bit 2: a 64-byte limit; with bit 1 too: none at all.
    limit = 1 << 20 if not control & 4 else None if control & 2 else 64
    parser = impl.FrameParser(max_message_size=limit, deflate=deflate)
    events = []
    for chunk in chunks(data, control):
        try:
            events += parser.feed(chunk)
        except WebSocketProtocolError as exc:
            events += exc.events
            try:
                parser.feed(b"\x81\x80abcd")
            except WebSocketProtocolError as again:
                if (again.code, again.reason) != (exc.code, exc.reason):
                    raise AssertionError("the repeated error differs") from None
            else:
                raise AssertionError("the parser accepted input after an error")
            return [describe(e) for e in events], (exc.code, exc.reason)
    return [describe(e) for e in events], parser.closed, parser.in_message


def frames_of(data):
    """Unmasked server frames -> [(fin, rsv1, opcode, payload)]; a client's view."""
    out, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        if b1 & 0x80:
            raise AssertionError("a server frame is masked")
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            n, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
            if n < 126:
                raise AssertionError("not the minimal length encoding")
        elif n == 127:
            n, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
            if n < 65536 or n >> 63:
                raise AssertionError("not the minimal length encoding")
        if pos + n > len(data):
            raise AssertionError("frame shorter than its length")
        out.append((bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, data[pos : pos + n]))
        pos += n
    return out


def mask(frame, key=b"\x37\xfa\x21\x3d"):
    """The frame as a client would send it: mask bit set, payload masked."""
    ((fin, rsv1, opcode, payload),) = frames_of(frame)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    # XOR as one big integer: a byte-by-byte loop would dominate a 64 KiB run.
    stream = (key * (n // 4 + 1))[:n]
    return head + key + (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def messages(data):
    out, pos = [], 0
    while pos + 2 <= len(data):
        op, n = data[pos], data[pos + 1]
        out.append((op, data[pos + 2 : pos + 2 + n]))
        pos += 2 + n
    return out


def encode(impl, kind, payload, deflate, op=0):
    if op & 0x80 and kind in (1, 5) and payload:
        # Over 64 KiB: the 8-byte length encoding.
        payload = payload * (65536 // len(payload) + 1)
    if op & 0x40 and kind in (1, 2, 3, 6, 7):
        payload = memoryview(bytearray(payload))  # the buffer-protocol path
    if op & 0x20 and kind < 5:
        # Wrong argument types: TypeError from both twins.
        return [impl.encode_text, impl.encode_binary, impl.encode_ping, impl.encode_pong, impl.encode_close][kind](
            [b"x", "x", "x", 1.5, "1000"][kind]
        )
    if kind == 4 and op & 0x10:
        return impl.encode_close(None, "")  # no code, no reason
    if kind == 0:
        return impl.encode_text(payload.decode("utf-8", "replace"), deflate)
    if kind == 1:
        return impl.encode_binary(payload, deflate)
    if kind == 2:
        return impl.encode_ping(payload)
    if kind == 3:
        return impl.encode_pong(payload)
    if kind == 4:
        code = int.from_bytes(payload[:2].ljust(2, b"\0"), "big")
        return impl.encode_close(code, payload[2:].decode("utf-8", "replace"))
    if kind == 5:
        # A fragmented binary message: three frames.
        third = len(payload) // 3
        return b"".join(
            [
                impl.encode_frame(2, payload[:third], False),
                impl.encode_frame(0, payload[third : 2 * third], False),
                impl.encode_frame(0, payload[2 * third :], True),
            ]
        )
    # Any opcode, fin and rsv1: the argument checks.
    return impl.encode_frame(payload[0] - 16 if payload else 99, payload[1:], bool(kind & 1), bool(kind & 2))


def round_trip(impl, control, data):
    sender = Deflate(server_no_context_takeover=bool(control & 2)) if control & 1 else None
    receiver = Deflate(client_no_context_takeover=bool(control & 2)) if control & 1 else None
    parser = impl.FrameParser(deflate=receiver)
    written, expected, got, states = [], [], [], []
    for op, payload in messages(data):
        kind = op % 8
        try:
            wire = encode(impl, kind, payload, sender, op)
        except ENCODE_ERRORS as exc:
            written.append(type(exc).__name__)
            continue
        written.append(wire)
        frames = frames_of(wire)
        if kind > 5:
            continue  # encode_frame's argument checks and framing only
        if kind == 4:
            break  # a Close ends what the parser reads
        if kind == 0:
            expected.append(("message", 1, payload.decode("utf-8", "replace")))
        elif kind in (1, 5):
            expected.append(("message", 2, payload * (65536 // len(payload) + 1) if op & 0x80 and payload else payload))
        else:
            expected.append(("Ping" if kind == 2 else "Pong", payload))
        for frame_bytes in (wire,) if len(frames) == 1 else split_frames(wire, frames):
            got += [describe(e) for e in parser.feed(mask(frame_bytes))]
        states.append(parser.in_message)
    if got != expected:
        raise AssertionError(f"round trip changed the messages:\n  sent {expected!r}\n  got  {got!r}")
    return written, got, states


def split_frames(wire, frames):
    out, pos = [], 0
    for _, _, _, payload in frames:
        n = len(payload)
        head = 2 if n < 126 else (4 if n < 65536 else 10)
        out.append(wire[pos : pos + head + n])
        pos += head + n
    return out


def test_one(data: bytes) -> None:
    if not data:
        return
    control, payload = data[0], data[1:]
    run = round_trip if control & 32 else parse
    results = [run(impl, control, payload) for impl in IMPLS]
    if len(results) == 2 and results[0] != results[1]:
        raise AssertionError(f"the twins disagree on {data!r}:\n  c:  {results[0]!r}\n  py: {results[1]!r}")


if __name__ == "__main__":
    instrumented.main("websocket", test_one, max_len=4096)
