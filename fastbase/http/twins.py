"""Choosing between a compiled module and its pure-Python twin.

``FASTBASE_NO_EXTENSIONS=1`` forces the twin; otherwise the compiled module
is used when it imports, and ``FASTBASE_REQUIRE_EXTENSIONS=1`` turns its
absence into the ImportError instead of a silent fallback.

Each selector names its two modules in full (``fastbase.http._parser``), so a
module left behind at an older path (an in-place ``fastbase/_parser*.so``
from a build of an earlier layout) is never what gets imported.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Tuple


def load(compiled: str, twin: str) -> Tuple[ModuleType, str]:
    """``(module, "c")`` for the compiled module ``compiled`` or
    ``(module, "py")`` for its twin ``twin`` (both absolute module names)."""
    if os.environ.get("FASTBASE_NO_EXTENSIONS") != "1":
        try:
            return importlib.import_module(compiled), "c"
        except ImportError:
            if os.environ.get("FASTBASE_REQUIRE_EXTENSIONS") == "1":
                raise
    return importlib.import_module(twin), "py"
