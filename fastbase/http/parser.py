"""The parser and writer the rest of fastbase uses.

Exports the compiled implementation (``fastbase.http._parser``) and falls
back to the pure-Python twin (``fastbase.http._parser_py``) when it is missing or
``FASTBASE_NO_EXTENSIONS=1``. ``FASTBASE_REQUIRE_EXTENSIONS=1`` turns a
missing compiled module into an ImportError instead of a silent fallback.
``IMPLEMENTATION`` says which one is in use ("c" or "py").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .twins import load

from .errors import (  # noqa: F401  (re-exported)
    BadRequest,
    ContentTooLarge,
    HeaderFieldsTooLarge,
    InvalidResponse,
    NotImplementedByServer,
    ProtocolError,
    RequestTimeout,
    URITooLong,
    VersionNotSupported,
)


__all__ = [
    "IMPLEMENTATION",
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
    "BadRequest",
    "ContentTooLarge",
    "HeaderFieldsTooLarge",
    "InvalidResponse",
    "NotImplementedByServer",
    "ProtocolError",
    "RequestTimeout",
    "URITooLong",
    "VersionNotSupported",
]

_impl, IMPLEMENTATION = load("fastbase.http._parser", "fastbase.http._parser_py")

if TYPE_CHECKING:
    # Typed by the compiled module's stub (_parser.pyi); the twin matches it.
    from ._parser import (
        CHUNKED,
        CLOSE_DELIMITED,
        CONTINUE_RESPONSE,
        END,
        EndOfMessage,
        LAST_CHUNK,
        LENGTH,
        NO_BODY,
        ONE_WRITE_LIMIT,
        Request,
        RequestParser,
        date_header_value,
        encode_chunk,
        encode_error,
        encode_head,
        encode_response,
        encode_trailers,
    )
else:
    RequestParser = _impl.RequestParser
    Request = _impl.Request
    EndOfMessage = _impl.EndOfMessage
    END = _impl.END
    encode_head = _impl.encode_head
    encode_response = _impl.encode_response
    encode_chunk = _impl.encode_chunk
    encode_trailers = _impl.encode_trailers
    encode_error = _impl.encode_error
    date_header_value = _impl.date_header_value
    NO_BODY = _impl.NO_BODY
    LENGTH = _impl.LENGTH
    CHUNKED = _impl.CHUNKED
    CLOSE_DELIMITED = _impl.CLOSE_DELIMITED
    LAST_CHUNK = _impl.LAST_CHUNK
    CONTINUE_RESPONSE = _impl.CONTINUE_RESPONSE
    ONE_WRITE_LIMIT = _impl.ONE_WRITE_LIMIT
