"""The package layout's rules, checked on the source.

- ``fastbase/http/`` and ``fastbase/websocket/`` are the sans-IO core: no
  asyncio, sockets, selectors or threads, and nothing from outside their own
  folder (the WebSocket core may use the HTTP core: its handshake is an
  HTTP/1.1 exchange). Checked on every module's imports, including the
  .pyx/.pxd files' import and cimport lines.
- A module left at a path of the old flat layout (an in-place
  ``fastbase/_parser*.so`` from an earlier ``pip install -e``) is never what
  the new paths import.
"""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastbase

# The sources beside these tests (with the .pyx files) when there are; the
# installed package is what gets copied and imported.
INSTALLED = Path(fastbase.__file__).resolve().parent
SOURCE = Path(__file__).resolve().parent.parent / "fastbase"
PACKAGE = SOURCE if SOURCE.is_dir() else INSTALLED

# The core does no I/O and runs no threads: these are the transport's.
FORBIDDEN = {"asyncio", "socket", "selectors", "select", "ssl", "threading", "concurrent", "multiprocessing", "uvloop"}
# Cython's own declaration packages (.pyx/.pxd cimports).
CYTHON = {"cython", "cpython", "libc", "libcpp", "posix"}
# What each core folder may import from fastbase besides itself.
ALLOWED = {"http": {"fastbase.http"}, "websocket": {"fastbase.websocket", "fastbase.http"}}


def python_imports(path: Path, package: str):
    """(line, absolute module name) for each import in a .py file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if path.name != "__init__.py" or node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base)
                module = f"{stem}.{node.module}" if node.module else stem
                if node.module is None:
                    # "from . import limits" imports the submodules by name.
                    for alias in node.names:
                        yield node.lineno, f"{module}.{alias.name}"
                    continue
                yield node.lineno, module
            else:
                yield node.lineno, node.module


_CYTHON_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\b|c?import\s+([\w.]+))")


def cython_imports(path: Path):
    """(line, module name) for each import/cimport line of a .pyx/.pxd file
    (absolute imports: Cython's relative cimports are not used here)."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = _CYTHON_IMPORT.match(line)
        if match:
            yield number, match.group(1) or match.group(2)


def core_files():
    for folder in ALLOWED:
        for path in sorted((PACKAGE / folder).iterdir()):
            if path.suffix in (".py", ".pyx", ".pxd", ".pyi"):
                yield folder, path


@pytest.mark.parametrize("folder,path", list(core_files()), ids=lambda v: v if isinstance(v, str) else v.name)
def test_the_sans_io_core_imports_nothing_from_outside(folder, path):
    package = f"fastbase.{folder}"
    if path.suffix in (".pyx", ".pxd"):
        imports = list(cython_imports(path))
    else:
        imports = list(python_imports(path, package))
    assert imports or path.name == "__init__.py" or path.suffix == ".pxd", f"no imports found in {path}: the parser of this test is wrong"
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for line, module in imports:
        top = module.split(".")[0]
        if top == "__future__":
            continue
        if top == "fastbase":
            if not any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED[folder]):
                bad.append(f"{path.name}:{line}: {module} (outside {', '.join(sorted(ALLOWED[folder]))})")
        elif top in FORBIDDEN:
            bad.append(f"{path.name}:{line}: {module} (I/O or threads)")
        elif top in CYTHON and path.suffix in (".pyx", ".pxd"):
            continue
        elif top not in stdlib:
            bad.append(f"{path.name}:{line}: {module} (not the standard library)")
    assert not bad, "the sans-IO core imports:\n" + "\n".join(bad)


def test_the_import_checker_sees_a_violation(tmp_path):
    """The checks above would catch a forbidden import (so their passing means something)."""
    py = tmp_path / "bad.py"
    py.write_text("import asyncio\nfrom ..protocol import HttpProtocol\nfrom . import limits\n")
    assert list(python_imports(py, "fastbase.http")) == [(1, "asyncio"), (2, "fastbase.protocol"), (3, "fastbase.http.limits")]
    pyx = tmp_path / "bad.pyx"
    pyx.write_text("from libc.string cimport memchr\nimport socket\nfrom fastbase.protocol import X\n    cimport cython\n")
    assert list(cython_imports(pyx)) == [(1, "libc.string"), (2, "socket"), (3, "fastbase.protocol"), (4, "cython")]


def test_the_core_loads_no_other_part_of_fastbase(tmp_path):
    """At run time too: importing the core's entry points loads fastbase's
    package module and the core, nothing else of fastbase (no transport, no
    bridge, no config)."""
    code = textwrap.dedent(
        """
        import sys
        import fastbase.http.parser, fastbase.websocket.frames, fastbase.websocket.handshake
        print(sorted(m for m in sys.modules if m.startswith("fastbase")))
        """
    )
    # From an empty directory: `python -c` puts the working directory first on
    # sys.path, and the checkout's fastbase/ has no compiled modules in CI.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    loaded = eval(out)
    outside = [m for m in loaded if m != "fastbase" and not m.startswith(("fastbase.http", "fastbase.websocket"))]
    assert not outside
    assert "fastbase.http.parser" in loaded and "fastbase.websocket.frames" in loaded


