"""What both writer twins (``_parser.pyx`` and ``_parser_py.py``) and the
WebSocket handshake share: the framing modes ``encode_head`` returns, the
fixed byte strings a server writes, and the str/bytes-to-wire conversion.

A plain module, so the compiled writer and its twin read one definition.
"""

from __future__ import annotations

from typing import Union

from .errors import InvalidResponse

#: Framing modes returned by ``encode_head``.
NO_BODY = 0  # HEAD, 1xx, 204, 304: write no body at all
LENGTH = 1  # Content-Length: write exactly that many bytes
CHUNKED = 2  # Transfer-Encoding: chunked: frame with encode_chunk, end with LAST_CHUNK
CLOSE_DELIMITED = 3  # HTTP/1.0 without a length: write raw, then close

LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: A body this large is written with writev behind its head, not copied
#: into one buffer with it (encode_response declines it).
ONE_WRITE_LIMIT = 16384


def to_bytes(value: Union[str, bytes], what: str) -> bytes:
    """A header name, value or reason phrase as bytes: str is encoded as
    latin-1; anything else than str or bytes-like is an InvalidResponse
    naming ``what``."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidResponse(f"{what} is not latin-1: {value!r}") from None
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidResponse(f"{what} must be str or bytes, not {type(value).__name__}")
