"""In-process cost of one request through a Django ASGI handler: no server,
no sockets, one event loop calling the handler with a GET and collecting the
response, sequentially.

Reports, per request: the median time over several rounds, how many thread
hops ran (``sync_to_async`` calls, and fastbase's own hops to the request's
thread, which do the same job without it; each is a trip to another thread
and back) and how many OS threads were started, for Django's own ``ASGIHandler`` and for
``fastbase.django.ASGIHandler``, with an async and a sync 13-byte view and
``startproject``'s middleware (bench/apps/djangodefault.py).

    python bench/django_asgi_inprocess.py [--requests N] [--rounds N] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))


def _scope(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Counters:
    def __init__(self) -> None:
        from asgiref.sync import SyncToAsync

        self.hops = 0
        self.own_hops = 0
        self.threads = 0
        original_call = SyncToAsync.__call__
        original_start = threading.Thread.start
        counters = self

        async def counted_call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            counters.hops += 1
            return await original_call(self, *args, **kwargs)

        def counted_start(self):  # type: ignore[no-untyped-def]
            counters.threads += 1
            return original_start(self)

        SyncToAsync.__call__ = counted_call  # type: ignore[method-assign]
        threading.Thread.start = counted_start  # type: ignore[method-assign]

        # fastbase's handler makes its own hops to the request's thread
        # without sync_to_async where it can (fastbase.django.handler._Hop):
        # each one queued on the thread counts too, awaited at once or, as
        # the closing after the response, later. (One that falls back to
        # sync_to_async is counted there.)
        from fastbase.django import handler

        original_hop = handler._Hop.start

        def counted_hop(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            started = original_hop(self, *args, **kwargs)
            if started is not None:
                counters.hops += 1
                counters.own_hops += 1
            return started

        handler._Hop.start = counted_hop  # type: ignore[method-assign]


async def _one(handler, scope: dict) -> int:  # type: ignore[no-untyped-def]
    sent = asyncio.Event()
    status = 0
    received = False

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await sent.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            sent.set()

    await handler(scope, receive, send)
    return status


async def _measure(handler, path: str, requests: int, counters: Counters) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    scope = _scope(path)
    for _ in range(50):  # warm caches, pools, URL resolver
        assert await _one(handler, dict(scope)) == 200
    hops, threads = counters.hops, counters.threads
    start = time.perf_counter()
    for _ in range(requests):
        await _one(handler, dict(scope))
    elapsed = time.perf_counter() - start
    return elapsed / requests * 1e6, (counters.hops - hops) / requests, (counters.threads - threads) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, metavar="N", help="requests per round (default: 2000)")
    parser.add_argument("--rounds", type=int, default=5, metavar="N", help="rounds; the median is reported (default: 5)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio", help="event loop (default: asyncio)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()

    os.environ.setdefault("BENCH_DJANGO_HANDLER", "fastbase")
    import djangodefault  # noqa: F401  (configures Django)
    from django.core.handlers.asgi import ASGIHandler as DjangoHandler

    from fastbase.django import ASGIHandler as FastbaseHandler

    counters = Counters()
    handlers = {"Django ASGIHandler": DjangoHandler(), "fastbase.django.ASGIHandler": FastbaseHandler()}
    cases = [(name, view, path) for name in handlers for view, path in (("async", "/async"), ("sync", "/"))]
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {(n, v): [] for n, v, _ in cases}

    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run

    async def run_all() -> None:
        for _ in range(args.rounds):  # interleaved, so drifting load hits all alike
            for name, view, path in cases:
                results[(name, view)].append(await _measure(handlers[name], path, args.requests, counters))

    runner(run_all())

    rows = []
    for name, view, _ in cases:
        runs = results[(name, view)]
        rows.append(
            (
                name,
                view,
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
                statistics.median(r[2] for r in runs),
            )
        )
    load = os.getloadavg()
    import django

    header = f"Django {django.get_version()}, Python {sys.version.split()[0]}, {args.loop} loop, {args.requests} requests x {args.rounds} rounds, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    if args.markdown:
        print(header)
        print()
        print("| handler | view | µs/request (median) | thread hops/request | threads started/request |")
        print("|---|---|---:|---:|---:|")
        for name, view, us, hops, threads in rows:
            print(f"| {name} | {view} | {us:,.0f} | {hops:.1f} | {threads:.2f} |")
    else:
        print(header)
        for name, view, us, hops, threads in rows:
            print(f"{name:30} {view:6} {us:8.0f} µs  {hops:5.1f} thread hops  {threads:5.2f} threads started")


if __name__ == "__main__":
    main()
