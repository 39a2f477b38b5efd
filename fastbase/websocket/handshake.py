"""The WebSocket opening handshake, server side (RFC 6455 section 4.2), sans-IO.

- ``is_websocket_upgrade(headers)``: does the request ask to upgrade to
  WebSocket (an ``Upgrade`` field listing the ``websocket`` token)?
- ``check_request(method, http_version, headers) -> Handshake``: validates
  the client's opening handshake (RFC 6455 4.2.1) from the request's
  ``(lower-cased name, value)`` bytes pairs; a refusal raises
  ``HandshakeError`` with the HTTP status (400, or 426 for an unsupported
  ``Sec-WebSocket-Version``), a reason, and the fields the refusal must carry.
  ``Handshake`` holds the key, the ``Sec-WebSocket-Accept`` value, the
  offered subprotocols and the raw extension offer (for
  ``deflate.negotiate_deflate``).
- ``encode_accept(handshake, subprotocol, extensions, headers)``: the 101
  response head (RFC 6455 4.2.2), with the application's extra fields
  checked (CR/LF/NUL refused, handshake fields reserved to the server).
- ``encode_refusal(error)``: the whole 400/426 response, reason as body.
- ``accept_key(key)``: RFC 6455 4.2.2's Sec-WebSocket-Accept computation.

Shared by both frame parser implementations; the head is serialized by
``fastbase.http.parser.encode_head``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from fastbase.http.errors import InvalidResponse
from fastbase.http.parser import encode_head
from fastbase.http.wire import to_bytes

__all__ = [
    "Handshake",
    "HandshakeError",
    "is_websocket_upgrade",
    "check_request",
    "parse_subprotocols",
    "accept_key",
    "encode_accept",
    "encode_refusal",
    "WEBSOCKET_VERSION",
]

Header = Tuple[bytes, bytes]
_Text = Union[str, bytes]

#: RFC 6455 4.1: "The value of this header field MUST be 13."
WEBSOCKET_VERSION = b"13"

# RFC 6455 1.3: the server "concatenate[s] this with the Globally Unique
# Identifier (GUID, [RFC4122]) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11""
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_OWS = b" \t"

# Fields of the 101 response that the handshake itself decides; an
# application passing them in ``headers`` is a bug (the ASGI spec says of
# websocket.accept's headers: "Must not include a header named
# sec-websocket-protocol; use the subprotocol key instead").
_SERVER_FIELDS = frozenset({b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-protocol", b"sec-websocket-extensions"})


class HandshakeError(Exception):
    """An opening handshake the server refuses: answer ``status`` with
    ``headers`` (extra ``(name, value)`` bytes pairs) and ``reason``."""

    def __init__(self, status: int, reason: str, headers: Sequence[Header] = ()) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = list(headers)


class Handshake:
    """A valid opening handshake.

    ``key``: the Sec-WebSocket-Key as sent; ``accept``: the
    Sec-WebSocket-Accept value answering it; ``subprotocols``: the offered
    subprotocols in the client's order (str); ``extensions``: the
    Sec-WebSocket-Extensions offer (field lines joined with ", "), or None.
    """

    __slots__ = ("key", "accept", "subprotocols", "extensions")

    def __init__(self, key: bytes, subprotocols: List[str], extensions: Optional[bytes]) -> None:
        self.key = key
        self.accept = accept_key(key)
        self.subprotocols = subprotocols
        self.extensions = extensions

    def __repr__(self) -> str:
        return f"<Handshake key={self.key!r} subprotocols={self.subprotocols!r} extensions={self.extensions!r}>"


def accept_key(key: _Text) -> bytes:
    """RFC 6455 4.2.2: "the base64-encoded SHA-1 of the concatenation of the
    |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string
    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11""."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def _split_tokens(values: Iterable[bytes]) -> List[bytes]:
    # RFC 9110 5.6.1: a #list, comma-separated, OWS around elements, empty
    # elements ignored; several field lines are one list.
    items = []
    for value in values:
        for item in value.split(b","):
            item = item.strip(_OWS)
            if item:
                items.append(item)
    return items


