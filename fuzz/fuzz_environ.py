"""Fuzz the WSGI environ / ASGI scope builder (fastbase.environ._environ,
instrumented) on requests the instrumented parser read from the input.

    python fuzz/fuzz_environ.py -runs=100000 -seed=1       # compiled only
    python fuzz/fuzz_environ.py --diff -max_total_time=600 # compiled vs twin

The first byte of each input is a control byte: its low two bits pick the
root_path ("", "/app", "/caf\\xe9", "/a%20b"), bit 2 declines upgrades
(resume()); the rest is fed to RequestParser. For every request head that
comes out, wsgi_environ, http_scope and scope_paths run; only
ProtocolError may escape the parser, and nothing may escape the builders.
``--diff`` runs the twin parser + twin builder too and requires the same
environ and scope (wsgi.input and the state dict compared by identity).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instrumented  # noqa: E402

PARSER, ENVIRON = instrumented.modules("http._parser", "environ._environ")
from fastbase.http.errors import ProtocolError  # noqa: E402

PAIRS = [(PARSER, ENVIRON)]
if instrumented.DIFF:
    PAIRS.append((instrumented.twin("http._parser_py"), instrumented.twin("environ._environ_py")))

ROOTS = ["", "/app", "/caf\xe9", "/a%20b"]
BASE = {"SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "wsgi.url_scheme": "http"}
BODY = object()
STATE = {"shared": object()}


def requests(parser_module, control, data):
    parser = parser_module.RequestParser()
    out = []
    try:
        out += parser.feed(data)
        while control & 4 and parser.paused:
            out += parser.resume()
    except ProtocolError as exc:
        out += exc.events
    return [e for e in out if isinstance(e, parser_module.Request)]


def build(pair, control, data):
    parser_module, environ_module = pair
    root = ROOTS[control & 3]
    scope_base = {"type": "http", "root_path": root, "scheme": "http", "server": ("127.0.0.1", 8000)}
    out = []
    for request in requests(parser_module, control, data):
        environ = environ_module.wsgi_environ(BASE, request, root, BODY)
        scope = environ_module.http_scope(scope_base, request, STATE)
        if environ["wsgi.input"] is not BODY or scope["state"] != STATE:
            raise AssertionError("wsgi.input or the state was not passed through")
        paths = environ_module.scope_paths(request.path, root)
        out.append((environ, {k: v for k, v in scope.items() if k != "state"}, paths))
    return out


def test_one(data: bytes) -> None:
    if not data:
        return
    results = [build(pair, data[0], data[1:]) for pair in PAIRS]
    if len(results) == 2 and results[0] != results[1]:
        raise AssertionError(f"the twins disagree on {data!r}:\n  c:  {results[0]!r}\n  py: {results[1]!r}")


if __name__ == "__main__":
    instrumented.main("environ", test_one, max_len=4096)
