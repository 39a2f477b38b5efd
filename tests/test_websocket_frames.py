"""The WebSocket frame parser and writers: a corpus of named cases (RFC 6455,
RFC 7692, the Autobahn testsuite's categories), properties, and the writers.

Each corpus case is the bytes a client sends and the outcome they must
produce: the events (messages, pings, pongs, a close) and, for a stream the
server must fail, the close code of the error it raises. Every case is fed
whole, byte by byte and at seeded random splits, to both implementations
(the ``ws_impl`` fixture); every way must give the expected outcome, so the
implementations and the splits agree with each other.
"""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastbase.websocket.deflate import Deflate
from fastbase.websocket.errors import WebSocketProtocolError
from wsclient import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    binary,
    close,
    deflated,
    frame,
    inflate_server_message,
    parse_server_frame,
    text,
)

# --- expected events -----------------------------------------------------------------


def T(s):
    return ("text", s)


def B(b):
    return ("binary", b)


def PI(p=b""):
    return ("ping", p)


def PO(p=b""):
    return ("pong", p)


def CL(code=1005, reason=""):
    return ("close", code, reason)


CASES = []


def case(name, data, *events, error=None, **options):
    """Register a case: ``events`` are what the input completes; ``error`` the
    close code of the WebSocketProtocolError it must end with (None: none).
    ``options``: ``max_message_size``, ``deflate`` (a dict of Deflate kwargs)."""
    CASES.append(pytest.param(data, list(events), error, options, id=name))


DEFLATE = {"deflate": {}}

# --- framing (Autobahn 1.x) ------------------------------------------------------------

case("text-hello-rfc6455-5.7", bytes.fromhex("818537fa213d7f9f4d5158"), T("Hello"))
case("text-empty", text(""), T(""))
case("binary-empty", binary(b""), B(b""))
case("text-125", text("x" * 125), T("x" * 125))
case("text-126-16bit-length", text("y" * 126), T("y" * 126))
case("text-127-16bit-length", text("z" * 127), T("z" * 127))
case("binary-65535-16bit-length", binary(b"\x01" * 65535), B(b"\x01" * 65535))
case("binary-65536-64bit-length", binary(bytes(range(256)) * 256), B(bytes(range(256)) * 256))
case("binary-all-byte-values", binary(bytes(range(256))), B(bytes(range(256))))
case("text-zero-mask-key", text("plain", key=b"\x00\x00\x00\x00"), T("plain"))
case("text-ff-mask-key", text("inverted", key=b"\xff\xff\xff\xff"), T("inverted"))
case("two-messages-one-read", text("a") + binary(b"b"), T("a"), B(b"b"))
case(
    "message-ping-message",
    text("one") + frame(PING, b"p") + text("two"),
    T("one"),
    PI(b"p"),
    T("two"),
)
case("header-only-waits", frame(TEXT, b"", length=10)[:6])
case("first-byte-only-waits", b"\x81")
case("partial-payload-waits", text("hello world")[:-3])
case("partial-16bit-length-waits", text("q" * 300)[:3])
case("partial-64bit-length-waits", binary(b"q" * 70000)[:7])
case("partial-mask-waits", text("mask")[:4])

# RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
case("length-0-in-16-bits", frame(TEXT, b"", form=16), error=1002)
case("length-125-in-16-bits", frame(TEXT, b"x" * 125, form=16), error=1002)
case("length-126-in-64-bits", frame(BINARY, b"x" * 126, form=64), error=1002)
case("length-65535-in-64-bits", frame(BINARY, b"x" * 65535, form=64), error=1002)
case("length-64bit-msb-set", frame(BINARY, b"", length=1 << 63, form=64), error=1002)
case("length-64bit-all-ones", frame(BINARY, b"", length=(1 << 64) - 1, form=64), error=1002)
case("length-msb-fails-before-mask-arrives", frame(BINARY, b"", length=1 << 63, form=64)[:10], error=1002)
case("non-minimal-after-message", text("ok") + frame(TEXT, b"", form=16), T("ok"), error=1002)

# RFC 6455 5.1: "The server MUST close the connection upon receiving a frame
# that is not masked."
case("unmasked-text", text("hi", key=None), error=1002)
case("unmasked-binary", binary(b"hi", key=None), error=1002)
case("unmasked-ping", frame(PING, b"", key=None), error=1002)
case("unmasked-close", close(1000, key=None), error=1002)
case("unmasked-after-message", text("ok") + text("bad", key=None), T("ok"), error=1002)
case("unmasked-continuation", text("a", fin=False) + frame(CONTINUATION, b"b", key=None), error=1002)

# --- pings and pongs (Autobahn 2.x) ----------------------------------------------------

case("ping-empty", frame(PING), PI())
case("ping-text-payload", frame(PING, b"Hello, world!"), PI(b"Hello, world!"))
case("ping-binary-payload", frame(PING, bytes([0, 255, 254, 253, 252, 251, 250, 249])), PI(bytes([0, 255, 254, 253, 252, 251, 250, 249])))
case("ping-125", frame(PING, b"\xfe" * 125), PI(b"\xfe" * 125))
case("ping-126", frame(PING, b"\xfe" * 126), error=1002)
case("ping-125-in-16-bits", frame(PING, b"\xfe" * 125, form=16), error=1002)
case("ping-fragmented", frame(PING, b"a", fin=False), error=1002)
case("pong-unsolicited", frame(PONG, b"unsolicited"), PO(b"unsolicited"))
case("pong-125", frame(PONG, b"p" * 125), PO(b"p" * 125))
case("pong-126", frame(PONG, b"p" * 126), error=1002)
case("pong-fragmented", frame(PONG, b"", fin=False), error=1002)
case("ten-pings", frame(PING, b"x") * 10, *[PI(b"x")] * 10)
case("ping-payload-not-utf8-is-fine", frame(PING, b"\xff\xfe"), PI(b"\xff\xfe"))
case("ping-declared-127-64bit", frame(PING, b"", length=127, form=64), error=1002)

# --- reserved bits (Autobahn 3.x) ------------------------------------------------------