def _field_values(headers: Iterable[Header], name: bytes) -> List[bytes]:
    return [value for field, value in headers if field == name]


def _has_token(values: List[bytes], token: bytes) -> bool:
    return token in [item.lower() for item in _split_tokens(values)]


def is_websocket_upgrade(headers: Iterable[Header]) -> bool:
    """The request asks to upgrade to WebSocket (Upgrade lists "websocket")."""
    return _has_token(_field_values(headers, b"upgrade"), b"websocket")


def parse_subprotocols(values: Iterable[bytes]) -> List[str]:
    """The subprotocols offered in Sec-WebSocket-Protocol field values.

    RFC 6455 4.1: "The elements that comprise this value MUST be non-empty
    strings with characters in the range U+0021 to U+007E not including
    separator characters as defined in [RFC2616] and MUST all be unique
    strings." (that is, tokens). A violation is a 400.
    """
    protocols: List[str] = []
    for item in _split_tokens(values):
        if not all(c in _TCHAR for c in item):
            raise HandshakeError(400, "Sec-WebSocket-Protocol lists a value that is not a token")
        protocol = item.decode("ascii")
        if protocol in protocols:
            raise HandshakeError(400, "Sec-WebSocket-Protocol lists a subprotocol twice")
        protocols.append(protocol)
    return protocols


def _valid_key(key: bytes) -> bool:
    # RFC 6455 4.1: "a nonce consisting of a randomly selected 16-byte value
    # that has been base64-encoded": 22 base64 characters and "==" padding.
    return len(key) == 24 and key.endswith(b"==") and all(c in _BASE64 for c in key[:22])


def check_request(method: _Text, http_version: _Text, headers: Sequence[Header]) -> Handshake:
    """Validate a client's opening handshake; raise HandshakeError to refuse it.

    RFC 6455 4.2.1: "If the server, while reading the handshake, finds that
    the client did not send a handshake that matches the description below
    ..., the server MUST stop processing the client's handshake and return an
    HTTP response with an appropriate error code (such as 400 Bad Request)."
    """
    if isinstance(method, str):
        method = method.encode("ascii", "replace")
    if isinstance(http_version, bytes):
        http_version = http_version.decode("ascii", "replace")
    # 1. "An HTTP/1.1 or higher GET request, including a "Request-URI""
    if method != b"GET":
        raise HandshakeError(400, "WebSocket handshake must be a GET request")
    if http_version not in ("1.1",):
        raise HandshakeError(400, "WebSocket handshake needs HTTP/1.1")
    # 2. "A |Host| header field containing the server's authority."
    if not _field_values(headers, b"host"):
        raise HandshakeError(400, "WebSocket handshake without Host")
    # 3. "An |Upgrade| header field containing the value "websocket", treated
    # as an ASCII case-insensitive value."
    if not is_websocket_upgrade(headers):
        raise HandshakeError(400, "Upgrade header does not list websocket")
    # 4. "A |Connection| header field that includes the token "Upgrade",
    # treated as an ASCII case-insensitive value."
    if not _has_token(_field_values(headers, b"connection"), b"upgrade"):
        raise HandshakeError(400, "Connection header does not list upgrade")
    # 6. "A |Sec-WebSocket-Version| header field, with a value of 13." 4.2.2:
    # "If this version does not match a version understood by the server,
    # the server MUST abort the WebSocket handshake described in this section
    # and instead send an appropriate HTTP error code (such as 426 Upgrade
    # Required) and a |Sec-WebSocket-Version| header field indicating the
    # version(s) the server is capable of understanding."
    versions = _field_values(headers, b"sec-websocket-version")
    if len(versions) > 1:
        raise HandshakeError(400, "Sec-WebSocket-Version sent more than once")
    if not versions or versions[0].strip(_OWS) != WEBSOCKET_VERSION:
        raise HandshakeError(
            426,
            "unsupported or missing Sec-WebSocket-Version (13 is supported)",
            [(b"sec-websocket-version", WEBSOCKET_VERSION)],
        )
    # 5. "A |Sec-WebSocket-Key| header field with a base64-encoded (see
    # Section 4 of [RFC4648]) value that, when decoded, is 16 bytes in
    # length." 11.3.1: it "MUST NOT appear more than once in an HTTP request".
    keys = _field_values(headers, b"sec-websocket-key")
    if not keys:
        raise HandshakeError(400, "missing Sec-WebSocket-Key")
    if len(keys) > 1:
        raise HandshakeError(400, "Sec-WebSocket-Key sent more than once")
    key = keys[0].strip(_OWS)
    if not _valid_key(key) or len(base64.b64decode(key)) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key is not a base64-encoded 16-byte value")
    # 8. "Optionally, a |Sec-WebSocket-Protocol| header field, with a list of
    # values indicating which protocols the client would like to speak".
    subprotocols = parse_subprotocols(_field_values(headers, b"sec-websocket-protocol"))
    # 9. "Optionally, a |Sec-WebSocket-Extensions| header field".
    extension_lines = _field_values(headers, b"sec-websocket-extensions")
    extensions = b", ".join(extension_lines) if extension_lines else None
    return Handshake(key, subprotocols, extensions)


