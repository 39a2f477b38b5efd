"""Fuzz the request parser: arbitrary bytes at arbitrary splits into both
implementations, which must agree and never raise anything but ProtocolError.

    python fuzz/fuzz_parser.py -runs=100000
    python fuzz/fuzz_parser.py -max_total_time=600

Uses atheris (coverage-guided libFuzzer) when it is importable and a
hypothesis-driven loop otherwise; both understand ``-runs=N`` and
``-max_total_time=SECONDS``. See fuzz/README.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastbase.http.errors import ProtocolError  # noqa: E402

# Small limits make every limit path reachable from short inputs.
SMALL_LIMITS = dict(
    max_request_line=64,
    max_field_size=48,
    max_header_size=200,
    max_fields=6,
    max_chunk_extensions=12,
    max_body_size=64,
)


def load_impls():
    impls = [("py", importlib.import_module("fastbase.http._parser_py"))]
    if os.environ.get("FASTBASE_NO_EXTENSIONS") != "1":
        try:
            impls.insert(0, ("c", importlib.import_module("fastbase.http._parser")))
        except ImportError as exc:
            if os.environ.get("FASTBASE_REQUIRE_EXTENSIONS") == "1":
                raise
            print(f"warning: compiled parser not importable ({exc}); fuzzing the twin alone", file=sys.stderr)
    return impls


IMPLS = load_impls()


def normalise(impl, events):
    out = []
    for event in events:
        if isinstance(event, impl.Request):
            out.append(
                (
                    "request",
                    event.method,
                    event.target,
                    event.path,
                    event.query,
                    event.http_version,
                    [tuple(h) for h in event.headers],
                    event.host,
                    event.keep_alive,
                    event.chunked,
                    event.content_length,
                    event.expect_continue,
                    event.upgrade,
                )
            )
        elif isinstance(event, bytes):
            if not event:
                raise AssertionError("empty body piece")
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + event)
            else:
                out.append(("body", event))
        elif isinstance(event, impl.EndOfMessage):
            out.append(("end", [tuple(t) for t in event.trailers]))
        else:
            raise AssertionError(f"unexpected event {event!r}")
    return out


def run(impl, chunks, parser_limits, decline_upgrades):
    """(events, status, paused-buffer); only ProtocolError may escape feed().

    With ``decline_upgrades`` every pause is answered with resume(), so the
    held bytes are parsed as HTTP/1.1 again."""
    parser = impl.RequestParser(**parser_limits)
    events = []
    for chunk in chunks:
        try:
            events.extend(parser.feed(chunk))
            while decline_upgrades and parser.paused:
                events.extend(parser.resume())
        except ProtocolError as exc:
            events.extend(exc.events)
            try:
                parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            except ProtocolError as again:
                if again.status != exc.status:
                    raise AssertionError("the repeated error has another status") from None
            else:
                raise AssertionError("the parser accepted input after an error")
            return normalise(impl, events), exc.status, None
    held = parser.take_buffer() if parser.paused else None
    return normalise(impl, events), None, held


def check(data: bytes) -> None:
    """The property: ``data[0]`` picks limits, splits and whether upgrades
    are declined; the rest is fed."""
    if not data:
        return
    control, payload = data[0], data[1:]
    parser_limits = SMALL_LIMITS if control & 1 else {}
    rng = random.Random(data[:4])
    cuts = sorted(rng.randrange(len(payload) + 1) for _ in range(control >> 4))
    bounds = [0, *cuts, len(payload)]
    split = [payload[a:b] for a, b in zip(bounds, bounds[1:])]
    ways = [[payload], split]
    if control & 2 and len(payload) <= 2048:
        ways.append([payload[i : i + 1] for i in range(len(payload))])
    results = {}
    for name, impl in IMPLS:
        for i, chunks in enumerate(ways):
            results[f"{name}/{['whole', 'split', 'bytewise'][i]}"] = run(impl, chunks, parser_limits, control & 4)
    first_name, first = next(iter(results.items()))
    for name, result in results.items():
        if result != first:
            raise AssertionError(
                f"{name} disagrees with {first_name} on {payload!r} (limits={parser_limits or 'default'}):\n"
                f"  {first_name}: {first!r}\n  {name}: {result!r}"
            )


# --- seeds -----------------------------------------------------------------------------

BUILTIN_SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a="b"\r\nhello\r\n0\r\nT: 1\r\n\r\n',
    b"GET http://a:80/p?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /c HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    b"OPTIONS * HTTP/1.1\r\nHost: [::1]:8000\r\nExpect: 100-continue\r\n\r\n",
]


def load_seeds():
    """The parser corpus's inputs, plus a few built-in ones."""
    seeds = list(BUILTIN_SEEDS)
    path = ROOT / "tests" / "test_parser_corpus.py"
    try:
        spec = importlib.util.spec_from_file_location("_fastbase_corpus", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        seeds += [case.values[0] for case in module.CASES if len(case.values[0]) <= 4096]
    except Exception as exc:  # noqa: BLE001 - the corpus is a bonus, not a requirement
        print(f"warning: corpus seeds unavailable ({exc})", file=sys.stderr)
    return seeds


# --- drivers -----------------------------------------------------------------------------


def parse_flags(argv):
    runs, seconds, base = None, None, None
    for arg in argv:
        name, _, value = arg.lstrip("-").partition("=")
        if name == "runs":
            runs = int(value)
        elif name in ("max_total_time", "duration"):
            seconds = float(value)
        elif name == "seed":
            base = int(value)
        else:
            raise SystemExit(f"unknown flag {arg!r}; use -runs=N, -max_total_time=S, -seed=N")
    if runs is None and seconds is None:
        runs = 10_000
    if base is None:
        base = int.from_bytes(os.urandom(4), "big")
    return runs, seconds, base


def fuzz_with_atheris(atheris):
    seed_dir = ROOT / "fuzz" / "seeds"
    if not seed_dir.exists():
        seed_dir.mkdir()
        for i, seed in enumerate(load_seeds()):
            (seed_dir / f"seed-{i:04d}").write_bytes(b"\x31" + seed)
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(str(seed_dir))
    atheris.instrument_all()
    atheris.Setup(argv, check)
    atheris.Fuzz()


def fuzz_with_hypothesis(runs, seconds, base):
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st

    seeds = load_seeds()
    interesting = [
        b"\r",
        b"\n",
        b"\r\n",
        b"\x00",
        b" ",
        b"\t",
        b":",
        b";",
        b"=",
        b'"',
        b"\\",
        b"0",
        b"f",
        b"\x80",
        b"\xff",
        b",",
        b"chunked",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"HTTP/1.0",
        b"\r\n\r\n",
        b"ffffffffffffffff",
        b"Connection: close\r\n",
    ]

    @st.composite
    def inputs(draw):
        control = draw(st.integers(0, 255))
        if draw(st.integers(0, 9)) == 0:
            return bytes([control]) + draw(st.binary(max_size=512))
        data = bytearray(draw(st.sampled_from(seeds)))
        if draw(st.integers(0, 7)) == 0:
            data += draw(st.sampled_from(seeds))  # splice: pipelines of corpus cases
        for _ in range(draw(st.integers(0, 6))):
            at = draw(st.integers(0, len(data)))
            op = draw(st.integers(0, 4))
            if op == 0:
                data[at:at] = draw(st.sampled_from(interesting))
            elif op == 1:
                del data[at : at + draw(st.integers(1, 8))]
            elif op == 2 and at < len(data):
                data[at] = draw(st.integers(0, 255))
            elif op == 3:
                data[at:at] = data[at : at + draw(st.integers(1, 32))]
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
        return bytes([control]) + bytes(data)

    print(f"hypothesis fuzzing, -seed={base} (rerun with it to repeat this session)", file=sys.stderr)
    done = 0
    started = time.monotonic()
    batch = 500
    round_no = 0

    while True:
        if runs is not None and done >= runs:
            break
        if seconds is not None and time.monotonic() - started >= seconds:
            break
        size = batch if runs is None else min(batch, runs - done)

        @seed(base + round_no)
        @settings(max_examples=size, deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck))
        @given(inputs())
        def one_batch(data):
            check(data)

        one_batch()
        done += size
        round_no += 1
        elapsed = time.monotonic() - started
        print(f"#{done} inputs, {elapsed:.0f}s, impls={[n for n, _ in IMPLS]}", file=sys.stderr)
    print(f"done: {done} inputs without a disagreement or crash", file=sys.stderr)


def main():
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is not None and "--hypothesis" not in sys.argv:
        fuzz_with_atheris(atheris)
    else:
        fuzz_with_hypothesis(*parse_flags(a for a in sys.argv[1:] if a != "--hypothesis"))


if __name__ == "__main__":
    main()
