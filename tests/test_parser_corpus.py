"""The request parser's corpus: named cases from RFC 9112 / RFC 9110 and the
published request-smuggling reports, valid and malicious.

Each case is raw bytes and the outcome it must produce: the events the parser
emits (request heads, body bytes, end of message) and, for refused input, the
status of the error it raises. Every case is fed whole, byte by byte and at
seeded random splits, to both implementations; every way must give the
expected outcome, so the implementations and the splits agree with each other.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

from fastbase.http import limits
from fastbase.http.errors import ProtocolError

# --- expected events ---------------------------------------------------------

HOST = (b"host", b"example.com")


def req(
    method=b"GET",
    target=b"/",
    headers=(HOST,),
    *,
    version="1.1",
    path=None,
    query=None,
    host=...,
    keep_alive=None,
    chunked=False,
    content_length=...,
    expect_continue=False,
    upgrade=None,
):
    """The expected request head; unstated attributes follow from the others."""
    if path is None:
        path, _, derived_query = target.partition(b"?")
        if query is None:
            query = derived_query
    if host is ...:
        hosts = [value for name, value in headers if name == b"host"]
        host = hosts[0] if hosts else None
    if keep_alive is None:
        keep_alive = version == "1.1"
    if content_length is ...:
        content_length = None if chunked else 0
    return (
        "request",
        {
            "method": method,
            "target": target,
            "path": path,
            "query": query,
            "http_version": version,
            "headers": [tuple(h) for h in headers],
            "host": host,
            "keep_alive": keep_alive,
            "chunked": chunked,
            "content_length": content_length,
            "expect_continue": expect_continue,
            "upgrade": upgrade,
        },
    )


def body(data):
    return ("body", data)


def end(*trailers):
    return ("end", [tuple(t) for t in trailers])


END = end()

CASES = []


def case(name, data, *events, error=None, **parser_limits):
    """Register a case: ``events`` are what the input completes; ``error`` the
    status of the ProtocolError the input must end with (None: no error)."""
    CASES.append(pytest.param(data, list(events), error, parser_limits, id=name))


def get(extra=b"", target=b"/", version=b"HTTP/1.1", method=b"GET"):
    """A request head with Host: example.com and ``extra`` header lines."""
    return method + b" " + target + b" " + version + b"\r\nHost: example.com\r\n" + extra + b"\r\n"


CHUNKED_HEADERS = (HOST, (b"transfer-encoding", b"chunked"))
POST_CHUNKED = b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"


def post_chunked(tail):
    return POST_CHUNKED + tail


CHUNKED_REQ = req(b"POST", b"/upload", CHUNKED_HEADERS, chunked=True)


def post_cl(length, payload=b"", extra=b""):
    return b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: %s\r\n" % length + extra + b"\r\n" + payload


def cl_req(n, value=None, extra=()):
    value = str(n).encode() if value is None else value
    return req(b"POST", b"/form", (HOST, (b"content-length", value), *extra), content_length=n)


# --- RFC 9112 section 3: the request line ---------------------------------------

case("get-minimal", get(), req(), END)
case(
    "get-path-and-query",
    get(target=b"/a/b%20c?x=1&y=%2F"),
    req(target=b"/a/b%20c?x=1&y=%2F", path=b"/a/b%20c", query=b"x=1&y=%2F"),
    END,
)
case("get-empty-query", get(target=b"/a?"), req(target=b"/a?", path=b"/a", query=b""), END)
case("get-question-mark-in-query", get(target=b"/a?b?c"), req(target=b"/a?b?c", path=b"/a", query=b"b?c"), END)
case("get-double-slash-path", get(target=b"//x//y"), req(target=b"//x//y"), END)
case(
    "target-raw-utf8-obs-text",
    get(target="/caf\u00e9".encode()),
    req(target="/caf\u00e9".encode()),
    END,
)
case("method-unknown-token-passes", get(method=b"PURGE"), req(method=b"PURGE"), END)
case("method-is-case-sensitive", get(method=b"get"), req(method=b"get"), END)
case("method-with-tchars", get(method=b"M-SEARCH"), req(method=b"M-SEARCH"), END)
case("method-invalid-char", get(method=b"GE(T"), error=400)
case("method-with-slash", get(method=b"GET/"), error=400)
case("method-non-ascii", get(method="G\u00c9T".encode()), error=400)
case("request-line-double-space", b"GET  / HTTP/1.1\r\nHost: example.com\r\n\r\n", error=400)
case("request-line-tab-separator", b"GET\t/ HTTP/1.1\r\nHost: example.com\r\n\r\n", error=400)
case("request-line-leading-space", b" GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", error=400)
case("request-line-trailing-space", b"GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n", error=400)
case("request-line-missing-version", b"GET /\r\nHost: example.com\r\n\r\n", error=400)
case("request-line-http09-style", b"GET /\r\n\r\n", error=400)
case("request-line-only-method", b"GET\r\n\r\n", error=400)
case("request-line-space-in-target", b"GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n", error=400)
case("version-lowercase-name", get(version=b"http/1.1"), error=400)
case("version-missing-minor", get(version=b"HTTP/1"), error=400)
case("version-two-digit-major", get(version=b"HTTP/11.1"), error=400)
case("version-trailing-garbage", get(version=b"HTTP/1.1x"), error=400)
case("version-comma", get(version=b"HTTP/1,1"), error=400)
case("version-1.0", get(version=b"HTTP/1.0"), req(version="1.0"), END)
case("version-1.2-handled-as-1.1", get(version=b"HTTP/1.2"), req(version="1.1"), END)
case("version-1.9-handled-as-1.1", get(version=b"HTTP/1.9"), req(version="1.1"), END)
case("version-2.0-505", get(version=b"HTTP/2.0"), error=505)
case("version-3.0-505", get(version=b"HTTP/3.0"), error=505)
case("version-0.9-505", get(version=b"HTTP/0.9"), error=505)
case("h2-connection-preface-505", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", error=505)
case("h2-preface-after-a-request", get() + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", req(), END, error=505)
# RFC 9110 4.2.5 / RFC 9112 3.2: a fragment is never sent; "#" is refused.
case("target-fragment", get(target=b"/page#frag"), error=400)
case("target-nul", get(target=b"/a\x00b"), error=400)
case("target-del", get(target=b"/a\x7fb"), error=400)
case("target-ctl", get(target=b"/a\x01b"), error=400)
case("target-tab", get(target=b"/a\tb"), error=400)
# RFC 9112 3.2.4: asterisk-form only for OPTIONS.
case("asterisk-form-options", get(method=b"OPTIONS", target=b"*"), req(b"OPTIONS", b"*"), END)
case("asterisk-form-get-refused", get(target=b"*"), error=400)
case("asterisk-form-connect-501", get(method=b"CONNECT", target=b"*"), error=501)
# RFC 9112 3.2.3: authority-form is CONNECT's; no tunnels here.
case("connect-authority-form-501", get(method=b"CONNECT", target=b"example.com:443"), error=501)
case("connect-ipv6-authority-501", get(method=b"CONNECT", target=b"[::1]:443"), error=501)
case("authority-form-without-connect", get(target=b"example.com:80"), error=400)
case("connect-origin-form-501", get(method=b"CONNECT", target=b"/tunnel"), error=501)
case("connect-absolute-form-501", get(method=b"CONNECT", target=b"http://example.com:443/"), error=501)
case("connect-invalid-target-400", get(method=b"CONNECT", target=b"a#b"), error=400)
# RFC 9112 3.2.2: absolute-form; its authority replaces Host.
case(
    "absolute-form-http",
    get(target=b"http://origin.test/p/q?x=1"),
    req(target=b"http://origin.test/p/q?x=1", path=b"/p/q", query=b"x=1", host=b"origin.test"),
    END,
)
case(
    "absolute-form-https-port",
    get(target=b"https://origin.test:8443/p"),
    req(target=b"https://origin.test:8443/p", path=b"/p", query=b"", host=b"origin.test:8443"),
    END,
)
case(
    "absolute-form-empty-path-is-slash",
    get(target=b"http://origin.test"),
    req(target=b"http://origin.test", path=b"/", query=b"", host=b"origin.test"),
    END,
)
case(
    "absolute-form-query-without-path",
    get(target=b"http://origin.test?x=1"),
    req(target=b"http://origin.test?x=1", path=b"/", query=b"x=1", host=b"origin.test"),
    END,
)
case(
    "absolute-form-uppercase-scheme",
    get(target=b"HTTP://origin.test/"),
    req(target=b"HTTP://origin.test/", path=b"/", query=b"", host=b"origin.test"),
    END,
)
case(
    "absolute-form-ipv6",
    get(target=b"http://[::1]:8000/x"),
    req(target=b"http://[::1]:8000/x", path=b"/x", query=b"", host=b"[::1]:8000"),
    END,
)
case("absolute-form-ftp-scheme", get(target=b"ftp://origin.test/"), error=400)
case("absolute-form-userinfo", get(target=b"http://user:pw@origin.test/"), error=400)
case("absolute-form-empty-host", get(target=b"http:///path"), error=400)
case("absolute-form-bad-port", get(target=b"http://origin.test:80a/"), error=400)
case("absolute-form-scheme-digit-first", get(target=b"1http://origin.test/"), error=400)
case("absolute-form-no-scheme", get(target=b"origin.test/path"), error=400)
case("absolute-form-still-needs-host-on-1.1", b"GET http://origin.test/ HTTP/1.1\r\n\r\n", error=400)

# --- RFC 9112 section 2.2: line endings -------------------------------------------

case("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: example.com\n\n", error=400)
case("bare-lf-after-request-line", b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", error=400)
case("bare-lf-after-header", b"GET / HTTP/1.1\r\nHost: example.com\n\r\n", error=400)
case("bare-lf-ending-head", b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", error=400)
case("bare-cr-in-request-line", b"GET / HTTP/1.1\rHost: example.com\r\n\r\n", error=400)
case("bare-cr-line-ending-header", b"GET / HTTP/1.1\r\nHost: example.com\rX: y\r\n\r\n", error=400)
case("bare-cr-ending-head", b"GET / HTTP/1.1\r\nHost: example.com\r\n\rGET / HTTP/1.1\r\n\r\n", error=400)
case("leading-crlf-one-ignored", b"\r\n" + get(), req(), END)
case("leading-crlf-two-refused", b"\r\n\r\n" + get(), error=400)
case("leading-bare-lf-refused", b"\n" + get(), error=400)
case("crlf-between-pipelined-requests", get() + b"\r\n" + get(target=b"/2"), req(), END, req(target=b"/2"), END)
case("two-crlf-between-pipelined-requests", get() + b"\r\n\r\n" + get(), req(), END, error=400)

# --- RFC 9112 section 5 / RFC 9110 section 5: field lines ----------------------

case(
    "header-names-lowercased-values-raw",
    get(b"X-Custom-Header: MiXeD Case\r\nACCEPT: */*\r\n"),
    req(headers=(HOST, (b"x-custom-header", b"MiXeD Case"), (b"accept", b"*/*"))),
    END,
)
case(
    "header-ows-trimmed",
    b"GET / HTTP/1.1\r\nHost: \t example.com \t \r\nX-A:value\r\n\r\n",
    req(headers=(HOST, (b"x-a", b"value"))),
    END,
)
case("header-empty-value", get(b"X-Empty:\r\nX-Blank:   \r\n"), req(headers=(HOST, (b"x-empty", b""), (b"x-blank", b""))), END)
case("header-inner-whitespace-kept", get(b"X-A: a \t b\r\n"), req(headers=(HOST, (b"x-a", b"a \t b"))), END)
case("header-obs-text-value", get(b"X-A: caf\xc3\xa9 \xff\r\n"), req(headers=(HOST, (b"x-a", b"caf\xc3\xa9 \xff"))), END)
case(
    "header-duplicates-kept-in-order",
    get(b"Accept: a\r\nX: 1\r\naccept: b\r\n"),
    req(headers=(HOST, (b"accept", b"a"), (b"x", b"1"), (b"accept", b"b"))),
    END,
)
case(
    "header-name-with-underscore-is-just-a-field",
    get(b"Transfer_Encoding: chunked\r\n"),
    req(headers=(HOST, (b"transfer_encoding", b"chunked"))),
    END,
)
case("header-colon-in-value", get(b"X-Url: http://a:b/c\r\n"), req(headers=(HOST, (b"x-url", b"http://a:b/c"))), END)
case("header-space-before-colon", get(b"X-A : b\r\n"), error=400)
case("header-tab-before-colon", get(b"X-A\t: b\r\n"), error=400)
case("header-space-before-colon-content-length", post_cl(b"5", b"hello", b"Content-Length : 0\r\n"), error=400)
case("header-obs-fold", get(b"X-A: b\r\n  c\r\n"), error=400)
case("header-obs-fold-tab", get(b"X-A: b\r\n\tc\r\n"), error=400)
case("header-first-line-whitespace", b"GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", error=400)
case("header-without-colon", get(b"X-A b\r\n"), error=400)
case("header-empty-name", get(b": b\r\n"), error=400)
case("header-name-invalid-char", get(b"X(A): b\r\n"), error=400)
case("header-name-non-ascii", get("X-\u00e9: b\r\n".encode()), error=400)
case("header-value-nul", get(b"X-A: b\x00c\r\n"), error=400)
case("header-value-bare-cr", get(b"X-A: b\rc\r\n"), error=400)
case("header-value-vertical-tab", get(b"X-A: b\x0bc\r\n"), error=400)
case("header-value-form-feed-not-trimmed", get(b"X-A: \x0cb\r\n"), error=400)
case("header-value-del", get(b"X-A: b\x7f\r\n"), error=400)
case("header-value-escape", get(b"X-A: \x1b[31m\r\n"), error=400)

# --- RFC 9112 section 3.2 / RFC 9110 section 7.2: Host ---------------------------

case("host-missing-1.1", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", error=400)
case("host-missing-1.0-ok", b"GET / HTTP/1.0\r\n\r\n", req(headers=(), version="1.0"), END)
case("host-duplicate", get(b"Host: example.com\r\n"), error=400)
case("host-duplicate-different", get(b"Host: evil.test\r\n"), error=400)
case("host-duplicate-on-1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", error=400)
case("host-empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", error=400)
case("host-inner-space", b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", error=400)
case("host-userinfo", b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", error=400)
case("host-list", b"GET / HTTP/1.1\r\nHost: a.test, b.test\r\n\r\n", error=400)
case("host-with-path", b"GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n", error=400)
case("host-port-not-digits", b"GET / HTTP/1.1\r\nHost: example.com:8o\r\n\r\n", error=400)
case("host-port-too-long", b"GET / HTTP/1.1\r\nHost: example.com:123456\r\n\r\n", error=400)
case("host-ipv6-unterminated", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", error=400)
case("host-ipv6-garbage-after", b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", error=400)
case("host-ipv6-empty", b"GET / HTTP/1.1\r\nHost: []\r\n\r\n", error=400)
case("host-only-port", b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", error=400)
case(
    "host-with-port",
    b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    req(headers=((b"host", b"example.com:8080"),)),
    END,
)
case("host-ipv6", b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", req(headers=((b"host", b"[2001:db8::1]:80"),)), END)
case("host-ipv4", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", req(headers=((b"host", b"127.0.0.1"),)), END)
case(
    "host-ignored-for-absolute-form",
    get(target=b"http://origin.test/"),
    req(target=b"http://origin.test/", path=b"/", query=b"", host=b"origin.test"),
    END,
)
case("host-invalid-with-absolute-form", b"GET http://origin.test/ HTTP/1.1\r\nHost: a b\r\n\r\n", error=400)

# --- RFC 9112 section 6 / 9: framing, persistence, pipelining -------------------

case("post-content-length", post_cl(b"5", b"hello"), cl_req(5), body(b"hello"), END)
case("post-content-length-zero", post_cl(b"0"), cl_req(0), END)
case("post-content-length-leading-zeros", post_cl(b"0005", b"hello"), cl_req(5, b"0005"), body(b"hello"), END)
case("post-content-length-ows", post_cl(b"  5 \t", b"hello"), cl_req(5, b"5"), body(b"hello"), END)
case("post-content-length-incomplete-body", post_cl(b"10", b"hello"), cl_req(10), body(b"hello"))
case(
    "post-without-length-has-no-body",
    b"POST / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    req(b"POST"),
    END,
)
case(
    "content-length-int64-max",
    post_cl(b"9223372036854775807"),
    cl_req(9223372036854775807),
)
case("content-length-int64-max-plus-one", post_cl(b"9223372036854775808"), error=400)
case("content-length-20-digits", post_cl(b"12345678901234567890"), error=400)
case(
    "content-length-many-leading-zeros",
    post_cl(b"0" * 40 + b"3", b"abc"),
    cl_req(3, b"0" * 40 + b"3"),
    body(b"abc"),
    END,
)
case("content-length-duplicate-same", post_cl(b"5", b"hello", b"Content-Length: 5\r\n"), error=400)
case("content-length-duplicate-different", post_cl(b"5", b"hello", b"Content-Length: 6\r\n"), error=400)
case("content-length-list", post_cl(b"5, 5", b"hello"), error=400)
case("content-length-plus-sign", post_cl(b"+5", b"hello"), error=400)
case("content-length-negative", post_cl(b"-1"), error=400)
case("content-length-hex", post_cl(b"0x5", b"hello"), error=400)
case("content-length-inner-space", post_cl(b"1 0", b"0123456789"), error=400)
case("content-length-underscore", post_cl(b"1_0", b"0123456789"), error=400)
case("content-length-empty", post_cl(b""), error=400)
case("content-length-decimal-point", post_cl(b"5.0", b"hello"), error=400)
case("content-length-arabic-indic-digit", post_cl("\u0665".encode(), b"hello"), error=400)
case("content-length-superscript-digit", post_cl("\u00b2".encode(), b"hi"), error=400)
case("content-length-fullwidth-digit", post_cl("\uff15".encode(), b"hello"), error=400)
case(
    "content-length-shorter-than-data-pipelines",
    post_cl(b"5", b"hello" + get(target=b"/next")),
    cl_req(5),
    body(b"hello"),
    END,
    req(target=b"/next"),
    END,
)
case(
    "content-length-smuggled-garbage-is-next-request",
    post_cl(b"3", b"abcX-Smuggled: 1\r\n\r\n"),
    cl_req(3),
    body(b"abc"),
    END,
    error=400,
)
case(
    "pipelined-gets",
    get(target=b"/1") + get(target=b"/2") + get(target=b"/3"),
    req(target=b"/1"),
    END,
    req(target=b"/2"),
    END,
    req(target=b"/3"),
    END,
)
case(
    "pipelined-chunked-then-get",
    post_chunked(b"3\r\nabc\r\n0\r\n\r\n") + get(),
    CHUNKED_REQ,
    body(b"abc"),
    END,
    req(),
    END,
)
case(
    "pipelined-valid-then-garbage",
    get() + b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
    req(),
    END,
    error=400,
)
case(
    "connection-close-ignores-rest",
    get(b"Connection: close\r\n") + get(target=b"/ignored") + b"garbage\n\n",
    req(headers=(HOST, (b"connection", b"close")), keep_alive=False),
    END,
)
case(
    "connection-close-token-in-list",
    get(b"Connection: keep-alive, Close\r\n"),
    req(headers=(HOST, (b"connection", b"keep-alive, Close")), keep_alive=False),
    END,
)
case(
    "connection-close-across-two-fields",
    get(b"Connection: foo\r\nConnection:  close \r\n"),
    req(headers=(HOST, (b"connection", b"foo"), (b"connection", b"close")), keep_alive=False),
    END,
)
case(
    "connection-closed-is-not-close",
    get(b"Connection: closed\r\n") + get(),
    req(headers=(HOST, (b"connection", b"closed"))),
    END,
    req(),
    END,
)
case(
    "http10-closes-by-default",
    b"GET / HTTP/1.0\r\n\r\n" + get(),
    req(headers=(), version="1.0"),
    END,
)
case(
    "http10-keep-alive",
    b"GET /1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    req(target=b"/1", headers=((b"connection", b"Keep-Alive"),), version="1.0", keep_alive=True),
    END,
    req(target=b"/2", headers=(), version="1.0"),
    END,
)
case(
    "http10-keep-alive-and-close",
    b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
    req(headers=((b"connection", b"keep-alive, close"),), version="1.0", keep_alive=False),
    END,
)
case(
    "http10-post-content-length",
    b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
    req(b"POST", headers=((b"content-length", b"2"),), version="1.0", content_length=2),
    body(b"hi"),
    END,
)

# --- RFC 9112 section 6.1 / 6.3: Transfer-Encoding and the CL/TE desyncs -------

case("chunked-simple", post_chunked(b"5\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), END)
case(
    "chunked-several-chunks",
    post_chunked(b"3\r\nabc\r\n1\r\nd\r\nA\r\n0123456789\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    body(b"abcd0123456789"),
    END,
)
case("chunked-uppercase-hex", post_chunked(b"B\r\nhello world\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello world"), END)
case(
    "chunked-16-digit-size",
    post_chunked(b"0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n"),
    CHUNKED_REQ,
    body(b"hello"),
    END,
)
case("chunked-empty-body", post_chunked(b"0\r\n\r\n"), CHUNKED_REQ, END)
case("chunked-body-binary", post_chunked(b"4\r\n\r\n\x00\n\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"\r\n\x00\n"), END)
case("chunked-incomplete", post_chunked(b"5\r\nhel"), CHUNKED_REQ, body(b"hel"))
case(
    "chunked-coding-case-insensitive",
    b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
    req(b"POST", b"/upload", (HOST, (b"transfer-encoding", b"CHUNKED")), chunked=True),
    END,
)
case(
    "chunked-trailing-ows-is-not-obfuscation",
    b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked \t\r\n\r\n0\r\n\r\n",
    CHUNKED_REQ,
    END,
)
case("te-and-cl", post_chunked(b"0\r\n\r\n").replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\n", 1), error=400)
case(
    "cl-and-te",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
    error=400,
)


def te(value, tail=b"0\r\n\r\n", version=b"HTTP/1.1"):
    return b"POST / " + version + b"\r\nHost: example.com\r\nTransfer-Encoding: " + value + b"\r\n\r\n" + tail


case("te-xchunked", te(b"xchunked"), error=400)
case("te-chunked-suffix", te(b"chunkedx"), error=400)
case("te-chunk", te(b"chunk"), error=400)
case("te-chunked-then-identity", te(b"chunked, identity"), error=400)
case("te-identity-only", te(b"identity", b""), error=400)
case("te-gzip-only", te(b"gzip", b""), error=400)
case("te-gzip-then-chunked-501", te(b"gzip, chunked"), error=501)
case("te-identity-then-chunked-501", te(b"identity, chunked"), error=501)
case("te-chunked-twice", te(b"chunked, chunked"), error=400)
case("te-quoted-chunked", te(b'"chunked"'), error=400)
case("te-chunked-with-parameter", te(b"chunked;q=1"), error=400)
case("te-empty-value", te(b""), error=400)
case("te-trailing-comma", te(b"chunked,"), error=400)
case("te-leading-vertical-tab", te(b"\x0bchunked"), error=400)
case("te-kelvin-sign-k", te("chun\u212aed".encode()), error=400)
case("te-on-http10", te(b"chunked", version=b"HTTP/1.0"), error=400)
case(
    "te-split-over-two-fields-chunked-chunked",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    error=400,
)
case(
    "te-split-over-two-fields-gzip-chunked",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    error=501,
)
case(
    "te-obs-fold-value",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    error=400,
)
case(
    "te-space-before-colon",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    error=400,
)

# --- RFC 9112 section 7.1: chunk framing -----------------------------------------

case(
    "chunk-extension-token",
    post_chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    body(b"hello"),
    END,
)
case("chunk-extension-name-only", post_chunked(b"5;flag\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), END)
case("chunk-extension-several", post_chunked(b"5;a;b=c;d=e\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), END)
case(
    "chunk-extension-bws",
    post_chunked(b"5 ; a = b\t;\tc\r\nhello\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    body(b"hello"),
    END,
)
case(
    "chunk-extension-quoted",
    post_chunked(b'5;a="x \\" ; y\\\\"\r\nhello\r\n0\r\n\r\n'),
    CHUNKED_REQ,
    body(b"hello"),
    END,
)
case("chunk-extension-on-last-chunk", post_chunked(b"5\r\nhello\r\n0;x=y\r\n\r\n"), CHUNKED_REQ, body(b"hello"), END)
case("chunk-extension-empty", post_chunked(b"5;\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-extension-no-name", post_chunked(b"5;=b\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-extension-empty-value", post_chunked(b"5;a=\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-extension-missing-semicolon", post_chunked(b"5 a=b\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-extension-unterminated-quote", post_chunked(b'5;a="b\r\nhello\r\n0\r\n\r\n'), CHUNKED_REQ, error=400)
case("chunk-extension-quoted-nul", post_chunked(b'5;a="b\x00"\r\nhello\r\n0\r\n\r\n'), CHUNKED_REQ, error=400)
case("chunk-extension-quoted-pair-ctl", post_chunked(b'5;a="b\\\x01"\r\nhello\r\n0\r\n\r\n'), CHUNKED_REQ, error=400)
case("chunk-extension-trailing-space", post_chunked(b"5;a=b \r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-extension-bad-char", post_chunked(b"5;a=b@c\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case(
    "chunk-extension-bare-lf-smuggle",
    post_chunked(b"2;a=b\nxx\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    error=400,
)
case("chunk-size-17-digits", post_chunked(b"00000000000000005\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-above-int64", post_chunked(b"ffffffffffffffff\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-overflow-wraps-to-small", post_chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-0x-prefix", post_chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-negative", post_chunked(b"-5\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-plus", post_chunked(b"+5\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-leading-space", post_chunked(b" 5\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-trailing-space", post_chunked(b"5 \r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-underscore", post_chunked(b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-empty", post_chunked(b"\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-not-hex", post_chunked(b"g\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-bare-lf", post_chunked(b"5\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-size-bare-cr", post_chunked(b"5\rhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("chunk-data-too-long", post_chunked(b"5\r\nhelloXX\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), error=400)
case("chunk-data-lf-only", post_chunked(b"5\r\nhello\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), error=400)
case("chunk-data-cr-only", post_chunked(b"5\r\nhello\r0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), error=400)
case("chunk-data-too-short", post_chunked(b"5\r\nhell\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hell\r"), error=400)
case(
    "chunked-trailers",
    post_chunked(b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:  v \r\n\r\n"),
    CHUNKED_REQ,
    body(b"hello"),
    end((b"x-checksum", b"abc"), (b"x-other", b"v")),
)
case(
    "chunked-trailers-kept-apart-then-next-request",
    post_chunked(b"0\r\nContent-Length: 9\r\n\r\n") + get(),
    CHUNKED_REQ,
    end((b"content-length", b"9")),
    req(),
    END,
)
case("trailer-obs-fold", post_chunked(b"0\r\nX-A: b\r\n c\r\n\r\n"), CHUNKED_REQ, error=400)
case("trailer-bare-lf", post_chunked(b"0\r\nX-A: b\n\r\n"), CHUNKED_REQ, error=400)
case("trailer-invalid-name", post_chunked(b"0\r\nX A: b\r\n\r\n"), CHUNKED_REQ, error=400)
case("trailer-nul-value", post_chunked(b"0\r\nX-A: \x00\r\n\r\n"), CHUNKED_REQ, error=400)
case("last-chunk-missing-final-crlf-garbage", post_chunked(b"0\r\nGET / HTTP/1.1\r\n\r\n"), CHUNKED_REQ, error=400)

# --- RFC 9110 sections 10.1.1 and 7.8: Expect and Upgrade -------------------------

case(
    "expect-100-continue",
    post_cl(b"2", b"hi", b"Expect: 100-continue\r\n"),
    req(b"POST", b"/form", (HOST, (b"content-length", b"2"), (b"expect", b"100-continue")), content_length=2, expect_continue=True),
    body(b"hi"),
    END,
)
case(
    "expect-100-continue-case-insensitive",
    get(b"Expect: 100-Continue\r\n"),
    req(headers=(HOST, (b"expect", b"100-Continue")), expect_continue=True),
    END,
)
case(
    "expect-ignored-on-http10",
    b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    req(b"POST", headers=((b"expect", b"100-continue"), (b"content-length", b"1")), version="1.0", content_length=1),
    body(b"x"),
    END,
)
case(
    "expect-other-value-ignored",
    get(b"Expect: 200-ok\r\n"),
    req(headers=(HOST, (b"expect", b"200-ok"))),
    END,
)
case(
    "upgrade-websocket-pauses",
    get(b"Connection: Upgrade\r\nUpgrade: websocket\r\n", target=b"/chat") + b"\x81\x85frame",
    req(
        target=b"/chat",
        headers=(HOST, (b"connection", b"Upgrade"), (b"upgrade", b"websocket")),
        upgrade=b"websocket",
    ),
    END,
)
case(
    "upgrade-h2c",
    get(b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"),
    req(
        headers=(
            HOST,
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", b"AAMAAABkAAQCAAAAAAIAAAAA"),
        ),
        upgrade=b"h2c",
    ),
    END,
)
case(
    "upgrade-without-connection-token-ignored",
    get(b"Upgrade: websocket\r\n") + get(),
    req(headers=(HOST, (b"upgrade", b"websocket"))),
    END,
    req(),
    END,
)
case(
    "upgrade-empty-value-is-no-upgrade",
    get(b"Connection: upgrade\r\nUpgrade:\r\n") + get(),
    req(headers=(HOST, (b"connection", b"upgrade"), (b"upgrade", b""))),
    END,
    req(),
    END,
)
case(
    "upgrade-two-fields-combined",
    get(b"Connection: upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n"),
    req(
        headers=(HOST, (b"connection", b"upgrade"), (b"upgrade", b"websocket"), (b"upgrade", b"h2c")),
        upgrade=b"websocket, h2c",
    ),
    END,
)
case(
    "upgrade-on-http10-ignored",
    b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    req(headers=((b"connection", b"upgrade"), (b"upgrade", b"websocket")), version="1.0", keep_alive=False),
    END,
)

# --- smuggling reports (payloads as published) ------------------------------------

# gunicorn CVE-2024-1135: conflicting Transfer-Encoding fields were not validated.
case(
    "gunicorn-cve-2024-1135-te-conflict",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
    b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    error=400,
)
# gunicorn CVE-2024-6827: TE value not validated, falling back to Content-Length.
case(
    "gunicorn-cve-2024-6827-te-cl-fallback",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 47\r\nTransfer-Encoding: ,chunked\r\n\r\n"
    b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: example.com\r\n\r\n",
    error=400,
)
# waitress CVE-2019-16785: LF-only line endings were accepted.
case(
    "waitress-cve-2019-16785-lf-only",
    b"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 33\n\nGET /admin HTTP/1.1\r\n\r\n",
    error=400,
)
# waitress CVE-2019-16786: an unsupported coding before chunked was accepted.
case("waitress-cve-2019-16786-gzip-chunked", te(b"gzip, chunked", b"5\r\nhello\r\n0\r\n\r\n"), error=501)
# waitress CVE-2019-16789: whitespace handling in header names/values.
case("waitress-cve-2019-16789-vt-in-te", te(b"\x0bchunked", b""), error=400)
# waitress CVE-2022-24761: int() accepted "+"/"0x"-style sizes and lengths.
case("waitress-cve-2022-24761-chunk-size-0x", post_chunked(b"0x0\r\n\r\n"), CHUNKED_REQ, error=400)
case("waitress-cve-2022-24761-cl-plus", post_cl(b"+0"), error=400)
# h11 CVE-2025-43859: any two bytes after chunk data were taken as CRLF.
case(
    "h11-cve-2025-43859-chunk-crlf",
    post_chunked(b"5\r\nhelloXX0\r\n\r\n"),
    CHUNKED_REQ,
    body(b"hello"),
    error=400,
)
# llhttp CVE-2022-32214 / CVE-2023-30589: CR without LF as a line delimiter.
case(
    "llhttp-cve-2023-30589-bare-cr",
    b"GET / HTTP/1.1\r\nHost: example.com\rContent-Length: 5\r\n\r\nhello",
    error=400,
)
# llhttp CVE-2022-32215: multi-line Transfer-Encoding.
case(
    "llhttp-cve-2022-32215-multiline-te",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n , identity\r\n\r\n0\r\n\r\n",
    error=400,
)
# llhttp CVE-2022-35256: header line ending in CR + garbage.
case(
    "llhttp-cve-2022-35256-cr-garbage",
    b"GET / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\rX\r\n\r\n",
    error=400,
)
# Node CVE-2024-27982 (llhttp): a space before the first header name.
case(
    "llhttp-cve-2024-27982-leading-space",
    b"POST / HTTP/1.1\r\n Content-Length: 5\r\nHost: example.com\r\n\r\nhello",
    error=400,
)
# llhttp CVE-2020-8287: duplicate Transfer-Encoding hiding a second coding.
case(
    "llhttp-cve-2020-8287-te-duplicate",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: eee\r\n\r\n0\r\n\r\n",
    error=400,
)
# aiohttp CVE-2023-47627 / CVE-2024-23829: lenient "chunked" matching and
# non-ASCII digits in Content-Length.
case("aiohttp-cve-2023-47627-chunked-substring", te(b"chunked123"), error=400)
case("aiohttp-cve-2024-23829-nonascii-cl", post_cl("\u0661\u0660".encode(), b"x" * 10), error=400)
# aiohttp CVE-2024-52304: newline inside a chunk extension.
case(
    "aiohttp-cve-2024-52304-ext-newline",
    post_chunked(b"1;a=\nX\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    error=400,
)
# aiohttp CVE-2025-53643: trailer section not parsed by the pure-Python parser.
case(
    "aiohttp-cve-2025-53643-trailer-smuggle",
    post_chunked(b"0\r\nX-Smuggled: 1\nGET /admin HTTP/1.1\r\n\r\n"),
    CHUNKED_REQ,
    error=400,
)

# --- limits, each at its boundary and one past it -----------------------------------


def request_line_of(size):
    filler = size - len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * filler + b" HTTP/1.1"


line = request_line_of(limits.MAX_REQUEST_LINE)
case(
    "limit-request-line-at-max",
    line + b"\r\nHost: example.com\r\n\r\n",
    req(target=line[4:-9]),
    END,
)
case(
    "limit-request-line-over-414",
    request_line_of(limits.MAX_REQUEST_LINE + 1) + b"\r\nHost: example.com\r\n\r\n",
    error=414,
)
case("limit-request-line-incomplete-over-414", request_line_of(limits.MAX_REQUEST_LINE + 2), error=414)
case(
    "limit-request-line-custom",
    b"GET /abcdef HTTP/1.1\r\nHost: example.com\r\n\r\n",
    error=414,
    max_request_line=19,
)
case(
    "limit-request-line-custom-at-max",
    b"GET /abcdef HTTP/1.1\r\nHost: example.com\r\n\r\n",
    req(target=b"/abcdef"),
    END,
    max_request_line=20,
)

value = b"v" * (limits.MAX_FIELD_SIZE - len(b"X-Long: "))
case("limit-field-at-max", get(b"X-Long: " + value + b"\r\n"), req(headers=(HOST, (b"x-long", value))), END)
case("limit-field-over-431", get(b"X-Long: " + value + b"v\r\n"), error=431)
case("limit-field-incomplete-over-431", b"GET / HTTP/1.1\r\nX-Long: " + value + b"vv", error=431)
case("limit-field-custom", get(b"X-A: 123456789012345\r\n"), error=431, max_field_size=19)
case(
    "limit-field-custom-at-max",
    get(b"X-A: 12345678901234\r\n"),
    req(headers=(HOST, (b"x-a", b"12345678901234"))),
    END,
    max_field_size=19,
)


def section_of(size):
    """Header lines (Host first) making a header section of exactly ``size``
    bytes, counting each line's CRLF and the final empty line."""
    lines = [b"Host: example.com"]
    remaining = size - (len(lines[0]) + 2) - 2
    n = 0
    while remaining:
        take = min(remaining, limits.MAX_FIELD_SIZE + 2)
        if 0 < remaining - take < 16:  # leave room for a last line
            take -= 16
        name = b"X-%03d: " % n
        lines.append(name + b"s" * (take - 2 - len(name)))
        remaining -= take
        n += 1
    section = b"\r\n".join(lines) + b"\r\n\r\n"
    assert len(section) == size
    return section, [(h.split(b":")[0].lower(), h.split(b": ", 1)[1]) for h in lines]


