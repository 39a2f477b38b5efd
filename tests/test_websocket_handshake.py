"""The WebSocket opening handshake (RFC 6455 section 4.2): validating the
client's request, the Sec-WebSocket-Accept computation, the 101 head, and
refusals with their status and reason. The heads are read back by h11 (an
independent HTTP/1.1 implementation)."""

from __future__ import annotations

import h11
import pytest

from fastbase.http.errors import InvalidResponse
from fastbase.parser import RequestParser
from fastbase.websocket.deflate import negotiate_deflate
from fastbase.websocket.handshake import (
    Handshake,
    HandshakeError,
    accept_key,
    check_request,
    encode_accept,
    encode_refusal,
    is_websocket_upgrade,
    parse_subprotocols,
)

# RFC 6455 1.2's example request (its Origin and protocol offers included).
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def parse_request(raw):
    (request, *_rest) = RequestParser().feed(raw)
    return request


def test_rfc6455_1_3_accept_example():
    # RFC 6455 1.3: 'the value of the |Sec-WebSocket-Key| header field in the
    # client's handshake were "dGhlIHNhbXBsZSBub25jZQ==" ... This value is
    # then base64-encoded ..., to give the value
    # "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="'.
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_rfc6455_example_request():
    request = parse_request(RFC_REQUEST)
    assert is_websocket_upgrade(request.headers)
    handshake = check_request(request.method, request.http_version, request.headers)
    assert isinstance(handshake, Handshake)
    assert handshake.key == b"dGhlIHNhbXBsZSBub25jZQ=="
    assert handshake.accept == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert handshake.subprotocols == ["chat", "superchat"]
    assert handshake.extensions is None