case("rsv1-text", text("x", rsv1=True), error=1002)
case("rsv2-text", text("x", rsv2=True), error=1002)
case("rsv3-binary", binary(b"x", rsv3=True), error=1002)
case("rsv-all-binary", binary(b"x", rsv1=True, rsv2=True, rsv3=True), error=1002)
case("rsv2-ping", frame(PING, rsv2=True), error=1002)
case("rsv3-close", close(1000, rsv3=True), error=1002)
case("rsv1-after-message", text("ok") + text("x", rsv1=True), T("ok"), error=1002)
case("rsv1-continuation", text("a", fin=False) + frame(CONTINUATION, b"b", rsv1=True), error=1002)
case("rsv-fails-on-first-byte", b"\xa1", error=1002)

# --- opcodes (Autobahn 4.x) ------------------------------------------------------------

for _op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
    case(f"reserved-opcode-{_op:x}", frame(_op, b"x"), error=1002)
case("reserved-opcode-after-message", text("ok") + frame(5, b""), T("ok"), error=1002)
case("reserved-opcode-inside-fragments", text("a", fin=False) + frame(3, b"", fin=False), error=1002)
case("reserved-opcode-on-first-byte", b"\x8b", error=1002)

# --- fragmentation (Autobahn 5.x) ------------------------------------------------------

case("text-two-fragments", text("frag", fin=False) + frame(CONTINUATION, b"ment"), T("fragment"))
case(
    "text-three-fragments",
    text("a", fin=False) + frame(CONTINUATION, b"b", fin=False) + frame(CONTINUATION, b"c"),
    T("abc"),
)
case("binary-two-fragments", binary(b"\x00\x01", fin=False) + frame(CONTINUATION, b"\x02"), B(b"\x00\x01\x02"))
case(
    "empty-fragments",
    text("", fin=False) + frame(CONTINUATION, b"", fin=False) + frame(CONTINUATION, b""),
    T(""),
)
case(
    "hundred-fragments",
    text("0", fin=False) + b"".join(frame(CONTINUATION, b"%d" % (i % 10), fin=False) for i in range(1, 99)) + frame(CONTINUATION, b"9"),
    T("0" + "".join(str(i % 10) for i in range(1, 99)) + "9"),
)
case(
    "ping-between-fragments",
    text("frag", fin=False) + frame(PING, b"p") + frame(CONTINUATION, b"ment"),
    PI(b"p"),
    T("fragment"),
)
case(
    "pong-between-fragments",
    binary(b"a", fin=False) + frame(PONG, b"q") + frame(CONTINUATION, b"b", fin=False) + frame(PING) + frame(CONTINUATION, b"c"),
    PO(b"q"),
    PI(),
    B(b"abc"),
)
case(
    "fragments-then-message",
    text("a", fin=False) + frame(CONTINUATION, b"b") + binary(b"c"),
    T("ab"),
    B(b"c"),
)
case("continuation-without-start", frame(CONTINUATION, b"x"), error=1002)
case("continuation-without-start-not-fin", frame(CONTINUATION, b"x", fin=False), error=1002)
case(
    "continuation-after-finished-message",
    text("a") + frame(CONTINUATION, b"b"),
    T("a"),
    error=1002,
)
case("text-while-text-open", text("a", fin=False) + text("b"), error=1002)
case("binary-while-text-open", text("a", fin=False) + binary(b"b"), error=1002)
case("text-while-binary-open", binary(b"a", fin=False) + text("b", fin=False), error=1002)
case("fragmented-ping-between-fragments", text("a", fin=False) + frame(PING, b"", fin=False), error=1002)
case(
    "close-between-fragments",
    text("a", fin=False) + close(1000) + frame(CONTINUATION, b"b"),
    CL(1000),
)

# --- UTF-8 (Autobahn 6.x) --------------------------------------------------------------

VALID_UTF8 = {
    "ascii": "Hello-µ@ßöäüàá-UTF-8!!",
    "greek": "κόσμε",
    "first-2-byte": "\u0080",
    "first-3-byte": "\u0800",
    "first-4-byte": "\U00010000",
    "last-1-byte": "\u007f",
    "last-2-byte": "\u07ff",
    "last-3-byte": "\uffff",
    "last-4-byte": "\U0010ffff",
    "before-surrogates": "\ud7ff",
    "after-surrogates": "\ue000",
    "replacement-char": "\ufffd",
    "noncharacter-fffe": "\ufffe",
    "emoji": "\U0001f600 \U0001f4a9",
    "mixed": "a\u00e9\u4e2d\U0001f600z" * 30,
}
for _name, _s in VALID_UTF8.items():
    case(f"utf8-valid-{_name}", text(_s), T(_s))

INVALID_UTF8 = {
    "lone-continuation-80": b"\x80",
    "lone-continuation-bf": b"\xbf",
    "overlong-nul-c0-80": b"\xc0\x80",
    "overlong-slash-c0-af": b"\xc0\xaf",
    "overlong-c1": b"\xc1\xbf",
    "overlong-3-byte": b"\xe0\x80\xaf",
    "overlong-3-byte-max": b"\xe0\x9f\xbf",
    "overlong-4-byte": b"\xf0\x80\x80\xaf",
    "overlong-4-byte-max": b"\xf0\x8f\xbf\xbf",
    "surrogate-high": b"\xed\xa0\x80",
    "surrogate-low": b"\xed\xbf\xbf",
    "surrogate-pair": b"\xed\xa0\x80\xed\xb0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
    "5-byte": b"\xf8\x88\x80\x80\x80",
    "6-byte": b"\xfc\x84\x80\x80\x80\x80",
    "fe": b"\xfe",
    "ff": b"\xff",
    "missing-continuation": b"\xc3\x28",
    "3-byte-missing-last": b"\xe2\x82(",
    "truncated-2-byte-at-end": b"ok\xc3",
    "truncated-3-byte-at-end": b"ok\xe2\x82",
    "truncated-4-byte-at-end": b"ok\xf0\x9f\x98",
    "autobahn-6.3.1": b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
}
for _name, _b in INVALID_UTF8.items():
    case(f"utf8-invalid-{_name}", frame(TEXT, _b), error=1007)
    case(f"utf8-invalid-{_name}-fragmented", frame(TEXT, _b[:1], fin=False) + frame(CONTINUATION, _b[1:]), error=1007)

