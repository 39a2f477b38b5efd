"""Request parsing and response writing speed: fastbase against its peers.

Run: python -m pytest bench/test_bench_parser.py --benchmark-only
Every parser reads the same inputs (bench/inputs.py) through an adapter that
does what a server does with it (bench/peers.py). Times are per call; divide
by ``extra_info["requests"]`` for the time per request (bench/table.py does).
"""

from __future__ import annotations

import pytest

import inputs
import peers

from fastbase.http import _parser_py

try:
    from fastbase.http import _parser as _parser_c
except ImportError:  # pragma: no cover
    _parser_c = None

IMPLEMENTATIONS = list(peers.PEERS)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", list(inputs.CASES))
def test_parse(benchmark, case, impl):
    if not peers.available(impl):
        pytest.skip(f"{impl} is not installed")
    data, count = inputs.CASES[case]
    parse = peers.make(impl)
    # Check the adapter really parses every request before timing it.
    requests = parse(data)
    heads = [e for e in requests if not isinstance(e, (bytes, _parser_py.EndOfMessage))]
    if _parser_c is not None:
        heads = [e for e in heads if not isinstance(e, _parser_c.EndOfMessage)]
    assert len(heads) == count, (impl, case, requests)
    benchmark.group = f"parse {case}"
    benchmark.extra_info["requests"] = count
    benchmark.extra_info["bytes"] = len(data)
    benchmark(parse, data)


WRITERS = {"fastbase_c": _parser_c, "fastbase_py": _parser_py}


@pytest.mark.parametrize("impl", list(WRITERS))
def test_encode_head(benchmark, impl):
    module = WRITERS[impl]
    if module is None:
        pytest.skip("compiled parser not built")
    head, framing, length, keep_alive = module.encode_head(200, inputs.RESPONSE_HEADERS)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and length == 1534
    benchmark.group = "encode_head"
    benchmark.extra_info["requests"] = 1
    benchmark(module.encode_head, 200, inputs.RESPONSE_HEADERS)


@pytest.mark.parametrize("impl", list(WRITERS))
def test_encode_response(benchmark, impl):
    """The common response's writer: the same head plus its body, one buffer."""
    module = WRITERS[impl]
    if module is None:
        pytest.skip("compiled parser not built")
    body = b"x" * 1534  # the Content-Length among RESPONSE_HEADERS
    data, keep_alive = module.encode_response(200, inputs.RESPONSE_HEADERS, body, None, True, True, False, b"fastbase")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\n" + body) and keep_alive
    benchmark.group = "encode_response"
    benchmark.extra_info["requests"] = 1
    benchmark(module.encode_response, 200, inputs.RESPONSE_HEADERS, body, None, True, True, False, b"fastbase")
