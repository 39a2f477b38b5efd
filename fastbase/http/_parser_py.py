"""The pure-Python twin of ``_parser.pyx``: the readable specification.

Sans-IO: bytes in, events out (``RequestParser.feed``); response parts in,
bytes out (``encode_head`` and friends). ``_parser.pyx`` is the fast copy and
must behave identically; every parser/writer test runs against both.

Each protocol rule below quotes the RFC 9112 / RFC 9110 clause it enforces.
Errors are detected line by line in stream order, so the status a malformed
input produces does not depend on how the input was split into ``feed`` calls.
"""

from __future__ import annotations

import sys
import time
from email.utils import formatdate
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from . import limits
from .errors import (
    BadRequest,
    ContentTooLarge,
    HeaderFieldsTooLarge,
    InvalidResponse,
    NotImplementedByServer,
    ProtocolError,
    URITooLong,
    VersionNotSupported,
)
from .status import REASONS
from .wire import (
    CHUNKED,
    CLOSE_DELIMITED,
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    ONE_WRITE_LIMIT,
    to_bytes,
)

__all__ = [
    "RequestParser",
    "Request",
    "EndOfMessage",
    "END",
    "encode_head",
    "encode_response",
    "encode_chunk",
    "encode_trailers",
    "encode_error",
    "date_header_value",
    "NO_BODY",
    "LENGTH",
    "CHUNKED",
    "CLOSE_DELIMITED",
    "LAST_CHUNK",
    "CONTINUE_RESPONSE",
    "ONE_WRITE_LIMIT",
]

Header = Tuple[bytes, bytes]

# --- character classes -------------------------------------------------------

# RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
#   "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEXDIG = frozenset(b"0123456789abcdefABCDEF")
_DIGIT = frozenset(b"0123456789")
# RFC 9110 5.5: field-vchar = VCHAR / obs-text, with SP and HTAB between them.
# CR, LF and NUL are "invalid and dangerous"; the other CTLs and DEL are
# refused too, since no legitimate client sends them.
_FIELD_VALUE_OK = frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100)) | {0x09}
# RFC 9112 3.2: request-target has no whitespace; CTLs, DEL and "#" (a fragment
# is never sent, RFC 9110 4.2.5) are refused. obs-text passes for raw UTF-8.
_TARGET_OK = frozenset(range(0x21, 0x7F)) - {0x23} | frozenset(range(0x80, 0x100))
# RFC 3986 3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims )
_REG_NAME = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=")
_IP_LITERAL = frozenset(b"0123456789abcdefABCDEF:.")
_SCHEME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_OWS = b" \t"

_INT64_MAX = (1 << 63) - 1

# --- parser states -----------------------------------------------------------

_REQUEST_LINE = 0
_HEADERS = 1
_BODY = 2
_CHUNK_SIZE = 3
_CHUNK_DATA = 4
_CHUNK_CRLF = 5
_TRAILERS = 6
_PAUSED = 7  # after an Upgrade request: bytes are held for the next protocol
_CLOSED = 8  # after a request that ends the connection: bytes are ignored
_ERROR = 9


class Request:
    """A request head. ``headers`` is a list of (lower-cased name, value)."""

    __slots__ = (
        "method",
        "target",
        "path",
        "query",
        "http_version",
        "headers",
        "host",
        "keep_alive",
        "chunked",
        "content_length",
        "expect_continue",
        "upgrade",
    )

    method: bytes
    target: bytes
    path: bytes
    query: bytes
    http_version: str
    headers: List[Header]
    host: Optional[bytes]
    keep_alive: bool
    chunked: bool
    content_length: Optional[int]
    expect_continue: bool
    upgrade: Optional[bytes]

    def __repr__(self) -> str:
        return f"<Request {self.method.decode('latin-1')} {self.target!r} HTTP/{self.http_version}>"


