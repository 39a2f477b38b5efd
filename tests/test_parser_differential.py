"""Differential tests: generated requests against the compiled parser, the
pure-Python twin and h11; random and mutated bytes against both parsers.

Valid requests must parse to what was generated, identically in fastbase's
implementations and in h11. Arbitrary bytes must never raise anything but
ProtocolError, and both implementations (and every split of the input) must
agree on the events and the verdict.
"""

from __future__ import annotations

import importlib
import os

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastbase.http.errors import ProtocolError

# Modest and deterministic: the file runs in well under a minute and a
# failure reproduces on every run. Longer searches belong in fuzz/.
settings.register_profile(
    "fastbase-differential",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DIFF = settings.get_profile("fastbase-differential")


@pytest.fixture(scope="module")
def impls():
    """Every implementation under test: the twin, and the compiled module
    unless FASTBASE_NO_EXTENSIONS=1 (an import failure otherwise fails)."""
    found = [("py", importlib.import_module("fastbase.http._parser_py"))]
    if os.environ.get("FASTBASE_NO_EXTENSIONS") != "1":
        found.insert(0, ("c", importlib.import_module("fastbase.http._parser")))
    return found


# --- feeding and comparing ---------------------------------------------------------


def normalise(impl, events):
    out = []
    for event in events:
        if isinstance(event, impl.Request):
            out.append(
                (
                    "request",
                    event.method,
                    event.target,
                    event.path,
                    event.query,
                    event.http_version,
                    [tuple(h) for h in event.headers],
                    event.host,
                    event.keep_alive,
                    event.chunked,
                    event.content_length,
                    event.expect_continue,
                    event.upgrade,
                )
            )
        elif isinstance(event, bytes):
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + event)
            else:
                out.append(("body", event))
        elif isinstance(event, impl.EndOfMessage):
            out.append(("end", [tuple(t) for t in event.trailers]))
        else:
            raise AssertionError(f"unexpected event {event!r}")
    return out


def pieces(data, cuts):
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def outcome(impl, chunks):
    """(normalised events, error status or None); only ProtocolError may escape
    the parser -- anything else fails the test right here."""
    parser = impl.RequestParser()
    events = []
    for chunk in chunks:
        try:
            events.extend(parser.feed(chunk))
        except ProtocolError as exc:
            events.extend(exc.events)
            return normalise(impl, events), exc.status
    return normalise(impl, events), None


def agree(impls, data, cuts):
    """All implementations, whole and split, give one outcome; return it."""
    results = {}
    for name, impl in impls:
        results[f"{name}/whole"] = outcome(impl, [data])
        results[f"{name}/split"] = outcome(impl, pieces(data, cuts))
    first = next(iter(results.values()))
    for how, result in results.items():
        assert result == first, f"{how} differs for {data!r}"
    return first


# --- generating valid requests ---------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
PCHAR = UNRESERVED + "!$&'()*+,;=:@"
HEX = "0123456789abcdefABCDEF"
# Fields both parsers give meaning to; generated at the end with known values.
SPECIAL = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "te", "keep-alive"}

token = st.text(alphabet=TCHAR, min_size=1, max_size=12)
method = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]), token)
pct = st.tuples(st.sampled_from(HEX), st.sampled_from(HEX)).map(lambda t: "%" + "".join(t))
segment = st.lists(st.one_of(st.sampled_from(PCHAR), pct), max_size=8).map("".join)
path = st.lists(segment, max_size=5).map(lambda s: "/" + "/".join(s))
query = st.one_of(st.none(), st.lists(st.one_of(st.sampled_from(PCHAR + "/?"), pct), max_size=16).map("".join))
label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
reg_name = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["[::1]", "[2001:db8::1]", "[fe80::1:2:3]", "[::ffff:127.0.0.1]"])
host = st.tuples(st.one_of(reg_name, ipv4, ipv6), st.one_of(st.none(), st.integers(0, 65535))).map(
    lambda t: t[0] if t[1] is None else f"{t[0]}:{t[1]}"
)
field_name = token.filter(lambda n: n.lower() not in SPECIAL)
VCHAR = [bytes([c]) for c in [*range(0x21, 0x7F), *range(0x80, 0x100)]]
field_value = st.lists(st.one_of(st.sampled_from(VCHAR), st.sampled_from([b" ", b"\t"])), max_size=24).map(
    lambda parts: b"".join(parts).strip(b" \t")
)
ows = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t "])


@st.composite
def field_lines(draw, max_size=6):
    """(wire bytes of the field lines, expected [(lower name, value)])."""
    wire, expected = b"", []
    for _ in range(draw(st.integers(0, max_size))):
        name = draw(field_name)
        value = draw(field_value)
        wire += name.encode() + b":" + draw(ows) + value + draw(ows) + b"\r\n"
        expected.append((name.lower().encode(), value))
    return wire, expected


chunk_ext = st.one_of(
    st.just(b""),
    token.map(lambda n: b";" + n.encode()),
    st.tuples(token, token).map(lambda t: b";%s=%s" % (t[0].encode(), t[1].encode())),
    st.tuples(token, st.text(alphabet=PCHAR + " \t", max_size=10)).map(lambda t: b';%s="%s"' % (t[0].encode(), t[1].encode())),
)