# Module names of the flat layout before fastbase/http/, fastbase/websocket/,
# fastbase/wsgi/, fastbase/asgi/ and fastbase/environ/ (compiled, twins, the
# rest). fastbase/parser.py is still there: a re-export of fastbase.http.parser.
OLD_COMPILED = {"_parser": "http/_parser", "_websocket": "websocket/_frames", "_environ": "environ/_environ"}
OLD_PYTHON = [
    "_parser_py",
    "_websocket_py",
    "_environ_py",
    "_select",
    "errors",
    "limits",
    "status",
    "threads",
    "websocket_frames",
    "websocket_deflate",
    "websocket_errors",
    "websocket_handshake",
    "websocket_limits",
]


def test_modules_left_at_old_layout_paths_are_never_imported(tmp_path):
    """A copy of the package with the old layout's modules planted beside the
    new one: real compiled modules (copies of the new ones, as an earlier
    in-place build would have left them) where they are built, and modules
    that fail loudly when imported everywhere else. Importing the parser,
    both bridges, the WebSocket layers, the server and the CLI, and parsing
    a request, imports none of them."""
    copy = tmp_path / "fastbase"
    shutil.copytree(INSTALLED, copy, ignore=shutil.ignore_patterns("__pycache__"))
    trap = "raise AssertionError('a module of the old layout was imported: ' + __name__)\n"
    planted = []
    for old, new in OLD_COMPILED.items():
        built = [p for suffix in importlib.machinery.EXTENSION_SUFFIXES for p in copy.glob(new + suffix)]
        if built:
            suffix = built[0].name[len(Path(new).name) :]
            shutil.copy2(built[0], copy / (old + suffix))
            planted.append(old + suffix)
        else:
            (copy / f"{old}.py").write_text(trap)
            planted.append(f"{old}.py")
    for old in OLD_PYTHON:
        assert not (SOURCE / f"{old}.py").exists(), f"fastbase/{old}.py is back: update this test's list"
        # (An installed package may hold it already, left by an install of
        # the old layout: it is a trap all the same.)
        (copy / f"{old}.py").write_text(trap)
    code = textwrap.dedent(
        """
        import json, sys
        import fastbase, fastbase.parser, fastbase.http.parser, fastbase.environ, fastbase.websocket.frames
        import fastbase.asgi, fastbase.asgi.websocket, fastbase.wsgi, fastbase.server, fastbase.cli, fastbase.tls
        events = fastbase.parser.RequestParser().feed(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        assert events[0].path == b"/"
        print(json.dumps({
            "package": fastbase.__file__,
            "modules": sorted(m for m in sys.modules if m.startswith("fastbase")),
            "impl": [m.IMPLEMENTATION for m in (fastbase.parser, fastbase.environ, fastbase.websocket.frames)],
            "files": [m._impl.__file__ for m in (fastbase.http.parser, fastbase.environ, fastbase.websocket.frames)],
        }))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["package"] == str(copy / "__init__.py"), "the test imported another copy of fastbase"
    old_names = {f"fastbase.{name}" for name in [*OLD_COMPILED, *OLD_PYTHON]}
    assert not old_names & set(info["modules"])
    expected_dirs = [copy / "http", copy / "environ", copy / "websocket"]
    assert [Path(f).parent for f in info["files"]] == expected_dirs
    if os.environ.get("FASTBASE_REQUIRE_EXTENSIONS") == "1":
        assert info["impl"] == ["c", "c", "c"]
        assert all(p.endswith((".so", ".pyd")) for p in planted[: len(OLD_COMPILED)]), planted


def test_fastbase_parser_is_the_http_parser_api():
    """``fastbase.parser`` (the path the README names) re-exports
    ``fastbase.http.parser``: the same objects, all of them."""
    import fastbase.http.parser
    import fastbase.parser

    assert fastbase.parser.__all__ == fastbase.http.parser.__all__
    for name in fastbase.http.parser.__all__:
        assert getattr(fastbase.parser, name) is getattr(fastbase.http.parser, name), name
    assert fastbase.parser.IMPLEMENTATION in ("c", "py")


ARCHITECTURE = SOURCE.parent / "ARCHITECTURE.md"


@pytest.mark.skipif(not ARCHITECTURE.is_file(), reason="run from an installed package, without the repository")
def test_the_architecture_map_names_every_module():
    """ARCHITECTURE.md's module map lists every file of the package by its
    path (modules, .pyx/.pxd/.pyi, py.typed), and no path that is gone."""
    text = ARCHITECTURE.read_text()
    named = set(re.findall(r"`(fastbase/[\w/.]+)`", text))
    kinds = (".py", ".pyx", ".pxd", ".pyi", "py.typed")
    files = {
        path.relative_to(SOURCE.parent).as_posix()
        for path in SOURCE.rglob("*")
        if path.is_file() and path.name.endswith(kinds) and "__pycache__" not in path.parts
    }
    assert sorted(files - named) == [], "modules missing from ARCHITECTURE.md's map"
    gone = sorted(p for p in named if not (SOURCE.parent / p).exists())
    assert gone == [], "ARCHITECTURE.md names paths that do not exist"
