"""The WebSocket and worker benchmark scripts' own logic: bench/ws_load.py
(frames, the reply reader, the handshake check, the two client protocols
against a fake transport), bench/ws_trivial.py's cached echo,
bench/ws_bench.py and bench/workers_bench.py (arguments, result math,
tables, chart data). No server, wrk or load generator is started."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import struct
import sys
from pathlib import Path

import pytest

if sys.platform == "win32":
    pytest.skip("the benchmark scripts are Linux tools (taskset, /proc, resource)", allow_module_level=True)

BENCH = Path(__file__).resolve().parent


def _load(name: str, filename: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ws_trivial.py imports ws_load by its plain name: register it under that.
ws_load = _load("ws_load", "ws_load.py")
ws_trivial = _load("bench_ws_trivial", "ws_trivial.py")
ws_bench = _load("bench_ws_bench", "ws_bench.py")
workers = _load("bench_workers_bench", "workers_bench.py")


# --- frames ----------------------------------------------------------------


def test_accept_value_is_rfc_6455_sample():
    assert ws_load.accept_value(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert ws_load.ACCEPT == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1000, 16384])
def test_mask_is_its_own_inverse_and_matches_bytewise_xor(size):
    payload = bytes(random.Random(size).randrange(256) for _ in range(size))
    key = b"\x37\xfa\x21\x3d"
    masked = ws_load.mask(payload, key)
    assert masked == bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert ws_load.mask(masked, key) == payload


def test_rfc_6455_masked_hello_sample():
    # RFC 6455 5.7: a single-frame masked text message containing "Hello".
    assert ws_load.client_frame(ws_load.OP_TEXT, b"Hello") == bytes.fromhex("818537fa213d7f9f4d5158")
    assert ws_load.server_frame(ws_load.OP_TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")


@pytest.mark.parametrize(
    "length, header",
    [
        (0, b"\x82\x80"),
        (125, b"\x82\xfd"),
        (126, b"\x82\xfe\x00\x7e"),
        (65535, b"\x82\xfe\xff\xff"),
        (65536, b"\x82\xff" + struct.pack("!Q", 65536)),
    ],
)
def test_client_frame_length_encodings(length, header):
    frame = ws_load.client_frame(ws_load.OP_BINARY, b"x" * length)
    assert frame.startswith(header + ws_load.MASK_KEY)
    assert len(frame) == len(header) + 4 + length


def test_frame_header_fin_and_unmasked():
    assert ws_load.frame_header(ws_load.OP_TEXT, 3, masked=False, fin=False) == b"\x01\x03"
    assert ws_load.server_frame(ws_load.OP_CONT, b"", fin=True) == b"\x80\x00"


def test_close_payload_and_upgrade_request():
    assert ws_load.close_payload(1000) == b"\x03\xe8"
    assert ws_load.close_payload(1001, b"bye") == b"\x03\xe9bye"
    request = ws_load.upgrade_request("127.0.0.1", 8000, "/ws")
    assert request.startswith(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" in request
    assert b"Sec-WebSocket-Version: 13\r\n" in request
    assert b"Extensions" not in request  # nothing compressed
    assert request.endswith(b"\r\n\r\n")


def test_message_for_text_is_ascii_and_binary_covers_bytes():
    text = ws_load.message_for(100, binary=False)
    assert len(text) == 100 and text.decode("ascii")
    binary = ws_load.message_for(16384, binary=True)
    assert len(binary) == 16384 and set(binary) == set(range(256))
    assert ws_load.message_for(0, binary=True) == b""


# --- the handshake check -----------------------------------------------------

GOOD_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def test_check_upgrade_response_accepts_any_header_case():
    ws_load.check_upgrade_response(GOOD_101)


@pytest.mark.parametrize(
    "head, message",
    [
        (b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n", "refused"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "without Sec-WebSocket-Accept"),
        (b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n", "wrong"),
    ],
)
def test_check_upgrade_response_rejects(head, message):
    with pytest.raises(ws_load.LoadError, match=message):
        ws_load.check_upgrade_response(head)


# --- the reply reader --------------------------------------------------------

TEXT = ws_load.server_frame(ws_load.OP_TEXT, b"a" * 32)
BIG = ws_load.server_frame(ws_load.OP_BINARY, bytes(range(256)) * 64)  # 16 KiB: 2-byte length
HUGE = ws_load.server_frame(ws_load.OP_BINARY, b"z" * 70000)  # 8-byte length
PING = ws_load.server_frame(ws_load.OP_PING, b"hi")
CLOSE = ws_load.server_frame(ws_load.OP_CLOSE, b"\x03\xe8")
EMPTY = ws_load.server_frame(ws_load.OP_TEXT, b"")
FRAGMENTED = (
    ws_load.server_frame(ws_load.OP_TEXT, b"abc", fin=False)
    + PING
    + ws_load.server_frame(ws_load.OP_CONT, b"def", fin=False)
    + ws_load.server_frame(ws_load.OP_CONT, b"gh", fin=True)
)

STREAMS = {
    "one text": (TEXT, 1, [], [b"a" * 32]),
    "three texts": (TEXT * 3, 3, [], [b"a" * 32] * 3),
    "16 KiB binary": (BIG, 1, [], [bytes(range(256)) * 64]),
    "70000-byte binary": (HUGE, 1, [], [b"z" * 70000]),
    "empty text": (EMPTY, 1, [], [b""]),
    "ping then text": (PING + TEXT, 1, [(ws_load.OP_PING, b"hi")], [b"a" * 32]),
    "fragments with a ping inside": (FRAGMENTED, 1, [(ws_load.OP_PING, b"hi")], [b"abcdefgh"]),
    "text then close": (TEXT + CLOSE, 1, [(ws_load.OP_CLOSE, b"\x03\xe8")], [b"a" * 32]),
}


def _splits(data: bytes, how: str):
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(len(data))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 7))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


# Byte by byte only for the small streams: over 20 KB it is slow and adds nothing.
SPLITS = [
    pytest.param(case, how, id=f"{case}-{how}")
    for case in STREAMS
    for how in ("whole", "bytewise", "random")
    if not (how == "bytewise" and len(STREAMS[case][0]) > 20000)
]


@pytest.mark.parametrize("case, how", SPLITS)
def test_frame_reader_counts_messages_and_controls_at_any_split(case, how):
    data, messages, controls, payloads = STREAMS[case]
    for collect in (False, True):
        reader = ws_load.FrameReader(collect=collect)
        got_messages, got_controls = 0, []
        for piece in _splits(data, how):
            n, c = reader.feed(piece)
            got_messages += n
            got_controls += c or []
        assert got_messages == messages
        assert got_controls == controls
        assert reader.payloads == (payloads if collect else [])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x81\x85" + b"\x00" * 9, "masked"),
        (b"\xc1\x00", "reserved"),
        (b"\x80\x00", "unexpected continuation"),
        (b"\x01\x01a\x81\x01b", "inside a fragmented"),
        (b"\x83\x00", "unknown opcode"),
    ],
)
def test_frame_reader_rejects(data, message):
    with pytest.raises(ws_load.LoadError, match=message):
        ws_load.FrameReader().feed(data)


# --- statistics --------------------------------------------------------------


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert ws_load.percentile(values, 50) == 50
    assert ws_load.percentile(values, 99) == 99
    assert ws_load.percentile(values, 100) == 100
    assert ws_load.percentile([7.0], 99) == 7.0
    assert ws_load.percentile([], 50) is None


def test_summarize_run_rate_latency_and_cpu():
    run = ws_load.Run()
    run.count = 1000
    run.latencies = [0.001] * 98 + [0.002, 0.010]
    run.error(ValueError("boom"))
    run.error(ValueError("second"))
    out = ws_load.summarize_run(run, elapsed=2.0, cpu=1.5)
    assert out["rate"] == 500.0
    assert out["p50_ms"] == pytest.approx(1.0)
    assert out["p99_ms"] == pytest.approx(2.0)
    assert out["client_cpu"] == 0.75
    assert out["errors"] == 2 and out["first_error"] == "ValueError: boom"
    empty = ws_load.summarize_run(ws_load.Run(), elapsed=0.0, cpu=0.0)
    assert empty["rate"] == 0.0 and empty["p50_ms"] is None


def test_load_arguments():
    args = ws_load.parse_args(["echo", "--port", "9", "-c", "64", "-d", "3", "--size", "16384", "--binary"])
    assert (args.mode, args.port, args.connections, args.duration, args.size, args.binary) == ("echo", 9, 64, 3.0, 16384, True)
    assert ws_load.parse_args(["connect", "--port", "9"]).path == "/ws"
    for bad in (["echo"], ["flood", "--port", "9"], ["echo", "--port", "9", "-c", "0"], ["echo", "--port", "9", "-d", "0"]):
        with pytest.raises(SystemExit):
            ws_load.parse_args(bad)


def test_loop_factory_falls_back_to_asyncio_when_asked():
    factory, name = ws_load.loop_factory("asyncio")
    assert name == "asyncio" and factory is asyncio.new_event_loop


# --- the client protocols, on a fake transport -------------------------------


class FakeTransport:
    def __init__(self):
        self.written = []
        self.closed = self.aborted = False

    def write(self, data):
        self.written.append(bytes(data))

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_echo_client_verifies_then_counts_round_trips(loop):
    run = ws_load.Run()
    payload = b"p" * 32
    frame = ws_load.client_frame(ws_load.OP_TEXT, payload)
    ready = loop.create_future()
    client = ws_load.EchoClient(run, b"REQ", frame, payload, ready)
    transport = FakeTransport()
    client.connection_made(transport)
    assert transport.written == [b"REQ"]
    reply = ws_load.server_frame(ws_load.OP_TEXT, payload)
    # The 101 and the first echo may arrive in pieces.
    client.data_received(GOOD_101[:10])
    client.data_received(GOOD_101[10:])
    assert transport.written[-1] == frame
    client.data_received(reply[:5])
    assert not ready.done()
    client.data_received(reply[5:])
    assert ready.result() is client and run.count == 0  # the verifying echo is not counted
    client.send()
    client.data_received(reply)
    client.data_received(PING)  # answered with a masked pong
    assert transport.written[-1] == ws_load.client_frame(ws_load.OP_PONG, b"hi")
    assert run.count == 1
    client.data_received(reply)  # the client sent again by itself after the first
    assert run.count == 2 and len(run.latencies) == 2
    assert transport.written.count(frame) == 4  # verify, send(), and one after each counted echo
    run.stopped = True
    client.data_received(reply)
    assert run.count == 2 and transport.written.count(frame) == 4 and not transport.aborted


def test_echo_client_rejects_a_wrong_echo(loop):
    run = ws_load.Run()
    ready = loop.create_future()
    client = ws_load.EchoClient(run, b"REQ", b"F", b"expected", ready)
    transport = FakeTransport()
    client.connection_made(transport)
    client.data_received(GOOD_101 + ws_load.server_frame(ws_load.OP_TEXT, b"other"))
    with pytest.raises(ws_load.LoadError, match="echo differs"):
        ready.result()
    assert transport.aborted


def test_echo_client_counts_a_mid_run_close_as_an_error(loop):
    run = ws_load.Run()
    ready = loop.create_future()
    client = ws_load.EchoClient(run, b"REQ", b"F", b"x", ready)
    client.connection_made(FakeTransport())
    client.data_received(GOOD_101 + ws_load.server_frame(ws_load.OP_TEXT, b"x"))
    assert ready.done()
    client.connection_lost(None)
    assert run.errors == 1 and "closed" in run.first_error


def test_connect_client_handshake_echo_close(loop):
    done = loop.create_future()
    frame, close = b"FRAME", b"CLOSE"
    client = ws_load.ConnectClient(b"REQ", frame, close, done)
    transport = FakeTransport()
    client.connection_made(transport)
    client.data_received(GOOD_101)
    assert transport.written == [b"REQ", frame]
    client.data_received(ws_load.server_frame(ws_load.OP_TEXT, b"x"))
    assert transport.written[-1] == close
    client.data_received(CLOSE)
    assert done.result() is None and transport.closed and not transport.aborted
    client.connection_lost(None)  # after the close handshake: fine


def test_connect_client_fails_on_refusal_and_early_close(loop):
    done = loop.create_future()
    client = ws_load.ConnectClient(b"REQ", b"F", b"C", done)
    transport = FakeTransport()
    client.connection_made(transport)
    client.data_received(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(ws_load.LoadError, match="refused"):
        done.result()
    assert transport.aborted
    done = loop.create_future()
    client = ws_load.ConnectClient(b"REQ", b"F", b"C", done)
    client.connection_made(FakeTransport())
    client.data_received(GOOD_101)
    client.connection_lost(None)
    with pytest.raises(ws_load.LoadError, match="before the closing handshake"):
        done.result()


# --- the trivial server's cached echo ----------------------------------------


@pytest.mark.parametrize("size", [0, 32, 16384, 70000])
def test_trivial_reply_unmasks_and_caches(size):
    payload = ws_load.message_for(size, binary=True)
    frame = ws_load.client_frame(ws_load.OP_BINARY, payload)
    header = 6 if size < 126 else 8 if size < 65536 else 14
    reply = ws_trivial.reply_for(frame, header)
    assert reply == ws_load.server_frame(ws_load.OP_BINARY, payload)
    assert ws_trivial.reply_for(frame, header) is reply


def test_trivial_protocol_handshake_echo_close():
    proto = ws_trivial.Trivial()
    transport = FakeTransport()
    proto.connection_made(transport)
    request = ws_load.upgrade_request("127.0.0.1", 1, "/ws")
    frame = ws_load.client_frame(ws_load.OP_TEXT, b"hello")
    proto.data_received(request[:20])
    proto.data_received(request[20:] + frame[:3])
    ws_load.check_upgrade_response(transport.written[0])
    proto.data_received(frame[3:] + frame)
    assert transport.written[1] == ws_load.server_frame(ws_load.OP_TEXT, b"hello") * 2
    proto.data_received(ws_load.client_frame(ws_load.OP_CLOSE, b"\x03\xe8"))
    assert transport.written[-1] == ws_trivial.CLOSE_REPLY and transport.closed


def test_trivial_protocol_answers_plain_http():
    proto = ws_trivial.Trivial()
    transport = FakeTransport()
    proto.connection_made(transport)
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.written[0].startswith(b"HTTP/1.1 200 OK") and transport.closed


# --- ws_bench.py: arguments ----------------------------------------------------


def test_ws_bench_defaults_full_and_quick():
    args = ws_bench.parse_args([])
    assert (args.duration, args.warmup, args.runs) == (4.0, 2.0, 5)
    assert args.scenarios == list(ws_bench.SCENARIOS)
    assert args.servers == list(ws_bench.SERVERS)
    quick = ws_bench.parse_args(["--quick"])
    assert (quick.duration, quick.runs) == (2.0, 1)
    assert ws_bench.connections_for(quick, ws_bench.SCENARIOS["echo-text"]) == (16,)
    assert ws_bench.connections_for(args, ws_bench.SCENARIOS["echo-text"]) == (1, 16, 64)


def test_ws_bench_selection_keeps_fastbase_and_the_ceiling_in_table_order():
    args = ws_bench.parse_args(["--servers", "granian,daphne", "--scenarios", "connect", "--runs", "3", "--connections", "2", "8"])
    assert args.servers == ["ceiling", "fastbase", "daphne", "granian"]
    assert args.scenarios == ["connect"] and args.runs == 3
    assert ws_bench.connections_for(args, ws_bench.SCENARIOS["connect"]) == (2, 8)


@pytest.mark.parametrize("argv", [["--servers", "nginx"], ["--scenarios", "bogus"], ["--runs", "0"], ["--duration", "-1"]])
def test_ws_bench_rejects(argv, capsys):
    with pytest.raises(SystemExit):
        ws_bench.parse_args(argv)


def _pinned_args(argv=()):
    args = ws_bench.parse_args(list(argv))
    args.client_pin, args.server_pin = 0, 1
    args.python = "py"
    return args


def test_ws_bench_load_command():
    args = _pinned_args()
    argv = ws_bench.load_command(args, ws_bench.SCENARIOS["echo-binary-16k"], 8123, 16, 4.0)
    assert argv[:3] == ["taskset", "-c", "0"]
    assert argv[3:6] == ["py", str(ws_bench.LOAD_SCRIPT), "echo"]
    assert argv[argv.index("--port") + 1] == "8123" and argv[argv.index("-c", 3) + 1] == "16"
    assert argv[argv.index("--size") + 1] == "16384" and argv[-1] == "--binary"
    args.client_pin = None
    argv = ws_bench.load_command(args, ws_bench.SCENARIOS["echo-text"], 1, 1, 2.0, mode="connect")
    assert argv[0] == "py" and argv[2] == "connect" and "--binary" not in argv


def test_every_server_command_names_the_shared_app_and_port():
    for name, server in ws_bench.SERVERS.items():
        argv = server.argv("py", 4321)
        assert argv[0] == "py" and "4321" in argv
        assert name == "ceiling" or ws_bench.APP in argv


def test_rotated():
    assert ws_bench.rotated([1, 2, 3], 0) == [1, 2, 3]
    assert ws_bench.rotated([1, 2, 3], 1) == [2, 3, 1]
    assert ws_bench.rotated([1, 2, 3], 5) == [3, 1, 2]
    assert ws_bench.rotated([], 3) == []


# --- ws_bench.py: result math -------------------------------------------------


def test_parse_load_output():
    good = '{"count": 10, "rate": 5.0}'
    assert ws_bench.parse_load_output("noise\n" + good + "\n")["rate"] == 5.0
    with pytest.raises(ValueError, match="handshake refused"):
        ws_bench.parse_load_output('{"error": "handshake refused"}')
    with pytest.raises(ValueError, match="no result"):
        ws_bench.parse_load_output("Traceback ...")


def _run(rate, cpu=0.5, elapsed=4.0, p50=0.1, p99=0.4, errors=0):
    return {
        "count": int(rate * elapsed),
        "elapsed_s": elapsed,
        "rate": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "client_cpu": cpu,
    }


def test_server_cost_per_operation():
    run = _run(1000, elapsed=4.0)
    assert ws_bench.server_cost_us(run) is None  # not measured
    run["server_cpu_s"] = 0.8
    assert ws_bench.server_cost_us(run) == pytest.approx(200.0)  # 0.8 s over 4,000 round trips
    assert ws_bench.server_cost_us({"count": 0, "server_cpu_s": 1.0}) is None
    point = ws_bench.aggregate([dict(run), dict(run, server_cpu_s=1.6), _run(1000)], 1)
    assert point["server_us"] == pytest.approx(300.0)  # median of the measured runs


def test_capacity_and_aggregate():
    assert ws_bench.capacity(_run(1000, cpu=0.5)) == pytest.approx(2000)
    assert ws_bench.capacity(_run(1000, cpu=0.0)) is None
    point = ws_bench.aggregate([_run(100, cpu=0.2), _run(300, cpu=0.6, errors=2), _run(200, cpu=0.4, p99=None)], 16)
    assert point["connections"] == 16
    assert point["rate"] == {"median": 200, "min": 100, "max": 300}
    assert point["p99_ms"]["median"] == pytest.approx(0.4)
    assert point["client_cpu"] == 0.4
    assert point["capacity"] == pytest.approx(500)
    assert point["errors"] == 2


def _result(name, *rates_by_conns, cpu=0.3, status="ok", detail=""):
    points = [ws_bench.aggregate([_run(rate, cpu=cpu)], c) for c, rate in rates_by_conns]
    return {"server": name, "status": status, "detail": detail, "points": points, "failed_points": {}}


RESULTS = [
    _result("ceiling", (1, 20000), (16, 160000), cpu=1.0),
    _result("fastbase", (1, 10000), (16, 120000)),
    _result("granian", (1, 12000), (16, 30000)),
    _result("daphne", status="missing", detail="no module daphne"),
    _result("uvicorn-wsproto", status="failed", detail="exited with 1"),
]


def test_ratio_capacity_and_losses():
    assert ws_bench.ratio_to_fastbase(RESULTS, "granian", 16) == pytest.approx(0.25)
    assert ws_bench.ratio_to_fastbase(RESULTS, "granian", 64) is None
    assert ws_bench.ratio_to_fastbase(RESULTS, "daphne", 16) is None
    assert ws_bench.client_capacity(RESULTS, 16) == pytest.approx(160000)
    # Without the trivial server: the best capacity any server showed.
    assert ws_bench.client_capacity(RESULTS[1:], 16) == pytest.approx(400000)
    report = {"scenarios": [{"scenario": "echo-text", "connections": [1, 16], "results": RESULTS}]}
    assert ws_bench.fastbase_losses(report) == [("echo-text", 1, "granian", 12000, 10000, pytest.approx(1.2), 12000, 10000)]


def test_scenario_table_rows_ratios_and_client_bound_mark():
    table = ws_bench.scenario_table(ws_bench.SCENARIOS["echo-text"], RESULTS, (1, 16))
    lines = table.splitlines()
    assert lines[0].startswith("| server | conns | msg/s (median) |")
    fastbase_16 = next(line for line in lines if line.startswith("| fastbase | 16 |"))
    assert "120,000 †" in fastbase_16 and "1.00×" in fastbase_16  # 75% of the 160,000 capacity
    granian_16 = next(line for line in lines if line.startswith("| granian | 16 |"))
    assert "30,000 |" in granian_16 and "0.25×" in granian_16 and "†" not in granian_16
    assert "| daphne |  | missing (no module daphne) |" in table
    assert "| uvicorn (wsproto) |  | failed (exited with 1) |" in table
    assert "trivial echo (generator ceiling) | 16 | 160,000 |" in table  # never marked
    assert "server µs/msg" in lines[0]


def test_scenario_table_names_a_failed_point():
    result = _result("granian", (1, 1000))
    result["failed_points"] = {"16": "no echo within the timeout"}
    table = ws_bench.scenario_table(ws_bench.SCENARIOS["connect"], [result], (1, 16))
    assert "| granian | 16 | failed (no echo within the timeout) |" in table
    assert "conn/s (median)" in table


def _ws_report():
    machine = {
        "cpu": "CPU",
        "cores": 2,
        "kernel": "6",
        "memory": "1 GiB RAM",
        "python": "3.11",
        "wrk": "4",
        "load_start": "0.1",
        "load_end": "0.2",
        "pinning": "servers on CPU 1",
    }
    return {
        "date": "D",
        "command": "python bench/ws_bench.py",
        "quick": False,
        "elapsed_s": 61,
        "duration": 4.0,
        "warmup": 2.0,
        "runs": 5,
        "machine": machine,
        "versions": {"fastbase": "0.1"},
        "servers": ["ceiling", "fastbase", "granian", "daphne", "uvicorn-wsproto"],
        "scenarios": [{"scenario": "echo-text", "connections": [1, 16], "results": RESULTS, "chart": "../charts/ws-echo-text.png"}],
    }


def test_ws_render_markdown():
    text = ws_bench.render_markdown(_ws_report())
    assert text.startswith("# fastbase WebSocket benchmarks — D")
    assert "took 1 min 1 s" in text and "Load average" in text and "CPU, 2 cores" in text
    assert "## echo-text — Echo, 32-byte text messages" in text
    assert "Generator capacity (round trips per CPU-second" in text and "160,000 at 16 conns" in text
    assert "![echo-text](../charts/ws-echo-text.png)" in text
    assert "## Where a peer beats fastbase" in text
    assert (
        "- echo-text, 1 conn: granian 12,000 msg/s against fastbase's 10,000 (1.20×, medians); best runs 12,000 against 10,000 (1.20×)."
    ) in text


def test_ws_chart_data_order_and_colors():
    data = ws_bench.chart_data(RESULTS, 16)
    assert data["labels"] == ["fastbase", "granian", "trivial echo (generator ceiling)"]
    assert data["ratios"] == [pytest.approx(1.0), pytest.approx(0.25), pytest.approx(160000 / 120000)]
    assert data["colors"][0] == ws_bench.loadrun.FASTBASE_COLOR and data["colors"][-1] == ws_bench.CEILING_COLOR
    assert ws_bench.chart_data(RESULTS, 64)["values"] == []
    assert ws_bench.chart_filename("connect", quick=True) == "quick-ws-connect.png"


def test_ws_write_chart(tmp_path):
    # matplotlib is in the bench extra only: without it nothing is drawn,
    # and the writer says so instead of failing.
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    path = tmp_path / "ws.png"
    assert ws_bench.write_chart(ws_bench.SCENARIOS["echo-text"], RESULTS, (1, 16), path, "sub") is has_matplotlib
    assert path.exists() is has_matplotlib
    if has_matplotlib:
        assert path.read_bytes().startswith(b"\x89PNG")
    assert not ws_bench.write_chart(ws_bench.SCENARIOS["echo-text"], RESULTS, (64,), tmp_path / "no.png", "s")


# --- workers_bench.py ----------------------------------------------------------


def test_workers_arguments():
    args = workers.parse_args([])
    assert (args.duration, args.runs, args.connections) == (5.0, 5, 64)
    assert args.interfaces == ["wsgi", "asgi"] and args.servers == ["fastbase", "granian", "uvicorn"]
    args = workers.parse_args(["--quick", "--interfaces", "asgi", "--servers", "uvicorn"])
    assert (args.duration, args.runs) == (2.0, 1)
    assert args.interfaces == ["asgi"] and args.servers == ["fastbase", "uvicorn"]
    with pytest.raises(SystemExit):
        workers.parse_args(["--interfaces", "rsgi"])


@pytest.mark.parametrize("server", ["fastbase", "granian", "uvicorn"])
@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_workers_server_commands(server, interface):
    argv = workers.server_argv(server, "py", interface, 9000, 2)
    assert argv[0] == "py" and "9000" in argv
    assert argv[argv.index("--workers") + 1] == "2"
    assert f"hello:{interface}" in argv
    assert argv[argv.index("--interface") + 1] in (interface, "asgi3")


def test_workers_wrk_command():
    args = workers.parse_args(["--duration", "2.4"])
    args.client_pin = 0
    argv = workers.wrk_command(args, 8000, args.duration)
    assert argv[:4] == ["taskset", "-c", "0", "wrk"] and "-d2s" in argv and "-c64" in argv
    assert argv[-1] == "http://127.0.0.1:8000/"


def test_parse_stat_with_a_name_holding_spaces_and_parentheses():
    fields = ["S", "42"] + ["0"] * 9 + ["300", "100"] + ["0"] * 30
    ppid, cpu = workers.parse_stat("1234 (python (x) y) " + " ".join(fields))
    assert ppid == 42
    assert cpu == pytest.approx(400 / workers._TICK)


def _wpoint(rps, cores=1.0):
    runs = [{"rps": rps, "p50_ms": 0.5, "p99_ms": 2.0, "requests": 1, "errors": 0, "server_cores": cores, "wrk_cores": 0.5}]
    return {"status": "ok", "detail": "", "point": workers.aggregate(runs, 64)}


WORKER_RESULTS = {
    "fastbase": {"w1-pinned": _wpoint(50000), "w1": _wpoint(52000), "w2": _wpoint(65000, 1.4)},
    "granian": {"w1-pinned": _wpoint(40000), "w1": {"status": "failed", "detail": "exited"}, "w2": _wpoint(60000, 1.5)},
}


def test_workers_scaling_math():
    assert workers.scaling(WORKER_RESULTS, "fastbase") == pytest.approx(1.3)
    assert workers.scaling(WORKER_RESULTS, "fastbase", "w1") == pytest.approx(1.25)
    assert workers.scaling(WORKER_RESULTS, "granian", "w1") is None
    assert workers.scaling(WORKER_RESULTS, "uvicorn") is None
    assert workers.chart_data(WORKER_RESULTS, ["fastbase", "granian"])["w2"] == [65000, 60000]


def test_workers_tables_and_markdown():
    table = workers.interface_table(WORKER_RESULTS, ["fastbase", "granian"])
    assert "| granian | 2 workers, unpinned | 60,000 | 60,000 – 60,000 | 0.92× |" in table
    assert "| granian | 1 worker, unpinned | failed (exited) |" in table
    # req/s per server core: 60,000 req/s on 1.5 cores.
    assert "| 1.50 | 40,000 | 0.50 | 0 |" in table
    machine = {
        "cpu": "CPU",
        "cores": 2,
        "kernel": "6",
        "memory": "1 GiB RAM",
        "python": "3.11",
        "wrk": "4",
        "load_start": "0.1",
        "load_end": "0.2",
        "pinning": "wrk on CPU 0",
    }
    report = {
        "date": "D",
        "command": "c",
        "quick": True,
        "elapsed_s": 5,
        "duration": 2.0,
        "warmup": 1.0,
        "runs": 1,
        "connections": 64,
        "client_cpu": 0,
        "machine": machine,
        "versions": {"fastbase": "0.1"},
        "servers": ["fastbase", "granian"],
        "interfaces": [{"interface": "wsgi", "results": WORKER_RESULTS}],
    }
    text = workers.render_markdown(report)
    assert "| WSGI | fastbase | 50,000 | 52,000 | 65,000 | 1.30× | 1.25× | 1.40 |" in text
    assert "| WSGI | granian | 40,000 | – | 60,000 | 1.50× | – | 1.50 |" in text
    assert "a factor of 2.0 is impossible here" in text
    assert "## wsgi-hello — Raw WSGI hello (13 bytes)" in text


def test_workers_write_chart(tmp_path):
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    report = {"servers": ["fastbase", "granian"], "interfaces": [{"interface": "wsgi", "results": WORKER_RESULTS}]}
    path = tmp_path / "w.png"
    assert workers.write_chart(report, path, "sub") is has_matplotlib
    assert path.exists() is has_matplotlib
    if has_matplotlib:
        assert path.read_bytes().startswith(b"\x89PNG")


# --- shared result writing and pinning (bench/run.py) -------------------------


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize(("module", "name"), [(ws_bench.loadrun, ""), (ws_bench, "ws-"), (workers, "workers-")])
def test_each_script_writes_its_own_dated_and_latest_results(tmp_path, monkeypatch, capsys, module, name, quick):
    import datetime
    import json
    import types

    monkeypatch.setattr(module, "render_markdown", lambda report: "# report\n")
    args = types.SimpleNamespace(quick=quick, output=tmp_path / "out", no_charts=True, charts_dir=tmp_path)
    report = {"elapsed_s": 75.0, "scenarios": []}
    module.write_outputs(args, report, datetime.datetime(2026, 11, 27, 3, 5))
    prefix = ("quick-" if quick else "") + name
    # latest.md where --output says; the dated markdown and JSON in its
    # raw/ folder, which git ignores (only the linked reports are committed).
    raw = args.output / "raw"
    assert sorted(p.name for p in args.output.iterdir()) == sorted(["raw", f"{prefix}latest.md"])
    assert sorted(p.name for p in raw.iterdir()) == sorted([f"{prefix}2026-11-27-0305.md", f"{prefix}2026-11-27-0305.json"])
    assert (args.output / f"{prefix}latest.md").read_text() == "# report\n"
    assert (raw / f"{prefix}2026-11-27-0305.md").read_text() == "# report\n"
    assert json.loads((raw / f"{prefix}2026-11-27-0305.json").read_text()) == report
    assert f"{prefix}latest.md (and raw/{prefix}2026-11-27-0305.md, .json)" in capsys.readouterr().out
    assert "raw/" in (BENCH / "results" / ".gitignore").read_text().split()


def test_pinning_needs_two_distinct_cpus(monkeypatch):
    import types

    run = ws_bench.loadrun
    monkeypatch.setattr(run.shutil, "which", lambda name: "/usr/bin/taskset")
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    moved = []
    monkeypatch.setattr(run.os, "sched_setaffinity", lambda pid, cpus: moved.append(cpus), raising=False)
    same = types.SimpleNamespace(server_cpu=1, client_cpu=1)
    assert not run.pin_cores(same, pin_self=True)
    assert (same.server_pin, same.client_pin) == (None, None) and moved == []
    apart = types.SimpleNamespace(server_cpu=1, client_cpu=0)
    assert workers.pinning(apart).startswith("wrk on CPU 0")
    assert (apart.server_pin, apart.client_pin) == (1, 0) and moved == []  # workers_bench stays unpinned itself
    assert ws_bench.pinning(apart).startswith("servers on CPU 1")
    assert moved == [{0}]
