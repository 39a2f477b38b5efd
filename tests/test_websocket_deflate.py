"""permessage-deflate (RFC 7692): negotiating it from the client's offer, and
the Deflate codec on its own (the frame tests drive it through the parsers)."""

from __future__ import annotations

import zlib

import pytest

from fastbase.websocket.deflate import Deflate, negotiate_deflate, parse_extensions
from fastbase.websocket.errors import WebSocketProtocolError
from wsclient import deflated

# (offer, response or None, Deflate attributes expected)
ACCEPTED = [
    pytest.param("permessage-deflate", b"permessage-deflate", {}, id="bare"),
    # Chrome's offer.
    pytest.param("permessage-deflate; client_max_window_bits", b"permessage-deflate", {}, id="chrome"),
    pytest.param("permessage-deflate; client_max_window_bits=10", b"permessage-deflate", {}, id="client-bits-value-ignored"),
    pytest.param(
        "permessage-deflate; server_no_context_takeover",
        b"permessage-deflate; server_no_context_takeover",
        {"server_no_context_takeover": True},
        id="server-no-context-takeover",
    ),
    pytest.param(
        "permessage-deflate; client_no_context_takeover",
        b"permessage-deflate; client_no_context_takeover",
        {"client_no_context_takeover": True},
        id="client-no-context-takeover",
    ),
    pytest.param(
        "permessage-deflate; server_max_window_bits=10",
        b"permessage-deflate; server_max_window_bits=10",
        {"server_max_window_bits": 10},
        id="server-max-window-bits",
    ),
    pytest.param(
        'permessage-deflate; server_max_window_bits="12"',
        b"permessage-deflate; server_max_window_bits=12",
        {"server_max_window_bits": 12},
        id="quoted-value",
    ),
    pytest.param(
        "permessage-deflate;server_max_window_bits=15;client_max_window_bits;server_no_context_takeover;client_no_context_takeover",
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        id="everything-no-spaces",
    ),
    pytest.param("PerMessage-Deflate ; Client_Max_Window_Bits", b"permessage-deflate", {}, id="case-insensitive"),
    pytest.param("x-webkit-deflate-frame, permessage-deflate", b"permessage-deflate", {}, id="after-unknown-extension"),
    pytest.param(
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
        b"permessage-deflate; server_max_window_bits=9",
        {"server_max_window_bits": 9},
        id="8-bits-declined-next-offer-taken",
    ),
    pytest.param(
        "permessage-deflate; foo, permessage-deflate",
        b"permessage-deflate",
        {},
        id="invalid-offer-then-valid-fallback",
    ),
    pytest.param(", , permessage-deflate ,", b"permessage-deflate", {}, id="empty-list-elements"),
    pytest.param([b"foo", b"permessage-deflate"], b"permessage-deflate", {}, id="two-field-lines"),
]


@pytest.mark.parametrize("offer, response, attributes", ACCEPTED)
def test_accepted(offer, response, attributes):
    value, deflate = negotiate_deflate(offer)
    assert value == response
    expected = {
        "server_no_context_takeover": False,
        "client_no_context_takeover": False,
        "server_max_window_bits": 15,
        **attributes,
    }
    assert {name: getattr(deflate, name) for name in expected} == expected


