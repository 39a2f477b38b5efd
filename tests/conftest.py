import importlib
import os

import pytest


def _load(name):
    if name == "py":
        return importlib.import_module("fastbase._parser_py")
    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip("compiled parser disabled by FASTBASE_NO_EXTENSIONS=1")
    # Without the opt-out, a compiled module that does not import is a failure,
    # never a skip: a silently missing extension must not pass the suite.
    return importlib.import_module("fastbase._parser")


@pytest.fixture(params=["c", "py"])
def impl(request):
    """Each parser/writer test runs against the compiled module and its twin."""
    return _load(request.param)
