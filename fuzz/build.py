"""Build fastbase's compiled modules instrumented for fuzzing, into
``fuzz/build/`` (ignored by git), never next to the sources.

    python fuzz/build.py              # ASan + UBSan + libFuzzer coverage -> fuzz/build/asan/
    python fuzz/build.py --coverage   # source-based line coverage        -> fuzz/build/cov/
    python fuzz/build.py --setup      # only install clang and atheris

Run it with the venv's python: it installs what is missing (clang, llvm and
the compiler-rt runtimes from Debian with apt-get; Cython and atheris into the
running interpreter with pip), cythonizes the .pyx files with the same
directives as setup.py into ``fuzz/build/c/`` and compiles each with clang.

The instrumented ``.so`` files live in ``fuzz/build/<kind>/fastbase/``; the
harnesses load them from there explicitly (``fuzz/instrumented.py``), so they
cannot shadow the normal in-place build nor end up in a wheel.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "fuzz" / "build"
MODULES = ["http/_parser", "websocket/_frames", "environ/_environ", "_tally"]

# The same directives as setup.py: the fuzzer must see the code that ships.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "embedsignature": True,
}

FLAGS = {
    # -O1 keeps ASan reports precise and runs at about half the speed of -O2.
    "asan": [
        "-O1",
        "-g",
        "-fno-omit-frame-pointer",
        "-fsanitize=address,undefined,fuzzer-no-link",
        "-fno-sanitize-recover=all",
        # Cython's argument parsing computes NULL + 0 (no positional
        # arguments) on every call: UB by the letter, harmless, and it would
        # stop every run at once. An out-of-bounds pointer that is used is
        # ASan's to catch.
        "-fno-sanitize=pointer-overflow",
    ],
    "cov": ["-O0", "-g", "-fprofile-instr-generate", "-fcoverage-mapping"],
}


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


def clang_version():
    try:
        out = subprocess.run(["clang", "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"clang version (\d+)", out)
    return int(match.group(1)) if match else None


def resource_dir():
    return Path(subprocess.run(["clang", "-print-resource-dir"], capture_output=True, text=True, check=True).stdout.strip())


def setup_tools():
    """clang + llvm + compiler-rt from Debian, Cython + atheris from PyPI."""
    if clang_version() is None or shutil.which("llvm-cov") is None or shutil.which("llvm-profdata") is None:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "clang", "llvm"])
    version = clang_version()
    if version is None:
        raise SystemExit("clang is still missing after apt-get install clang")
    # The sanitizers' ignore lists (and runtimes) come in libclang-rt-N-dev;
    # clang refuses -fsanitize=address without asan_ignorelist.txt.
    if not (resource_dir() / "share" / "asan_ignorelist.txt").exists():
        run(["apt-get", "install", "-y", "-qq", f"libclang-rt-{version}-dev"])
    missing = [name for name in ("Cython", "atheris") if importlib.util.find_spec(name) is None]
    if missing:
        run([sys.executable, "-m", "pip", "install", "-q", "Cython>=3.0", "atheris>=2.3"])


def build(kind):
    from Cython.Build import cythonize

    out_dir = BUILD / kind / "fastbase"
    c_dir = BUILD / "c"
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [f"fastbase/{name}.pyx" for name in MODULES]
    # cythonize resolves "cimport fastbase.http._parser" from the repository root.
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        # #line directives (emit_linenums): sanitizer reports name .pyx
        # lines, and fuzz/pyx_coverage.py maps llvm-cov's C lines back.
        cythonize(
            sources, build_dir=str(c_dir.relative_to(ROOT)), compiler_directives=DIRECTIVES, quiet=True, emit_linenums=True, force=True
        )
    finally:
        os.chdir(cwd)
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in MODULES:
        c_file = c_dir / "fastbase" / f"{name}.c"
        target = out_dir / f"{name}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        run(["clang", "-shared", "-fPIC", *FLAGS[kind], f"-I{include}", "-DNDEBUG", str(c_file), "-o", str(target)])
    (BUILD / kind / "BUILT").write_text(f"clang {clang_version()} {' '.join(FLAGS[kind])}\n")
    print(f"built {', '.join(MODULES)} ({kind}) into {out_dir}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coverage", action="store_true", help="build for llvm-cov line coverage instead of ASan")
    ap.add_argument("--setup", action="store_true", help="only install clang, Cython and atheris")
    args = ap.parse_args()
    setup_tools()
    if not args.setup:
        build("cov" if args.coverage else "asan")


if __name__ == "__main__":
    main()