GREEK = "κόσμε".encode("utf-8")
case(
    "utf8-valid-split-inside-characters",
    frame(TEXT, GREEK[:1], fin=False) + frame(CONTINUATION, GREEK[1:4], fin=False) + frame(CONTINUATION, GREEK[4:]),
    T("κόσμε"),
)
case(
    "utf8-valid-one-byte-per-fragment",
    frame(TEXT, GREEK[:1], fin=False)
    + b"".join(frame(CONTINUATION, GREEK[i : i + 1], fin=i == len(GREEK) - 1) for i in range(1, len(GREEK))),
    T("κόσμε"),
)
# Fail fast (Autobahn 6.4.x): the fragment holding the invalid byte fails
# the connection, before the message (or even that frame) is complete; the
# unmasked frame after it would be a 1002 if it were reached.
case(
    "utf8-fail-fast-in-first-fragment",
    frame(TEXT, GREEK + b"\xf4\x90\x80\x80", fin=False) + frame(CONTINUATION, b"x", key=None),
    error=1007,
)
case(
    "utf8-fail-fast-sequence-split-across-fragments",
    frame(TEXT, GREEK + b"\xf4", fin=False) + frame(CONTINUATION, b"\x90\x80\x80", fin=False) + frame(CONTINUATION, b"x", key=None),
    error=1007,
)
case(
    "utf8-fail-fast-surrogate-prefix",
    frame(TEXT, b"\xed", fin=False) + frame(CONTINUATION, b"\xa0", fin=False) + frame(CONTINUATION, b"x", key=None),
    error=1007,
)
case(
    "utf8-fail-fast-inside-a-frame",
    frame(TEXT, GREEK + b"\xc0" + b"x" * 40)[: 6 + len(GREEK) + 1],
    error=1007,
)
case(
    "utf8-truncated-at-message-end-fragmented",
    frame(TEXT, b"ok\xe2", fin=False) + frame(CONTINUATION, b"\x82"),
    error=1007,
)
case("utf8-not-checked-in-binary", binary(b"\xff\xfe\xed\xa0\x80"), B(b"\xff\xfe\xed\xa0\x80"))
case(
    "utf8-state-reset-between-messages",
    frame(TEXT, b"\xe2\x82\xac") + frame(TEXT, b"\x82"),
    T("\u20ac"),
    error=1007,
)
case("utf8-pending-prefix-waits", frame(TEXT, b"\xe2\x82\xac\xe2")[:-1])

# --- limits (Autobahn 9.x, --ws-max-size) ----------------------------------------------

case("limit-exact", text("x" * 10), T("x" * 10), max_message_size=10)
case("limit-over-by-one", text("x" * 11), error=1009, max_message_size=10)
case("limit-declared-before-payload", frame(TEXT, b"", length=11), error=1009, max_message_size=10)
case("limit-declared-before-mask", frame(BINARY, b"", length=1 << 40, form=64)[:10], error=1009)
case("limit-default-16mib", frame(BINARY, b"", length=16 * 1024 * 1024 + 1)[:10], error=1009)
case("limit-default-16mib-exact-waits", frame(BINARY, b"", length=16 * 1024 * 1024)[:14])
case(
    "limit-fragments-total",
    text("x" * 6, fin=False) + frame(CONTINUATION, b"y" * 5),
    error=1009,
    max_message_size=10,
)
case(
    "limit-fragments-total-exact",
    text("x" * 6, fin=False) + frame(CONTINUATION, b"y" * 4),
    T("x" * 6 + "y" * 4),
    max_message_size=10,
)
case("limit-zero-allows-empty", text("") + binary(b""), T(""), B(b""), max_message_size=0)
case("limit-zero-refuses-one-byte", binary(b"x"), error=1009, max_message_size=0)
case(
    "limit-does-not-count-control-frames",
    frame(PING, b"p" * 125) + close(1000, b"r" * 100),
    PI(b"p" * 125),
    CL(1000, "r" * 100),
    max_message_size=0,
)
case("limit-per-message", text("x" * 8) + text("y" * 8), T("x" * 8), T("y" * 8), max_message_size=10)
case("limit-none-waits-for-huge", frame(BINARY, b"", length=1 << 40, form=64)[:14], max_message_size=None)
case(
    "limit-after-interleaved-ping",
    text("x" * 6, fin=False) + frame(PING, b"p" * 100) + frame(CONTINUATION, b"y" * 5),
    PI(b"p" * 100),
    error=1009,
    max_message_size=10,
)

# --- close handling (Autobahn 7.x) -----------------------------------------------------

case("close-empty", close(), CL(1005, ""))
case("close-1000", close(1000), CL(1000, ""))
case("close-with-reason", close(1001, b"going away"), CL(1001, "going away"))
case("close-utf8-reason", close(1000, "Ünïcödé ☃".encode()), CL(1000, "Ünïcödé ☃"))
case("close-125-bytes", close(1000, b"r" * 123), CL(1000, "r" * 123))
case("close-126-bytes", close(1000, b"r" * 124), error=1002)
case("close-1-byte", frame(CLOSE, b"\x03"), error=1002)
case("close-reason-invalid-utf8", close(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), error=1007)
case("close-reason-truncated-utf8", close(1000, b"ok\xe2\x82"), error=1007)
case("close-fragmented", close(1000, fin=False), error=1002)
case("close-then-text-ignored", close(1000) + text("ignored"), CL(1000))
case("close-then-garbage-ignored", close(1000) + b"\xff\xff\x00\x13garbage", CL(1000))
case("close-then-ping-ignored", close(1000) + frame(PING, b"x"), CL(1000))
case("close-after-message", text("bye") + close(1000), T("bye"), CL(1000))
for _code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999):
    case(f"close-code-valid-{_code}", close(_code), CL(_code))
for _code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
    case(f"close-code-invalid-{_code}", close(_code), error=1002)

# --- permessage-deflate (RFC 7692) -----------------------------------------------------

