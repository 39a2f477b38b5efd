"""The pure-Python twin of ``_frames.pyx``: WebSocket frames, the readable spec.

Server side of RFC 6455 (framing, section 5) and RFC 7692 (permessage-deflate
on the wire, section 6). Sans-IO: bytes in, events out; messages in, bytes
out. ``_frames.pyx`` is the fast copy and must behave identically; every
frame test runs against both.

Reading: ``FrameParser(*, max_message_size=16 MiB, deflate=None)``, one per
connection. ``feed(data)`` returns the events ``data`` completed, in order:

- ``Message(opcode, data)``: a whole data message, its fragments reassembled
  (and inflated when compressed); ``opcode`` is ``TEXT`` with ``data`` a str,
  or ``BINARY`` with ``data`` bytes.
- ``Ping(payload)`` / ``Pong(payload)``: control frames, delivered as they
  arrive, also in the middle of a fragmented message.
- ``Close(code, reason)``: the client's Close frame; ``code`` is 1005 when it
  carried none. The parser then ignores any further bytes (``closed``).

A frame that breaks the protocol raises ``WebSocketProtocolError`` with the
close code to send (1002, 1007 or 1009) and a reason; its ``events`` hold what
the call completed before the fault. From then on every ``feed`` raises again.
Faults are found in stream order, as early as the bytes allow (a bad header
as soon as its first bytes arrive, invalid UTF-8 as soon as the byte that
makes it invalid is read, even inside a frame), so the outcome does not
depend on how the bytes were split into ``feed`` calls.

Writing (server frames are never masked): ``encode_frame(opcode, payload,
fin=True, rsv1=False)``, ``encode_text(str, deflate=None)``,
``encode_binary(bytes, deflate=None)``, ``encode_ping(payload=b"")``,
``encode_pong(payload=b"")``, ``encode_close(code=1000, reason="")``. They
raise ``ValueError`` for what a frame cannot carry.
"""

from __future__ import annotations

import codecs
from typing import Optional, Union

from . import limits
from .deflate import Deflate
from .errors import WebSocketProtocolError, is_valid_close_code

__all__ = [
    "FrameParser",
    "Message",
    "Ping",
    "Pong",
    "Close",
    "encode_frame",
    "encode_text",
    "encode_binary",
    "encode_ping",
    "encode_pong",
    "encode_close",
    "CONTINUATION",
    "TEXT",
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
]

Buffer = Union[bytes, bytearray, memoryview]

# RFC 6455 5.2: "Opcode: 4 bits ... %x0 denotes a continuation frame, %x1
# denotes a text frame, %x2 denotes a binary frame, %x3-7 are reserved for
# further non-control frames, %x8 denotes a connection close, %x9 denotes a
# ping, %xA denotes a pong, %xB-F are reserved for further control frames".
CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA
_KNOWN_OPCODES = frozenset({CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG})
_LLONG_MAX = 2**63 - 1

# RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes
# or less and MUST NOT be fragmented."
_MAX_CONTROL_PAYLOAD = 125

_FIN = 0x80
_RSV1 = 0x40
_RSV2_RSV3 = 0x30
_MASK = 0x80

_HEADER = 0  # reading a frame header
_PAYLOAD = 1  # reading a frame's payload
_CLOSED = 2  # a Close frame arrived: further bytes are ignored
_ERROR = 3


class Message:
    """A whole data message: ``opcode`` TEXT with ``data`` str, or BINARY with bytes."""

    __slots__ = ("opcode", "data")

    def __init__(self, opcode: int, data: Union[str, bytes]) -> None:
        self.opcode = opcode
        self.data = data

    def __repr__(self) -> str:
        kind = "TEXT" if self.opcode == TEXT else "BINARY"
        return f"<Message {kind} {self.data[:40]!r}{'...' if len(self.data) > 40 else ''}>"


class Ping:
    """A Ping control frame; answer it with a Pong carrying the same payload."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"<Ping {self.payload!r}>"


class Pong:
    """A Pong control frame (an answer to a ping, or unsolicited)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"<Pong {self.payload!r}>"


