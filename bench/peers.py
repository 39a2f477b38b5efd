"""One adapter per parser: ``make(name)`` returns ``parse(data) -> requests``.

Each adapter does what a server does with that parser for one read from a
keep-alive connection: parse every request in ``data`` and deliver each head
with its headers as a Python list of (name, value) pairs. Parsers that keep
per-connection state (fastbase, httptools) are created once per connection and
reused, as servers do; h11 and http.server get a fresh object per read (h11
cannot take a second request before the first is answered, so for pipelined
input it answers each one with a minimal response).
"""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler

from fastbase.http import _parser_py

try:
    from fastbase.http import _parser as _parser_c
except ImportError:  # pragma: no cover - the extension is not built
    _parser_c = None

try:
    import httptools
except ImportError:  # pragma: no cover
    httptools = None

try:
    import h11
except ImportError:  # pragma: no cover
    h11 = None


def _fastbase(module):
    # What a server calls per read: feed() already returns the heads (headers
    # as a list), body pieces and ends of message, so no wrapper is needed.
    return module.RequestParser().feed


class _HttptoolsProtocol:
    """Collects what httptools reports, the way uvicorn's protocol does."""

    __slots__ = ("parser", "url", "headers", "body", "requests")

    def __init__(self):
        self.requests = []
        self.url = b""
        self.headers = []
        self.body = []

    def on_message_begin(self):
        self.url = b""
        self.headers = []
        self.body = []

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers.append((name.lower(), value))

    def on_headers_complete(self):
        parser = self.parser
        self.requests.append((parser.get_method(), self.url, parser.get_http_version(), self.headers, parser.should_keep_alive()))

    def on_body(self, body):
        self.body.append(body)

    def on_message_complete(self):
        pass


def _httptools():
    protocol = _HttptoolsProtocol()
    parser = httptools.HttpRequestParser(protocol)
    protocol.parser = parser
    feed = parser.feed_data

    def parse(data):
        protocol.requests = []
        feed(data)
        return protocol.requests

    return parse


def _h11():
    NEED_DATA = h11.NEED_DATA
    PAUSED = h11.PAUSED
    Request = h11.Request
    EndOfMessage = h11.EndOfMessage
    answer = h11.Response(status_code=204, headers=[])

    def parse(data):
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(data)
        requests = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return requests
            if event is PAUSED:
                conn.send(answer)
                conn.send(EndOfMessage())
                conn.start_next_cycle()
                continue
            if type(event) is Request:
                requests.append((event.method, event.target, event.http_version, list(event.headers)))

    return parse


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # pragma: no cover - never logs on valid input
        pass


def _http_server():
    def parse(data):
        rfile = io.BytesIO(data)
        requests = []
        while True:
            handler = _Handler.__new__(_Handler)
            handler.rfile = rfile
            handler.raw_requestline = rfile.readline(65537)
            if not handler.raw_requestline:
                return requests
            if not handler.parse_request():  # pragma: no cover - inputs are valid
                raise ValueError("http.server refused the request")
            requests.append((handler.command, handler.path, handler.request_version, handler.headers.items()))
            length = handler.headers.get("Content-Length")
            if length:
                rfile.read(int(length))
            elif handler.headers.get("Transfer-Encoding"):
                # http.server does not decode chunked bodies: the app must.
                return requests

    return parse


PEERS = {
    "fastbase_c": lambda: _fastbase(_parser_c),
    "fastbase_py": lambda: _fastbase(_parser_py),
    "httptools": _httptools,
    "h11": _h11,
    "http_server": _http_server,
}


def available(name):
    return {
        "fastbase_c": _parser_c is not None,
        "httptools": httptools is not None,
        "h11": h11 is not None,
    }.get(name, True)


def make(name):
    return PEERS[name]()
