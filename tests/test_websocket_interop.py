"""fastbase's handshake and frames against an independent client: the
``websockets`` library's sans-IO ClientProtocol (skipped when it is not
installed). Its request goes through fastbase's HTTP parser and handshake,
its frames (masked, fragmented, compressed) through both FrameParser
implementations, and what fastbase writes must be read back by it."""

from __future__ import annotations

import pytest

websockets = pytest.importorskip("websockets")

from websockets.client import ClientProtocol  # noqa: E402
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory  # noqa: E402
from websockets.frames import Opcode  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from fastbase.parser import RequestParser  # noqa: E402
from fastbase.websocket.deflate import negotiate_deflate  # noqa: E402
from fastbase.websocket.handshake import check_request, encode_accept  # noqa: E402

DEFLATE_OFFERS = {
    "no-deflate": None,
    "deflate-default": {},
    "deflate-no-context-takeover": {"server_no_context_takeover": True, "client_no_context_takeover": True},
    "deflate-small-windows": {"server_max_window_bits": 10, "client_max_window_bits": 9},
}


def connect(deflate_offer, subprotocols=("chat", "superchat"), choose="superchat"):
    """A client whose handshake fastbase accepted; the server's Deflate."""
    extensions = None if deflate_offer is None else [ClientPerMessageDeflateFactory(**deflate_offer)]
    client = ClientProtocol(parse_uri("ws://example.com/chat?x=1"), extensions=extensions, subprotocols=list(subprotocols), max_size=None)
    client.send_request(client.connect())
    (raw,) = client.data_to_send()
    request, _end = RequestParser().feed(raw)
    assert request.upgrade is not None
    handshake = check_request(request.method, request.http_version, request.headers)
    value, deflate = negotiate_deflate(handshake.extensions)
    client.receive_data(encode_accept(handshake, choose, value))
    (response,) = client.events_received()
    assert isinstance(response, Response) and response.status_code == 101
    assert client.state is State.OPEN, client.handshake_exc
    assert client.subprotocol == choose
    assert (deflate is None) == (deflate_offer is None)
    assert len(client.extensions) == (0 if deflate is None else 1)
    return client, deflate


MESSAGES = ["Hello", "", "κόσμε \U0001f600" * 50, b"\x00\xff" * 40000, b"", "x" * 70000]


@pytest.mark.parametrize("offer", list(DEFLATE_OFFERS.values()), ids=list(DEFLATE_OFFERS))
def test_client_frames_are_read(ws_impl, offer):
    client, deflate = connect(offer)
    parser = ws_impl.FrameParser(deflate=deflate)
    expected = []
    for message in MESSAGES:
        if isinstance(message, str):
            client.send_text(message.encode())
        else:
            client.send_binary(message)
        expected.append(message)
    # A fragmented message with a ping in the middle.
    client.send_text("frag".encode(), fin=False)
    client.send_ping(b"mid")
    client.send_continuation("ment".encode(), fin=False)
    client.send_continuation(b"!", fin=True)
    client.send_close(1001, "bye")
    wire = b"".join(client.data_to_send())
    events = []
    for i in range(0, len(wire), 777):
        events += parser.feed(wire[i : i + 777])
    messages = [e.data for e in events if isinstance(e, ws_impl.Message)]
    assert messages == expected + ["fragment!"]
    pings = [e.payload for e in events if isinstance(e, ws_impl.Ping)]
    assert pings == [b"mid"]
    close = events[-1]
    assert isinstance(close, ws_impl.Close) and (close.code, close.reason) == (1001, "bye")
    assert parser.closed


@pytest.mark.parametrize("offer", list(DEFLATE_OFFERS.values()), ids=list(DEFLATE_OFFERS))
def test_server_frames_are_read(ws_impl, offer):
    client, deflate = connect(offer)
    wire = []
    for message in MESSAGES:
        if isinstance(message, str):
            wire.append(ws_impl.encode_text(message, deflate))
        else:
            wire.append(ws_impl.encode_binary(message, deflate))
    wire.append(ws_impl.encode_ping(b"are you there"))
    wire.append(ws_impl.encode_pong(b"unsolicited"))
    wire.append(ws_impl.encode_close(1000, "done"))
    client.receive_data(b"".join(wire))
    frames = client.events_received()
    assert client.parser_exc is None
    data = [f for f in frames if f.opcode in (Opcode.TEXT, Opcode.BINARY)]
    assert [f.data.decode() if f.opcode is Opcode.TEXT else f.data for f in data] == MESSAGES
    assert [(f.opcode, f.data) for f in frames[len(MESSAGES) :]] == [
        (Opcode.PING, b"are you there"),
        (Opcode.PONG, b"unsolicited"),
        (Opcode.CLOSE, b"\x03\xe8done"),
    ]
    assert client.close_rcvd.code == 1000 and client.close_rcvd.reason == "done"


def test_no_subprotocol_chosen():
    client, _ = connect(None, choose=None)
    assert client.subprotocol is None
