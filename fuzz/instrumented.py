"""What every harness shares: the instrumented build on the import path, the
sanitizer runtime preloaded, and the libFuzzer driver.

A harness calls ``modules(...)`` for the compiled modules it fuzzes and then
``main(name, test_one)``. Running a harness

- re-executes Python once with atheris's ASan+UBSan+libFuzzer runtime in
  ``LD_PRELOAD`` (the extensions are instrumented, the interpreter is not, so
  the runtime must be in the process before either loads) and
  ``PYTHONMALLOC=malloc`` (pymalloc's arenas would hide an overread of a
  small bytes object from ASan: each object needs its own redzones);
- takes the compiled modules from ``fuzz/build/asan/fastbase/`` only, by
  putting that directory first on ``fastbase.__path__`` and checking each
  module's ``__file__`` (never the normal in-place build);
- runs libFuzzer on ``fuzz/build/corpus/<name>/`` (where new inputs go)
  seeded from ``fuzz/corpus/<name>/`` (kept in the repository), with crash
  files under ``fuzz/build/findings/<name>/`` unless ``-artifact_prefix=``
  says otherwise.

Flags of our own (the rest go to libFuzzer):

    --diff            differential mode: compiled and twin side by side
    --replay PATH...  run the inputs in these files/directories once, no
                      fuzzing (used for coverage; any build)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
KIND = os.environ.get("FASTBASE_FUZZ_BUILD", "asan")  # "asan", "cov", or a copy of "asan"
BUILD = FUZZ / "build" / KIND / "fastbase"

ARGS = [a for a in sys.argv[1:]]
DIFF = "--diff" in ARGS
REPLAY = "--replay" in ARGS


def _preload():
    """Re-exec once with the sanitizer runtime loaded first."""
    if KIND.startswith("cov") or os.environ.get("_FASTBASE_FUZZ_CHILD") == "1":
        return
    import atheris

    runtime = os.path.join(atheris.path(), "asan_with_fuzzer.so")
    env = dict(os.environ)
    env["_FASTBASE_FUZZ_CHILD"] = "1"
    env["LD_PRELOAD"] = runtime + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    env.setdefault("PYTHONMALLOC", "malloc")
    # Python never frees what lives until exit; a leak report would be noise.
    # allocator_may_return_null: a huge bytes() is a MemoryError, not a crash.
    env["ASAN_OPTIONS"] = ":".join(
        filter(None, ["detect_leaks=0", "allocator_may_return_null=1", "abort_on_error=0", env.get("ASAN_OPTIONS")])
    )
    env["UBSAN_OPTIONS"] = ":".join(filter(None, ["halt_on_error=1", "print_stacktrace=1", env.get("UBSAN_OPTIONS")]))
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def modules(*names):
    """The instrumented ``fastbase.<name>`` modules, or exit saying how to build them."""
    if not BUILD.is_dir():
        raise SystemExit(f"no instrumented build in {BUILD}: run python fuzz/build.py" + (" --coverage" if KIND.startswith("cov") else ""))
    _preload()
    sys.path.insert(0, str(ROOT))
    import fastbase  # noqa: F401  (the package itself, from this checkout)

    import importlib.machinery
    import importlib.util

    loaded = []
    # "http._parser" is fastbase/http/_parser.pyx, built into BUILD/http/. It is
    # loaded from there by file before anything imports its package: a
    # package's __init__ may import its compiled module at once (environ's
    # selector does), which would then be the normal build's.
    for name in names:
        full = f"fastbase.{name}"
        folder = BUILD.joinpath(*name.split(".")[:-1])
        module = sys.modules.get(full)
        if module is None:
            leaf = name.rpartition(".")[2]
            paths = [folder / (leaf + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]
            path = next((p for p in paths if p.is_file()), None)
            if path is None:
                raise SystemExit(f"no instrumented {full} in {folder}: run python fuzz/build.py")
            spec = importlib.util.spec_from_file_location(full, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
        if Path(module.__file__).parent != folder:
            raise SystemExit(f"{full} came from {module.__file__}, not from {folder}")
        loaded.append(module)
    # (fastbase's subpackages, imported from here on, find these in sys.modules.)
    return loaded


def twin(name):
    return __import__(f"fastbase.{name}", fromlist=["_"])


def _replay(test_one, paths):
    files = []
    for path in map(Path, paths):
        files += sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    done = 0
    for file in files:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            continue  # a running fuzzer replaced it with a smaller one
        test_one(data)
        done += 1
    print(f"replayed {done} inputs", file=sys.stderr)


def main(name, test_one, max_len=4096):
    """Fuzz ``test_one`` with libFuzzer (or replay inputs with ``--replay``)."""
    rest = [a for a in ARGS if a not in ("--diff", "--replay")]
    if REPLAY:
        _replay(test_one, rest)
        return
    import atheris

    seeds = FUZZ / "corpus" / name
    work = FUZZ / "build" / "corpus" / name
    work.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0]]
    if not any(a.startswith("-artifact_prefix=") for a in rest):
        findings = FUZZ / "build" / "findings" / name
        findings.mkdir(parents=True, exist_ok=True)
        argv.append(f"-artifact_prefix={findings}/")
    if not any(a.startswith("-max_len=") for a in rest):
        argv.append(f"-max_len={max_len}")
    if not any(a.startswith("-rss_limit_mb=") for a in rest):
        # ASan's quarantine and the in-memory corpus grow over an hour.
        argv.append("-rss_limit_mb=4096")
    positional = [a for a in rest if not a.startswith("-")]
    argv += rest
    if not positional:
        argv += [str(work), str(seeds)]
    mode = "differential (compiled vs twin)" if DIFF else "compiled only"
    print(f"fuzzing {name}: {mode}, modules from {BUILD}", file=sys.stderr, flush=True)
    atheris.Setup(argv, test_one)
    atheris.Fuzz()