HELLO_DEFLATED = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
case("rfc7692-7.2.3.1-hello", frame(TEXT, HELLO_DEFLATED, rsv1=True), T("Hello"), **DEFLATE)
case(
    "rfc7692-7.2.3.1-hello-fragmented",
    frame(TEXT, bytes([0xF2, 0x48, 0xCD]), fin=False, rsv1=True) + frame(CONTINUATION, bytes([0xC9, 0xC9, 0x07, 0x00])),
    T("Hello"),
    **DEFLATE,
)
case(
    "rfc7692-7.2.3.2-shared-window",
    frame(TEXT, HELLO_DEFLATED, rsv1=True) + frame(TEXT, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), rsv1=True),
    T("Hello"),
    T("Hello"),
    **DEFLATE,
)
case(
    "rfc7692-7.2.3.2-no-context-takeover-breaks-shared-window",
    frame(TEXT, HELLO_DEFLATED, rsv1=True) + frame(TEXT, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), rsv1=True),
    T("Hello"),
    error=1007,
    deflate={"client_no_context_takeover": True},
)
case(
    "rfc7692-7.2.3.3-stored-block",
    frame(TEXT, bytes([0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00]), rsv1=True),
    T("Hello"),
    **DEFLATE,
)
case(
    "rfc7692-7.2.3.4-bfinal",
    frame(TEXT, bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00]), rsv1=True) + frame(TEXT, HELLO_DEFLATED, rsv1=True),
    T("Hello"),
    T("Hello"),
    **DEFLATE,
)
case(
    "rfc7692-7.2.3.5-two-blocks",
    frame(TEXT, bytes([0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00]), rsv1=True),
    T("Hello"),
    **DEFLATE,
)
case("rfc7692-7.2.3.6-empty", frame(TEXT, b"\x00", rsv1=True), T(""), **DEFLATE)
case("deflate-empty-payload", frame(BINARY, b"", rsv1=True), B(b""), **DEFLATE)
case("deflate-uncompressed-message", text("plain"), T("plain"), **DEFLATE)
case(
    "deflate-mixed-messages",
    text("plain") + frame(BINARY, deflated(b"\x00" * 1000), rsv1=True) + binary(b"raw"),
    T("plain"),
    B(b"\x00" * 1000),
    B(b"raw"),
    **DEFLATE,
)
case(
    "deflate-ping-between-fragments",
    frame(BINARY, deflated(b"abc" * 100)[:5], fin=False, rsv1=True) + frame(PING, b"p") + frame(CONTINUATION, deflated(b"abc" * 100)[5:]),
    PI(b"p"),
    B(b"abc" * 100),
    **DEFLATE,
)
case(
    "deflate-rsv1-on-continuation",
    frame(TEXT, HELLO_DEFLATED[:3], fin=False, rsv1=True) + frame(CONTINUATION, HELLO_DEFLATED[3:], rsv1=True),
    error=1002,
    **DEFLATE,
)
case("deflate-rsv1-on-ping", frame(PING, b"", rsv1=True), error=1002, **DEFLATE)
case("deflate-rsv1-on-close", close(1000, rsv1=True), error=1002, **DEFLATE)
case("deflate-rsv2", frame(TEXT, HELLO_DEFLATED, rsv1=True, rsv2=True), error=1002, **DEFLATE)
case("deflate-invalid-data", frame(TEXT, b"\xff\xff\xff\xff", rsv1=True), error=1007, **DEFLATE)
case(
    "deflate-data-after-bfinal",
    frame(TEXT, bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00, 0x01, 0x02]), rsv1=True),
    error=1007,
    **DEFLATE,
)
case("deflate-invalid-utf8", frame(TEXT, deflated(b"ok \xed\xa0\x80"), rsv1=True), error=1007, **DEFLATE)
case("deflate-text-not-utf8-binary-is", frame(BINARY, deflated(b"\xed\xa0\x80"), rsv1=True), B(b"\xed\xa0\x80"), **DEFLATE)
case(
    "deflate-zip-bomb",
    frame(BINARY, deflated(b"\x00" * 1_000_000), rsv1=True),
    error=1009,
    max_message_size=65536,
    deflate={},
)
case(
    "deflate-limit-exact",
    frame(BINARY, deflated(b"\x00" * 1000), rsv1=True),
    B(b"\x00" * 1000),
    max_message_size=1000,
    deflate={},
)
case(
    "deflate-limit-over-by-one",
    frame(BINARY, deflated(b"\x00" * 1001), rsv1=True),
    error=1009,
    max_message_size=1000,
    deflate={},
)
case(
    "deflate-limit-over-across-fragments",
    frame(BINARY, deflated(b"\x01\x02" * 600)[:20], fin=False, rsv1=True) + frame(CONTINUATION, deflated(b"\x01\x02" * 600)[20:]),
    error=1009,
    max_message_size=1000,
    deflate={},
)
case(
    "deflate-limit-wire-bytes-declared",
    frame(BINARY, b"", length=1001, rsv1=True)[:8],
    error=1009,
    max_message_size=1000,
    deflate={},
)
# Empty stored blocks inflate to nothing: without a bound on the wire bytes
# such a message would never end.
case(
    "deflate-limit-wire-bytes-of-empty-blocks",
    frame(BINARY, b"\x00\x00\x00\xff\xff" * 150, fin=False, rsv1=True) + frame(CONTINUATION, b"\x00\x00\x00\xff\xff" * 101, fin=False),
    error=1009,
    max_message_size=1250,
    deflate={},
)
case(
    "deflate-empty-blocks-within-limit",
    frame(BINARY, b"\x00\x00\x00\xff\xff" * 100, rsv1=True),
    B(b""),
    max_message_size=1250,
    deflate={},
)
_PER_MESSAGE = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
case(
    "deflate-client-context-takeover",
    frame(TEXT, deflated(b"takeover " * 20, _PER_MESSAGE), rsv1=True) + frame(TEXT, deflated(b"takeover " * 20, _PER_MESSAGE), rsv1=True),
    T("takeover " * 20),
    T("takeover " * 20),
    **DEFLATE,
)
case(
    "deflate-client-no-context-takeover",
    frame(TEXT, deflated(b"alone " * 20), rsv1=True) + frame(TEXT, deflated(b"alone " * 20), rsv1=True),
    T("alone " * 20),
    T("alone " * 20),
    deflate={"client_no_context_takeover": True},
)


# --- running a case ------------------------------------------------------------------------


def normalise(impl, events):
    out = []
    for event in events:
        if isinstance(event, impl.Message):
            if event.opcode == impl.TEXT:
                assert type(event.data) is str
                out.append(T(event.data))
            else:
                assert event.opcode == impl.BINARY and type(event.data) is bytes
                out.append(B(event.data))
        elif isinstance(event, impl.Ping):
            assert type(event.payload) is bytes
            out.append(PI(event.payload))
        elif isinstance(event, impl.Pong):
            assert type(event.payload) is bytes
            out.append(PO(event.payload))
        elif isinstance(event, impl.Close):
            assert type(event.code) is int and type(event.reason) is str
            out.append(CL(event.code, event.reason))
        else:
            raise AssertionError(f"unexpected event {event!r}")
    return out


