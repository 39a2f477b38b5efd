"""The WSGI environ builder (fastbase.environ), compiled and twin, on a corpus
of request heads: each case lists the variables it must produce."""

from __future__ import annotations

import pytest

BASE = {
    "SCRIPT_NAME": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "wsgi.url_scheme": "http",
}
BODY = object()

CASES = [
    pytest.param(
        b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "",
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/a/b",
            "QUERY_STRING": "x=1&y=%20",
            "RAW_URI": "/a/b?x=1&y=%20",
            "REQUEST_URI": "/a/b?x=1&y=%20",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "example.com",
        },
        [],
        id="plain",
    ),
    pytest.param(
        b"GET /caf%C3%A9/a%2Fb HTTP/1.0\r\n\r\n",
        "",
        # PEP 3333: the decoded bytes as latin-1 code points; %2F decodes too.
        {
            "PATH_INFO": "/café/a/b".encode().decode("latin-1"),
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.0",
        },
        [],
        id="percent-decoded-path",
    ),
    pytest.param(
        b"GET /app/x HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"PATH_INFO": "/x"},
        [],
        id="root-path-stripped",
    ),
    pytest.param(
        b"GET /app HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"PATH_INFO": ""},
        [],
        id="root-path-whole",
    ),
    pytest.param(
        b"GET /application HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"PATH_INFO": "/application"},
        [],
        id="root-path-prefix-only",
    ),
    pytest.param(
        b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"PATH_INFO": "/other"},
        [],
        id="root-path-absent",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nX-Multi: b\r\nx-multi: c\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
        "",
        {"HTTP_X_MULTI": "a,b,c", "HTTP_COOKIE": "a=1; b=2"},
        [],
        id="repeated-fields-joined",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: h\r\nX_Spoof: 1\r\nX-Spoof: 2\r\n\r\n",
        "",
        {"HTTP_X_SPOOF": "2"},  # the underscore spelling is dropped, the dash one kept
        ["HTTP_X_SPOOF_", "HTTP_X__SPOOF"],
        id="underscore-name-dropped",
    ),
    pytest.param(
        b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n",
        "",
        {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3"},
        ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"],
        id="content-fields-unprefixed",
    ),
    pytest.param(
        b"GET http://real.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
        "",
        {
            "HTTP_HOST": "real.example",
            "PATH_INFO": "/p",
            "QUERY_STRING": "q",
            "RAW_URI": "http://real.example/p?q",
        },
        [],
        id="absolute-form-host-wins",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "",
        {"REQUEST_METHOD": "POST"},
        ["HTTP_TRANSFER_ENCODING", "CONTENT_LENGTH"],
        id="chunked-framing-hidden",
    ),
    pytest.param(
        b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "",
        {"REQUEST_METHOD": "OPTIONS", "RAW_URI": "*", "HTTP_HOST": "h"},
        [],
        id="asterisk",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\n\r\n",
        "",
        {"HTTP_X_LATIN": "caf\xe9"},
        [],
        id="obs-text-as-latin-1",
    ),
    pytest.param(
        b"PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n",
        "",
        {"REQUEST_METHOD": "PURGE"},
        [],
        id="extension-method",
    ),
]


def head(parser_module, data):
    events = parser_module.RequestParser().feed(data)
    return events[0]


@pytest.mark.parametrize("data, root_path, expected, absent", CASES)
def test_environ_corpus(environ_impl, data, root_path, expected, absent):
    module, parser_module = environ_impl
    base = dict(BASE)
    environ = module.wsgi_environ(base, head(parser_module, data), root_path, BODY)
    assert base == BASE  # the connection's variables are copied, never changed
    assert environ["wsgi.input"] is BODY
    for key, value in BASE.items():
        assert environ[key] == value
    for key, value in expected.items():
        assert environ[key] == value, key
    for key in absent:
        assert key not in environ
    # Nothing beyond the base, the request's variables and its fields.
    request_keys = {
        "REQUEST_METHOD",
        "PATH_INFO",
        "QUERY_STRING",
        "RAW_URI",
        "REQUEST_URI",
        "SERVER_PROTOCOL",
        "wsgi.input",
    }
    extra = set(environ) - set(BASE) - request_keys
    assert all(
        key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        for key in extra
    )
    assert all(
        type(value) is str for key, value in environ.items() if key != "wsgi.input"
    )


def test_twins_agree_beyond_the_name_cache(environ_impl):
    """More distinct names than the caches hold: each is still converted
    (the uncached path), in the same way by both builders."""
    module, parser_module = environ_impl
    count = module.MAX_CACHED_NAMES + 200
    for start in range(0, count, 50):
        fields = b"".join(
            b"X-Name-%d: v%d\r\n" % (i, i) for i in range(start, start + 50)
        )
        methods = b"M%d" % start
        environ = module.wsgi_environ(
            {},
            head(
                parser_module,
                methods + b" / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n",
            ),
            "",
            None,
        )
        assert environ["REQUEST_METHOD"] == "M%d" % start
        for i in range(start, start + 50):
            assert environ["HTTP_X_NAME_%d" % i] == "v%d" % i


def test_twin_caches_stay_bounded():
    """Header names and methods are the client's choice: the twin's caches
    (whose sizes can be looked at) stop growing at their bound."""
    from fastbase import _environ_py, _parser_py

    for i in range(_environ_py.MAX_CACHED_NAMES + 10):
        request = head(
            _parser_py, b"M%d / HTTP/1.1\r\nHost: h\r\nX-Bound-%d: 1\r\n\r\n" % (i, i)
        )
        environ = _environ_py.wsgi_environ({}, request, "", None)
        assert environ["HTTP_X_BOUND_%d" % i] == "1"
    assert len(_environ_py._header_keys) <= _environ_py.MAX_CACHED_NAMES
    assert len(_environ_py._methods) <= _environ_py.MAX_CACHED_NAMES
