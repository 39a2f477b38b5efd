"""Client-side WebSocket framing for the tests: what a browser sends.

Written independently of fastbase's frame layer (it is the other end of
the wire): frames are masked (RFC 6455 5.3), the length encoding can be
forced (to build non-minimal and malformed headers), and permessage-deflate
payloads are produced with zlib directly (RFC 7692 7.2.1).
"""

from __future__ import annotations

import zlib
from typing import Optional

KEY = b"\x37\xfa\x21\x3d"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def mask(payload: bytes, key: bytes = KEY) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    key: Optional[bytes] = KEY,
    length: Optional[int] = None,
    form: Optional[int] = None,
) -> bytes:
    """A client frame. ``key=None`` leaves it unmasked; ``length`` overrides
    the declared length; ``form`` forces a 7-, 16- or 64-bit length."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0) | opcode
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    m = 0x80 if key is not None else 0
    if form == 7:
        head = bytes((b0, m | n))
    elif form == 16:
        head = bytes((b0, m | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, m | 127)) + n.to_bytes(8, "big")
    if key is None:
        return head + payload
    # Unmasking is the server's hot path; the tests mask the slow, obvious way
    # for small payloads and with int arithmetic for large ones.
    if len(payload) > 4096:
        repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(len(payload), "little")
        return head + key + masked
    return head + key + mask(payload, key)


def text(s: str, **kw) -> bytes:
    return frame(TEXT, s.encode("utf-8"), **kw)


def binary(b: bytes, **kw) -> bytes:
    return frame(BINARY, b, **kw)


def close(code: Optional[int] = None, reason: bytes = b"", **kw) -> bytes:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return frame(CLOSE, payload, **kw)


def deflated(data: bytes, compressor=None) -> bytes:
    """RFC 7692 7.2.1: DEFLATE with a sync flush, the 00 00 ff ff tail removed."""
    c = compressor or zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate_server_message(payload: bytes, decompressor=None) -> bytes:
    """What a client does with a compressed message from the server."""
    d = decompressor or zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def parse_server_frame(data: bytes):
    """Split one unmasked server frame: (fin, rsv1, opcode, payload, rest)."""
    b0, b1 = data[0], data[1]
    assert not b1 & 0x80, "server frames are never masked"
    n, pos = b1 & 0x7F, 2
    if n == 126:
        n, pos = int.from_bytes(data[2:4], "big"), 4
        assert n >= 126
    elif n == 127:
        n, pos = int.from_bytes(data[2:10], "big"), 10
        assert n >= 65536
    return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, data[pos : pos + n], data[pos + n :]