def splits(data, how):
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(f"{how}:{len(data)}")
    cuts = sorted(rng.choices(range(len(data) + 1), k=rng.randint(1, 12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


PROBE = text("probe")


def make_parser(impl, options):
    kwargs = {}
    if "max_message_size" in options:
        kwargs["max_message_size"] = options["max_message_size"]
    if options.get("deflate") is not None:
        kwargs["deflate"] = Deflate(**options["deflate"])
    return impl.FrameParser(**kwargs)


def feed_all(impl, pieces, options):
    """Feed ``pieces``; return (normalised events, (code, reason) or None)."""
    parser = make_parser(impl, options)
    events = []
    for piece in pieces:
        try:
            events.extend(parser.feed(piece))
        except WebSocketProtocolError as exc:
            events.extend(exc.events)
            # After an error the parser refuses any further input.
            with pytest.raises(WebSocketProtocolError) as again:
                parser.feed(PROBE)
            assert (again.value.code, again.value.reason) == (exc.code, exc.reason)
            assert again.value.events == []
            return normalise(impl, events), (exc.code, exc.reason)
    return normalise(impl, events), None


SPLITS = ["whole", "bytewise", "random-1", "random-2", "random-3"]


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize("data, expected, error, options", CASES)
def test_corpus(ws_impl, data, expected, error, options, how):
    events, failure = feed_all(ws_impl, splits(data, how), options)
    assert (failure[0] if failure else None) == error
    assert events == expected


def test_corpus_size():
    assert len(CASES) >= 150
    names = [c.id for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"


@pytest.mark.parametrize("data, expected, error, options", [c for c in CASES if c.values[2] is not None])
def test_corpus_reasons_agree(data, expected, error, options):
    """Both implementations give the same reason, whichever way the bytes come."""
    implementations = _implementations()
    if len(implementations) < 2:
        pytest.skip("the compiled module is not available")
    reasons = set()
    for impl in implementations:
        for how in ("whole", "bytewise", "random-1"):
            reasons.add(feed_all(impl, splits(data, how), options)[1])
    assert len(reasons) == 1, reasons


# --- fail-fast and life cycle ---------------------------------------------------------------


def fail_index(impl, data, **options):
    """The index of the byte whose feed raised, feeding one byte at a time."""
    parser = make_parser(impl, options)
    for i in range(len(data)):
        try:
            parser.feed(data[i : i + 1])
        except WebSocketProtocolError as exc:
            return i, exc.code
    return None


@pytest.mark.parametrize(
    "payload, bad",
    [
        (b"abc\xc3\x28xyz", 4),
        (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64", 12),
        (b"\xed\xa0\x80", 1),
        (b"\xe0\x80\xaf", 1),
        (b"\xf0\x8f\xbf\xbf", 1),
        (b"ok\xff", 2),
        (b"\xc0", 0),
    ],
)
def test_utf8_fails_at_the_first_invalid_byte(ws_impl, payload, bad):
    data = frame(TEXT, payload + b"padding")
    assert fail_index(ws_impl, data) == (6 + bad, 1007)


# Bytes that start, continue, or break UTF-8 sequences at their edges.
_UTF8_PIECES = [
    b"a",
    b"\x7f",
    b"\x80",
    b"\x8f",
    b"\x90",
    b"\x9f",
    b"\xa0",
    b"\xbf",
    b"\xc0",
    b"\xc1",
    b"\xc2",
    b"\xdf",
    b"\xe0",
    b"\xe1",
    b"\xec",
    b"\xed",
    b"\xee",
    b"\xef",
    b"\xf0",
    b"\xf1",
    b"\xf3",
    b"\xf4",
    b"\xf5",
    b"\xff",
    "é".encode(),
    "€".encode(),
    "\U0001f600".encode(),
    "\ud7ff".encode(),
    "\ue000".encode(),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_UTF8_PIECES), max_size=12), st.lists(st.integers(0, 40), max_size=3))
def test_utf8_validation_matches_python_and_fails_at_the_same_byte(pieces, cuts):
    payload = b"".join(pieces)
    bounds = [0, *sorted(c for c in cuts if c < len(payload)), len(payload)]
    fragments = [payload[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]
    data = b"".join(frame(TEXT if i == 0 else CONTINUATION, f, fin=i == len(fragments) - 1) for i, f in enumerate(fragments))
    try:
        payload.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    results = {repr(fail_index(impl, data)) for impl in _implementations()}
    assert len(results) == 1, (payload, results)
    assert (results.pop() == "None") == valid


def test_header_faults_at_the_first_byte_that_shows_them(ws_impl):
    assert fail_index(ws_impl, frame(3, b"x")) == (0, 1002)
    assert fail_index(ws_impl, text("x", key=None)) == (1, 1002)
    assert fail_index(ws_impl, frame(TEXT, b"x" * 10, form=16)) == (3, 1002)
    assert fail_index(ws_impl, frame(BINARY, b"", length=100, form=64)) == (9, 1002)
    assert fail_index(ws_impl, frame(BINARY, b"", length=100), max_message_size=99) == (1, 1009)


def test_error_events_hold_what_the_call_completed(ws_impl):
    parser = ws_impl.FrameParser()
    assert normalise(ws_impl, parser.feed(text("one"))) == [T("one")]
    with pytest.raises(WebSocketProtocolError) as exc:
        parser.feed(text("two") + frame(PING, b"p") + text("bad", key=None))
    assert normalise(ws_impl, exc.value.events) == [T("two"), PI(b"p")]
    assert (exc.value.code, exc.value.reason) == (1002, "client frame is not masked")


def test_closed_and_in_message(ws_impl):
    parser = ws_impl.FrameParser()
    assert not parser.closed and not parser.in_message
    parser.feed(text("a", fin=False))
    assert parser.in_message
    parser.feed(frame(CONTINUATION, b"b"))
    assert not parser.in_message
    parser.feed(close(1000)[:3])
    assert not parser.closed
    parser.feed(close(1000)[3:])
    assert parser.closed
    assert parser.feed(b"\xff" * 10) == []


def test_feed_takes_any_buffer(ws_impl):
    parser = ws_impl.FrameParser()
    data = text("buffer") + binary(b"view")
    events = parser.feed(bytearray(data[:5])) + parser.feed(memoryview(data)[5:])
    assert normalise(ws_impl, events) == [T("buffer"), B(b"view")]


def test_max_message_size_validation(ws_impl):
    with pytest.raises(ValueError):
        ws_impl.FrameParser(max_message_size=-1)
    assert ws_impl.FrameParser(max_message_size=None).max_message_size == -1
    assert ws_impl.FrameParser().max_message_size == 16 * 1024 * 1024


def test_large_message_in_many_pieces(ws_impl):
    payload = random.Random(7).randbytes(300_000)
    data = binary(payload, key=b"\x01\x02\x03\x04")
    parser = ws_impl.FrameParser()
    events = []
    for i in range(0, len(data), 4093):
        events += parser.feed(data[i : i + 4093])
    assert normalise(ws_impl, events) == [B(payload)]


def test_large_text_fragmented_and_split(ws_impl):
    message = ("żółw \U0001f422 " * 5000).encode()
    chunks = [message[i : i + 9999] for i in range(0, len(message), 9999)]
    data = frame(TEXT, chunks[0], fin=False) + b"".join(
        frame(CONTINUATION, c, fin=i == len(chunks) - 1) + frame(PING, b"%d" % i) for i, c in enumerate(chunks[1:], 1)
    )
    events, failure = feed_all(ws_impl, splits(data, "random-9"), {})
    assert failure is None
    assert [e for e in events if e[0] == "text"] == [T(message.decode())]
    assert len(events) == len(chunks)


def test_message_buffer_reused_after_large_message(ws_impl):
    parser = ws_impl.FrameParser()
    big = b"x" * 200_000
    for _ in range(3):
        data = binary(big[:100_000], fin=False) + frame(CONTINUATION, big[100_000:])
        events = parser.feed(data[:1000]) + parser.feed(data[1000:])
        assert normalise(ws_impl, events) == [B(big)]
        assert normalise(ws_impl, parser.feed(text("small"))) == [T("small")]


# --- properties: client frames round-trip, arbitrary bytes never crash ------------------------

message_st = st.one_of(
    st.tuples(st.just(TEXT), st.text(max_size=300)),
    st.tuples(st.just(BINARY), st.binary(max_size=300)),
)


def client_stream(messages, draw_fragments, draw_key, with_pings, compressor=None):
    out = []
    for opcode, data in messages:
        payload = data.encode("utf-8") if opcode == TEXT else data
        compressed = compressor is not None and len(payload) % 2 == 0
        wire = deflated(payload, compressor) if compressed else payload
        pieces = draw_fragments(wire)
        for i, piece in enumerate(pieces):
            out.append(
                frame(
                    opcode if i == 0 else CONTINUATION,
                    piece,
                    fin=i == len(pieces) - 1,
                    rsv1=compressed and i == 0,
                    key=draw_key(),
                )
            )
            if with_pings and i < len(pieces) - 1:
                out.append(frame(PING, piece[:125], key=draw_key()))
    return b"".join(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(message_st, max_size=8), st.booleans(), st.booleans(), st.data())
def test_roundtrip_client_frames(ws_impl, messages, with_pings, deflate, data):
    def draw_fragments(payload):
        cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        bounds = [0, *cuts, len(payload)]
        return [payload[a:b] for a, b in zip(bounds, bounds[1:])]

    def draw_key():
        return data.draw(st.binary(min_size=4, max_size=4))

    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15) if deflate else None
    wire = client_stream(messages, draw_fragments, draw_key, with_pings, compressor)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    bounds = [0, *cuts, len(wire)]
    parser = ws_impl.FrameParser(deflate=Deflate() if deflate else None)
    events = []
    for a, b in zip(bounds, bounds[1:]):
        events += parser.feed(wire[a:b])
    got = [e for e in normalise(ws_impl, events) if e[0] != "ping"]
    assert got == [T(d) if op == TEXT else B(d) for op, d in messages]


# Streams of frames with arbitrary header bits, lengths and masks: the
# parser either yields events or raises WebSocketProtocolError (never any
# other exception), the same way in both implementations, however split.
raw_frame_st = st.builds(
    lambda b0, masked, payload, declared, form, key: frame(
        b0 & 0x0F,
        payload,
        fin=bool(b0 & 0x80),
        rsv1=bool(b0 & 0x40),
        rsv2=bool(b0 & 0x20),
        rsv3=bool(b0 & 0x10),
        key=key if masked else None,
        length=declared,
        form=form,
    ),
    st.integers(0, 255),
    st.sampled_from([True, True, True, False]),
    st.one_of(st.binary(max_size=40), st.text(max_size=20).map(lambda s: s.encode("utf-8"))),
    st.none() | st.none() | st.integers(0, 200),
    st.none() | st.none() | st.sampled_from([7, 16, 64]),
    st.binary(min_size=4, max_size=4),
)


def outcome(impl, pieces, deflate, max_size):
    parser = impl.FrameParser(deflate=Deflate() if deflate else None, max_message_size=max_size)
    events = []
    try:
        for piece in pieces:
            events += parser.feed(piece)
    except WebSocketProtocolError as exc:
        assert exc.code in (1002, 1007, 1009)
        assert exc.reason.isascii() and len(exc.reason.encode()) <= 123
        return normalise(impl, events + exc.events), exc.code, exc.reason
    return normalise(impl, events), None, None


def _implementations():
    from fastbase.websocket import _frames_py as _websocket_py

    try:
        from fastbase.websocket import _frames as _websocket
    except ImportError:  # pragma: no cover - the fixture tests report it
        return [_websocket_py]
    return [_websocket, _websocket_py]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(raw_frame_st, max_size=6) | st.binary(max_size=80).map(lambda b: [b]),
    st.booleans(),
    st.sampled_from([None, 0, 20, 1000]),
    st.data(),
)
def test_arbitrary_frames_agree(frames, deflate, max_size, data):
    wire = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    bounds = [0, *cuts, len(wire)]
    pieces = [wire[a:b] for a, b in zip(bounds, bounds[1:])]
    results = set()
    for impl in _implementations():
        for how in (pieces, [wire]):
            events, code, reason = outcome(impl, how, deflate, max_size)
            results.add((repr(events), code, reason))
    assert len(results) == 1, results


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_never_crash(blob, deflate):
    results = set()
    for impl in _implementations():
        events, code, reason = outcome(impl, [blob], deflate, 100)
        results.add((repr(events), code, reason))
        events2, code2, reason2 = outcome(impl, [blob[i : i + 1] for i in range(len(blob))], deflate, 100)
        results.add((repr(events2), code2, reason2))
    assert len(results) == 1, results


# --- writers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, head",
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_encode_frame_minimal_length(ws_impl, n, head):
    payload = b"\xab" * n
    assert ws_impl.encode_frame(ws_impl.BINARY, payload) == head + payload
    assert ws_impl.encode_binary(payload) == head + payload


def test_encode_frame_bits(ws_impl):
    assert ws_impl.encode_frame(ws_impl.TEXT, b"a", fin=False) == b"\x01\x01a"
    assert ws_impl.encode_frame(ws_impl.CONTINUATION, b"b") == b"\x80\x01b"
    assert ws_impl.encode_frame(ws_impl.TEXT, b"c", rsv1=True) == b"\xc1\x01c"
    assert ws_impl.encode_frame(ws_impl.BINARY, bytearray(b"d")) == b"\x82\x01d"
    assert ws_impl.encode_frame(ws_impl.BINARY, memoryview(b"xey")[1:2]) == b"\x82\x01e"


def test_encode_helpers(ws_impl):
    # RFC 6455 5.7: "A single-frame unmasked text message
    # 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f (contains "Hello")"
    assert ws_impl.encode_text("Hello") == bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    # 'Unmasked Ping request and masked Ping response
    # 0x89 0x05 0x48 0x65 0x6c 0x6c 0x6f (contains a body of "Hello")'
    assert ws_impl.encode_ping(b"Hello") == bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    assert ws_impl.encode_pong(b"Hello") == bytes([0x8A, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    assert ws_impl.encode_text("é☃\U0001f600") == b"\x81\x09" + "é☃\U0001f600".encode()
    assert ws_impl.encode_text("") == b"\x81\x00"
    assert ws_impl.encode_ping() == b"\x89\x00"
    assert ws_impl.encode_close() == b"\x88\x02\x03\xe8"
    assert ws_impl.encode_close(1001, "bye") == b"\x88\x05\x03\xe9bye"
    assert ws_impl.encode_close(4000, "ä") == b"\x88\x04\x0f\xa0\xc3\xa4"
    assert ws_impl.encode_close(None) == b"\x88\x00"
    assert ws_impl.encode_close(1000, "r" * 123)[:2] == b"\x88\x7d"


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.encode_frame(3, b""),
        lambda m: m.encode_frame(0x10, b""),
        lambda m: m.encode_frame(m.PING, b"x" * 126),
        lambda m: m.encode_frame(m.PING, b"", fin=False),
        lambda m: m.encode_frame(m.CLOSE, b"", rsv1=True),
        lambda m: m.encode_frame(m.CONTINUATION, b"", rsv1=True),
        lambda m: m.encode_ping(b"x" * 126),
        lambda m: m.encode_close(1005),
        lambda m: m.encode_close(1006),
        lambda m: m.encode_close(1015),
        lambda m: m.encode_close(999),
        lambda m: m.encode_close(5000),
        lambda m: m.encode_close(1000, "r" * 124),
        lambda m: m.encode_close(1000, "é" * 62),
        lambda m: m.encode_close(None, "reason without code"),
    ],
)
def test_encode_refuses_what_a_frame_cannot_carry(ws_impl, call):
    with pytest.raises(ValueError):
        call(ws_impl)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda m: m.encode_text(b"bytes"), TypeError),
        (lambda m: m.encode_binary("str"), TypeError),
        (lambda m: m.encode_frame(1, "str"), TypeError),
        (lambda m: m.encode_close(1000, b"bytes"), TypeError),
        (lambda m: m.encode_text("\ud800"), UnicodeEncodeError),
    ],
)
def test_encode_type_errors(ws_impl, call, error):
    with pytest.raises(error):
        call(ws_impl)


