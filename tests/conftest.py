import importlib
import os

import pytest


def _compiled_or_twin(name, compiled, twin, what):
    """The twin module for "py"; else the compiled one, skipped only under
    FASTBASE_NO_EXTENSIONS=1: without that opt-out a compiled module that does
    not import is a failure, never a skip (a silently missing extension must
    not pass the suite)."""
    if name == "py":
        return importlib.import_module(twin)
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip(f"compiled {what} disabled by FASTBASE_NO_EXTENSIONS=1")
    return importlib.import_module(compiled)


def _load(name):
    return _compiled_or_twin(name, "fastbase.http._parser", "fastbase.http._parser_py", "parser")


@pytest.fixture(params=["c", "py"])
def impl(request):
    """Each parser/writer test runs against the compiled module and its twin."""
    return _load(request.param)


@pytest.fixture(params=["c", "py"])
def ws_impl(request):
    """Each WebSocket frame test runs against the compiled module and its twin."""
    return _compiled_or_twin(request.param, "fastbase.websocket._frames", "fastbase.websocket._frames_py", "WebSocket frames")


@pytest.fixture(params=["c", "py"])
def environ_impl(request):
    """(environ builder, parser module): the compiled pair and the twins (the
    compiled builder takes the compiled parser's requests)."""
    builder = _compiled_or_twin(request.param, "fastbase.environ._environ", "fastbase.environ._environ_py", "environ builder")
    return builder, _load(request.param)


@pytest.fixture(params=["c", "py"])
def tally_impl(request):
    """Each --metrics tally test runs against the compiled module and its twin."""
    return _compiled_or_twin(request.param, "fastbase._tally", "fastbase._tally_py", "metrics tally")


# --- the slow path ---------------------------------------------------------------
#
# The server's hot paths carry fast-path copies of slower, general code (each
# marked "fast-path copy of X; keep in step", its original "inlined in Y for
# speed"; ARCHITECTURE.md lists them). `pytest --slow-path` runs the suites
# with the originals in their place, so a copy and its original cannot drift
# apart unnoticed: .ci/run runs the server suites once more that way.


def pytest_addoption(parser):
    parser.addoption(
        "--slow-path",
        action="store_true",
        help="serve through the originals of the server's fast-path copies (ServerState.plain false, ...)",
    )


def pytest_configure(config):
    if config.getoption("slow_path", False):
        _use_slow_path()


def _use_slow_path():
    """Replace each fast path by its original, for the whole test process."""
    from fastbase import protocol
    from fastbase.asgi import cycle as asgi_cycle
    from fastbase.wsgi import cycle as wsgi_cycle

    # Each name replaced below must exist: a rename must not leave the
    # fast path in place unnoticed.
    for owner, name in [
        (protocol.ServerState, "__init__"),
        (protocol.HttpProtocol, "respond"),
        (wsgi_cycle, "encode_response"),
        (asgi_cycle, "encode_response"),
        (wsgi_cycle.WSGICycle, "_deliver_whole"),
    ]:
        assert hasattr(owner, name), f"--slow-path: {owner.__name__}.{name} is gone; update tests/conftest.py"

    # HttpProtocol.data_received: with ServerState.plain false a request starts
    # by _start_request, then the cycle's on_end + start() (not start(True)).
    init = protocol.ServerState.__init__

    def slow_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.plain = False

    protocol.ServerState.__init__ = slow_init

    # The bridges' one-write responses: without encode_response's one piece,
    # WSGICycle._run frames the body with _encode_head and ASGICycle.send with
    # _head + _send_body + _complete.
    def no_one_write(*args):
        return None

    wsgi_cycle.encode_response = no_one_write
    asgi_cycle.encode_response = no_one_write

    # WSGICycle._deliver_whole and HttpProtocol.respond by their originals.
    def deliver_whole(self, data, keep_alive):
        self._deliver(data, True, keep_alive)

    wsgi_cycle.WSGICycle._deliver_whole = deliver_whole

    def respond(self, data, keep_alive):
        self.write(data)
        self.finish(keep_alive)

    protocol.HttpProtocol.respond = respond