@st.composite
def requests(draw, version="1.1"):
    """(wire bytes, expected (method, target, headers, body, trailers))."""
    m = draw(method).encode()
    target = draw(path)
    q = draw(query)
    if q is not None:
        target += "?" + q
    target = target.encode()
    wire_fields, headers = draw(field_lines())
    host_value = draw(host).encode()
    host_at = draw(st.integers(0, len(headers)))
    host_name = draw(st.sampled_from([b"Host", b"host", b"HOST"]))
    lines = wire_fields.split(b"\r\n")[:-1]
    lines.insert(host_at, host_name + b": " + host_value)
    headers.insert(host_at, (b"host", host_value))
    framing = draw(st.sampled_from(["none", "length", "chunked"] if version == "1.1" else ["none", "length"]))
    body, trailers, tail = b"", [], b""
    if framing == "length":
        body = draw(st.binary(max_size=200))
        lines.append(b"Content-Length: %d" % len(body))
        headers.append((b"content-length", b"%d" % len(body)))
        tail = body
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        headers.append((b"transfer-encoding", b"chunked"))
        for piece in draw(st.lists(st.binary(min_size=1, max_size=60), max_size=5)):
            size = b"%x" % len(piece)
            size = b"0" * draw(st.integers(0, 16 - len(size))) + size
            if draw(st.booleans()):
                size = size.upper()
            tail += size + draw(chunk_ext) + b"\r\n" + piece + b"\r\n"
            body += piece
        trailer_wire, trailers = draw(field_lines(max_size=3))
        tail += b"0" + draw(chunk_ext) + b"\r\n" + trailer_wire + b"\r\n"
    wire = b"%s %s HTTP/%s\r\n" % (m, target, version.encode())
    wire += b"".join(line + b"\r\n" for line in lines) + b"\r\n" + tail
    return wire, (m, target, headers, body, trailers)


@st.composite
def pipelines(draw):
    """1-3 requests on one connection; only the last may be HTTP/1.0."""
    count = draw(st.integers(1, 3))
    items = [draw(requests()) for _ in range(count - 1)]
    items.append(draw(requests(version=draw(st.sampled_from(["1.1", "1.1", "1.0"])))))
    return items


def h11_parse(wire):
    """One request through h11 as (method, target, headers, body, trailers)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    head, body = None, b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return (head.method, head.target, list(head.headers), body, list(event.headers))
        else:
            raise AssertionError(f"h11 stopped at {event!r}")


def fastbase_parse(events):
    """Normalised fastbase events as [(method, target, headers, body, trailers)]."""
    out = []
    for event in events:
        if event[0] == "request":
            out.append([event[1], event[2], event[6], b"", []])
        elif event[0] == "body":
            out[-1][3] += event[1]
        else:
            out[-1][4] = event[1]
    return [tuple(r) for r in out]


@DIFF
@given(items=pipelines(), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_valid_requests_match_h11_and_the_model(impls, items, cuts):
    wire = b"".join(w for w, _ in items)
    events, status = agree(impls, wire, cuts)
    assert status is None, events
    parsed = fastbase_parse(events)
    assert parsed == [model for _, model in items]
    assert parsed == [h11_parse(w) for w, _ in items]
    # Framing attributes follow from what was generated.
    heads = [e for e in events if e[0] == "request"]
    for head, (_, (_, _, headers, body, _)) in zip(heads, items):
        names = [n for n, _ in headers]
        assert head[9] == (b"transfer-encoding" in names)  # chunked
        assert head[10] == (None if head[9] else len(body))  # content_length


# --- arbitrary and mutated bytes ------------------------------------------------------------

INTERESTING = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b" ",
    b"\t",
    b":",
    b";",
    b"=",
    b'"',
    b"0",
    b"f",
    b"a",
    b"\x80",
    b"\x7f",
    b"#",
    b"?",
    b"/",
    b",",
    b"chunked",
    b"\r\n\r\n",
    b"Content-Length: 1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"HTTP/1.1",
    b"ffffffffffffffffff",
]


POST_CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


@st.composite
def mutated(draw):
    """A valid pipeline with 1-4 byte-level mutations applied."""
    data = bytearray(b"".join(w for w, _ in draw(pipelines())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(INTERESTING))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@DIFF
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_random_bytes(impls, data, cuts):
    agree(impls, data, cuts)


@DIFF
@given(
    prefix=st.sampled_from([b"GET / HTTP/1.1\r\n", b"POST / HTTP/1.1\r\nHost: a\r\n", POST_CHUNKED]),
    data=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_random_bytes_after_a_valid_prefix(impls, prefix, data, cuts):
    agree(impls, prefix + data, cuts)


@DIFF
@given(
    data=st.lists(st.sampled_from(INTERESTING + [b"GET", b"/", b"HTTP/1.0", b"Host: a", b"1", b"5"]), max_size=40).map(b"".join),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_token_soup(impls, data, cuts):
    agree(impls, POST_CHUNKED + data, cuts)
    agree(impls, data, cuts)


@DIFF
@given(data=mutated(), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_mutated_requests(impls, data, cuts):
    agree(impls, data, cuts)
