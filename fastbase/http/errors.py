"""The one exception tree every protocol error belongs to.

Each class carries the HTTP status the server answers with, and each instance a
short reason that is safe to send to the client (it never echoes client bytes).
Both parser implementations raise these, so callers catch ``ProtocolError``.
"""

from __future__ import annotations

__all__ = [
    "ProtocolError",
    "BadRequest",
    "RequestTimeout",
    "ContentTooLarge",
    "URITooLong",
    "HeaderFieldsTooLarge",
    "NotImplementedByServer",
    "VersionNotSupported",
    "InvalidResponse",
    "ClientDisconnected",
]


class ProtocolError(Exception):
    """A request the server must refuse; answer with ``status`` and close."""

    status: int = 400

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.default_reason)
        self.reason = reason or self.default_reason

    default_reason = "Bad Request"


class BadRequest(ProtocolError):
    status = 400
    default_reason = "Bad Request"


class RequestTimeout(ProtocolError):
    """Raised by the transport, never by the parser: the head came too slowly."""

    status = 408
    default_reason = "Request Timeout"


class ContentTooLarge(ProtocolError):
    status = 413
    default_reason = "Content Too Large"


class URITooLong(ProtocolError):
    status = 414
    default_reason = "URI Too Long"


class HeaderFieldsTooLarge(ProtocolError):
    status = 431
    default_reason = "Request Header Fields Too Large"


class NotImplementedByServer(ProtocolError):
    status = 501
    default_reason = "Not Implemented"


class VersionNotSupported(ProtocolError):
    status = 505
    default_reason = "HTTP Version Not Supported"


class InvalidResponse(ValueError):
    """The application asked the writer to emit something HTTP cannot carry
    (CR, LF or NUL in a header, a bad status). A server bug or app bug, never
    the client's: the bridges turn it into a 500."""


class ClientDisconnected(OSError):
    """The client went away mid-exchange. Raised into the app by
    ``wsgi.input`` reads, WSGI ``write()`` and ASGI ``send()`` (ASGI HTTP spec
    2.4 lets a server raise an OSError there); logged at INFO, never as an
    application error."""
