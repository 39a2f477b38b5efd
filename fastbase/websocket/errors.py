"""WebSocket close codes (RFC 6455 section 7.4) and the one exception a
frame parser raises, carrying the close code to send.

Both frame parser implementations (``_frames_py``, ``_frames``) and the
permessage-deflate codec raise ``WebSocketProtocolError``; callers send a
Close frame with its ``code`` and ``reason`` and then close the connection.
"""

from __future__ import annotations

import enum
from typing import List

__all__ = ["CloseCode", "WebSocketProtocolError", "is_valid_close_code"]


class CloseCode(enum.IntEnum):
    """RFC 6455 7.4.1 status codes, and the IANA registry's later additions."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    #: Never on the wire: "no status code was actually present".
    NO_STATUS_RCVD = 1005
    #: Never on the wire: the connection closed without a Close frame.
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    #: Never on the wire: the TLS handshake failed.
    TLS_HANDSHAKE = 1015


# RFC 6455 7.4.1 defines 1000-1003 and 1007-1011; 1012-1014 were registered
# with IANA since ("WebSocket Close Code Number Registry"). 1004 is reserved;
# 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control
# frame by an endpoint".
_DEFINED = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_close_code(code: int) -> bool:
    """May ``code`` appear in a Close frame (sent or received)?

    RFC 6455 7.4.2: 0-999 are "not used"; 1000-2999 are "reserved for
    definition by this protocol" (only the defined ones are valid); 3000-3999
    are registered with IANA by libraries and frameworks; 4000-4999 are "for
    private use". Anything else is invalid.
    """
    return code in _DEFINED or 3000 <= code <= 4999


class WebSocketProtocolError(Exception):
    """The peer broke RFC 6455 / RFC 7692 (or a limit): fail the connection.

    ``code`` is the close code to send (1002 protocol error, 1007 invalid
    payload data, 1009 message too big) and ``reason`` a short text safe to
    put in the Close frame (ASCII, under 123 bytes, never echoing peer bytes).
    ``events`` holds what the failing ``feed`` call completed before the
    fault, in order (deliver them, then close).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.events: List[object] = []