def test_server_frames_parse_back():
    """What the writer emits is what a client reads (unmasked, minimal)."""
    from fastbase.websocket import _frames_py as _websocket_py

    for impl in _implementations():
        for payload in (b"", b"x" * 125, b"y" * 126, b"z" * 70000):
            fin, rsv1, opcode, got, rest = parse_server_frame(impl.encode_binary(payload))
            assert (fin, rsv1, opcode, got, rest) == (True, False, BINARY, payload, b"")
    assert _websocket_py.TEXT == TEXT and _websocket_py.PONG == PONG and _websocket_py.CLOSE == CLOSE


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([0, 1, 2, 8, 9, 10]),
    st.binary(max_size=200) | st.integers(0, 70000).map(lambda n: b"\x5a" * n),
    st.booleans(),
    st.booleans(),
)
def test_writers_agree(opcode, payload, fin, rsv1):
    results = set()
    for impl in _implementations():
        try:
            results.add(impl.encode_frame(opcode, payload, fin=fin, rsv1=rsv1))
        except ValueError as exc:
            results.add(str(exc))
    assert len(results) == 1


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.integers(0, 70000)), st.text(max_size=70))
def test_encode_close_agrees(code, reason):
    results = set()
    for impl in _implementations():
        try:
            results.add(impl.encode_close(code, reason))
        except ValueError as exc:
            results.add(str(exc))
    assert len(results) == 1


