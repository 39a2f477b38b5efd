"""Fuzz the WebSocket opening handshake (fastbase.websocket.handshake and
fastbase.websocket.deflate, pure Python) on requests the instrumented parser read,
with the instrumented writer (encode_head) answering.

    python fuzz/fuzz_handshake.py -runs=100000 -seed=1       # compiled only
    python fuzz/fuzz_handshake.py --diff -max_total_time=600 # with the twin parser

The first byte of each input is a control byte: bit 0 enables
permessage-deflate, bit 1 asks for server_no_context_takeover, bit 2
client_no_context_takeover, bit 3 picks the first offered subprotocol, bit 4
adds an application header taken from the input; the rest is fed to
RequestParser. For each request head: check_request must return a Handshake
or raise HandshakeError (answered with encode_refusal, which must be a
well-formed response); an accepted one is answered with negotiate_deflate
and encode_accept, whose 101 head must carry the right Sec-WebSocket-Accept
and no injected line (InvalidResponse is the only other outcome).
``--diff`` reads the same bytes with the twin parser too and requires the
same handshakes, refusals and answers.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instrumented  # noqa: E402

(PARSER,) = instrumented.modules("http._parser")
from fastbase.http.errors import InvalidResponse, ProtocolError  # noqa: E402
from fastbase.websocket.deflate import negotiate_deflate  # noqa: E402
from fastbase.websocket.handshake import (  # noqa: E402
    HandshakeError,
    check_request,
    encode_accept,
    encode_refusal,
)

PARSERS = [PARSER]
if instrumented.DIFF:
    PARSERS.append(instrumented.twin("http._parser_py"))

FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n\0]*")
DATE = re.compile(rb"(?im)^date: [^\r\n]*\r\n")


def check_head(head):
    lines = head.split(b"\r\n")
    if lines[-2:] != [b"", b""] or not re.fullmatch(rb"HTTP/1\.1 \d{3} [^\r\n\0]*", lines[0]):
        raise AssertionError(f"malformed head {head!r}")
    for line in lines[1:-2]:
        if not FIELD.fullmatch(line):
            raise AssertionError(f"malformed field line {line!r} in {head!r}")
    return DATE.sub(b"", head)


def answer(control, data, request):
    try:
        handshake = check_request(request.method, request.http_version, request.headers)
    except HandshakeError as error:
        head, _, body = encode_refusal(error).partition(b"\r\n\r\n")
        return ("refused", error.status, error.reason, check_head(head + b"\r\n\r\n"))
    expected = base64.b64encode(hashlib.sha1(handshake.key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    if handshake.accept != expected:
        raise AssertionError(f"wrong Sec-WebSocket-Accept for {handshake.key!r}")
    value, deflate = negotiate_deflate(
        handshake.extensions,
        bool(control & 1),
        server_no_context_takeover=bool(control & 2),
        client_no_context_takeover=bool(control & 4),
    )
    subprotocol = handshake.subprotocols[0] if control & 8 and handshake.subprotocols else None
    headers = [(data[-12:-6], data[-6:])] if control & 16 else []
    try:
        head = encode_accept(handshake, subprotocol, value, headers)
    except InvalidResponse as exc:
        return ("invalid", str(exc))
    if b"\r\nSec-WebSocket-Accept: " + expected + b"\r\n" not in head:
        raise AssertionError(f"the accept key is missing from {head!r}")
    return ("accepted", handshake.subprotocols, value, repr(deflate), check_head(head))


def run(parser_module, control, data):
    parser = parser_module.RequestParser()
    out = []
    try:
        events = parser.feed(data)
    except ProtocolError as exc:
        events = exc.events
    for event in events:
        if isinstance(event, parser_module.Request):
            out.append(answer(control, data, event))
    return out


def test_one(data: bytes) -> None:
    if not data:
        return
    results = [run(p, data[0], data[1:]) for p in PARSERS]
    if len(results) == 2 and results[0] != results[1]:
        raise AssertionError(f"the twins disagree on {data!r}:\n  c:  {results[0]!r}\n  py: {results[1]!r}")


if __name__ == "__main__":
    instrumented.main("handshake", test_one, max_len=4096)
