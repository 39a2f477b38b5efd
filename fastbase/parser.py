"""``fastbase.parser``: the HTTP/1.1 parser and writer API at the path the
README and user code name (``fastbase.parser.IMPLEMENTATION``).

The implementation lives in the ``fastbase.http`` package; this module only
re-exports ``fastbase.http.parser``.
"""

from __future__ import annotations

from .http.parser import (  # noqa: F401  (re-exported)
    CHUNKED,
    CLOSE_DELIMITED,
    CONTINUE_RESPONSE,
    END,
    IMPLEMENTATION,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    ONE_WRITE_LIMIT,
    BadRequest,
    ContentTooLarge,
    EndOfMessage,
    HeaderFieldsTooLarge,
    InvalidResponse,
    NotImplementedByServer,
    ProtocolError,
    Request,
    RequestParser,
    RequestTimeout,
    URITooLong,
    VersionNotSupported,
    date_header_value,
    encode_chunk,
    encode_error,
    encode_head,
    encode_response,
    encode_trailers,
)
from .http.parser import __all__ as __all__