# --- permessage-deflate: the writer side ---------------------------------------------------


def test_encode_compressed_rfc7692_hello(ws_impl):
    # RFC 7692 7.2.3.1: 'the payload of a message containing "Hello" ...
    # 0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00'; 7.2.3.2: with the
    # window shared, the second "Hello" is 0xc1 0x05 0xf2 0x00 0x11 0x00 0x00.
    deflate = Deflate()
    assert ws_impl.encode_text("Hello", deflate) == bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    assert ws_impl.encode_text("Hello", deflate) == bytes([0xC1, 0x05, 0xF2, 0x00, 0x11, 0x00, 0x00])


def test_encode_compressed_no_context_takeover(ws_impl):
    deflate = Deflate(server_no_context_takeover=True)
    first = ws_impl.encode_text("Hello", deflate)
    assert ws_impl.encode_text("Hello", deflate) == first
    _, rsv1, opcode, payload, _ = parse_server_frame(first)
    # A client that keeps no window between messages reads each one alone.
    assert rsv1 and opcode == TEXT and inflate_server_message(payload) == b"Hello"


def test_encode_compressed_roundtrip_with_a_client_decompressor(ws_impl):
    deflate = Deflate(server_max_window_bits=10)
    client = zlib.decompressobj(-15)
    rng = random.Random(3)
    for i in range(20):
        message = bytes(rng.choice(b"abcdef ") for _ in range(rng.randint(0, 3000)))
        wire = ws_impl.encode_binary(message, deflate) if i % 2 else ws_impl.encode_text(message.decode(), deflate)
        fin, rsv1, opcode, payload, rest = parse_server_frame(wire)
        assert fin and rsv1 and rest == b""
        assert inflate_server_message(payload, client) == message


