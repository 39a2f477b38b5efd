"""Typing stub for ``fastbase.websocket._frames`` (compiled), whose public API is the
same as the pure-Python twin ``fastbase.websocket._frames_py``."""

from typing import Final, List, Optional, Union

from .deflate import Deflate

_Buffer = Union[bytes, bytearray, memoryview]
Event = Union["Message", "Ping", "Pong", "Close"]

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

CONTINUATION: Final[int]
TEXT: Final[int]
BINARY: Final[int]
CLOSE: Final[int]
PING: Final[int]
PONG: Final[int]

class Message:
    """A whole data message: ``opcode`` TEXT with ``data`` str, or BINARY with bytes."""

    def __init__(self, opcode: int, data: Union[str, bytes]) -> None: ...
    @property
    def opcode(self) -> int: ...
    @property
    def data(self) -> Union[str, bytes]: ...

class Ping:
    """A Ping control frame; answer it with a Pong carrying the same payload."""

    def __init__(self, payload: bytes) -> None: ...
    @property
    def payload(self) -> bytes: ...

class Pong:
    """A Pong control frame (an answer to a ping, or unsolicited)."""

    def __init__(self, payload: bytes) -> None: ...
    @property
    def payload(self) -> bytes: ...

class Close:
    """The client's Close frame: ``code`` (1005 when none was sent) and ``reason``."""

    def __init__(self, code: int, reason: str) -> None: ...
    @property
    def code(self) -> int: ...
    @property
    def reason(self) -> str: ...

class FrameParser:
    """Incremental, strict parser of the frames a client sends; one per connection."""

    max_message_size: int
    deflate: Optional[Deflate]
    def __init__(self, *, max_message_size: Optional[int] = ..., deflate: Optional[Deflate] = ...) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def in_message(self) -> bool: ...
    def feed(self, data: _Buffer) -> List[Event]: ...

def encode_frame(opcode: int, payload: _Buffer = ..., fin: bool = ..., rsv1: bool = ...) -> bytes: ...
def encode_text(data: str, deflate: Optional[Deflate] = ...) -> bytes: ...
def encode_binary(data: _Buffer, deflate: Optional[Deflate] = ...) -> bytes: ...
def encode_ping(payload: _Buffer = ...) -> bytes: ...
def encode_pong(payload: _Buffer = ...) -> bytes: ...
def encode_close(code: Optional[int] = ..., reason: str = ...) -> bytes: ...
