"""permessage-deflate (RFC 7692): negotiating it and the per-message codec.

Sans-IO and shared by both frame parser implementations (the work is zlib's,
so there is no compiled copy).

- ``negotiate_deflate(offer, enabled=True)`` reads the client's
  ``Sec-WebSocket-Extensions`` value and returns ``(response_value, Deflate)``
  for the first acceptable permessage-deflate offer, or ``(None, None)``:
  invalid offers are declined (RFC 7692 section 5: the server "MUST decline"
  them), never answered with an error, so the connection simply runs
  uncompressed.
- ``Deflate`` holds one connection's compressor (server to client) and
  decompressor (client to server). ``compress(data)`` gives a message's
  payload; ``FrameParser`` calls ``inflate``/``inflate_end`` with the room left
  under its size limit, so a small compressed message cannot inflate past it
  (a "zip bomb" is refused with 1009 after at most the limit plus one byte of
  output).
"""

from __future__ import annotations

import zlib
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from .errors import WebSocketProtocolError

__all__ = ["Deflate", "negotiate_deflate", "parse_extensions", "EXTENSION_NAME"]

EXTENSION_NAME = "permessage-deflate"

# RFC 7692 7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
# tail end." 7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of
# the payload of the message" before inflating.
_TAIL = b"\x00\x00\xff\xff"

# RFC 9110 5.6.2 token characters (RFC 6455 9.1 uses RFC 2616's token, the same set).
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_OWS = " \t"

Param = Tuple[str, Optional[str]]


class Deflate:
    """One connection's permessage-deflate state, as negotiated.

    ``server_no_context_takeover``: each outgoing message is compressed on
    its own (the compressor is reset after it). ``client_no_context_takeover``:
    the client does the same, so the decompressor is reset after each incoming
    message (its 32 KiB window is not kept). ``server_max_window_bits``: the
    LZ77 window the compressor may use. Incoming messages are always inflated
    with a 15-bit window, which reads any smaller one.
    """

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        client_max_window_bits: int = 15,
        level: int = zlib.Z_DEFAULT_COMPRESSION,
        mem_level: int = 8,
    ) -> None:
        # zlib refuses a raw-deflate window of 8 bits (it would silently use 9,
        # which a peer holding an 8-bit window could not read).
        if not 9 <= server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be 9..15")
        if not 8 <= client_max_window_bits <= 15:
            raise ValueError("client_max_window_bits must be 8..15")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.level = level
        self.mem_level = mem_level
        # Created on first use: many connections never send, or never compress.
        self._compressor: Optional[Any] = None
        self._decompressor: Optional[Any] = None
        self._trailing = b""  # what followed a final (BFINAL) block in this message

    def __repr__(self) -> str:
        return (
            f"<Deflate server_no_context_takeover={self.server_no_context_takeover} "
            f"client_no_context_takeover={self.client_no_context_takeover} "
            f"server_max_window_bits={self.server_max_window_bits} "
            f"client_max_window_bits={self.client_max_window_bits}>"
        )

    # --- server to client --------------------------------------------------------

    def compress(self, data: Union[bytes, bytearray, memoryview]) -> bytes:
        """The compressed payload of one outgoing message (send it with RSV1)."""
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, -self.server_max_window_bits, self.mem_level)
        # RFC 7692 7.2.1: "Compress all the octets of the payload of the
        # message using DEFLATE. If the resulting data does not end with an
        # empty DEFLATE block with no compression (the "BTYPE" bits are set to
        # 00), append an empty DEFLATE block with no compression to the tail
        # end." A sync flush ends with exactly that block; a full flush does
        # too and also forgets the window, which is what
        # server_no_context_takeover promises (7.1.1.1).
        flush = zlib.Z_FULL_FLUSH if self.server_no_context_takeover else zlib.Z_SYNC_FLUSH
        out = compressor.compress(data) + compressor.flush(flush)
        if out[-4:] != _TAIL:  # pragma: no cover - zlib always ends a flush so
            raise AssertionError("zlib flush did not end with an empty stored block")
        return out[:-4]

    # --- client to server --------------------------------------------------------

    def inflate(self, data: bytes, room: int) -> bytes:
        """Inflate the next piece of a compressed message's payload.

        ``room`` is how many more inflated bytes the message may hold (-1:
        unbounded); inflating stops one byte past it and raises 1009.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-15)
        if decompressor.eof:
            self._after_final(data)
            return b""
        try:
            out = decompressor.decompress(data, room + 1 if room >= 0 else 0)
        except zlib.error:
            raise WebSocketProtocolError(1007, "invalid deflate data") from None
        if 0 <= room < len(out):
            raise WebSocketProtocolError(1009, "message too big once inflated")
        if decompressor.eof:
            self._after_final(decompressor.unused_data)
        return out

    def _after_final(self, data: bytes) -> None:
        # RFC 7692 7.2.3.4 allows a block with BFINAL set, followed by "1
        # octet (0x00) [that] contains the header bits with "BFINAL" set to 0
        # and "BTYPE" set to 00, and 5 padding bits of 0" -- with the
        # appended tail, an empty stored block. Nothing else may follow.
        self._trailing += data
        if self._trailing not in (b"", b"\x00"):
            raise WebSocketProtocolError(1007, "data after the final deflate block")

    def inflate_end(self, room: int) -> bytes:
        """The message's last frame has been inflated: flush what zlib holds."""
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-15)
        out = b"" if decompressor.eof else self.inflate(_TAIL, room)
        # RFC 7692 7.1.1.2: with client_no_context_takeover the client
        # "is not going to use context takeover", so the window is dropped. A
        # stream that ended with a final block cannot go on either.
        if self.client_no_context_takeover or decompressor.eof:
            self._decompressor = None
            self._trailing = b""
        return out