class EndOfMessage:
    """The request (body included) is complete; ``trailers`` from chunked bodies."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: Sequence[Header] = ()) -> None:
        self.trailers = trailers

    def __repr__(self) -> str:
        return f"<EndOfMessage trailers={list(self.trailers)!r}>"


#: The end of a message without trailers (the common case) is this object.
END = EndOfMessage(())


# The compiled twin holds the limits in C integers; both refuse what does
# not fit, and anything but an int, alike.
_SSIZE_MAX = sys.maxsize
_LLONG_MAX = 2**63 - 1


def _limit(value: int, name: str, largest: int) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not -largest - 1 <= value <= largest:
        raise OverflowError(f"{name} is too large")
    return value


def _is_token(value: Union[bytes, bytearray]) -> bool:
    return bool(value) and all(c in _TCHAR for c in value)


def _split_list(value: bytes) -> List[bytes]:
    # RFC 9110 5.6.1: #element lists, comma-separated with optional whitespace.
    return [item.strip(_OWS) for item in value.split(b",")]


def _valid_authority(value: bytes) -> bool:
    """RFC 9110 7.2 / RFC 3986 3.2: uri-host [ ":" port ], no userinfo."""
    if not value:
        return False
    if value[0] == 0x5B:  # "[" IP-literal "]"
        close = value.find(b"]")
        if close < 2 or not all(c in _IP_LITERAL for c in value[1:close]):
            return False
        rest = value[close + 1 :]
    else:
        colon = value.find(b":")
        host = value if colon < 0 else value[:colon]
        if not host or not all(c in _REG_NAME for c in host):
            return False
        rest = b"" if colon < 0 else value[colon:]
    if rest:
        port = rest[1:]
        if rest[0] != 0x3A or len(port) > 5 or not all(c in _DIGIT for c in port):
            return False
    return True


class RequestParser:
    """Incremental, strict HTTP/1.1 request parser; one per connection.

    ``feed(data)`` returns the events that ``data`` completed, in order:
    ``Request`` heads, ``bytes`` body pieces and ``EndOfMessage``. A malformed
    request raises a ``ProtocolError`` whose ``events`` attribute holds what
    this call completed before the fault; afterwards the parser refuses input.
    """

    def __init__(
        self,
        *,
        max_request_line: int = limits.MAX_REQUEST_LINE,
        max_field_size: int = limits.MAX_FIELD_SIZE,
        max_header_size: int = limits.MAX_HEADER_SIZE,
        max_fields: int = limits.MAX_FIELDS,
        max_chunk_extensions: int = limits.MAX_CHUNK_EXTENSIONS,
        max_body_size: Optional[int] = limits.MAX_BODY_SIZE,
    ) -> None:
        self.max_request_line = _limit(max_request_line, "max_request_line", _SSIZE_MAX)
        self.max_field_size = _limit(max_field_size, "max_field_size", _SSIZE_MAX)
        self.max_header_size = _limit(max_header_size, "max_header_size", _SSIZE_MAX)
        self.max_fields = _limit(max_fields, "max_fields", _SSIZE_MAX)
        self.max_chunk_extensions = _limit(max_chunk_extensions, "max_chunk_extensions", _SSIZE_MAX)
        self.max_body_size = -1 if max_body_size is None else _limit(max_body_size, "max_body_size", _LLONG_MAX)
        self._buf = bytearray()
        self._state = _REQUEST_LINE
        self._error: Optional[ProtocolError] = None
        self._reset_message()

    def _reset_message(self) -> None:
        self._leading_crlf_seen = False
        self._request: Optional[Request] = None
        self._fields: List[Header] = []
        self._section_size = 0
        self._remaining = 0
        self._body_size = 0

    # -- public API --------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No byte of a next request has arrived (keep-alive idle)."""
        return self._state == _REQUEST_LINE and not self._buf and not self._leading_crlf_seen

    @property
    def in_head(self) -> bool:
        """Part of a request head has arrived but not all of it."""
        return self._state in (_REQUEST_LINE, _HEADERS) and not self.idle

    @property
    def paused(self) -> bool:
        """An Upgrade request completed; bytes are held for the new protocol."""
        return self._state == _PAUSED

    def feed(self, data: bytes) -> list:
        state = self._state
        if state == _ERROR:
            assert self._error is not None
            raise type(self._error)(self._error.reason)
        if state == _CLOSED:
            return []
        self._buf += data
        if state == _PAUSED:
            return []
        events: list = []
        try:
            self._run(events)
        except ProtocolError as exc:
            self._state = _ERROR
            self._error = exc
            self._buf.clear()
            exc.events = events  # type: ignore[attr-defined]
            raise
        return events

    def resume(self) -> list:
        """The upgrade was declined: go on parsing the held bytes as HTTP/1.1."""
        if self._state != _PAUSED:
            return []
        # RFC 9112 9.6: "A server that receives a "close" connection option
        # MUST initiate closure of the connection ... after it sends the final
        # response to the request that contained the "close" connection
        # option" -- declining the upgrade does not undo the "close".
        if not self._keep_alive:
            self._state = _CLOSED
            self._buf.clear()
            return []
        self._state = _REQUEST_LINE
        return self.feed(b"")

    def take_buffer(self) -> bytes:
        """The upgrade was accepted: hand over the held bytes; HTTP parsing ends."""
        data = bytes(self._buf)
        self._buf.clear()
        self._state = _CLOSED
        return data

    # -- the state machine -------------------------------------------------

    def _run(self, events: list) -> None:
        while True:
            state = self._state
            if state == _REQUEST_LINE:
                self._check_method_prefix()
                line = self._take_line(self.max_request_line, URITooLong, "request line too long")
                if line is None:
                    return
                # RFC 9112 2.2: "In the interest of robustness, a server that is
                # expecting to receive and parse a request-line SHOULD ignore at
                # least one empty line (CRLF) received prior to the request-line."
                # Exactly one: more is refused.
                if not line and not self._leading_crlf_seen:
                    self._leading_crlf_seen = True
                    continue
                self._parse_request_line(line)
                self._state = _HEADERS
            elif state == _HEADERS or state == _TRAILERS:
                line = self._take_line(self.max_field_size, HeaderFieldsTooLarge, "header field too long", self._section_size)
                if line is None:
                    return
                self._section_size += len(line) + 2
                if line:
                    self._parse_field(line)
                    continue
                if state == _HEADERS:
                    self._finish_head(events)
                else:
                    trailers = self._fields
                    self._end_message(events, EndOfMessage(trailers) if trailers else END)
            elif state == _BODY:
                buf = self._buf
                if not buf:
                    return
                n = min(self._remaining, len(buf))
                events.append(bytes(buf[:n]))
                del buf[:n]
                self._remaining -= n
                if self._remaining == 0:
                    self._end_message(events, END)
            elif state == _CHUNK_SIZE:
                line = self._take_line(
                    limits.MAX_CHUNK_SIZE_DIGITS + self.max_chunk_extensions,
                    BadRequest,
                    "chunk size line too long",
                )
                if line is None:
                    return
                self._parse_chunk_size(line)
            elif state == _CHUNK_DATA:
                buf = self._buf
                if not buf:
                    return
                n = min(self._remaining, len(buf))
                events.append(bytes(buf[:n]))
                del buf[:n]
                self._remaining -= n
                if self._remaining == 0:
                    self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                # RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                # The CRLF after the data is exact; anything else desyncs framing.
                buf = self._buf
                if not buf:
                    return
                if buf[0] != 0x0D or (len(buf) > 1 and buf[1] != 0x0A):
                    raise BadRequest("chunk data not followed by CRLF")
                if len(buf) < 2:
                    return
                del buf[:2]
                self._state = _CHUNK_SIZE
            else:  # _PAUSED or _CLOSED: whatever follows is not ours to parse
                return

    def _check_method_prefix(self) -> None:
        """RFC 9110 9.1: method = token. Checked as the bytes arrive, so a
        client that does not speak HTTP (a TLS handshake on the plain port,
        say) is refused at once instead of when a line ends or the head
        times out. The scan stops where the length limit would, so the
        status never depends on how the input was split."""
        buf = self._buf
        for i in range(min(len(buf), self.max_request_line + 2)):
            c = buf[i]
            if c not in _TCHAR:
                if c == 0x20 or c == 0x0D or c == 0x0A:
                    return
                raise BadRequest("invalid method")

    def _take_line(self, limit: int, too_long: type, reason: str, section: int = -1) -> Optional[bytes]:
        """The next line without its CRLF, or None while it is incomplete.

        ``section`` is the size of the header section so far (-1 outside
        one). Limits are checked before the line's content, and on incomplete
        lines the same way as on complete ones, so the status a request earns
        does not depend on where the input was split.
        """
        buf = self._buf
        nl = buf.find(b"\n")
        received = len(buf) if nl < 0 else nl + 1
        if section >= 0 and section + received > self.max_header_size:
            raise HeaderFieldsTooLarge("header section too large")
        if nl < 0:
            # An incomplete line longer than the limit (plus a CR still waiting
            # for its LF) can only end as an over-long line: refuse it now.
            if len(buf) > limit + 1:
                raise too_long(reason)
            return None
        has_cr = nl > 0 and buf[nl - 1] == 0x0D
        length = nl - 1 if has_cr else nl
        if length > limit:
            raise too_long(reason)
        # RFC 9112 2.2: "a recipient MAY recognize a single LF as a line
        # terminator" -- this parser does not: a bare LF is how requests are
        # smuggled past proxies that disagree about it.
        if not has_cr:
            raise BadRequest("bare LF in request")
        line = bytes(buf[:length])
        del buf[: nl + 1]
        # RFC 9112 2.2: "A sender MUST NOT generate a bare CR ... a recipient
        # of such a bare CR MUST consider that element to be invalid"
        if b"\r" in line:
            raise BadRequest("bare CR in request")
        return line

    def _parse_request_line(self, line: bytes) -> None:
        # RFC 9112 3: request-line = method SP request-target SP HTTP-version
        # Exactly one SP between the parts; no other whitespace anywhere.
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
            raise BadRequest("malformed request line")
        method, target, version = parts
        # RFC 9112 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, with
        # HTTP-name = %s"HTTP" (case-sensitive).
        if len(version) != 8 or version[:5] != b"HTTP/" or version[6] != 0x2E or version[5] not in _DIGIT or version[7] not in _DIGIT:
            raise BadRequest("malformed HTTP version")
        # RFC 9110 15.6.6: 505 for a major version the server does not support
        # (HTTP/2.0 here also covers the h2 connection preface "PRI * HTTP/2.0").
        if version[5] != 0x31:
            raise VersionNotSupported("HTTP version not supported")
        # RFC 9110 2.5: a 1.x minor version above ours is handled as ours.
        http_version = "1.0" if version[7] == 0x30 else "1.1"
        # RFC 9110 9.1: method = token; "The method token is case-sensitive".
        if not _is_token(method):
            raise BadRequest("invalid method")
        if not all(c in _TARGET_OK for c in target):
            raise BadRequest("invalid character in request target")
        request = Request()
        request.method = method
        request.target = target
        request.http_version = http_version
        request.host = None
        # RFC 9112 3.2.3: authority-form is only used for CONNECT, which asks
        # for a tunnel; an origin server does not provide one. RFC 9110 9.3.6:
        # CONNECT's target is "only the host and port number", so CONNECT in
        # any other form is no more serviceable: every CONNECT gets 501, and
        # nothing a proxy might treat as a tunnel reaches the application.
        if method == b"CONNECT":
            raise NotImplementedByServer("CONNECT is not supported")
        first = target[0]
        if first == 0x2F:  # "/": origin-form (RFC 9112 3.2.1)
            path, _, query = target.partition(b"?")
        elif target == b"*":
            # RFC 9112 3.2.4: asterisk-form "is only used for a server-wide
            # OPTIONS request".
            if method != b"OPTIONS":
                raise BadRequest("asterisk-form is only for OPTIONS")
            path, query = target, b""
        else:
            path, query = self._parse_absolute_form(request, target)
        request.path = path
        request.query = query
        self._request = request

    def _parse_absolute_form(self, request: Request, target: bytes) -> Tuple[bytes, bytes]:
        # RFC 9112 3.2.2: absolute-form = absolute-URI; a server MUST accept it.
        sep = target.find(b"://")
        scheme = target[:sep] if sep > 0 else b""
        if not scheme or not (0x41 <= (scheme[0] | 0x20) - 0x20 <= 0x5A) or not all(c in _SCHEME_CHARS for c in scheme):
            raise BadRequest("invalid request target")
        if scheme.lower() not in (b"http", b"https"):
            raise BadRequest("unsupported URI scheme in request target")
        rest = target[sep + 3 :]
        end = len(rest)
        for stop in (b"/", b"?"):
            i = rest.find(stop)
            if 0 <= i < end:
                end = i
        authority = rest[:end]
        # RFC 9110 4.2.4: "a recipient SHOULD parse for userinfo and treat its
        # presence as an error"; an http(s) URI with an empty host is invalid.
        if not _valid_authority(authority):
            raise BadRequest("invalid authority in request target")
        # RFC 9112 3.2.2: "When an origin server receives a request with an
        # absolute-form of request-target, the origin server MUST ignore the
        # received Host header field (if any) and instead use the host
        # information of the request-target."
        request.host = authority
        path, _, query = rest[end:].partition(b"?")
        # RFC 9112 3.3: an empty path component means "/".
        return (path or b"/"), query

    def _parse_field(self, line: bytes) -> None:
        # RFC 9112 5.2: obs-fold is refused: "A server that receives an
        # obs-fold in a request message ... MUST either reject the message by
        # sending a 400 (Bad Request) ... or replace each received obs-fold
        # with one or more SP octets". Also RFC 9112 2.2 for whitespace
        # between the start-line and the first field.
        first = line[0]
        if first == 0x20 or first == 0x09:
            raise BadRequest("obsolete line folding")
        colon = line.find(b":")
        if colon <= 0:
            raise BadRequest("header line without a name")
        name = line[:colon]
        # RFC 9112 5.1: "No whitespace is allowed between the field name and
        # colon. ... A server MUST reject, with a response status code of 400
        # (Bad Request), any received request message that contains whitespace
        # between a header field name and colon."
        if not _is_token(name):
            raise BadRequest("invalid header name")
        # RFC 9112 5.1: OWS before and after the value is not part of it.
        # Only SP and HTAB are OWS (never str.strip(): it eats \x0b, \x0c, ...).
        value = line[colon + 1 :].strip(_OWS)
        if not all(c in _FIELD_VALUE_OK for c in value):
            raise BadRequest("invalid character in header value")
        fields = self._fields
        fields.append((name.lower(), value))
        if len(fields) > self.max_fields:
            raise HeaderFieldsTooLarge("too many header fields")

    def _finish_head(self, events: list) -> None:
        request = self._request
        assert request is not None
        headers = self._fields
        http11 = request.http_version == "1.1"
        hosts = 0
        host = None
        content_length: Optional[bytes] = None
        transfer_encoding: List[bytes] = []
        connection: List[bytes] = []
        upgrade = None
        expect_continue = False
        for name, value in headers:
            if name == b"host":
                hosts += 1
                host = value
            elif name == b"content-length":
                # RFC 9112 6.3 item 5: several differing Content-Length values
                # are unrecoverable; identical duplicates and lists are refused
                # too, since intermediaries disagree on them.
                if content_length is not None:
                    raise BadRequest("duplicate Content-Length")
                content_length = value
            elif name == b"transfer-encoding":
                transfer_encoding.extend(_split_list(value))
            elif name == b"connection":
                connection.extend(item.lower() for item in _split_list(value))
            elif name == b"upgrade":
                # RFC 9110 5.3: several Upgrade lines are one list, in order;
                # RFC 9110 7.8: Upgrade = #protocol, so an empty line offers
                # nothing and is no upgrade request.
                if value:
                    upgrade = value if upgrade is None else upgrade + b", " + value
            elif name == b"expect":
                # RFC 9110 10.1.1: "A server that receives a 100-continue
                # expectation in an HTTP/1.0 request MUST ignore that expectation."
                expect_continue = http11 and value.lower() == b"100-continue"
        # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status
        # code to any HTTP/1.1 request message that lacks a Host header field
        # and to any request message that contains more than one Host header
        # field line or a Host header field with an invalid field value."
        if hosts > 1:
            raise BadRequest("more than one Host header")
        if hosts == 1:
            assert host is not None
            if not _valid_authority(host):
                raise BadRequest("invalid Host header")
        elif http11:
            raise BadRequest("missing Host header")
        if request.host is None:
            request.host = host
        chunked = False
        length = 0
        if transfer_encoding:
            # RFC 9112 6.1: "A server or client that receives an HTTP/1.0
            # message containing a Transfer-Encoding header field MUST treat
            # the message as if the framing is faulty".
            if not http11:
                raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
            # RFC 9112 6.3 item 3: with both, "Such a message might indicate
            # an attempt to perform request smuggling"; refused outright.
            if content_length is not None:
                raise BadRequest("both Transfer-Encoding and Content-Length")
            if any(not item for item in transfer_encoding):
                raise BadRequest("invalid Transfer-Encoding")
            codings = [item.lower() for item in transfer_encoding]
            # RFC 9112 6.3 item 4: "If a Transfer-Encoding header field is
            # present in a request and the chunked transfer coding is not the
            # final encoding, the message body length cannot be determined
            # reliably; the server MUST respond with the 400 (Bad Request)".
            # RFC 9112 6.1: chunked MUST NOT be applied more than once.
            if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
                raise BadRequest("chunked must be the final and only chunked coding")
            # RFC 9112 6.1: "A server that receives a request message with a
            # transfer coding it does not understand SHOULD respond with 501".
            if len(codings) > 1:
                raise NotImplementedByServer("unsupported transfer coding")
            chunked = True
        elif content_length is not None:
            length = self._parse_content_length(content_length)
            if self.max_body_size >= 0 and length > self.max_body_size:
                raise ContentTooLarge("request body too large")
        # RFC 9112 9.3: HTTP/1.1 persists unless "close" is given; HTTP/1.0
        # persists only with "keep-alive" (RFC 9112 C.2.2).
        if b"close" in connection:
            keep_alive = False
        else:
            keep_alive = http11 or b"keep-alive" in connection
        # RFC 9110 7.8: "A server MUST ignore an Upgrade header field that is
        # received in an HTTP/1.0 request"; the sender MUST also list
        # "upgrade" in Connection.
        if not (http11 and upgrade is not None and b"upgrade" in connection):
            upgrade = None
        request.headers = headers
        request.keep_alive = keep_alive
        request.chunked = chunked
        request.content_length = None if chunked else length
        request.expect_continue = expect_continue
        request.upgrade = upgrade
        events.append(request)
        self._upgrade_pending = upgrade is not None
        self._keep_alive = keep_alive
        self._fields = []
        self._section_size = 0
        if chunked:
            self._state = _CHUNK_SIZE
        elif length:
            self._remaining = length
            self._state = _BODY
        else:
            self._end_message(events, END)

    @staticmethod
    def _parse_content_length(value: bytes) -> int:
        # RFC 9110 8.6: Content-Length = 1*DIGIT. Parsed by hand: int() also
        # accepts "+1", " 1", "1_0" and non-ASCII digits.
        if not value or not all(c in _DIGIT for c in value):
            raise BadRequest("invalid Content-Length")
        digits = value.lstrip(b"0")
        if len(digits) > limits.MAX_CONTENT_LENGTH_DIGITS:
            raise BadRequest("Content-Length out of range")
        length = int(digits or b"0")
        if length > _INT64_MAX:
            raise BadRequest("Content-Length out of range")
        return length

    def _parse_chunk_size(self, line: bytes) -> None:
        # RFC 9112 7.1: chunk-size = 1*HEXDIG, then
        # chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
        n = 0
        size = len(line)
        while n < size and line[n] in _HEXDIG:
            n += 1
        if n == 0:
            raise BadRequest("invalid chunk size")
        if n > limits.MAX_CHUNK_SIZE_DIGITS:
            raise BadRequest("chunk size too large")
        if size - n > self.max_chunk_extensions:
            raise BadRequest("chunk extensions too long")
        if n < size:
            _check_chunk_extensions(line, n)
        chunk = int(line[:n], 16)
        if chunk == 0:
            self._state = _TRAILERS
            self._fields = []
            self._section_size = 0
            return
        if chunk > _INT64_MAX:
            raise BadRequest("chunk size too large")
        self._body_size += chunk
        if self.max_body_size >= 0 and self._body_size > self.max_body_size:
            raise ContentTooLarge("request body too large")
        self._remaining = chunk
        self._state = _CHUNK_DATA

    def _end_message(self, events: list, end: EndOfMessage) -> None:
        events.append(end)
        upgrade = self._upgrade_pending
        keep_alive = self._keep_alive
        self._reset_message()
        self._upgrade_pending = False
        if upgrade:
            self._state = _PAUSED
        elif keep_alive:
            self._state = _REQUEST_LINE
        else:
            # RFC 9112 9.6: after "close" the server does not process further
            # requests on this connection.
            self._state = _CLOSED
            self._buf.clear()

    _upgrade_pending = False
    _keep_alive = True


