"""The response writer: framing decisions, hop-by-hop fields, refusal of
anything HTTP cannot carry, the Date header, and byte-identical output from
both implementations."""

from __future__ import annotations

import calendar
import importlib
import os
import re
import time

import h11
import pytest

from fastbase.http.errors import InvalidResponse

DATE_RE = re.compile(rb"date: ([^\r\n]*)\r\n", re.IGNORECASE)
IMF_FIXDATE = re.compile(
    rb"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    rb"[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$"
)


def normalise_date(head):
    return DATE_RE.sub(b"date: <DATE>\r\n", head)


def header_lines(head):
    """The head's field lines as (lower-cased name, value), status line apart."""
    assert head.endswith(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    fields = []
    for line in lines:
        name, _, value = line.partition(b": ")
        fields.append((name.lower(), value))
    return status, fields


def names(head):
    return [name for name, _ in header_lines(head)[1]]


# --- exact bytes ------------------------------------------------------------------


def test_head_layout_is_exact(impl):
    head, framing, length, keep_alive = impl.encode_head(200, [(b"Content-Type", b"text/plain"), (b"X-A", b"1")], body_length=5)
    assert normalise_date(head) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\ncontent-length: 5\r\ndate: <DATE>\r\nserver: fastbase\r\n\r\n"
    )
    assert (framing, length, keep_alive) == (impl.LENGTH, 5, True)


def test_constants(impl):
    assert impl.LAST_CHUNK == b"0\r\n\r\n"
    assert impl.CONTINUE_RESPONSE == b"HTTP/1.1 100 Continue\r\n\r\n"
    framings = {impl.NO_BODY, impl.LENGTH, impl.CHUNKED, impl.CLOSE_DELIMITED}
    assert len(framings) == 4


# --- framing decisions -----------------------------------------------------------

CL5 = [(b"Content-Length", b"5")]

FRAMING = [
    # id, status, headers, kwargs, framing, content_length, keep_alive, present, absent
    (
        "head-with-body-length",
        200,
        [],
        dict(head_request=True, body_length=7),
        "NO_BODY",
        -1,
        True,
        [(b"content-length", b"7")],
        [b"transfer-encoding"],
    ),
    (
        "head-with-app-length",
        200,
        CL5,
        dict(head_request=True, body_length=9),
        "NO_BODY",
        -1,
        True,
        [(b"content-length", b"5")],
        [b"transfer-encoding"],
    ),
    ("head-unknown-length", 200, [], dict(head_request=True), "NO_BODY", -1, True, [], [b"content-length", b"transfer-encoding"]),
    ("100-continue", 100, [], {}, "NO_BODY", -1, True, [], [b"content-length", b"transfer-encoding"]),
    ("103-drops-content-length", 103, CL5, {}, "NO_BODY", -1, True, [], [b"content-length"]),
    ("204-drops-content-length", 204, CL5, dict(body_length=5), "NO_BODY", -1, True, [], [b"content-length", b"transfer-encoding"]),
    ("204-unknown-length", 204, [], {}, "NO_BODY", -1, True, [], [b"transfer-encoding"]),
    ("304-keeps-content-length", 304, CL5, {}, "NO_BODY", -1, True, [(b"content-length", b"5")], [b"transfer-encoding"]),
    ("app-content-length", 200, CL5, {}, "LENGTH", 5, True, [(b"content-length", b"5")], [b"transfer-encoding"]),
    ("app-content-length-beats-hint", 200, CL5, dict(body_length=9), "LENGTH", 5, True, [(b"content-length", b"5")], []),
    ("app-content-length-ows-trimmed", 200, [(b"Content-Length", b" 5\t")], {}, "LENGTH", 5, True, [(b"content-length", b"5")], []),
    ("app-content-length-duplicate-same", 200, CL5 + [(b"content-length", b"5")], {}, "LENGTH", 5, True, [(b"content-length", b"5")], []),
    ("app-content-length-zero", 200, [(b"Content-Length", b"0")], {}, "LENGTH", 0, True, [(b"content-length", b"0")], []),
    ("body-length-hint", 200, [], dict(body_length=12), "LENGTH", 12, True, [(b"content-length", b"12")], [b"transfer-encoding"]),
    ("body-length-zero", 200, [], dict(body_length=0), "LENGTH", 0, True, [(b"content-length", b"0")], []),
    ("chunked-on-1.1", 200, [], {}, "CHUNKED", -1, True, [(b"transfer-encoding", b"chunked")], [b"content-length", b"connection"]),
    (
        "close-delimited-on-1.0",
        200,
        [],
        dict(http11=False),
        "CLOSE_DELIMITED",
        -1,
        False,
        [(b"connection", b"close")],
        [b"transfer-encoding", b"content-length"],
    ),
    (
        "1.0-keep-alive-with-length",
        200,
        [],
        dict(http11=False, body_length=3),
        "LENGTH",
        3,
        True,
        [(b"connection", b"keep-alive"), (b"content-length", b"3")],
        [],
    ),
    (
        "1.0-close-with-length",
        200,
        [],
        dict(http11=False, keep_alive=False, body_length=3),
        "LENGTH",
        3,
        False,
        [(b"connection", b"close")],
        [],
    ),
    ("1.1-caller-closes", 200, [], dict(keep_alive=False, body_length=1), "LENGTH", 1, False, [(b"connection", b"close")], []),
    (
        "app-connection-close-honoured",
        200,
        [(b"Connection", b"close")],
        dict(body_length=1),
        "LENGTH",
        1,
        False,
        [(b"connection", b"close")],
        [],
    ),
    (
        "app-connection-close-in-list",
        200,
        [(b"Connection", b"foo, CLOSE")],
        dict(body_length=1),
        "LENGTH",
        1,
        False,
        [(b"connection", b"close")],
        [],
    ),
    (
        "app-connection-keep-alive-dropped",
        200,
        [(b"Connection", b"keep-alive")],
        dict(body_length=1),
        "LENGTH",
        1,
        True,
        [],
        [b"connection"],
    ),
    ("app-keep-alive-dropped", 200, [(b"Keep-Alive", b"timeout=5")], dict(body_length=1), "LENGTH", 1, True, [], [b"keep-alive"]),
    (
        "app-transfer-encoding-dropped",
        200,
        [(b"Transfer-Encoding", b"gzip, chunked")],
        dict(body_length=4),
        "LENGTH",
        4,
        True,
        [(b"content-length", b"4")],
        [b"transfer-encoding"],
    ),
    (
        "app-transfer-encoding-rederived",
        200,
        [(b"transfer-encoding", b"identity")],
        {},
        "CHUNKED",
        -1,
        True,
        [(b"transfer-encoding", b"chunked")],
        [],
    ),
    (
        "101-keeps-connection-and-upgrade",
        101,
        [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")],
        dict(keep_alive=False),
        "NO_BODY",
        -1,
        True,
        [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")],
        [b"content-length", b"transfer-encoding"],
    ),
]


@pytest.mark.parametrize(
    "status, headers, kwargs, framing, length, keep_alive, present, absent",
    [pytest.param(*row[1:], id=row[0]) for row in FRAMING],
)
def test_framing(impl, status, headers, kwargs, framing, length, keep_alive, present, absent):
    head, got_framing, got_length, got_keep_alive = impl.encode_head(status, headers, **kwargs)
    assert (got_framing, got_length, got_keep_alive) == (getattr(impl, framing), length, keep_alive)
    status_line, fields = header_lines(head)
    assert status_line.startswith(b"HTTP/1.1 %d " % status)
    for field in present:
        assert fields.count(field) == 1, (field, fields)
    for name in absent:
        assert name not in [n for n, _ in fields], (name, fields)
    # Framing fields are never sent twice.
    for name in (b"content-length", b"transfer-encoding", b"connection", b"date", b"server"):
        assert [n for n, _ in fields].count(name) <= 1, fields


def test_101_keeps_exactly_the_app_connection(impl):
    head, *_ = impl.encode_head(101, [(b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")])
    assert [f for f in header_lines(head)[1] if f[0] == b"connection"] == [(b"connection", b"Upgrade")]


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+5", b"1e3", b"0x10", b"5, 5", b"", b"1 0", b"1" * 19], ids=repr)
def test_invalid_app_content_length(impl, value):
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [(b"Content-Length", value)])


def test_conflicting_app_content_lengths(impl):
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [(b"Content-Length", b"5"), (b"content-length", b"6")])


def test_app_date_and_server_are_kept(impl):
    head, *_ = impl.encode_head(200, [(b"Date", b"Tue, 15 Nov 1994 08:12:31 GMT"), (b"Server", b"app/1")], body_length=0)
    fields = header_lines(head)[1]
    assert [v for n, v in fields if n == b"date"] == [b"Tue, 15 Nov 1994 08:12:31 GMT"]
    assert [v for n, v in fields if n == b"server"] == [b"app/1"]


def test_error_response_server_field_follows_the_setting(impl):
    """encode_error (400s, 500s, refusals) names the server as the app's
    responses do, and not at all under --no-server-header."""

    def head(response):
        return response[: response.index(b"\r\n\r\n") + 4]

    assert (b"server", b"fastbase") in header_lines(head(impl.encode_error(400)))[1]
    assert b"server" not in names(head(impl.encode_error(400, server=None)))
    assert b"server" not in names(head(impl.encode_error(500, "", True, True, server=None)))
    assert (b"server", b"x/1") in header_lines(head(impl.encode_error(431, server=b"x/1")))[1]


def test_server_header_configurable(impl):
    head, *_ = impl.encode_head(200, [], body_length=0, server=None)
    assert b"server" not in names(head)
    head, *_ = impl.encode_head(200, [], body_length=0, server=b"custom/2")
    assert (b"server", b"custom/2") in header_lines(head)[1]


# --- refusing what HTTP cannot carry ----------------------------------------------


@pytest.mark.parametrize("bad", [b"\r", b"\n", b"\x00", b"\r\nSet-Cookie: x=1"], ids=repr)
@pytest.mark.parametrize("where", ["name", "value", "reason", "trailer-name", "trailer-value"])
def test_cr_lf_nul_refused(impl, bad, where):
    with pytest.raises(InvalidResponse):
        if where == "name":
            impl.encode_head(200, [(b"X-A" + bad, b"v")])
        elif where == "value":
            impl.encode_head(200, [(b"X-A", b"v" + bad + b"w")])
        elif where == "reason":
            impl.encode_head(200, [], reason=b"OK" + bad)
        elif where == "trailer-name":
            impl.encode_trailers([(b"X-T" + bad, b"v")])
        else:
            impl.encode_trailers([(b"X-T", bad + b"v")])


@pytest.mark.parametrize("name", [b"", b"X A", b"X:A", b"X\tA", "X-\u00e9".encode(), b"(x)"], ids=repr)
def test_invalid_header_name(impl, name):
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [(name, b"v")])
    with pytest.raises(InvalidResponse):
        impl.encode_trailers([(name, b"v")])


@pytest.mark.parametrize("status", [0, 99, 1000, -200, 10**30, -(10**30), "200", b"200", 200.0, True, None], ids=repr)
def test_invalid_status(impl, status):
    with pytest.raises(InvalidResponse):
        impl.encode_head(status, [])
    with pytest.raises(InvalidResponse):
        impl.encode_error(status)


def test_status_must_be_int(impl):
    # Once 200's status line is cached, 200.0 (== 200, same hash) must still fail.
    impl.encode_head(200, [])
    with pytest.raises(InvalidResponse):
        impl.encode_head(200.0, [])
    with pytest.raises(InvalidResponse):
        impl.encode_head(True, [])


def test_non_latin1_and_wrong_types_refused(impl):
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [("X-A", "snow \u2603")])
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [(b"X-A", 5)])
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [(None, b"v")])
    with pytest.raises(InvalidResponse):
        impl.encode_head(200, [], reason="\u2603")


