"""Fuzz the request parser (fastbase.http._parser, instrumented) with libFuzzer.

    python fuzz/build.py                                  # once: the instrumented build
    python fuzz/fuzz_parser.py -runs=100000 -seed=1       # compiled only, ASan+UBSan
    python fuzz/fuzz_parser.py --diff -max_total_time=600 # compiled vs twin

The first byte of each input is a control byte: bit 0 selects small limits
(so the 413/414/431 paths are reachable from short inputs), bit 1 feeds byte
by byte, bit 2 declines every Upgrade (``resume()``) instead of taking the
held bytes, bit 3 feeds memoryviews of a bytearray instead of bytes, the high
nibble is the number of random split points.

Compiled-only mode (the default) runs the compiled parser on the one way of
feeding the control byte picks, and checks that only ProtocolError escapes
and that a parser in error refuses more input with the same status.
``--diff`` runs the compiled parser and the twin on the whole input, the
split one and (bit 1) byte by byte, and fails unless all agree on the
events (request heads, body bytes, trailers), the error status and the bytes
held after an Upgrade. See fuzz/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instrumented  # noqa: E402

(C,) = instrumented.modules("http._parser")
from fastbase.http.errors import ProtocolError  # noqa: E402

IMPLS = [("c", C)]
if instrumented.DIFF:
    IMPLS.append(("py", instrumented.twin("http._parser_py")))

# Small limits make every limit path reachable from short inputs.
SMALL_LIMITS = dict(
    max_request_line=64,
    max_field_size=48,
    max_header_size=200,
    max_fields=6,
    max_chunk_extensions=12,
    max_body_size=64,
)
AGAIN = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


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


def run(impl, chunks, parser_limits, decline_upgrades, compare=True):
    """(events, status, paused-buffer, (idle, in_head, paused)); only
    ProtocolError may escape feed().

    With ``decline_upgrades`` every pause is answered with resume(), so the
    held bytes are parsed as HTTP/1.1 again. Without ``compare`` the events
    are not normalised: under ASan that Python work costs more than the
    parsing it would check."""
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
                parser.feed(AGAIN)
            except ProtocolError as again:
                if again.status != exc.status:
                    raise AssertionError("the repeated error has another status") from None
            else:
                raise AssertionError("the parser accepted input after an error")
            return (normalise(impl, events) if compare else None), exc.status, None, None
    # Where the input left the parser: the same after any way of feeding it.
    where = (parser.idle, parser.in_head, parser.paused)
    held = parser.take_buffer() if parser.paused else None
    return (normalise(impl, events) if compare else None), None, held, where


def ways(control, payload, every):
    """The chunkings to feed: all of them (``every``) or the one ``control`` picks.

    Only what is fed is built: in compiled-only mode the harness's own
    Python work per input must stay small next to the parser's."""
    n = len(payload)
    bytewise = control & 2 and n <= 1024
    source = memoryview(bytearray(payload)) if control & 8 else payload
    out = {}
    if every:
        out["whole"] = [payload]
    if bytewise:
        out["bytewise"] = [source[i : i + 1] for i in range(n)]
        if not every:
            return out
    # Cut points from a small LCG seeded by the control byte and the length
    # (random.Random would cost more than parsing a short input).
    cuts = []
    x = control * 7919 + n
    for _ in range(control >> 4):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        cuts.append(x % (n + 1))
    cuts.sort()
    bounds = [0, *cuts, n]
    out["split"] = [source[a:b] for a, b in zip(bounds, bounds[1:])]
    return out


def test_one(data: bytes) -> None:
    if not data:
        return
    control, payload = data[0], data[1:]
    parser_limits = SMALL_LIMITS if control & 1 else {}
    results = {}
    for name, impl in IMPLS:
        for way, chunks in ways(control, payload, instrumented.DIFF).items():
            results[f"{name}/{way}"] = run(impl, chunks, parser_limits, control & 4, instrumented.DIFF)
    first_name, first = next(iter(results.items()))
    for name, result in results.items():
        if result != first:
            raise AssertionError(
                f"{name} disagrees with {first_name} on {payload!r} (limits={parser_limits or 'default'}):\n"
                f"  {first_name}: {first!r}\n  {name}: {result!r}"
            )


if __name__ == "__main__":
    instrumented.main("parser", test_one, max_len=8192)