def _check_chunk_extensions(line: bytes, i: int) -> None:
    """Validate ``*( BWS ";" BWS name [ BWS "=" BWS value ] )`` from ``line[i:]``."""
    size = len(line)

    def skip_ws(j: int) -> int:
        while j < size and line[j] in (0x20, 0x09):
            j += 1
        return j

    while i < size:
        i = skip_ws(i)
        if i >= size or line[i] != 0x3B:  # ";"
            raise BadRequest("invalid chunk extension")
        i = skip_ws(i + 1)
        start = i
        while i < size and line[i] in _TCHAR:
            i += 1
        if i == start:
            raise BadRequest("invalid chunk extension")
        i = skip_ws(i)
        if i < size and line[i] == 0x3D:  # "="
            i = skip_ws(i + 1)
            if i < size and line[i] == 0x22:  # quoted-string
                i += 1
                while True:
                    if i >= size:
                        raise BadRequest("invalid chunk extension")
                    c = line[i]
                    if c == 0x22:
                        i += 1
                        break
                    if c == 0x5C:  # quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                        i += 1
                        if i >= size or line[i] not in _FIELD_VALUE_OK:
                            raise BadRequest("invalid chunk extension")
                    elif c not in _FIELD_VALUE_OK:
                        raise BadRequest("invalid chunk extension")
                    i += 1
            else:
                start = i
                while i < size and line[i] in _TCHAR:
                    i += 1
                if i == start:
                    raise BadRequest("invalid chunk extension")