DECLINED = {
    "none": None,
    "empty": "",
    "other-extension": "x-webkit-deflate-frame",
    "server-bits-without-value": "permessage-deflate; server_max_window_bits",
    "server-bits-16": "permessage-deflate; server_max_window_bits=16",
    "server-bits-7": "permessage-deflate; server_max_window_bits=7",
    "server-bits-8-unsupported-by-zlib": "permessage-deflate; server_max_window_bits=8",
    "server-bits-leading-zero": "permessage-deflate; server_max_window_bits=09",
    "server-bits-not-a-number": "permessage-deflate; server_max_window_bits=ten",
    "client-bits-16": "permessage-deflate; client_max_window_bits=16",
    "client-bits-0": "permessage-deflate; client_max_window_bits=0",
    "server-no-context-takeover-with-value": "permessage-deflate; server_no_context_takeover=1",
    "client-no-context-takeover-with-value": "permessage-deflate; client_no_context_takeover=true",
    "unknown-parameter": "permessage-deflate; mem_level=8",
    "duplicate-parameter": "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "duplicate-parameter-different-values": "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
    "syntax-trailing-semicolon": "permessage-deflate;",
    "syntax-missing-param-name": "permessage-deflate; =10",
    "syntax-unterminated-quote": 'permessage-deflate; server_max_window_bits="10',
    "syntax-quoted-not-token": 'permessage-deflate; server_max_window_bits="1 0"',
    "syntax-junk-after-extension": "permessage-deflate junk",
    "syntax-bad-extension-name": "permessage deflate",
    "syntax-control-character": "permessage-deflate\x00",
}


@pytest.mark.parametrize("offer", list(DECLINED.values()), ids=list(DECLINED))
def test_declined(offer):
    assert negotiate_deflate(offer) == (None, None)


def test_disabled():
    assert negotiate_deflate("permessage-deflate", enabled=False) == (None, None)


def test_server_may_ask_for_no_context_takeover():
    # RFC 7692 7.1.1.1/7.1.1.2: the server MAY include either parameter even
    # when the offer did not.
    value, deflate = negotiate_deflate("permessage-deflate", server_no_context_takeover=True, client_no_context_takeover=True)
    assert value == b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    assert deflate.server_no_context_takeover and deflate.client_no_context_takeover


def test_parse_extensions():
    assert parse_extensions('a; b=1; c="d", e') == [("a", [("b", "1"), ("c", "d")]), ("e", [])]
    assert parse_extensions('a; b="x\\"y"') is None  # unescaped, 'x"y' is no token
    assert parse_extensions("") == []


def test_window_bits_validation():
    with pytest.raises(ValueError):
        Deflate(server_max_window_bits=8)
    with pytest.raises(ValueError):
        Deflate(client_max_window_bits=16)


# --- the codec ------------------------------------------------------------------------------


def test_compress_strips_the_tail_and_keeps_the_window():
    deflate = Deflate()
    first, second = deflate.compress(b"Hello"), deflate.compress(b"Hello")
    assert first == bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    assert second == bytes([0xF2, 0x00, 0x11, 0x00, 0x00])
    # RFC 7692 7.2.3.6: an empty message compresses to one 0x00 octet.
    assert Deflate().compress(b"") == b"\x00"


def test_compress_with_a_small_window_reads_back():
    deflate = Deflate(server_max_window_bits=9, level=9, mem_level=1)
    data = bytes(range(256)) * 20
    d = zlib.decompressobj(-9)
    assert d.decompress(deflate.compress(data) + b"\x00\x00\xff\xff") == data


def test_inflate_bounded_by_room():
    deflate = Deflate()
    payload = deflated(b"\x00" * 10_000)
    with pytest.raises(WebSocketProtocolError) as exc:
        deflate.inflate(payload, 9_999)
    assert exc.value.code == 1009
    deflate = Deflate()
    assert deflate.inflate(payload, 10_000) + deflate.inflate_end(0) == b"\x00" * 10_000
    deflate = Deflate()
    assert len(deflate.inflate(payload, -1)) == 10_000


def test_inflate_end_resets_without_client_context_takeover():
    deflate = Deflate(client_no_context_takeover=True)
    for _ in range(3):
        assert deflate.inflate(deflated(b"Hello"), -1) + deflate.inflate_end(-1) == b"Hello"
    # With the window dropped, a back-reference to the previous message fails.
    with pytest.raises(WebSocketProtocolError) as exc:
        deflate.inflate(bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), -1)
        deflate.inflate_end(-1)
    assert exc.value.code == 1007


def test_inflate_invalid_data():
    with pytest.raises(WebSocketProtocolError) as exc:
        Deflate().inflate(b"\xff\xff\xff", -1)
    assert (exc.value.code, exc.value.reason) == (1007, "invalid deflate data")
