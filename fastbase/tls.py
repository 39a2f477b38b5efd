"""TLS for the listening sockets, with a clear answer to plain HTTP.

Each connection on a TLS port starts with ``TLSSniffer``: if the first byte
is a TLS handshake record, the connection is handed to asyncio's TLS protocol
(fed the bytes already read) wrapping an ``HttpProtocol``; otherwise the
client spoke plain HTTP to the HTTPS port, and it gets a plain-text 400
saying so instead of a failed handshake and a closed socket.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from typing import Any, Callable, Optional

from .logs import error_log, format_client
from .http.parser import encode_error
from .protocol import address_tuple

#: RFC 8446 5.1: ContentType handshake(22) opens every TLS connection.
TLS_HANDSHAKE = 0x16
HANDSHAKE_TIMEOUT = 10.0

PLAIN_HTTP_MESSAGE = "This port speaks HTTPS: the request was sent as plain HTTP (use an https:// URL)."


class TLSSniffer(asyncio.Protocol):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: ssl.SSLContext,
        app_factory: Callable[[], asyncio.Protocol],
        server_header: Optional[bytes] = b"fastbase",
    ) -> None:
        self.loop = loop
        self.server_header = server_header
        self.context = context
        self.app_factory = app_factory
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if not data:
            return
        if data[0] != TLS_HANDSHAKE:
            error_log.info(
                "Plain HTTP request from %s on the HTTPS port",
                format_client(address_tuple(transport.get_extra_info("peername"))),
            )
            transport.write(encode_error(400, PLAIN_HTTP_MESSAGE, server=self.server_header))
            transport.close()
            return
        tls = sslproto.SSLProtocol(
            self.loop,
            self.app_factory(),
            self.context,
            None,  # type: ignore[arg-type]  # no waiter: nothing awaits the handshake
            server_side=True,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,  # type: ignore[arg-type]  # typeshed says int; a float works
        )
        transport.set_protocol(tls)
        tls.connection_made(transport)
        _feed(tls, data)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.transport = None


def _feed(protocol: Any, data: bytes) -> None:
    """Hand already-read bytes to a protocol, buffered (3.11+) or not."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    else:
        protocol.data_received(data)
