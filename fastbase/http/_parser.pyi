"""Typing stub for ``fastbase.http._parser`` (compiled), whose public API is the
same as the pure-Python twin ``fastbase.http._parser_py``."""

from typing import Final, Iterable, List, Optional, Sequence, Tuple, Union

Header = Tuple[bytes, bytes]
_Text = Union[str, bytes, bytearray, memoryview]

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

class Request:
    """A request head. ``headers`` is a list of (lower-cased name, value)."""

    @property
    def method(self) -> bytes: ...
    @property
    def target(self) -> bytes: ...
    @property
    def path(self) -> bytes: ...
    @property
    def query(self) -> bytes: ...
    @property
    def http_version(self) -> str: ...
    @property
    def headers(self) -> List[Header]: ...
    @property
    def host(self) -> Optional[bytes]: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def content_length(self) -> Optional[int]: ...
    @property
    def expect_continue(self) -> bool: ...
    @property
    def upgrade(self) -> Optional[bytes]: ...

class EndOfMessage:
    """The request (body included) is complete; ``trailers`` from chunked bodies."""

    def __init__(self, trailers: Sequence[Header] = ...) -> None: ...
    @property
    def trailers(self) -> Sequence[Header]: ...

#: The end of a message without trailers.
END: Final[EndOfMessage]

Event = Union[Request, bytes, EndOfMessage]

class RequestParser:
    """Incremental, strict HTTP/1.1 request parser; one per connection."""

    max_request_line: int
    max_field_size: int
    max_header_size: int
    max_fields: int
    max_chunk_extensions: int
    #: -1 when unlimited.
    max_body_size: int
    def __init__(
        self,
        *,
        max_request_line: int = ...,
        max_field_size: int = ...,
        max_header_size: int = ...,
        max_fields: int = ...,
        max_chunk_extensions: int = ...,
        max_body_size: Optional[int] = ...,
    ) -> None: ...
    @property
    def idle(self) -> bool: ...
    @property
    def in_head(self) -> bool: ...
    @property
    def paused(self) -> bool: ...
    def feed(self, data: Union[bytes, bytearray, memoryview]) -> List[Event]: ...
    def resume(self) -> List[Event]: ...
    def take_buffer(self) -> bytes: ...

NO_BODY: Final[int]
LENGTH: Final[int]
CHUNKED: Final[int]
CLOSE_DELIMITED: Final[int]
LAST_CHUNK: Final[bytes]
CONTINUE_RESPONSE: Final[bytes]
ONE_WRITE_LIMIT: Final[int]

def date_header_value() -> bytes: ...
def encode_head(
    status: int,
    headers: Iterable[Tuple[_Text, _Text]],
    *,
    reason: Optional[_Text] = ...,
    http11: bool = ...,
    keep_alive: bool = ...,
    head_request: bool = ...,
    body_length: int = ...,
    server: Optional[bytes] = ...,
) -> Tuple[bytes, int, int, bool]: ...
def encode_response(
    status: int,
    headers: Iterable[Tuple[_Text, _Text]],
    body: bytes,
    reason: Optional[_Text],
    http11: bool,
    keep_alive: bool,
    head_request: bool,
    server: Optional[bytes],
) -> Optional[Tuple[bytes, bool]]: ...
def encode_chunk(data: Union[bytes, bytearray, memoryview]) -> bytes: ...
def encode_trailers(trailers: Iterable[Tuple[_Text, _Text]]) -> bytes: ...
def encode_error(status: int, message: str = ..., keep_alive: bool = ..., http11: bool = ..., server: bytes | None = ...) -> bytes: ...