# --- response writer ---------------------------------------------------------

# The framing modes (NO_BODY, LENGTH, CHUNKED, CLOSE_DELIMITED), LAST_CHUNK,
# CONTINUE_RESPONSE and ONE_WRITE_LIMIT are wire.py's, shared with _parser.pyx.

_date_second = -1
_date_value = b""


def date_header_value() -> bytes:
    """IMF-fixdate for now (RFC 9110 5.6.7), recomputed at most once a second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = formatdate(now, usegmt=True).encode("ascii")
        _date_second = now
    return _date_value


def _check_value(value: bytes, what: str) -> None:
    # RFC 9110 5.5: CR, LF and NUL are never allowed in a field value; letting
    # them through is response splitting.
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise InvalidResponse(f"{what} contains CR, LF or NUL: {value!r}")


_status_lines: dict = {}


def _status_line(status: int, reason: Optional[Union[str, bytes]]) -> bytes:
    # The cache is keyed by int: 200.0 == 200 hashes alike, so look it up only
    # for real ints, or a float status would pass once 200 had been cached.
    if reason is None and type(status) is int:
        line = _status_lines.get(status)
        if line is not None:
            return line
    if type(status) is not int or not 100 <= status <= 999:
        raise InvalidResponse(f"invalid status code: {status!r}")
    standard = REASONS.get(status, "").encode("latin-1")
    if reason is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, standard)
        _status_lines[status] = line
        return line
    phrase = to_bytes(reason, "reason phrase")
    _check_value(phrase, "reason phrase")
    if phrase == standard:
        return _status_line(status, None)
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


def encode_head(
    status: int,
    headers: Iterable[Tuple[Union[str, bytes], Union[str, bytes]]],
    *,
    reason: Optional[Union[str, bytes]] = None,
    http11: bool = True,
    keep_alive: bool = True,
    head_request: bool = False,
    body_length: int = -1,
    server: Optional[bytes] = b"fastbase",
) -> Tuple[bytes, int, int, bool]:
    """Serialize a response head; decide the body framing.

    ``headers`` come from the application (str or bytes pairs). Hop-by-hop
    fields are the server's business: ``Connection`` ("close" is honoured),
    ``Keep-Alive`` and ``Transfer-Encoding`` are dropped and re-derived, except
    on 101 where ``Connection``/``Upgrade`` pass through. ``body_length`` is
    the whole body's size when the caller already knows it (-1 otherwise).

    Returns ``(head_bytes, framing, content_length, keep_alive)`` where
    framing is NO_BODY, LENGTH, CHUNKED or CLOSE_DELIMITED and content_length
    is the declared length for LENGTH (-1 otherwise).
    """
    keep_alive = bool(keep_alive)  # returned as a bool, as the compiled copy does
    if not isinstance(body_length, int):
        raise TypeError(f"body_length must be an int, not {type(body_length).__name__}")
    if not -_LLONG_MAX - 1 <= body_length <= _LLONG_MAX:
        raise OverflowError("body_length is too large")
    out = [_status_line(status, reason)]
    content_length = -1
    has_date = has_server = False
    switching = status == 101
    for name, value in headers:
        bname = to_bytes(name, "header name")
        bvalue = to_bytes(value, "header value")
        if not _is_token(bname):
            raise InvalidResponse(f"invalid header name: {bname!r}")
        _check_value(bvalue, "header value")
        lname = bname.lower()
        if lname == b"content-length":
            value_digits = bvalue.strip(_OWS)
            if not value_digits or not all(c in _DIGIT for c in value_digits) or len(value_digits) > 18:
                raise InvalidResponse(f"invalid Content-Length: {bvalue!r}")
            declared = int(value_digits)
            if content_length >= 0 and declared != content_length:
                raise InvalidResponse("conflicting Content-Length headers")
            if content_length >= 0:
                continue
            content_length = declared
            bvalue = value_digits
        elif lname == b"connection":
            if b"close" in [item.lower() for item in _split_list(bvalue)]:
                keep_alive = False
            if not switching:
                continue
        elif lname == b"transfer-encoding" or lname == b"keep-alive":
            continue
        elif lname == b"date":
            has_date = True
        elif lname == b"server":
            has_server = True
        out.append(b"%s: %s\r\n" % (bname, bvalue))

    if status < 200 or status == 204 or status == 304:
        framing = NO_BODY
        # RFC 9110 8.6: "A server MUST NOT send a Content-Length header field
        # in any response with a status code of 1xx (Informational) or 204".
        if status != 304 and content_length >= 0:
            out = [line for line in out if not line.lower().startswith(b"content-length:")]
        content_length = -1
    elif head_request:
        # RFC 9110 9.3.2: the same fields as for GET, no content.
        framing = NO_BODY
        if content_length < 0 and body_length >= 0:
            out.append(b"content-length: %d\r\n" % body_length)
        content_length = -1
    elif content_length >= 0:
        framing = LENGTH
    elif body_length >= 0:
        framing = LENGTH
        content_length = body_length
        out.append(b"content-length: %d\r\n" % body_length)
    elif http11:
        framing = CHUNKED
        out.append(b"transfer-encoding: chunked\r\n")
    else:
        # RFC 9112 6.3 item 8: a response without length ends at close.
        framing = CLOSE_DELIMITED
        keep_alive = False

    if switching:
        keep_alive = True
    elif not keep_alive:
        out.append(b"connection: close\r\n")
    elif not http11:
        out.append(b"connection: keep-alive\r\n")
    if not has_date:
        out.append(b"date: %s\r\n" % date_header_value())
    if server is not None and not has_server:
        out.append(b"server: %s\r\n" % server)
    out.append(b"\r\n")
    return b"".join(out), framing, content_length, keep_alive


def encode_response(
    status: int,
    headers: Iterable[Tuple[Union[str, bytes], Union[str, bytes]]],
    body: bytes,
    reason: Optional[Union[str, bytes]],
    http11: bool,
    keep_alive: bool,
    head_request: bool,
    server: Optional[bytes],
) -> Optional[Tuple[bytes, bool]]:
    """A whole response whose body is ``body``, head and body in one bytes
    object: ``(data, keep_alive)``, or None when it is not sent that way (a
    HEAD request, a 1xx/204/304 status, a declared Content-Length that
    differs from the body, or a body of ONE_WRITE_LIMIT bytes or more, better
    sent with writev than copied); the caller then frames it with
    encode_head. Arguments as for encode_head, all positional: this is the
    common response's path.
    """
    if not isinstance(body, bytes):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    if len(body) >= ONE_WRITE_LIMIT:
        return None
    head, framing, length, keep_alive = encode_head(
        status,
        headers,
        reason=reason,
        http11=http11,
        keep_alive=keep_alive,
        head_request=head_request,
        body_length=len(body),
        server=server,
    )
    if framing != LENGTH or length != len(body):
        return None
    return head + body, keep_alive


def encode_chunk(data: bytes) -> bytes:
    """One chunk (RFC 9112 7.1); empty data encodes to nothing, since an
    empty chunk would end the body."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def encode_trailers(trailers: Iterable[Tuple[Union[str, bytes], Union[str, bytes]]]) -> bytes:
    """The last chunk with a trailer section (RFC 9112 7.1.2)."""
    out = [b"0\r\n"]
    for name, value in trailers:
        bname = to_bytes(name, "trailer name")
        bvalue = to_bytes(value, "trailer value")
        if not _is_token(bname):
            raise InvalidResponse(f"invalid trailer name: {bname!r}")
        _check_value(bvalue, "trailer value")
        out.append(b"%s: %s\r\n" % (bname, bvalue))
    out.append(b"\r\n")
    return b"".join(out)


def encode_error(
    status: int, message: str = "", keep_alive: bool = False, http11: bool = True, server: Optional[bytes] = b"fastbase"
) -> bytes:
    """A complete plain-text response for protocol errors and server
    failures; it closes the connection unless ``keep_alive`` (an
    application's failure the connection survives: ``http11`` False then
    answers an HTTP/1.0 client with "Connection: keep-alive"). ``server``
    is the Server field's value, None for none (--no-server-header)."""
    body = ((message or REASONS.get(status, "Error")) + "\n").encode("utf-8", "replace")
    head, _, _, _ = encode_head(
        status,
        [(b"content-type", b"text/plain; charset=utf-8")],
        http11=http11,
        keep_alive=keep_alive,
        body_length=len(body),
        server=server,
    )
    return head + body
