"""Run pytest with the instrumented modules (fuzz/build/asan/) under ASan +
UBSan: the project's own tests as a second, hand-written fuzzer.

    python fuzz/asan_pytest.py tests/test_parser_corpus.py tests/test_writer.py ...

Same runtime set-up as the harnesses (fuzz/instrumented.py: the sanitizer
runtime preloaded, PYTHONMALLOC=malloc, leaks not reported); the compiled
modules come from fuzz/build/asan/fastbase/ only, and the run fails if any
of them came from elsewhere. FASTBASE_REQUIRE_EXTENSIONS=1 is set so a
missing module fails instead of falling back to a twin.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instrumented  # noqa: E402

os.environ["FASTBASE_REQUIRE_EXTENSIONS"] = "1"
instrumented.modules("http._parser", "websocket._frames", "environ._environ", "_tally")

import pytest  # noqa: E402

# --capture=sys: pytest's default fd capture points fd 2 at a temp file while
# a test runs, and a sanitizer report written there dies with the process.
sys.exit(pytest.main(["-p", "no:cacheprovider", "--capture=sys", *sys.argv[1:]]))
