"""The WSGI environ and ASGI scope builders (fastbase.environ), compiled and
twin, on corpora of request heads: each case lists what it must produce."""

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
    assert all(key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH") for key in extra)
    assert all(type(value) is str for key, value in environ.items() if key != "wsgi.input")


def test_twins_agree_beyond_the_name_cache(environ_impl):
    """More distinct names than the caches hold: each is still converted
    (the uncached path), in the same way by both builders."""
    module, parser_module = environ_impl
    count = module.MAX_CACHED_NAMES + 200
    for start in range(0, count, 50):
        fields = b"".join(b"X-Name-%d: v%d\r\n" % (i, i) for i in range(start, start + 50))
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
    from fastbase.environ import _environ_py
    from fastbase.http import _parser_py

    for i in range(_environ_py.MAX_CACHED_NAMES + 10):
        request = head(_parser_py, b"M%d / HTTP/1.1\r\nHost: h\r\nX-Bound-%d: 1\r\n\r\n" % (i, i))
        environ = _environ_py.wsgi_environ({}, request, "", None)
        assert environ["HTTP_X_BOUND_%d" % i] == "1"
    assert len(_environ_py._header_keys) <= _environ_py.MAX_CACHED_NAMES
    assert len(_environ_py._methods) <= _environ_py.MAX_CACHED_NAMES


# --- the ASGI HTTP scope ---------------------------------------------------------------

SCOPE_BASE = {
    "type": "http",
    "asgi": None,
    "http_version": None,
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "scheme": "http",
    "method": None,
    "root_path": "",
    "path": None,
    "raw_path": None,
    "query_string": None,
    "headers": None,
    "state": None,
    "extensions": None,
}

SCOPE_CASES = [
    pytest.param(
        b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
        "",
        {
            "http_version": "1.1",
            "method": "GET",
            "path": "/a/b",
            "raw_path": b"/a/b",
            "query_string": b"x=1&y=%20",
            "headers": [(b"host", b"example.com"), (b"x-a", b"1"), (b"x-a", b"2")],
        },
        id="plain",
    ),
    pytest.param(
        # ASGI: path is the percent-decoded bytes as UTF-8; raw_path stays as sent.
        b"POST /caf%C3%A9/a%2Fb HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        "",
        {"http_version": "1.0", "method": "POST", "path": "/caf\u00e9/a/b", "raw_path": b"/caf%C3%A9/a%2Fb"},
        id="percent-decoded-path",
    ),
    pytest.param(
        b"GET /caf\xc3\xa9/%FF HTTP/1.1\r\nHost: h\r\n\r\n",
        "",
        {"path": "/caf\u00e9/\ufffd", "raw_path": b"/caf\xc3\xa9/%FF"},
        id="invalid-utf8-replaced",
    ),
    pytest.param(
        b"GET /app/x HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"root_path": "/app", "path": "/app/x", "raw_path": b"/app/x"},
        id="root-path-already-there",
    ),
    pytest.param(
        b"GET /app HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"path": "/app", "raw_path": b"/app"},
        id="root-path-whole",
    ),
    pytest.param(
        # A proxy stripped the prefix: it is put back in path and raw_path.
        b"GET /x%20y HTTP/1.1\r\nHost: h\r\n\r\n",
        "/m\u00fcnt",
        {"root_path": "/m\u00fcnt", "path": "/m\u00fcnt/x y", "raw_path": "/m\u00fcnt".encode() + b"/x%20y"},
        id="root-path-put-back",
    ),
    pytest.param(
        b"GET /application HTTP/1.1\r\nHost: h\r\n\r\n",
        "/app",
        {"path": "/app/application", "raw_path": b"/app/application"},
        id="root-path-prefix-only",
    ),
    pytest.param(
        b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "",
        {"method": "OPTIONS", "path": "*", "raw_path": b"*", "query_string": b""},
        id="asterisk-form",
    ),
    pytest.param(
        b"PURGE /p HTTP/1.1\r\nHost: h\r\n\r\n",
        "",
        {"method": "PURGE"},
        id="extension-method",
    ),
]


@pytest.mark.parametrize("data, root_path, expected", SCOPE_CASES)
def test_scope_corpus(environ_impl, data, root_path, expected):
    module, parser_module = environ_impl
    base = dict(SCOPE_BASE, root_path=root_path)
    kept = dict(base)
    state = {"db": object()}
    request = head(parser_module, data)
    scope = module.http_scope(base, request, state)
    assert base == kept  # the connection's entries are copied, never changed
    assert list(scope) == list(SCOPE_BASE)  # every entry, in the base's order
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["server"], scope["client"], scope["scheme"]) == (
        SCOPE_BASE["server"],
        SCOPE_BASE["client"],
        SCOPE_BASE["scheme"],
    )
    for key, value in expected.items():
        assert scope[key] == value, key
    if request.target[:1] in (b"/", b"*"):
        assert scope["headers"] is request.headers  # (no copy on the common path)
    assert type(scope["path"]) is str and type(scope["raw_path"]) is bytes
    # The same rule gives a WebSocket scope its paths.
    assert module.scope_paths(request.path, root_path) == (scope["path"], scope["raw_path"])
    # The state is a shallow copy: the same values, its own dict.
    assert scope["state"] == state and scope["state"] is not state
    assert scope["extensions"] == {
        "http.response.trailers": {},
        "http.response.pathsend": {},
        "http.response.early_hint": {},
    }