class Close:
    """The client's Close frame: ``code`` (1005 when none was sent) and ``reason``."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Close {self.code} {self.reason!r}>"


def _unmask(data: Buffer, mask: bytes, offset: int) -> bytes:
    """XOR ``data`` with the masking key, starting ``offset`` bytes into the payload.

    RFC 6455 5.3: "Octet i of the transformed data ("transformed-octet-i") is
    the XOR of octet i of the original data ("original-octet-i") with octet
    at index i modulo 4 of the masking key ("masking-key-octet-j")".
    """
    n = len(data)
    if not n:
        return b""
    shift = offset % 4
    key = (mask[shift:] + mask[:shift]) * (n // 4 + 1)
    return (int.from_bytes(data, "little") ^ int.from_bytes(key[:n], "little")).to_bytes(n, "little")


def _protocol_error(reason: str) -> WebSocketProtocolError:
    return WebSocketProtocolError(1002, reason)


class FrameParser:
    """Incremental, strict parser of the frames a client sends; one per connection."""

    def __init__(
        self,
        *,
        max_message_size: Optional[int] = limits.MAX_MESSAGE_SIZE,
        deflate: Optional[Deflate] = None,
    ) -> None:
        # The compiled twin holds the limit in a C long long.
        if max_message_size is not None and not isinstance(max_message_size, int):
            raise TypeError(f"max_message_size must be an int or None, not {type(max_message_size).__name__}")
        if max_message_size is not None and max_message_size < 0:
            raise ValueError("max_message_size must be >= 0 or None")
        if max_message_size is not None and max_message_size > _LLONG_MAX:
            raise OverflowError("max_message_size is too large")
        self.max_message_size = -1 if max_message_size is None else max_message_size
        self.deflate = deflate
        self._buf = bytearray()
        self._state = _HEADER
        self._error: Optional[WebSocketProtocolError] = None
        # The frame being read.
        self._fin = False
        self._opcode = 0
        self._mask = b""
        self._remaining = 0  # payload bytes still to come
        self._offset = 0  # payload bytes already read (the masking key's phase)
        self._control = bytearray()
        # The data message being reassembled (opcode 0: none is open).
        self._message_opcode = 0
        self._compressed = False
        self._wire = 0  # payload bytes its frames declared so far
        self._size = 0  # bytes of payload so far, after inflating
        self._parts: list = []
        #: Inflated bytes of the current frame, not yet taken (_end_frame).
        self._inflated: list = []
        self._decoder: Optional[codecs.IncrementalDecoder] = None

    @property
    def closed(self) -> bool:
        """A Close frame has arrived; bytes after it are ignored."""
        return self._state == _CLOSED

    @property
    def in_message(self) -> bool:
        """A data message has begun (its first frame's header arrived) and not ended yet."""
        return self._message_opcode != 0

    def feed(self, data: Buffer) -> list:
        state = self._state
        if state == _ERROR:
            assert self._error is not None
            raise WebSocketProtocolError(self._error.code, self._error.reason)
        if state == _CLOSED:
            return []
        events: list = []
        try:
            self._run(data, events)
        except WebSocketProtocolError as exc:
            self._state = _ERROR
            self._error = exc
            self._buf.clear()
            self._parts = []
            self._inflated = []
            exc.events = events
            raise
        return events

    # --- the state machine --------------------------------------------------------

    def _run(self, data: Buffer, events: list) -> None:
        buf = self._buf
        buf += data
        pos = 0
        try:
            while True:
                if self._state == _HEADER:
                    used = self._read_header(buf, pos)
                    if not used:
                        return
                    pos += used
                    if self._remaining == 0:
                        self._end_frame(events)
                elif self._state == _PAYLOAD:
                    if pos == len(buf):
                        return
                    take = min(self._remaining, len(buf) - pos)
                    chunk = _unmask(buf[pos : pos + take], self._mask, self._offset)
                    pos += take
                    self._offset += take
                    self._remaining -= take
                    if self._opcode >= CLOSE:
                        self._control += chunk
                    else:
                        self._message_bytes(chunk)
                    if self._remaining == 0:
                        self._end_frame(events)
                else:  # _CLOSED
                    pos = len(buf)
                    return
        finally:
            del buf[:pos]

    def _read_header(self, buf: bytearray, pos: int) -> int:
        """Check the header at buf[pos:] as far as it has arrived; return its
        size once it is complete (the frame is then begun), else 0."""
        avail = len(buf) - pos
        if avail < 1:
            return 0
        b0 = buf[pos]
        fin = bool(b0 & _FIN)
        rsv1 = bool(b0 & _RSV1)
        opcode = b0 & 0x0F
        # RFC 6455 5.2: "If an unknown opcode is received, the receiving
        # endpoint MUST _Fail the WebSocket Connection_."
        if opcode not in _KNOWN_OPCODES:
            raise _protocol_error("reserved opcode")
        control = opcode >= CLOSE
        # RFC 6455 5.2: "RSV1, RSV2, RSV3: 1 bit each. MUST be 0 unless an
        # extension is negotiated that defines meanings for non-zero values.
        # If a nonzero value is received and none of the negotiated
        # extensions defines the meaning of such a nonzero value, the
        # receiving endpoint MUST _Fail the WebSocket Connection_."
        if b0 & _RSV2_RSV3:
            raise _protocol_error("reserved bits RSV2/RSV3 set")
        if rsv1:
            if self.deflate is None:
                raise _protocol_error("RSV1 set without a negotiated extension")
            # RFC 7692 6.1: "An endpoint MUST NOT set the "Per-Message
            # Compressed" bit of control frames and non-first fragments of a
            # data message. An endpoint receiving such a frame MUST _Fail the
            # WebSocket Connection_."
            if control:
                raise _protocol_error("RSV1 set on a control frame")
            if opcode == CONTINUATION:
                raise _protocol_error("RSV1 set on a continuation frame")
        # RFC 6455 5.5: control frames "MUST NOT be fragmented".
        if control and not fin:
            raise _protocol_error("fragmented control frame")
        # RFC 6455 5.4: "A fragmented message consists of a single frame with
        # the FIN bit clear and an opcode other than 0, followed by zero or
        # more frames with the FIN bit clear and the opcode set to 0, and
        # terminated by a single frame with the FIN bit set and an opcode of
        # 0." ... "Control frames (see Section 5.5) MAY be injected in the
        # middle of a fragmented message."
        if opcode == CONTINUATION and not self._message_opcode:
            raise _protocol_error("continuation frame without a message to continue")
        if opcode in (TEXT, BINARY) and self._message_opcode:
            raise _protocol_error("new data frame while a fragmented message is open")
        if avail < 2:
            return 0
        b1 = buf[pos + 1]
        # RFC 6455 5.1: "The server MUST close the connection upon receiving a
        # frame that is not masked. In this case, a server MAY send a Close
        # frame with a status code of 1002 (protocol error)".
        if not b1 & _MASK:
            raise _protocol_error("client frame is not masked")
        length = b1 & 0x7F
        if control and length > _MAX_CONTROL_PAYLOAD:
            raise _protocol_error("control frame payload over 125 bytes")
        # RFC 6455 5.2: "Payload length: 7 bits, 7+16 bits, or 7+64 bits ...
        # If 126, the following 2 bytes interpreted as a 16-bit unsigned
        # integer are the payload length. If 127, the following 8 bytes
        # interpreted as a 64-bit unsigned integer (the most significant bit
        # MUST be 0) are the payload length. ... the minimal number of bytes
        # MUST be used to encode the length".
        extended = 2 if length == 126 else 8 if length == 127 else 0
        if avail < 2 + extended:
            return 0
        if extended:
            length = int.from_bytes(buf[pos + 2 : pos + 2 + extended], "big")
            if length >> 63:
                raise _protocol_error("payload length with the most significant bit set")
            if length < (126 if extended == 2 else 65536):
                raise _protocol_error("payload length not in its minimal encoding")
        # RFC 6455 10.4: "implementations SHOULD impose a limit on frame sizes
        # and the total message size after reassembly from multiple frames";
        # 7.4.1: 1009 "indicates that an endpoint is terminating the
        # connection because it has received a message that is too big for it
        # to process". Refused on the declared length, before any of it is
        # buffered. A compressed message is bounded twice: by its wire bytes
        # here (so an endless stream of empty deflate blocks ends too), and by
        # what it inflates to, as it inflates.
        if not control and self.max_message_size >= 0:
            wire = self._wire if opcode == CONTINUATION else 0
            if wire + length > self.max_message_size:
                raise WebSocketProtocolError(1009, "message too big")
        header_size = 2 + extended + 4
        if avail < header_size:
            return 0
        # The header is complete: begin the frame.
        self._fin = fin
        self._opcode = opcode
        self._mask = bytes(buf[pos + 2 + extended : pos + header_size])
        self._remaining = length
        self._offset = 0
        if control:
            self._control = bytearray()
        elif opcode == CONTINUATION:
            self._wire += length
        else:
            self._message_opcode = opcode
            self._compressed = rsv1
            self._wire = length
            self._size = 0
            self._parts = []
            # RFC 6455 8.1: "When an endpoint is to interpret a byte stream as
            # UTF-8 but finds that the byte stream is not, in fact, a valid
            # UTF-8 stream, that endpoint MUST _Fail the WebSocket
            # Connection_." Decoded as the bytes arrive, so an invalid
            # sequence fails at once, even split across fragments.
            self._decoder = codecs.getincrementaldecoder("utf-8")() if opcode == TEXT else None
        self._state = _PAYLOAD
        return header_size

    def _room(self) -> int:
        """How many more bytes the open message may hold (-1: unbounded)."""
        if self.max_message_size < 0:
            return -1
        return self.max_message_size - self._size

    def _message_bytes(self, chunk: bytes) -> None:
        """Take the next unmasked payload bytes of the open data message."""
        if self._compressed:
            assert self.deflate is not None
            inflated = self.deflate.inflate(chunk, self._room())
            # Taken (checked as text) when the frame ends: checked piece by
            # piece, invalid deflate data later in the frame would lose to a
            # UTF-8 error or not depending on how the bytes were split.
            self._size += len(inflated)
            self._inflated.append(inflated)
        else:
            self._append(chunk)

    def _append(self, data: bytes) -> None:
        self._size += len(data)
        self._take(data)

    def _take(self, data: bytes) -> None:
        if self._decoder is None:
            self._parts.append(data)
            return
        try:
            self._parts.append(self._decoder.decode(data))
        except UnicodeDecodeError:
            raise WebSocketProtocolError(1007, "invalid UTF-8 in a text message") from None
        # CPython's decoder holds back ED A0..BF (the start of an encoded
        # surrogate, which the "surrogatepass" handler would accept) until
        # the sequence is complete; RFC 3629 4 already excludes it
        # ("%xED %x80-9F UTF8-tail"), so it fails here, at once.
        pending = self._decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise WebSocketProtocolError(1007, "invalid UTF-8 in a text message")

    def _end_frame(self, events: list) -> None:
        self._state = _HEADER
        opcode = self._opcode
        if opcode == PING:
            events.append(Ping(bytes(self._control)))
        elif opcode == PONG:
            events.append(Pong(bytes(self._control)))
        elif opcode == CLOSE:
            events.append(self._close_event(bytes(self._control)))
            # RFC 6455 5.5.1: "After sending a Close frame, the endpoint MUST
            # NOT send any more data frames" -- anything after it is ignored,
            # and a message left open is abandoned.
            self._state = _CLOSED
            self._message_opcode = 0
            self._parts = []
            self._inflated = []
        else:
            if self._inflated:
                pieces, self._inflated = self._inflated, []
                self._take(b"".join(pieces))
            if self._fin:
                events.append(self._end_message())

    def _end_message(self) -> Message:
        opcode = self._message_opcode
        if self._compressed:
            assert self.deflate is not None
            self._append(self.deflate.inflate_end(self._room()))
        if self._decoder is not None:
            try:
                self._parts.append(self._decoder.decode(b"", True))
            except UnicodeDecodeError:
                raise WebSocketProtocolError(1007, "text message ends inside a UTF-8 sequence") from None
            data: Union[str, bytes] = "".join(self._parts)
        else:
            data = b"".join(self._parts)
        self._message_opcode = 0
        self._compressed = False
        self._parts = []
        self._decoder = None
        self._size = 0
        self._wire = 0
        return Message(opcode, data)

    def _close_event(self, payload: bytes) -> Close:
        # RFC 6455 5.5.1: "If there is a body, the first two bytes of the body
        # MUST be a 2-byte unsigned integer (in network byte order)
        # representing a status code with value /code/ defined in Section
        # 7.4. Following the 2-byte integer, the body MAY contain UTF-8-encoded
        # data with value /reason/". 7.1.5: "If this Close control frame
        # contains no status code, _The WebSocket Connection Close Code_ is
        # considered to be 1005."
        if not payload:
            return Close(1005, "")
        if len(payload) == 1:
            raise _protocol_error("close frame payload of 1 byte")
        code = int.from_bytes(payload[:2], "big")
        if not is_valid_close_code(code):
            raise _protocol_error("invalid close code")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise WebSocketProtocolError(1007, "close reason is not valid UTF-8") from None
        return Close(code, reason)


# --- writing ------------------------------------------------------------------------


def encode_frame(opcode: int, payload: Buffer = b"", fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked frame (RFC 6455 5.1: "A server MUST NOT mask any frames
    that it sends to the client")."""
    if not isinstance(opcode, int):
        raise TypeError(f"an opcode is an int, not {type(opcode).__name__}")
    if opcode not in _KNOWN_OPCODES:
        raise ValueError(f"unknown opcode {opcode!r}")
    if isinstance(payload, str):
        raise TypeError("a frame payload is bytes, not str")
    n = memoryview(payload).nbytes
    if opcode >= CLOSE:
        if n > _MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload over 125 bytes")
        if not fin:
            raise ValueError("control frames cannot be fragmented")
    # RFC 7692 6: RSV1 marks the first frame of a compressed message only.
    if rsv1 and opcode not in (TEXT, BINARY):
        raise ValueError("RSV1 is only set on the first frame of a data message")
    b0 = (_FIN if fin else 0) | (_RSV1 if rsv1 else 0) | opcode
    # RFC 6455 5.2: the minimal length encoding.
    if n < 126:
        head = bytes((b0, n))
    elif n < 65536:
        head = bytes((b0, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 127)) + n.to_bytes(8, "big")
    return head + payload


def encode_text(data: str, deflate: Optional[Deflate] = None) -> bytes:
    """A text message in one frame, compressed when ``deflate`` is given."""
    if not isinstance(data, str):
        raise TypeError("text messages are str")
    payload = data.encode("utf-8")
    if deflate is not None:
        return encode_frame(TEXT, deflate.compress(payload), rsv1=True)
    return encode_frame(TEXT, payload)


def encode_binary(data: Buffer, deflate: Optional[Deflate] = None) -> bytes:
    """A binary message in one frame, compressed when ``deflate`` is given."""
    if isinstance(data, str):
        raise TypeError("binary messages are bytes")
    if deflate is not None:
        return encode_frame(BINARY, deflate.compress(data), rsv1=True)
    return encode_frame(BINARY, data)


def encode_ping(payload: Buffer = b"") -> bytes:
    return encode_frame(PING, payload)


def encode_pong(payload: Buffer = b"") -> bytes:
    return encode_frame(PONG, payload)


def encode_close(code: Optional[int] = 1000, reason: str = "") -> bytes:
    """A Close frame; ``code=None`` sends none (and then no reason either)."""
    if not isinstance(reason, str):
        raise TypeError("a close reason is str")
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return encode_frame(CLOSE, b"")
    if not isinstance(code, int):
        raise TypeError(f"a close code is an int or None, not {type(code).__name__}")
    # RFC 6455 7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code
    # in a Close control frame by an endpoint".
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code!r}")
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > _MAX_CONTROL_PAYLOAD:
        raise ValueError("close reason over 123 bytes")
    return encode_frame(CLOSE, payload)
