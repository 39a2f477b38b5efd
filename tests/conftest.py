import importlib
import os

import pytest


def _load(name):
    if name == "py":
        return importlib.import_module("fastbase.http._parser_py")
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip("compiled parser disabled by FASTBASE_NO_EXTENSIONS=1")
    # Without the opt-out, a compiled module that does not import is a failure,
    # never a skip: a silently missing extension must not pass the suite.
    return importlib.import_module("fastbase.http._parser")


@pytest.fixture(params=["c", "py"])
def impl(request):
    """Each parser/writer test runs against the compiled module and its twin."""
    return _load(request.param)


def _load_websocket(name):
    if name == "py":
        return importlib.import_module("fastbase.websocket._frames_py")
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip("compiled WebSocket frames disabled by FASTBASE_NO_EXTENSIONS=1")
    # As for the parser: a compiled module that does not import fails the test.
    return importlib.import_module("fastbase.websocket._frames")


@pytest.fixture(params=["c", "py"])
def ws_impl(request):
    """Each WebSocket frame test runs against the compiled module and its twin."""
    return _load_websocket(request.param)


def _load_environ(name):
    if name == "py":
        return importlib.import_module("fastbase.environ._environ_py"), importlib.import_module("fastbase.http._parser_py")
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip("compiled environ builder disabled by FASTBASE_NO_EXTENSIONS=1")
    # The compiled builder takes the compiled parser's requests.
    return importlib.import_module("fastbase.environ._environ"), importlib.import_module("fastbase.http._parser")


@pytest.fixture(params=["c", "py"])
def environ_impl(request):
    """(environ builder, parser module): the compiled pair and the twins."""
    return _load_environ(request.param)
