"""WebSocket frame parsing and writing speed: fastbase against its peers.

Run: python -m pytest bench/test_bench_websocket.py --benchmark-only
(``-k parse`` or ``-k encode`` for one half; ``python bench/table.py`` is for
the HTTP parser's JSON and does not apply here.)

Parsing: each parser reads the same masked client frames, one parser per
connection, reused, doing for one read what a server does with it (complete
messages out, text decoded to str):

- ``fastbase_c`` / ``fastbase_py``: ``FrameParser.feed`` of the compiled
  module and of its pure-Python twin.
- ``websockets``: the websockets library's sans-IO ``ServerProtocol`` in the
  OPEN state, ``receive_data`` then ``events_received`` (its frame parser, with
  its C ``apply_mask``; the protocol layer around it is what uvicorn's
  websockets backend runs too), fragments joined and text decoded by the
  adapter as its ``recv()`` would.
- ``wsproto``: ``wsproto.connection.Connection`` (the post-handshake
  connection uvicorn's wsproto backend uses), ``receive_data`` then
  ``events()``, message pieces joined by the adapter.

Writing: one unmasked server frame from a str or bytes message
(``encode_text``/``encode_binary``; websockets' ``Frame.serialize``; wsproto's
``Connection.send``).
"""

from __future__ import annotations

import os

import pytest

from fastbase.websocket import _frames_py as _websocket_py

try:
    from fastbase.websocket import _frames as _websocket_c
except ImportError:  # pragma: no cover
    _websocket_c = None

KEY = b"\x37\xfa\x21\x3d"


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = bytes((b0, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 0xFF)) + n.to_bytes(8, "big")
    key = (KEY * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")
    return head + KEY + body


SMALL_TEXT = 'Hello, world! {"id": 42, "op": "ping"}'
TEXT_64K = ("lorem ipsum dolor sit amet, ünïcödé \u2603 " * 1600)[:65536]
BINARY_64K = os.urandom(65536)

# name: (wire bytes, messages in it, payload bytes)
INPUTS = {
    "small_text": (masked(1, SMALL_TEXT.encode()), 1),
    "small_text_x16": (masked(1, SMALL_TEXT.encode()) * 16, 16),
    "text_64k": (masked(1, TEXT_64K.encode()), 1),
    "binary_64k": (masked(2, BINARY_64K), 1),
    "binary_64k_in_4_fragments": (
        masked(2, BINARY_64K[:16384], fin=False)
        + masked(0, BINARY_64K[16384:32768], fin=False)
        + masked(0, BINARY_64K[32768:49152], fin=False)
        + masked(0, BINARY_64K[49152:]),
        1,
    ),
}


def _fastbase(module):
    def make():
        parser = module.FrameParser()
        return parser.feed

    return make


def _websockets():
    from websockets.frames import Opcode
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    def make():
        protocol = ServerProtocol(state=State.OPEN, max_size=16 * 1024 * 1024)
        fragments = []

        def parse(data):
            # The sans-IO layer yields frames with bytes payloads; joining
            # fragments and decoding text is done above it (websockets'
            # Assembler, for recv()), so the adapter does both here.
            protocol.receive_data(data)
            messages = []
            for frame in protocol.events_received():
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    fragments.append(frame)
                    if frame.fin:
                        payload = b"".join(f.data for f in fragments)
                        text = fragments[0].opcode is Opcode.TEXT
                        messages.append(("Message", payload.decode() if text else payload))
                        fragments.clear()
            return messages

        return parse

    return make


def _wsproto():
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import Message

    def make():
        connection = Connection(ConnectionType.SERVER)
        parts = []

        def parse(data):
            # wsproto yields each frame's piece of a message (text already
            # decoded); the adapter joins them into whole messages.
            connection.receive_data(data)
            messages = []
            for event in connection.events():
                if isinstance(event, Message):
                    parts.append(event.data)
                    if event.message_finished:
                        messages.append(("Message", parts[0][:0].join(parts)))
                        parts.clear()
            return messages

        return parse

    return make


def _available(name):
    if name == "fastbase_c":
        return _websocket_c is not None
    if name == "fastbase_py":
        return True
    try:
        __import__(name)
    except ImportError:
        return False
    return True


PARSERS = {
    "fastbase_c": lambda: _fastbase(_websocket_c),
    "fastbase_py": lambda: _fastbase(_websocket_py),
    "websockets": _websockets,
    "wsproto": _wsproto,
}


def _count_messages(events):
    return sum(1 for e in events if (e[0] if isinstance(e, tuple) else type(e).__name__) == "Message")


@pytest.mark.parametrize("impl", list(PARSERS))
@pytest.mark.parametrize("case", list(INPUTS))
def test_parse(benchmark, case, impl):
    if not _available(impl):
        pytest.skip(f"{impl} is not installed")
    data, count = INPUTS[case]
    parse = PARSERS[impl]()()
    # Check the adapter really yields every message before timing it.
    assert _count_messages(parse(data)) == count, (impl, case)
    benchmark.group = f"parse {case}"
    benchmark.extra_info["messages"] = count
    benchmark.extra_info["bytes"] = len(data)
    benchmark(parse, data)


def _encoders():
    encoders = {}
    if _websocket_c is not None:
        encoders["fastbase_c"] = (_websocket_c.encode_text, _websocket_c.encode_binary)
    encoders["fastbase_py"] = (_websocket_py.encode_text, _websocket_py.encode_binary)
    try:
        from websockets.frames import Frame, Opcode
    except ImportError:
        pass
    else:
        encoders["websockets"] = (
            lambda s: Frame(Opcode.TEXT, s.encode()).serialize(mask=False),
            lambda b: Frame(Opcode.BINARY, b).serialize(mask=False),
        )
    try:
        from wsproto.connection import Connection, ConnectionType
        from wsproto.events import BytesMessage, TextMessage
    except ImportError:
        pass
    else:
        connection = Connection(ConnectionType.SERVER)
        encoders["wsproto"] = (
            lambda s: connection.send(TextMessage(data=s)),
            lambda b: connection.send(BytesMessage(data=b)),
        )
    return encoders


ENCODERS = _encoders()
ENCODE_INPUTS = {"small_text": SMALL_TEXT, "text_64k": TEXT_64K, "binary_64k": BINARY_64K}


@pytest.mark.parametrize("impl", ["fastbase_c", "fastbase_py", "websockets", "wsproto"])
@pytest.mark.parametrize("case", list(ENCODE_INPUTS))
def test_encode(benchmark, case, impl):
    if impl not in ENCODERS:
        pytest.skip(f"{impl} is not available")
    encode_text, encode_binary = ENCODERS[impl]
    message = ENCODE_INPUTS[case]
    encode = encode_text if isinstance(message, str) else encode_binary
    reference = _websocket_py.encode_text(message) if isinstance(message, str) else _websocket_py.encode_binary(message)
    assert encode(message) == reference, impl
    benchmark.group = f"encode {case}"
    benchmark(encode, message)