# --- negotiation -----------------------------------------------------------------------


def _is_token(value: str) -> bool:
    return bool(value) and all(c in _TCHAR for c in value)


def parse_extensions(value: str) -> Optional[List[Tuple[str, List[Param]]]]:
    """Parse a ``Sec-WebSocket-Extensions`` value; None if it is malformed.

    RFC 6455 9.1::

        extension-list = 1#extension
        extension = extension-token *( ";" extension-param )
        extension-param = token [ "=" (token | quoted-string) ]
            ;When using the quoted-string syntax variant, the value
            ;after quoted-string unescaping MUST conform to the
            ;'token' ABNF.

    Empty list elements are ignored (RFC 9110 5.6.1).
    """
    result: List[Tuple[str, List[Param]]] = []
    i, n = 0, len(value)

    def skip_ows(i: int) -> int:
        while i < n and value[i] in _OWS:
            i += 1
        return i

    def read_token(i: int) -> Tuple[str, int]:
        start = i
        while i < n and value[i] in _TCHAR:
            i += 1
        return value[start:i], i

    while True:
        i = skip_ows(i)
        if i == n:
            return result
        if value[i] == ",":
            i += 1
            continue
        name, i = read_token(i)
        if not name:
            return None
        params: List[Param] = []
        i = skip_ows(i)
        while i < n and value[i] == ";":
            i = skip_ows(i + 1)
            pname, i = read_token(i)
            if not pname:
                return None
            i = skip_ows(i)
            pvalue: Optional[str] = None
            if i < n and value[i] == "=":
                i = skip_ows(i + 1)
                if i < n and value[i] == '"':
                    i += 1
                    chars = []
                    while i < n and value[i] != '"':
                        if value[i] == "\\":
                            i += 1
                            if i == n:
                                return None
                        chars.append(value[i])
                        i += 1
                    if i == n:
                        return None
                    i += 1
                    pvalue = "".join(chars)
                else:
                    pvalue, i = read_token(i)
                if not _is_token(pvalue):
                    return None
                i = skip_ows(i)
            params.append((pname.lower(), pvalue))
        result.append((name.lower(), params))
        if i < n and value[i] != ",":
            return None