def test_parser_reads_what_a_deflate_writer_wrote(ws_impl):
    """Client and server both Deflate objects: a message the server's writer
    compresses, masked as a client would, reads back (window kept)."""
    sender, receiver = Deflate(), Deflate()
    parser = ws_impl.FrameParser(deflate=receiver)
    for message in ("first message", "first message again", "x" * 5000, ""):
        _, rsv1, opcode, payload, _ = parse_server_frame(ws_impl.encode_text(message, sender))
        assert normalise(ws_impl, parser.feed(frame(opcode, payload, rsv1=rsv1))) == [T(message)]


def _corrupted_compressed_text(rnd):
    """A compressed text message (one frame or two), its deflate data
    sometimes damaged: the frames' wire bytes."""
    text = rnd.choice([b"hello world", "caf\u00e9 \u20ac".encode(), bytes(rnd.randrange(256) for _ in range(20))])
    compressor = zlib.compressobj(wbits=-15)
    data = bytearray((compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4])
    for _ in range(rnd.randrange(3)):
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    cut = rnd.randrange(len(data) + 1) if rnd.random() < 0.5 else len(data)
    frames = [(cut == len(data), True, 1, bytes(data[:cut]))]
    if cut < len(data):
        frames.append((True, False, 0, bytes(data[cut:])))
    wire = b""
    for fin, rsv1, opcode, payload in frames:
        mask = bytes(rnd.randrange(256) for _ in range(4))
        wire += bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode, 0x80 | len(payload)]) + mask
        wire += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return wire


def test_compressed_text_errors_do_not_depend_on_how_bytes_arrive(ws_impl):
    """Invalid deflate data and the invalid UTF-8 it may inflate to: which
    one fails the connection is decided by the frame, never by the reads it
    arrived in (the UTF-8 of a compressed frame is checked once the frame is
    inflated whole)."""
    rnd = random.Random(7)
    cases = [b"A\x87\x06\x00\x00\x00\\\x00\x00\x00\x00\x00\x00"]  # found by hypothesis
    cases += [_corrupted_compressed_text(rnd) for _ in range(400)]
    failures = 0
    for wire in cases:
        expected = outcome(ws_impl, [wire], True, 1000)
        failures += expected[1] is not None
        for pieces in ([wire[i : i + 1] for i in range(len(wire))], [wire[:5], wire[5:]], [wire[:-1], wire[-1:]]):
            assert outcome(ws_impl, pieces, True, 1000) == expected, wire
    assert outcome(ws_impl, [cases[0]], True, 1000)[1:] == (1007, "invalid deflate data")
    assert failures > 50  # the corpus does reach the error paths


# --- bad arguments: both twins refuse them, with the same exception type -------------
# (found by fuzz/: the compiled encoder took encode_frame(-1) as opcode 0xF,
# truncated a float opcode or close code, and raised OverflowError where the
# twin said "unknown opcode")

BAD_ARGUMENTS = [
    pytest.param(lambda m: m.encode_frame(-1, b""), ValueError, id="negative-opcode"),
    pytest.param(lambda m: m.encode_frame(-15, b""), ValueError, id="negative-opcode-low-bits-known"),
    pytest.param(lambda m: m.encode_frame(16), ValueError, id="opcode-over-4-bits"),
    pytest.param(lambda m: m.encode_frame(2**31), ValueError, id="opcode-over-c-int"),
    pytest.param(lambda m: m.encode_frame(2**64), ValueError, id="opcode-over-64-bits"),
    pytest.param(lambda m: m.encode_frame(1.0), TypeError, id="float-opcode"),
    pytest.param(lambda m: m.encode_frame(None), TypeError, id="none-opcode"),
    pytest.param(lambda m: m.encode_frame("1"), TypeError, id="str-opcode"),
    pytest.param(lambda m: m.encode_frame(1, None), TypeError, id="none-payload"),
    pytest.param(lambda m: m.encode_frame(1, "x"), TypeError, id="str-payload"),
    pytest.param(lambda m: m.encode_close(1000.0), TypeError, id="float-close-code"),
    pytest.param(lambda m: m.encode_close("1000"), TypeError, id="str-close-code"),
    pytest.param(lambda m: m.encode_close(2**70), ValueError, id="huge-close-code"),
    pytest.param(lambda m: m.encode_close(1000, None), TypeError, id="none-close-reason"),
    pytest.param(lambda m: m.encode_ping(None), TypeError, id="none-ping"),
    pytest.param(lambda m: m.encode_binary(None), TypeError, id="none-binary"),
    pytest.param(lambda m: m.encode_text(None), TypeError, id="none-text"),
    pytest.param(lambda m: m.FrameParser(max_message_size=1.5), TypeError, id="float-max-message-size"),
    pytest.param(lambda m: m.FrameParser(max_message_size="5"), TypeError, id="str-max-message-size"),
    pytest.param(lambda m: m.FrameParser(max_message_size=-1), ValueError, id="negative-max-message-size"),
    pytest.param(lambda m: m.FrameParser(max_message_size=2**63), OverflowError, id="max-message-size-over-64-bits"),
    pytest.param(lambda m: m.FrameParser().feed(None), TypeError, id="feed-none"),
    pytest.param(lambda m: m.FrameParser().feed("x"), TypeError, id="feed-str"),
]


@pytest.mark.parametrize("call, error", BAD_ARGUMENTS)
def test_bad_arguments_refused_alike(ws_impl, call, error):
    with pytest.raises(Exception) as info:
        call(ws_impl)
    assert type(info.value) is error


def test_largest_arguments_accepted(ws_impl):
    assert ws_impl.FrameParser(max_message_size=2**63 - 1).max_message_size == 2**63 - 1
    assert ws_impl.encode_frame(True) == b"\x81\x00"  # bool is an int: opcode 1
    assert ws_impl.encode_frame(0xA, b"x") == b"\x8a\x01x"