section, fields = section_of(limits.MAX_HEADER_SIZE)
case("limit-section-at-max", b"GET / HTTP/1.1\r\n" + section, req(headers=fields), END)
section, fields = section_of(limits.MAX_HEADER_SIZE + 1)
case("limit-section-over-431", b"GET / HTTP/1.1\r\n" + section, error=431)
section, fields = section_of(limits.MAX_HEADER_SIZE + 8)
case("limit-section-incomplete-over-431", b"GET / HTTP/1.1\r\n" + section[:-4], error=431)

many = [(b"x-%d" % i, b"v") for i in range(limits.MAX_FIELDS - 1)]
case(
    "limit-field-count-at-max",
    get(b"".join(b"%s: %s\r\n" % h for h in many)),
    req(headers=(HOST, *many)),
    END,
)
case(
    "limit-field-count-over-431",
    get(b"".join(b"%s: %s\r\n" % h for h in many) + b"X-Last: v\r\n"),
    error=431,
)
case("limit-field-count-custom", get(b"A: 1\r\nB: 2\r\n"), error=431, max_fields=2)

ext = b";" + b"e" * (limits.MAX_CHUNK_EXTENSIONS - 1)
case("limit-chunk-ext-at-max", post_chunked(b"5" + ext + b"\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, body(b"hello"), END)
case("limit-chunk-ext-over-400", post_chunked(b"5" + ext + b"e\r\nhello\r\n0\r\n\r\n"), CHUNKED_REQ, error=400)
case("limit-chunk-ext-incomplete-over-400", post_chunked(b"5" + ext * 2), CHUNKED_REQ, error=400)
case(
    "limit-chunk-ext-custom",
    post_chunked(b"5;abcd\r\nhello\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    error=400,
    max_chunk_extensions=4,
)

case("limit-body-cl-at-max", post_cl(b"10", b"0123456789"), cl_req(10), body(b"0123456789"), END, max_body_size=10)
case("limit-body-cl-over-413", post_cl(b"11", b"0123456789A"), error=413, max_body_size=10)
case(
    "limit-body-chunked-at-max",
    post_chunked(b"6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    body(b"0123456789"),
    END,
    max_body_size=10,
)
case(
    "limit-body-chunked-total-over-413",
    post_chunked(b"6\r\n012345\r\n5\r\n6789A\r\n0\r\n\r\n"),
    CHUNKED_REQ,
    body(b"012345"),
    error=413,
    max_body_size=10,
)
case(
    "limit-body-per-request-not-per-connection",
    post_cl(b"10", b"0123456789") + post_cl(b"10", b"0123456789"),
    cl_req(10),
    body(b"0123456789"),
    END,
    cl_req(10),
    body(b"0123456789"),
    END,
    max_body_size=10,
)
case("limit-body-zero-refuses-any", post_cl(b"1", b"x"), error=413, max_body_size=0)

trailers = [(b"t-%d" % i, b"v") for i in range(limits.MAX_FIELDS)]
case(
    "limit-trailer-count-at-max",
    post_chunked(b"0\r\n" + b"".join(b"%s: %s\r\n" % t for t in trailers) + b"\r\n"),
    CHUNKED_REQ,
    end(*trailers),
)
case(
    "limit-trailer-count-over-431",
    post_chunked(b"0\r\n" + b"".join(b"%s: %s\r\n" % t for t in trailers) + b"T-X: v\r\n\r\n"),
    CHUNKED_REQ,
    error=431,
)
case(
    "limit-trailer-field-over-431",
    post_chunked(b"0\r\nX-Long: " + value + b"v\r\n\r\n"),
    CHUNKED_REQ,
    error=431,
)


# --- running a case ------------------------------------------------------------------


def normalise(impl, events):
    """Events as comparable data; adjacent body pieces merged."""
    out = []
    for event in events:
        if isinstance(event, impl.Request):
            head = {name: getattr(event, name) for name in req()[1]}
            for name, value in head["headers"]:
                assert type(name) is bytes and type(value) is bytes
            head["headers"] = [tuple(h) for h in head["headers"]]
            out.append(("request", head))
        elif isinstance(event, bytes):
            assert event, "empty body pieces are never emitted"
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + event)
            else:
                out.append(("body", event))
        elif isinstance(event, impl.EndOfMessage):
            for name, value in event.trailers:
                assert type(name) is bytes and type(value) is bytes
            out.append(("end", [tuple(t) for t in event.trailers]))
        else:
            raise AssertionError(f"unexpected event {event!r}")
    return out


def splits(data, how):
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(f"{how}:{len(data)}")
    cuts = sorted(rng.choices(range(len(data) + 1), k=rng.randint(1, 12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


PROBE = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def feed_all(impl, pieces, parser_limits):
    """Feed ``pieces``; return (normalised events, error status or None)."""
    parser = impl.RequestParser(**parser_limits)
    events = []
    for piece in pieces:
        try:
            events.extend(parser.feed(piece))
        except ProtocolError as exc:
            events.extend(exc.events)
            # After an error the parser refuses any further input.
            with pytest.raises(ProtocolError) as again:
                parser.feed(PROBE)
            assert again.value.status == exc.status
            return normalise(impl, events), exc.status
    return normalise(impl, events), None


SPLITS = ["whole", "bytewise", "random-1", "random-2", "random-3"]


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize("data, expected, error, parser_limits", CASES)
def test_corpus(impl, data, expected, error, parser_limits, how):
    events, status = feed_all(impl, splits(data, how), parser_limits)
    assert status == error
    assert events == expected


def test_corpus_size():
    assert len(CASES) >= 120
    names = [c.id for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"


# --- parser life cycle ----------------------------------------------------------------


def test_error_is_sticky(impl):
    parser = impl.RequestParser()
    with pytest.raises(ProtocolError) as first:
        parser.feed(b"GET / HTTP/1.1\nHost: a\n\n")
    assert first.value.status == 400
    for data in (PROBE, b"", b"\r\n"):
        with pytest.raises(ProtocolError) as again:
            parser.feed(data)
        assert type(again.value) is type(first.value)
        assert again.value.status == 400


def test_error_events_hold_what_the_call_completed(impl):
    parser = impl.RequestParser()
    assert normalise(impl, parser.feed(get(target=b"/1"))) == [req(target=b"/1"), END]
    with pytest.raises(ProtocolError) as exc:
        parser.feed(get(target=b"/2") + b"BAD\r\n\r\n")
    assert normalise(impl, exc.value.events) == [req(target=b"/2"), END]
    assert exc.value.status == 400


def test_bytes_after_close_are_ignored(impl):
    parser = impl.RequestParser()
    events = parser.feed(get(b"Connection: close\r\n"))
    assert events[0].keep_alive is False
    assert parser.feed(get()) == []
    assert parser.feed(b"\x00garbage that would be an error\n") == []
    assert not parser.idle and not parser.in_head


def test_http10_ends_after_one_request(impl):
    parser = impl.RequestParser()
    assert len(parser.feed(b"GET / HTTP/1.0\r\n\r\n")) == 2
    assert parser.feed(b"GET / HTTP/1.0\r\n\r\n") == []


UPGRADE = get(b"Connection: upgrade\r\nUpgrade: websocket\r\n")


def test_upgrade_take_buffer(impl):
    parser = impl.RequestParser()
    events = parser.feed(UPGRADE + b"\x81\x02hi")
    assert [type(e) for e in events] == [impl.Request, type(impl.END)]
    assert events[0].upgrade == b"websocket"
    assert parser.paused
    assert parser.feed(b"\x81\x03") == []
    assert parser.feed(b"abc") == []
    assert parser.take_buffer() == b"\x81\x02hi\x81\x03abc"
    assert not parser.paused
    # HTTP parsing is over: later bytes belong to the new protocol.
    assert parser.feed(PROBE) == []
    assert parser.take_buffer() == b""


def test_upgrade_resume_parses_held_bytes(impl):
    parser = impl.RequestParser()
    events = parser.feed(UPGRADE + get(target=b"/held"))
    assert len(events) == 2 and parser.paused
    assert parser.feed(get(target=b"/later")) == []
    resumed = normalise(impl, parser.resume())
    assert resumed == [req(target=b"/held"), END, req(target=b"/later"), END]
    assert not parser.paused
    assert parser.idle
    assert normalise(impl, parser.feed(get(target=b"/3"))) == [req(target=b"/3"), END]


def test_upgrade_resume_errors_surface(impl):
    parser = impl.RequestParser()
    parser.feed(UPGRADE + b"\x81\x02hi\r\n")
    with pytest.raises(ProtocolError) as exc:
        parser.resume()
    assert exc.value.status == 400
    with pytest.raises(ProtocolError):
        parser.feed(PROBE)


def test_upgrade_resume_honours_connection_close(impl):
    # RFC 9112 9.6: a declined upgrade of a "close" request still closes.
    parser = impl.RequestParser()
    events = parser.feed(get(b"Connection: upgrade, close\r\nUpgrade: websocket\r\n") + get(target=b"/held"))
    assert events[0].upgrade == b"websocket" and events[0].keep_alive is False
    assert parser.resume() == []
    assert parser.feed(get()) == []


def test_resume_without_pause_is_a_no_op(impl):
    parser = impl.RequestParser()
    assert parser.resume() == []
    assert parser.idle


def test_upgrade_with_body_pauses_after_body(impl):
    parser = impl.RequestParser()
    head = get(b"Connection: upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n")
    events = parser.feed(head + b"ab")
    assert not parser.paused and len(events) == 2
    events = parser.feed(b"cNEXT")
    assert events[0] == b"c" and isinstance(events[1], impl.EndOfMessage)
    assert parser.paused
    assert parser.take_buffer() == b"NEXT"


def test_idle_and_in_head(impl):
    parser = impl.RequestParser()
    assert parser.idle and not parser.in_head
    parser.feed(b"\r\n")
    assert not parser.idle and parser.in_head
    parser.feed(b"GET / HTTP/1.1\r\nHost")
    assert not parser.idle and parser.in_head
    parser.feed(b": example.com\r\n\r\n")
    assert parser.idle and not parser.in_head
    parser.feed(post_cl(b"4", b"ab"))
    assert not parser.idle and not parser.in_head  # inside a body
    parser.feed(b"cd")
    assert parser.idle and not parser.in_head
    parser.feed(post_chunked(b"2\r\nab\r\n"))
    assert not parser.idle and not parser.in_head
    parser.feed(b"0\r\nX-T: 1\r\n")  # trailers are not the head
    assert not parser.idle and not parser.in_head
    parser.feed(b"\r\nG")
    assert not parser.idle and parser.in_head


def test_limits_are_per_parser(impl):
    strict = impl.RequestParser(max_request_line=10)
    default = impl.RequestParser()
    assert len(default.feed(get(target=b"/long-enough"))) == 2
    with pytest.raises(ProtocolError) as exc:
        strict.feed(get(target=b"/long-enough"))
    assert exc.value.status == 414


def test_large_body_streams_in_pieces(impl):
    size = 10 * 1024 * 1024
    piece = b"x" * 65536
    parser = impl.RequestParser()
    events = parser.feed(post_cl(str(size).encode()))
    assert events[0].content_length == size and len(events) == 1
    received = 0
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(size // len(piece)):
            out = parser.feed(piece)
            for event in out:
                if isinstance(event, bytes):
                    assert 0 < len(event) <= len(piece)
                    received += len(event)
                else:
                    assert isinstance(event, impl.EndOfMessage)
            del out
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert received == size
    assert parser.idle
    # Nothing is buffered whole: at most a few pieces are alive at once.
    assert peak < 8 * len(piece), peak


def test_large_chunked_body_streams_in_pieces(impl):
    chunk = b"y" * 1_000_000
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    stream = POST_CHUNKED + framed * 10 + b"0\r\n\r\n"
    parser = impl.RequestParser()
    received = 0
    largest = 0
    step = 65536
    ended = False
    for i in range(0, len(stream), step):
        for event in parser.feed(stream[i : i + step]):
            if isinstance(event, bytes):
                largest = max(largest, len(event))
                received += len(event)
            elif isinstance(event, impl.EndOfMessage):
                ended = True
    assert ended and received == 10 * len(chunk)
    assert largest <= step
