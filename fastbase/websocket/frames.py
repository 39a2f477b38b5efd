"""The WebSocket frame parser and writers the rest of fastbase uses.

Exports the compiled implementation (``fastbase.websocket._frames``) and
falls back to the pure-Python twin (``fastbase.websocket._frames_py``) when it is missing or
``FASTBASE_NO_EXTENSIONS=1``. ``FASTBASE_REQUIRE_EXTENSIONS=1`` turns a
missing compiled module into an ImportError instead of a silent fallback.
``IMPLEMENTATION`` says which one is in use ("c" or "py").

API (the same in both; see ``_frames_py`` for the details)::

    parser = FrameParser(max_message_size=16 MiB, deflate=None)
    for event in parser.feed(data):    # Message | Ping | Pong | Close
        ...                            # WebSocketProtocolError: send
                                       # encode_close(exc.code, exc.reason), close
    encode_text(str, deflate=None) / encode_binary(bytes, deflate=None)
    encode_ping(payload) / encode_pong(payload) / encode_close(code, reason)
    encode_frame(opcode, payload, fin=True, rsv1=False)

``negotiate_deflate`` (RFC 7692, from ``deflate``) gives the
``Deflate`` to pass as ``deflate=``; the handshake lives in
``handshake``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastbase.http.twins import load

from .deflate import Deflate, negotiate_deflate  # noqa: F401  (re-exported)
from .errors import CloseCode, WebSocketProtocolError, is_valid_close_code  # noqa: F401


_impl, IMPLEMENTATION = load("fastbase.websocket._frames", "fastbase.websocket._frames_py")

if TYPE_CHECKING:
    # Type checkers see the twin, whose API the compiled module shares.
    from ._frames_py import (
        BINARY,
        CLOSE,
        CONTINUATION,
        PING,
        PONG,
        TEXT,
        Close,
        FrameParser,
        Message,
        Ping,
        Pong,
        encode_binary,
        encode_close,
        encode_frame,
        encode_ping,
        encode_pong,
        encode_text,
    )
else:
    FrameParser = _impl.FrameParser
    Message = _impl.Message
    Ping = _impl.Ping
    Pong = _impl.Pong
    Close = _impl.Close
    encode_frame = _impl.encode_frame
    encode_text = _impl.encode_text
    encode_binary = _impl.encode_binary
    encode_ping = _impl.encode_ping
    encode_pong = _impl.encode_pong
    encode_close = _impl.encode_close
    CONTINUATION = _impl.CONTINUATION
    TEXT = _impl.TEXT
    BINARY = _impl.BINARY
    CLOSE = _impl.CLOSE
    PING = _impl.PING
    PONG = _impl.PONG