# --- status line and str/bytes input ------------------------------------------------


def test_reason_phrases(impl):
    assert impl.encode_head(404, [])[0].startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert impl.encode_head(200, [], reason="Fine")[0].startswith(b"HTTP/1.1 200 Fine\r\n")
    assert impl.encode_head(200, [], reason=b"All good")[0].startswith(b"HTTP/1.1 200 All good\r\n")
    assert impl.encode_head(200, [], reason="OK")[0].startswith(b"HTTP/1.1 200 OK\r\n")
    # An unregistered code gets an empty reason: the SP stays (RFC 9112 4).
    assert impl.encode_head(599, [])[0].startswith(b"HTTP/1.1 599 \r\n")
    assert impl.encode_head(200, [], reason="caf\u00e9")[0].startswith(b"HTTP/1.1 200 caf\xe9\r\n")
    # Once the standard line is cached, other phrases for the code still win.
    assert impl.encode_head(200, [], reason="Fine")[0].startswith(b"HTTP/1.1 200 Fine\r\n")
    assert impl.encode_head(200, [], reason="ok")[0].startswith(b"HTTP/1.1 200 ok\r\n")
    assert impl.encode_head(200, [], reason=type("Phrase", (str,), {})("OK"))[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert impl.encode_head(599, [], reason="Custom")[0].startswith(b"HTTP/1.1 599 Custom\r\n")
    # The status line is HTTP/1.1 even for HTTP/1.0 clients (RFC 9110 2.5).
    assert impl.encode_head(200, [], http11=False)[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_str_and_bytes_give_the_same_bytes(impl):
    as_str = impl.encode_head(200, [("Content-Type", "text/html; charset=utf-8"), ("X-L1", "caf\u00e9")], reason="Fine", body_length=3)
    as_bytes = impl.encode_head(200, [(b"Content-Type", b"text/html; charset=utf-8"), (b"X-L1", b"caf\xe9")], reason=b"Fine", body_length=3)
    assert normalise_date(as_str[0]) == normalise_date(as_bytes[0])
    assert as_str[1:] == as_bytes[1:]
    assert impl.encode_trailers([("X-T", "v")]) == impl.encode_trailers([(b"X-T", b"v")])


def test_headers_may_be_any_iterable(impl):
    gen = ((n, v) for n, v in [(b"X-A", b"1"), (b"X-B", b"2")])
    head, *_ = impl.encode_head(200, gen, body_length=0)
    assert header_lines(head)[1][:2] == [(b"x-a", b"1"), (b"x-b", b"2")]


# --- chunks, trailers, errors --------------------------------------------------------


def test_encode_chunk(impl):
    assert impl.encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert impl.encode_chunk(b"x" * 4096) == b"1000\r\n" + b"x" * 4096 + b"\r\n"
    assert impl.encode_chunk(b"\r\n") == b"2\r\n\r\n\r\n"
    # An empty chunk would end the body: it encodes to nothing.
    assert impl.encode_chunk(b"") == b""


def test_encode_trailers(impl):
    assert impl.encode_trailers([]) == impl.LAST_CHUNK
    assert impl.encode_trailers([(b"X-Checksum", b"abc"), ("X-B", "")]) == b"0\r\nX-Checksum: abc\r\nX-B: \r\n\r\n"


def test_chunked_stream_parses_back(impl):
    """A chunked response built from the writer's pieces is valid to h11."""
    head, framing, _, _ = impl.encode_head(200, [(b"Trailer", b"X-Sum")])
    assert framing == impl.CHUNKED
    wire = head + impl.encode_chunk(b"hello ") + impl.encode_chunk(b"") + impl.encode_chunk(b"world")
    wire += impl.encode_trailers([(b"X-Sum", b"42")])
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(wire)
    events = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
            events.append(event)
            break
        events.append(event)
    assert isinstance(events[0], h11.Response) and events[0].status_code == 200
    assert b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data)) == b"hello world"
    assert list(events[-1].headers) == [(b"x-sum", b"42")]