def _window_bits(value: Optional[str]) -> Optional[int]:
    # RFC 7692 7.1.2.1: "a decimal integer value without leading zeroes
    # between 8 to 15, inclusive".
    if value is None or not value.isdigit() or not value.isascii() or value[0] == "0":
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def _accept_offer(
    params: List[Param], server_no_context_takeover: bool, client_no_context_takeover: bool
) -> Optional[Tuple[bytes, Deflate]]:
    """The response to one permessage-deflate offer, or None to decline it."""
    # RFC 7692 7: "A server MUST decline an extension negotiation offer for
    # this extension if any of the following conditions are met:
    #   o The negotiation offer contains an extension parameter not defined
    #     for use in an offer.
    #   o The negotiation offer contains an extension parameter with an
    #     invalid value.
    #   o The negotiation offer contains multiple extension parameters with
    #     the same name.
    #   o The server doesn't support the offered configuration."
    seen: Dict[str, Optional[str]] = {}
    for name, value in params:
        if name in seen:
            return None
        seen[name] = value
    server_nct = server_no_context_takeover
    client_nct = client_no_context_takeover
    server_bits = 15
    response = [EXTENSION_NAME]
    for name, value in seen.items():
        if name == "server_no_context_takeover":
            # 7.1.1.1: "This extension parameter has no value."
            if value is not None:
                return None
            server_nct = True
        elif name == "client_no_context_takeover":
            if value is not None:
                return None
            client_nct = True
        elif name == "server_max_window_bits":
            # 7.1.2.1: accepted by answering "the same or smaller value".
            bits = _window_bits(value)
            if bits is None:
                return None
            if bits == 8:
                return None  # zlib cannot compress with an 8-bit raw window
            server_bits = bits
        elif name == "client_max_window_bits":
            # 7.1.2.2: "This parameter has no value or a decimal integer
            # value without leading zeroes between 8 to 15". The server "may
            # either ignore this value or use this value"; it is ignored,
            # since a 15-bit window inflates any smaller one.
            if value is not None and _window_bits(value) is None:
                return None
        else:
            return None
    # 7.1.1.1: a server accepts server_no_context_takeover "by including the
    # "server_no_context_takeover" extension parameter in the corresponding
    # response" and "MAY include [it] ... even if the extension negotiation
    # offer ... didn't include" it; likewise client_no_context_takeover
    # (7.1.1.2).
    if server_nct:
        response.append("server_no_context_takeover")
    if client_nct:
        response.append("client_no_context_takeover")
    if "server_max_window_bits" in seen:
        response.append(f"server_max_window_bits={server_bits}")
    deflate = Deflate(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
    )
    return "; ".join(response).encode("ascii"), deflate


def negotiate_deflate(
    offer: Union[None, str, bytes, Iterable[Union[str, bytes]]],
    enabled: bool = True,
    *,
    server_no_context_takeover: bool = False,
    client_no_context_takeover: bool = False,
) -> Tuple[Optional[bytes], Optional[Deflate]]:
    """Answer the client's ``Sec-WebSocket-Extensions`` offer.

    ``offer`` is the header's value (several field lines may be given as a
    list, or joined with ", "). Returns ``(value, deflate)``: the
    ``Sec-WebSocket-Extensions`` response value (bytes) and the ``Deflate`` to
    give the FrameParser and the writers, or ``(None, None)`` when no offer
    is acceptable (or ``enabled`` is false). Other extensions are ignored.
    The keyword arguments make the server ask for no context takeover even
    when the client did not offer it (less memory per connection).
    """
    if not enabled or offer is None:
        return None, None
    if isinstance(offer, (str, bytes)):
        offer = [offer]
    values = [v.decode("latin-1") if isinstance(v, (bytes, bytearray)) else v for v in offer]
    extensions = parse_extensions(", ".join(values))
    if extensions is None:
        return None, None
    for name, params in extensions:
        # RFC 7692 5: the server accepts one of the offers, in the client's
        # order of preference.
        if name != EXTENSION_NAME:
            continue
        accepted = _accept_offer(params, server_no_context_takeover, client_no_context_takeover)
        if accepted is not None:
            return accepted
    return None, None