def encode_accept(
    handshake: Handshake,
    subprotocol: Optional[_Text] = None,
    extensions: Optional[bytes] = None,
    headers: Iterable[Tuple[_Text, _Text]] = (),
    *,
    server: Optional[bytes] = b"fastbase",
) -> bytes:
    """The 101 Switching Protocols head accepting ``handshake``.

    ``subprotocol``: the one chosen (it must be one the client offered);
    ``extensions``: the Sec-WebSocket-Extensions response value (from
    ``negotiate_deflate``); ``headers``: the application's extra fields.
    Raises ``InvalidResponse`` for an unoffered subprotocol, a handshake
    field in ``headers``, or CR, LF or NUL anywhere.
    """
    # RFC 6455 4.2.2: "The |Upgrade| header field with value "websocket"",
    # "The |Connection| header field with value "Upgrade"", "The
    # |Sec-WebSocket-Accept| header field".
    fields: List[Tuple[_Text, _Text]] = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", handshake.accept),
    ]
    if subprotocol is not None:
        chosen = to_bytes(subprotocol, "subprotocol").decode("latin-1")
        # 4.2.2: "If the server does not wish to agree to one of the suggested
        # subprotocols, it MUST NOT send back a |Sec-WebSocket-Protocol|
        # header field"; 4.1: the client fails the connection if the
        # response "indicates the use of a subprotocol that was not present
        # in the client's handshake".
        if chosen not in handshake.subprotocols:
            raise InvalidResponse(f"subprotocol {chosen!r} was not offered by the client")
        fields.append((b"Sec-WebSocket-Protocol", chosen.encode("latin-1")))
    if extensions is not None:
        fields.append((b"Sec-WebSocket-Extensions", extensions))
    for name, value in headers:
        bname = to_bytes(name, "header name")
        if bname.lower() in _SERVER_FIELDS:
            raise InvalidResponse(f"the {bname.decode('latin-1')} field of a WebSocket handshake is the server's")
        fields.append((bname, value))
    return encode_head(101, fields, server=server)[0]


def encode_refusal(error: HandshakeError, *, server: Optional[bytes] = b"fastbase") -> bytes:
    """The whole response refusing a handshake: status, fields, reason as the body.

    The connection is closed after it (``Connection: close``).
    """
    body = error.reason.encode("utf-8") + b"\n"
    fields: List[Tuple[_Text, _Text]] = [(b"Content-Type", b"text/plain; charset=utf-8"), *error.headers]
    head = encode_head(error.status, fields, keep_alive=False, body_length=len(body), server=server)[0]
    return head + body
