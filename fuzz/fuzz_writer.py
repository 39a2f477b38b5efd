"""Fuzz the response writer (encode_head, encode_response, encode_chunk,
encode_trailers, encode_error of fastbase.http._parser, instrumented).

    python fuzz/fuzz_writer.py -runs=100000 -seed=1       # compiled only
    python fuzz/fuzz_writer.py --diff -max_total_time=600 # compiled vs twin

Each input is decoded (atheris.FuzzedDataProvider) into a status (mostly
100..999, sometimes any int, a float or None), a reason (None, latin-1 or
arbitrary str, bytes), header pairs whose names and values are str, bytes,
bytearray or something else, drawn from a pool of hop-by-hop names and
arbitrary bytes (CR, LF and NUL included), the http11 / keep_alive /
head_request flags, a body length, a body, a chunk and trailers.

Compiled-only mode checks every head the writer produces: a status line,
then field lines that are ``token: value`` with no CR, LF or NUL inside,
then the empty line, and that InvalidResponse (or TypeError/ValueError/
OverflowError for arguments of the wrong type) is the only exception.
``--diff`` also runs the twin and requires the same bytes (the Date field
aside) or the same exception type.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instrumented  # noqa: E402

(C,) = instrumented.modules("http._parser")
import atheris  # noqa: E402

from fastbase.http.errors import InvalidResponse  # noqa: E402

IMPLS = [C]
if instrumented.DIFF:
    IMPLS.append(instrumented.twin("http._parser_py"))

NAMES = [
    b"content-length",
    b"Content-Length",
    b"connection",
    b"Connection",
    b"transfer-encoding",
    b"keep-alive",
    b"date",
    b"server",
    b"upgrade",
    b"content-type",
    b"x-a",
    b"set-cookie",
]
VALUES = [
    b"close",
    b"keep-alive, close",
    b"Upgrade",
    b"5",
    b" 5 ",
    b"05",
    b"-1",
    b"999999999999999999",
    b"1000000000000000000",
    b"chunked",
    b"x\r\ny: 1",
    b"a\0b",
    b"\n",
    b"",
]
ALLOWED = (InvalidResponse, TypeError, ValueError, OverflowError)
DATE = re.compile(rb"(?im)^date: [^\r\n]*\r\n")
FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n\0]*")


def text(fdp, pool):
    kind = fdp.ConsumeIntInRange(0, 7)
    if kind <= 1:
        return pool[fdp.ConsumeIntInRange(0, len(pool) - 1)]
    if kind == 2:
        # Sometimes long: heads over the writer's 2 KiB stack buffer take the
        # heap (_out_grow's malloc / realloc).
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)) * (fdp.ConsumeIntInRange(1, 300) if fdp.ConsumeBool() else 1)
    if kind == 3:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)).decode("latin-1")
    if kind == 4:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 20))
    if kind == 5:
        return bytearray(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20)))
    if kind == 6:
        return memoryview(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20)))
    return [None, 5, 1.5, ("a",)][fdp.ConsumeIntInRange(0, 3)]


def decode(data):
    fdp = atheris.FuzzedDataProvider(data)
    kind = fdp.ConsumeIntInRange(0, 15)
    if kind < 12:
        status = fdp.ConsumeIntInRange(100, 999)
    elif kind == 12:
        status = fdp.ConsumeInt(8)
    else:
        status = [None, 200.0, True][kind - 13]
    reason = None if fdp.ConsumeBool() else text(fdp, [b"OK", "OK", b"", "Caf\xe9", "\u20ac", b"a\rb"])
    headers = [(text(fdp, NAMES), text(fdp, VALUES)) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    flags = fdp.ConsumeIntInRange(0, 15)
    length = fdp.ConsumeIntInRange(-2, 70) if flags & 8 else fdp.ConsumeInt(8)
    server = [b"fastbase", None, b"x", "x", bytearray(b"y")][fdp.ConsumeIntInRange(0, 4)]
    body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
    if fdp.ConsumeIntInRange(0, 15) == 0:
        body *= C.ONE_WRITE_LIMIT // max(len(body), 1) + 1  # sent with writev, not copied
    chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
    chunk = [chunk, bytearray(chunk), memoryview(chunk), chunk][fdp.ConsumeIntInRange(0, 3)]
    trailers = [(text(fdp, NAMES), text(fdp, VALUES)) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return status, reason, headers, bool(flags & 1), bool(flags & 2), bool(flags & 4), length, server, body, chunk, trailers


def outcome(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except ALLOWED as exc:
        return type(exc)


def check_head(head):
    """A head the writer produced cannot carry an injected line."""
    if not isinstance(head, bytes):
        return
    lines = head.split(b"\r\n")
    if lines[-2:] != [b"", b""] or not re.fullmatch(rb"HTTP/1\.1 \d{3} [^\r\n\0]*", lines[0]):
        raise AssertionError(f"malformed head {head!r}")
    for line in lines[1:-2]:
        if not FIELD.fullmatch(line):
            raise AssertionError(f"malformed field line {line!r} in {head!r}")


def run(impl, args):
    status, reason, headers, http11, keep_alive, head_request, length, server, body, chunk, trailers = args
    head = outcome(
        impl.encode_head,
        status,
        headers,
        reason=reason,
        http11=http11,
        keep_alive=keep_alive,
        head_request=head_request,
        body_length=length,
        server=server,
    )
    if isinstance(head, tuple):
        check_head(head[0])
    response = outcome(impl.encode_response, status, headers, body, reason, http11, keep_alive, head_request, server)
    if isinstance(response, tuple):
        check_head(response[0][: len(response[0]) - len(body)])
        if len(body) >= C.ONE_WRITE_LIMIT:
            raise AssertionError("a body over ONE_WRITE_LIMIT was copied")
        if not response[0].endswith(body):
            raise AssertionError("encode_response lost the body")
    encoded_chunk = outcome(impl.encode_chunk, chunk)
    if len(chunk) and encoded_chunk != b"%x\r\n%s\r\n" % (len(chunk), bytes(chunk)):
        raise AssertionError(f"bad chunk {encoded_chunk!r}")
    last = outcome(impl.encode_trailers, trailers)
    if isinstance(last, bytes):
        check_head(b"HTTP/1.1 200 x\r\n" + last[3:])
    error = outcome(impl.encode_error, status, reason if isinstance(reason, str) else "")
    if not re.fullmatch(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", impl.date_header_value()):
        raise AssertionError(f"bad Date value {impl.date_header_value()!r}")
    return [
        strip(head),
        (strip(response), len(response[0])) if isinstance(response, tuple) else response,
        encoded_chunk,
        last,
        strip(error),
    ]


def strip(value):
    # The Date field changes with the second; the two twins may straddle one.
    if isinstance(value, tuple):
        return (strip(value[0]), *value[1:])
    if isinstance(value, bytes):
        return DATE.sub(b"", value)
    return value


def test_one(data: bytes) -> None:
    args = decode(data)
    results = [run(impl, args) for impl in IMPLS]
    if len(results) == 2 and results[0] != results[1]:
        raise AssertionError(f"the twins disagree on {args!r}:\n  c:  {results[0]!r}\n  py: {results[1]!r}")


if __name__ == "__main__":
    instrumented.main("writer", test_one, max_len=2048)
