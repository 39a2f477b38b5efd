"""Choosing between a compiled module and its pure-Python twin.

``FASTBASE_NO_EXTENSIONS=1`` forces the twin; otherwise the compiled module
is used when it imports, and ``FASTBASE_REQUIRE_EXTENSIONS=1`` turns its
absence into the ImportError instead of a silent fallback.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Tuple


def load(compiled: str, twin: str) -> Tuple[ModuleType, str]:
    """``(module, "c")`` for ``fastbase.<compiled>`` or ``(module, "py")``
    for ``fastbase.<twin>``."""
    if os.environ.get("FASTBASE_NO_EXTENSIONS") != "1":
        try:
            return importlib.import_module(f"fastbase.{compiled}"), "c"
        except ImportError:
            if os.environ.get("FASTBASE_REQUIRE_EXTENSIONS") == "1":
                raise
    return importlib.import_module(f"fastbase.{twin}"), "py"