@pytest.mark.parametrize("status", [400, 413, 414, 431, 500, 501, 505])
def test_encode_error(impl, status):
    out = impl.encode_error(status)
    head, _, payload = out.partition(b"\r\n\r\n")
    status_line, fields = header_lines(head + b"\r\n\r\n")
    reason = status_line.split(b" ", 2)[2]
    assert status_line.startswith(b"HTTP/1.1 %d " % status) and reason
    assert payload == reason + b"\n"
    assert (b"content-length", str(len(payload)).encode()) in fields
    assert (b"connection", b"close") in fields
    assert (b"content-type", b"text/plain; charset=utf-8") in fields


def test_encode_error_keeping_the_connection(impl):
    """An application's 500 on a connection that stays open."""
    for http11, connection in ((True, []), (False, [b"keep-alive"])):
        out = impl.encode_error(500, "", True, http11)
        status_line, fields = header_lines(out.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
        assert status_line.startswith(b"HTTP/1.1 500 ")
        assert [value for name, value in fields if name == b"connection"] == connection


def test_encode_error_message(impl):
    out = impl.encode_error(400, "bad chunk size \u2013 sorry")
    assert out.endswith(b"\r\n\r\n" + "bad chunk size \u2013 sorry\n".encode())
    assert b"content-length: %d\r\n" % len("bad chunk size \u2013 sorry\n".encode()) in out


def test_encode_error_parses_back(impl):
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(impl.encode_error(431))
    response = client.next_event()
    assert response.status_code == 431
    assert client.next_event().data == b"Request Header Fields Too Large\n"
    assert isinstance(client.next_event(), h11.EndOfMessage)
    assert client.their_state is h11.MUST_CLOSE


# --- Date -----------------------------------------------------------------------------


def test_date_is_imf_fixdate_for_now(impl):
    before = int(time.time())
    value = impl.date_header_value()
    after = int(time.time())
    assert type(value) is bytes
    assert IMF_FIXDATE.match(value), value
    stamp = calendar.timegm(time.strptime(value.decode("ascii"), "%a, %d %b %Y %H:%M:%S GMT"))
    assert before <= stamp <= after


def test_date_is_cached_within_a_second(impl):
    first = impl.date_header_value()
    second = impl.date_header_value()
    if first != second:  # a second boundary passed between the calls
        to_ts = lambda v: calendar.timegm(time.strptime(v.decode(), "%a, %d %b %Y %H:%M:%S GMT"))  # noqa: E731
        assert to_ts(second) - to_ts(first) == 1


def test_head_carries_the_date(impl):
    head, *_ = impl.encode_head(200, [], body_length=0)
    (value,) = DATE_RE.findall(head)
    assert IMF_FIXDATE.match(value)


# --- a whole response in one buffer ----------------------------------------------------

ONE_WRITE = [
    # id, status, headers, body, reason, http11, keep_alive
    ("plain", 200, [(b"Content-Type", b"text/plain")], b"Hello, world!", None, True, True),
    ("str-headers-and-reason", 201, [("Content-Type", "text/plain")], b"made", "Created", True, True),
    ("custom-reason", 200, [], b"x", "Fine", True, True),
    ("app-length-agrees", 200, [(b"Content-Length", b"4")], b"abcd", None, True, True),
    ("empty-body", 200, [], b"", None, True, True),
    ("http10-keep-alive", 200, [], b"abc", None, False, True),
    ("caller-closes", 404, [], b"gone", None, True, False),
    ("app-connection-close", 200, [(b"Connection", b"close")], b"bye", None, True, True),
    ("just-under-the-limit", 200, [], b"z" * 16383, None, True, True),
]


@pytest.mark.parametrize(
    "status, headers, body, reason, http11, keep_alive",
    [pytest.param(*row[1:], id=row[0]) for row in ONE_WRITE],
)
def test_encode_response_is_the_head_then_the_body(impl, status, headers, body, reason, http11, keep_alive):
    data, got_keep_alive = impl.encode_response(status, headers, body, reason, http11, keep_alive, False, b"fastbase")
    head, framing, length, expected_keep_alive = impl.encode_head(
        status, headers, reason=reason, http11=http11, keep_alive=keep_alive, body_length=len(body)
    )
    assert (framing, length) == (impl.LENGTH, len(body))
    assert normalise_date(data) == normalise_date(head + body)
    assert got_keep_alive is expected_keep_alive
    # What was written parses back as one response with exactly this body.
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    response = client.next_event()
    assert response.status_code == status
    received = b""
    event = client.next_event()
    while isinstance(event, h11.Data):
        received += bytes(event.data)
        event = client.next_event()
    assert isinstance(event, h11.EndOfMessage) and received == body


DECLINED = [
    # id, status, headers, body, head_request: sent otherwise than head + body in one write
    ("head-request", 200, [], b"abc", True),
    ("204", 204, [], b"", False),
    ("304", 304, [(b"Content-Length", b"5")], b"", False),
    ("1xx", 103, [], b"", False),
    ("app-length-differs", 200, [(b"Content-Length", b"9")], b"abc", False),
    ("large-body", 200, [], b"z" * 16384, False),
]


@pytest.mark.parametrize("status, headers, body, head_request", [pytest.param(*row[1:], id=row[0]) for row in DECLINED])
def test_encode_response_declines_other_framings(impl, status, headers, body, head_request):
    assert impl.ONE_WRITE_LIMIT == 16384
    assert impl.encode_response(status, headers, body, None, True, True, head_request, b"fastbase") is None


def test_keep_alive_comes_back_as_a_bool(impl):
    assert impl.encode_head(200, [], keep_alive=1, body_length=1)[3] is True
    assert impl.encode_head(200, [], keep_alive=0, body_length=1)[3] is False
    assert impl.encode_response(200, [], b"x", None, True, 1, False, None)[1] is True


def test_encode_response_refuses_what_encode_head_refuses(impl):
    with pytest.raises(InvalidResponse):
        impl.encode_response(200, [(b"X", b"a\r\nSet-Cookie: x=1")], b"x", None, True, True, False, None)
    with pytest.raises(InvalidResponse):
        impl.encode_response(200, [(b"Content-Length", b"-1")], b"x", None, True, True, False, None)
    with pytest.raises(TypeError):
        impl.encode_response(200, [], "not bytes", None, True, True, False, None)


# --- both implementations, byte for byte ------------------------------------------------


@pytest.fixture
def both():
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip("compiled parser disabled by FASTBASE_NO_EXTENSIONS=1")
    return importlib.import_module("fastbase.http._parser"), importlib.import_module("fastbase.http._parser_py")


IDENTICAL = [
    (200, [(b"Content-Type", b"text/plain")], {}),
    (200, [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], dict(body_length=10)),
    (404, [], dict(reason="Nope", http11=False)),
    (204, [(b"Content-Length", b"0")], {}),
    (304, [(b"ETag", b'"x"'), (b"Content-Length", b"10")], {}),
    (101, [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")], {}),
    (200, [(b"Connection", b"close"), (b"Keep-Alive", b"5")], dict(head_request=True, body_length=3)),
    (500, [(b"Transfer-Encoding", b"chunked")], dict(http11=False, keep_alive=True)),
    (599, [(b"X", b"")], dict(server=None)),
    (200, [(b"Date", b"x"), (b"Server", b"y")], dict(body_length=1)),
]


@pytest.mark.parametrize("status, headers, kwargs", IDENTICAL)
def test_implementations_write_identical_bytes(both, status, headers, kwargs):
    c, py = both
    out_c = c.encode_head(status, list(headers), **kwargs)
    out_py = py.encode_head(status, list(headers), **kwargs)
    assert normalise_date(out_c[0]) == normalise_date(out_py[0])
    assert out_c[1:] == out_py[1:]


def test_implementations_agree_on_helpers(both):
    c, py = both
    for data in (b"", b"a", b"\r\n" * 300):
        assert c.encode_chunk(data) == py.encode_chunk(data)
    assert c.encode_trailers([(b"A", b"1")]) == py.encode_trailers([(b"A", b"1")])
    for status in (400, 413, 505, 599):
        assert normalise_date(c.encode_error(status, "x")) == normalise_date(py.encode_error(status, "x"))
    for name in ("NO_BODY", "LENGTH", "CHUNKED", "CLOSE_DELIMITED", "LAST_CHUNK", "CONTINUE_RESPONSE", "ONE_WRITE_LIMIT"):
        assert getattr(c, name) == getattr(py, name)


# --- generated responses: both implementations, same bytes or same refusal -------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NAME_BYTES = st.one_of(
    st.sampled_from(
        [
            b"Content-Length",
            b"content-length",
            b"Connection",
            b"Transfer-Encoding",
            b"Keep-Alive",
            b"Date",
            b"Server",
            b"Upgrade",
            b"X-A",
            b"Set-Cookie",
            b"",
            b"X A",
            b"X\r\nY",
        ]
    ),
    st.binary(max_size=8),
)
VALUE_BYTES = st.one_of(
    st.sampled_from(
        [
            b"close",
            b"keep-alive",
            b"Upgrade",
            b"chunked",
            b"5",
            b" 5 ",
            b"05",
            b"-1",
            b"x\r\ny",
            b"a\x00b",
            b"",
            b"caf\xe9",
            b"99999999999999999999",
        ]
    ),
    st.binary(max_size=12),
)
HEADER = st.tuples(NAME_BYTES, VALUE_BYTES).flatmap(lambda h: st.sampled_from([h, (h[0].decode("latin-1"), h[1].decode("latin-1"))]))


def written(impl, status, headers, kwargs):
    try:
        head, *rest = impl.encode_head(status, headers, **kwargs)
    except InvalidResponse:
        return "InvalidResponse"
    return normalise_date(head), *rest


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.one_of(st.sampled_from([100, 101, 103, 200, 204, 206, 304, 404, 500, 599]), st.integers(0, 1100)),
    headers=st.lists(HEADER, max_size=6),
    reason=st.one_of(st.none(), st.sampled_from(["OK", "Fine", b"x\ry", "caf\u00e9", ""])),
    http11=st.booleans(),
    keep_alive=st.booleans(),
    head_request=st.booleans(),
    body_length=st.sampled_from([-1, 0, 5, 1 << 40]),
)
def test_generated_heads_identical(status, headers, reason, http11, keep_alive, head_request, body_length):
    kwargs = dict(reason=reason, http11=http11, keep_alive=keep_alive, head_request=head_request, body_length=body_length)
    py = importlib.import_module("fastbase.http._parser_py")
    out_py = written(py, status, headers, kwargs)
    if out_py != "InvalidResponse":
        # The head is one valid response head whatever the application asked.
        assert out_py[0].startswith(b"HTTP/1.1 ") and out_py[0].endswith(b"\r\n\r\n")
        lines = out_py[0].replace(b"\r\n", b"")
        assert b"\0" not in lines and b"\r" not in lines and b"\n" not in lines
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        return
    c = importlib.import_module("fastbase.http._parser")
    assert written(c, status, headers, kwargs) == out_py
    # The one-write form agrees too, and with the head it extends.
    body = b"b" * body_length if 0 <= body_length < 64 else b""
    args = (status, headers, body, reason, http11, keep_alive, head_request, b"fastbase")
    whole_py = one_write(py, args)
    assert one_write(c, args) == whole_py
    if whole_py not in (None, "InvalidResponse"):
        head = written(py, status, headers, dict(kwargs, body_length=len(body)))[0]
        assert whole_py[0] == head + body


def one_write(impl, args):
    try:
        out = impl.encode_response(*args)
    except InvalidResponse:
        return "InvalidResponse"
    return None if out is None else (normalise_date(out[0]), out[1])