HOST = (b"host", b"example.com")
UPGRADE = (b"upgrade", b"websocket")
CONNECTION = (b"connection", b"Upgrade")
KEY = (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")
VERSION = (b"sec-websocket-version", b"13")
VALID = [HOST, UPGRADE, CONNECTION, KEY, VERSION]


def replace(name, *values):
    """VALID with the ``name`` fields replaced by ``values`` (none: removed)."""
    return [h for h in VALID if h[0] != name] + [(name, v) for v in values]


ACCEPTED = {
    "minimal": VALID,
    "upgrade-case-insensitive": replace(b"upgrade", b"WebSocket"),
    "upgrade-in-a-list": replace(b"upgrade", b"h2c, websocket"),
    "upgrade-two-lines": replace(b"upgrade", b"h2c", b"websocket"),
    "connection-in-a-list": replace(b"connection", b"keep-alive, Upgrade"),
    "connection-lower-case": replace(b"connection", b"upgrade"),
    "connection-two-lines": replace(b"connection", b"keep-alive", b"upgrade"),
    "key-with-surrounding-space": replace(b"sec-websocket-key", b" dGhlIHNhbXBsZSBub25jZQ== "),
    "key-all-a": replace(b"sec-websocket-key", b"AAAAAAAAAAAAAAAAAAAAAA=="),
    "version-with-space": replace(b"sec-websocket-version", b" 13 "),
}


@pytest.mark.parametrize("headers", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_accepted(headers):
    handshake = check_request(b"GET", "1.1", headers)
    assert handshake.accept == accept_key(handshake.key)


REFUSED = {
    "post": (b"POST", "1.1", VALID, 400, "must be a GET"),
    "http-1.0": (b"GET", "1.0", VALID, 400, "needs HTTP/1.1"),
    "no-host": (b"GET", "1.1", replace(b"host"), 400, "without Host"),
    "no-upgrade": (b"GET", "1.1", replace(b"upgrade"), 400, "Upgrade header does not list websocket"),
    "upgrade-h2c": (b"GET", "1.1", replace(b"upgrade", b"h2c"), 400, "does not list websocket"),
    "upgrade-websocket-version-suffix": (b"GET", "1.1", replace(b"upgrade", b"websocket/13"), 400, "does not list websocket"),
    "no-connection": (b"GET", "1.1", replace(b"connection"), 400, "Connection header does not list upgrade"),
    "connection-keep-alive": (b"GET", "1.1", replace(b"connection", b"keep-alive"), 400, "does not list upgrade"),
    "no-version": (b"GET", "1.1", replace(b"sec-websocket-version"), 426, "Sec-WebSocket-Version"),
    "version-8": (b"GET", "1.1", replace(b"sec-websocket-version", b"8"), 426, "13 is supported"),
    "version-list": (b"GET", "1.1", replace(b"sec-websocket-version", b"13, 8"), 426, "13 is supported"),
    "version-twice": (b"GET", "1.1", replace(b"sec-websocket-version", b"13", b"13"), 400, "more than once"),
    "no-key": (b"GET", "1.1", replace(b"sec-websocket-key"), 400, "missing Sec-WebSocket-Key"),
    "key-twice": (b"GET", "1.1", replace(b"sec-websocket-key", KEY[1], KEY[1]), 400, "more than once"),
    "key-empty": (b"GET", "1.1", replace(b"sec-websocket-key", b""), 400, "16-byte"),
    "key-15-bytes": (b"GET", "1.1", replace(b"sec-websocket-key", b"AAAAAAAAAAAAAAAAAAAA"), 400, "16-byte"),
    "key-17-bytes": (b"GET", "1.1", replace(b"sec-websocket-key", b"AAAAAAAAAAAAAAAAAAAAAAA="), 400, "16-byte"),
    "key-not-base64": (b"GET", "1.1", replace(b"sec-websocket-key", b"!!!!!!!!!!!!!!!!!!!!!!=="), 400, "16-byte"),
    "key-url-safe-alphabet": (b"GET", "1.1", replace(b"sec-websocket-key", b"-_AAAAAAAAAAAAAAAAAAAA=="), 400, "16-byte"),
    "key-no-padding": (b"GET", "1.1", replace(b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ"), 400, "16-byte"),
    "subprotocol-not-token": (b"GET", "1.1", VALID + [(b"sec-websocket-protocol", b"chat;v=2")], 400, "not a token"),
    "subprotocol-twice": (b"GET", "1.1", VALID + [(b"sec-websocket-protocol", b"chat, chat")], 400, "twice"),
    "subprotocol-twice-across-lines": (
        b"GET",
        "1.1",
        VALID + [(b"sec-websocket-protocol", b"chat"), (b"sec-websocket-protocol", b"chat")],
        400,
        "twice",
    ),
}


@pytest.mark.parametrize("method, version, headers, status, reason", list(REFUSED.values()), ids=list(REFUSED))
def test_refused(method, version, headers, status, reason):
    with pytest.raises(HandshakeError) as exc:
        check_request(method, version, headers)
    assert exc.value.status == status
    assert reason in exc.value.reason
    if status == 426:
        # RFC 6455 4.2.2: "a |Sec-WebSocket-Version| header field indicating
        # the version(s) the server is capable of understanding".
        assert exc.value.headers == [(b"sec-websocket-version", b"13")]


def test_str_method_and_bytes_version():
    assert check_request("GET", b"1.1", VALID).key == KEY[1]


def test_subprotocols():
    assert parse_subprotocols([b"chat, superchat", b" v2.json ,, "]) == ["chat", "superchat", "v2.json"]
    assert parse_subprotocols([]) == []
    headers = VALID + [(b"sec-websocket-protocol", b"a, b"), (b"sec-websocket-protocol", b"c")]
    assert check_request(b"GET", "1.1", headers).subprotocols == ["a", "b", "c"]


def test_extension_lines_joined():
    headers = VALID + [(b"sec-websocket-extensions", b"foo"), (b"sec-websocket-extensions", b"permessage-deflate")]
    assert check_request(b"GET", "1.1", headers).extensions == b"foo, permessage-deflate"


def test_is_websocket_upgrade():
    assert not is_websocket_upgrade([HOST])
    assert not is_websocket_upgrade([(b"upgrade", b"h2c")])
    assert is_websocket_upgrade([(b"upgrade", b"h2c"), (b"upgrade", b"WEBSOCKET")])


# --- the 101 response -----------------------------------------------------------------------


def read_with_h11(head):
    """The response head as an HTTP/1.1 client reads it."""
    client = h11.Connection(h11.CLIENT)
    client.send(
        h11.Request(method="GET", target="/chat", headers=[("Host", "example.com"), ("Connection", "Upgrade"), ("Upgrade", "websocket")])
    )
    client.send(h11.EndOfMessage())
    client.receive_data(head)
    event = client.next_event()
    return event.status_code, [(name, value) for name, value in event.headers]


def test_accept_head():
    handshake = check_request(b"GET", "1.1", VALID + [(b"sec-websocket-protocol", b"chat, superchat")])
    head = encode_accept(handshake, "superchat", headers=[("Set-Cookie", "session=1"), (b"x-extra", b"yes")])
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and head.endswith(b"\r\n\r\n")
    status, headers = read_with_h11(head)
    assert status == 101
    fields = dict(headers)
    # RFC 6455 4.2.2 (5): the Upgrade, Connection and Sec-WebSocket-Accept fields.
    assert fields[b"upgrade"] == b"websocket"
    assert fields[b"connection"] == b"Upgrade"
    assert fields[b"sec-websocket-accept"] == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert fields[b"sec-websocket-protocol"] == b"superchat"
    assert fields[b"set-cookie"] == b"session=1"
    assert fields[b"x-extra"] == b"yes"
    assert b"sec-websocket-extensions" not in fields
    assert b"content-length" not in fields and b"transfer-encoding" not in fields


def test_accept_head_with_deflate():
    handshake = check_request(b"GET", "1.1", VALID + [(b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")])
    value, deflate = negotiate_deflate(handshake.extensions)
    head = encode_accept(handshake, extensions=value, server=None)
    fields = dict(read_with_h11(head)[1])
    assert fields[b"sec-websocket-extensions"] == b"permessage-deflate"
    assert b"sec-websocket-protocol" not in fields
    assert b"server" not in fields


@pytest.mark.parametrize(
    "subprotocol, headers, message",
    [
        ("superchat", [], "was not offered"),
        (None, [("Sec-WebSocket-Protocol", "chat")], "is the server's"),
        (None, [("Upgrade", "websocket")], "is the server's"),
        (None, [("connection", "close")], "is the server's"),
        (None, [("Sec-WebSocket-Accept", "x")], "is the server's"),
        (None, [("sec-websocket-extensions", "permessage-deflate")], "is the server's"),
        (None, [("x-evil", "a\r\nSet-Cookie: b")], "CR, LF or NUL"),
        (None, [("x-evil", "a\nb")], "CR, LF or NUL"),
        (None, [("x-evil", "a\x00b")], "CR, LF or NUL"),
        (None, [("x evil", "a")], "invalid header name"),
        (None, [("x-evil\r\n", "a")], "invalid header name"),
        (None, [("x-text", "snowman ☃")], "not latin-1"),
        ("chat\r\nx: y", [], "was not offered"),
    ],
)
def test_accept_refuses_bad_application_input(subprotocol, headers, message):
    handshake = check_request(b"GET", "1.1", VALID + [(b"sec-websocket-protocol", b"chat")])
    with pytest.raises(InvalidResponse) as exc:
        encode_accept(handshake, subprotocol, headers=headers)
    assert message in str(exc.value)


@pytest.mark.parametrize("name", list(REFUSED)[:3] + ["version-8", "key-15-bytes"])
def test_refusal_response(name):
    method, version, headers, status, reason = REFUSED[name]
    with pytest.raises(HandshakeError) as exc:
        check_request(method, version, headers)
    response = encode_refusal(exc.value)
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "example.com")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    head = client.next_event()
    body = client.next_event()
    assert isinstance(client.next_event(), h11.EndOfMessage)
    fields = dict(head.headers)
    assert head.status_code == status
    assert fields[b"connection"] == b"close"
    assert fields[b"content-type"].startswith(b"text/plain")
    assert reason.encode() in body.data
    if status == 426:
        assert fields[b"sec-websocket-version"] == b"13"