def test_scopes_share_no_mutable_part(environ_impl):
    """What an app changes in its scope never reaches the next request's."""
    module, parser_module = environ_impl
    base = dict(SCOPE_BASE)
    request = head(parser_module, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    first = module.http_scope(base, request, {})
    first["asgi"]["version"] = "2.0"
    first["state"]["x"] = 1
    first["extensions"]["http.response.trailers"]["x"] = 1
    first["extensions"]["mine"] = {}
    first["path"] = "/changed"
    second = module.http_scope(base, request, {})
    assert second["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert second["state"] == {} and second["path"] == "/"
    assert second["extensions"] == {
        "http.response.trailers": {},
        "http.response.pathsend": {},
        "http.response.early_hint": {},
    }


# RFC 9112 3.2.2: an absolute-form target's authority replaces Host, in the
# ASGI scope's headers as in the WSGI environ's HTTP_HOST.
ABSOLUTE_FORM_CASES = [
    pytest.param(
        b"GET http://good.example/p?q HTTP/1.1\r\nHost: evil.example\r\nX-A: 1\r\n\r\n",
        [(b"host", b"good.example"), (b"x-a", b"1")],
        id="host-replaced",
    ),
    pytest.param(
        b"GET http://good.example/p HTTP/1.1\r\nX-A: 1\r\nHost: good.example\r\n\r\n",
        [(b"x-a", b"1"), (b"host", b"good.example")],
        id="host-already-the-authority-keeps-its-place",
    ),
    pytest.param(
        b"GET https://good.example:8443 HTTP/1.0\r\nX-A: 1\r\n\r\n",
        [(b"host", b"good.example:8443"), (b"x-a", b"1")],
        id="http10-without-host-gets-one",
    ),
]


@pytest.mark.parametrize("data, headers", ABSOLUTE_FORM_CASES)
def test_absolute_form_authority_is_the_scope_host(environ_impl, data, headers):
    module, parser_module = environ_impl
    request = head(parser_module, data)
    received = list(request.headers)
    scope = module.http_scope(dict(SCOPE_BASE), request, {})
    assert scope["headers"] == headers
    assert module.request_headers(request) == headers  # a WebSocket scope's
    assert request.headers == received  # the request itself is unchanged
    environ = module.wsgi_environ(dict(BASE), request, "", BODY)
    assert [value for name, value in headers if name == b"host"] == [environ["HTTP_HOST"].encode()]


def test_origin_form_scope_headers_are_the_request_headers(environ_impl):
    module, parser_module = environ_impl
    request = head(parser_module, b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n")
    assert module.request_headers(request) is request.headers


# --- bad arguments: both builders refuse them with TypeError ----------------------------
# (found by fuzz/: the compiled builder took None for the request and crashed
# the process, and read scope_paths(None, "") as empty bytes)

BAD_ARGUMENTS = [
    pytest.param(lambda m, r: m.wsgi_environ({}, None, "", None), id="wsgi-none-request"),
    pytest.param(lambda m, r: m.wsgi_environ({}, "GET /", "", None), id="wsgi-str-request"),
    pytest.param(lambda m, r: m.wsgi_environ(None, r, "", None), id="wsgi-none-base"),
    pytest.param(lambda m, r: m.wsgi_environ({}, r, b"/app", None), id="wsgi-bytes-root-path"),
    pytest.param(lambda m, r: m.http_scope(SCOPE_BASE, None, {}), id="scope-none-request"),
    pytest.param(lambda m, r: m.http_scope(None, r, {}), id="scope-none-base"),
    pytest.param(lambda m, r: m.http_scope(SCOPE_BASE, r, None), id="scope-none-state"),
    pytest.param(lambda m, r: m.http_scope(SCOPE_BASE, r, []), id="scope-list-state"),
    pytest.param(lambda m, r: m.http_scope(dict(SCOPE_BASE, root_path=b"/x"), r, {}), id="scope-bytes-root-path"),
    pytest.param(lambda m, r: m.scope_paths(None, ""), id="paths-none"),
    pytest.param(lambda m, r: m.scope_paths("/a", ""), id="paths-str"),
    pytest.param(lambda m, r: m.scope_paths(bytearray(b"/a"), ""), id="paths-bytearray"),
    pytest.param(lambda m, r: m.scope_paths(b"/a", b"/x"), id="paths-bytes-root-path"),
]


@pytest.mark.parametrize("call", BAD_ARGUMENTS)
def test_bad_arguments_refused_alike(environ_impl, call):
    module, parser_module = environ_impl
    request = head(parser_module, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(Exception) as info:
        call(module, request)
    assert type(info.value) is TypeError


def test_none_root_path_means_none(environ_impl):
    module, parser_module = environ_impl
    request = head(parser_module, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    assert module.wsgi_environ({}, request, None, None)["PATH_INFO"] == "/a"
    assert module.scope_paths(b"/a", None) == ("/a", b"/a")
