"""Django over ASGI under load: fastbase.django.ASGIHandler against Django's
own handler, and against the same project's sync view over WSGI.

One project (bench/apps/djangodefault.py: startproject's middleware, SQLite,
a 13-byte sync view at ``/`` and an async one at ``/async``), served at once
by:

- fastbase, WSGI (the sync view: the speed Django users have today);
- fastbase, ASGI, fastbase.django.ASGIHandler;
- fastbase, ASGI, Django's ASGIHandler;
- uvicorn (httptools+uvloop), ASGI, Django's ASGIHandler (the usual deployment);
- uvicorn (httptools+uvloop), ASGI, fastbase.django.ASGIHandler.

Servers on one CPU, wrk on the other, runs interleaved round-robin; medians.

    python bench/django_asgi_load.py [--runs N] [--duration SECONDS] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run as bench  # noqa: E402

APP = "djangodefault"

TARGETS = [
    # (key, label, server, interface, handler)
    ("fastbase-wsgi", "fastbase, WSGI", "fastbase", "wsgi", "django"),
    ("fastbase-asgi-fastbase", "fastbase, ASGI, fastbase.django.ASGIHandler", "fastbase", "asgi", "fastbase"),
    ("fastbase-asgi-django", "fastbase, ASGI, Django's ASGIHandler", "fastbase", "asgi", "django"),
    ("uvicorn-asgi-django", "uvicorn (httptools+uvloop), Django's ASGIHandler", "uvicorn-httptools", "asgi", "django"),
    ("uvicorn-asgi-fastbase", "uvicorn (httptools+uvloop), fastbase.django.ASGIHandler", "uvicorn-httptools", "asgi", "fastbase"),
]
VIEWS = [("async", "/async"), ("sync", "/")]


def _usage(pid: int) -> tuple[float, int]:
    """The server's CPU seconds (user + system, all threads) and context
    switches (voluntary + involuntary, summed over its live threads), from
    /proc: steadier than req/s on a shared machine."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        switches += int(line.split()[1])
        except OSError:
            pass
    return cpu, switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=bench.positive(int), default=3, metavar="N", help="wrk runs per point (default: 3)")
    parser.add_argument("--duration", type=bench.positive(float), default=4.0, metavar="SECONDS", help="seconds per wrk run (default: 4)")
    parser.add_argument("--connections", type=bench.positive(int), default=64, metavar="N", help="wrk connections (default: 64)")
    parser.add_argument("--output", metavar="PATH", help="write the markdown report here too (default: stdout only)")
    args = parser.parse_args()
    args.client_pin = 0

    python = sys.executable
    log_dir = Path(tempfile.mkdtemp(prefix="fastbase-django-asgi-bench-"))
    started = time.time()
    load_start = os.getloadavg()
    servers = {}
    points = []
    try:
        for key, label, server, interface, handler in TARGETS:
            port = bench.free_port()
            launch = bench.SERVERS[server].launch(python, interface, f"{APP}:{interface}", port)
            launch.env["BENCH_DJANGO_HANDLER"] = handler
            process = bench.ServerProcess(launch, 1, log_dir, key)
            process.wait_ready(port, "/")
            servers[key] = (process, port)
            for view, path in VIEWS:
                if interface == "wsgi" and view == "async":
                    continue  # an async view under WSGI is a thread hop per request: not the comparison
                points.append((key, label, view, path))
        scenario = bench.Scenario("django", "", "asgi")
        results: dict = {(key, view): [] for key, _, view, _ in points}
        for key, _, _view, path in points:  # warm-up
            _, port = servers[key]
            bench.run_wrk(bench.wrk_command(args, scenario, port, args.connections, 2)[:-1] + [f"http://{bench.HOST}:{port}{path}"], 2)
        for _ in range(args.runs):
            for key, _, view, path in points:
                _, port = servers[key]
                argv = bench.wrk_command(args, scenario, port, args.connections, args.duration)[:-1] + [f"http://{bench.HOST}:{port}{path}"]
                pid = servers[key][0].proc.pid
                before = _usage(pid)
                result = bench.run_wrk(argv, args.duration)
                after = _usage(pid)
                requests = max(result["rps"] * args.duration, 1.0)
                result["cpu_us"] = (after[0] - before[0]) * 1e6 / requests
                result["switches"] = (after[1] - before[1]) / requests
                results[(key, view)].append(result)
    finally:
        for process, _ in servers.values():
            process.stop()
    load_end = os.getloadavg()

    def rps(key: str, view: str) -> float:
        return statistics.median(r["rps"] for r in results[(key, view)])

    lines = [
        f"# Django over ASGI: fastbase.django.ASGIHandler — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python bench/django_asgi_load.py --runs {args.runs} --duration {args.duration:g} "
        f"--connections {args.connections}` (took {time.time() - started:.0f} s).",
        "",
        f"- Load average (1/5/15 min) at start: {' / '.join(f'{v:.2f}' for v in load_start)}; "
        f"at end: {' / '.join(f'{v:.2f}' for v in load_end)} (the machine is shared).",
        "- Servers on CPU 1, wrk (`-t1 -c%d`) on CPU 0; all servers up at once, runs round-robin; medians. "
        "CPU µs/request: the server process's user+system time over the run ÷ requests; switches/request: "
        "its threads' context switches (voluntary + involuntary) ÷ requests." % args.connections,
        f"- Project: bench/apps/djangodefault.py, startproject's middleware; Python {sys.version.split()[0]}, "
        f"versions: {', '.join(f'{k} {v}' for k, v in bench.probe(python)['versions'].items() if k in ('fastbase', 'Django', 'uvicorn', 'uvloop', 'httptools'))}.",
        "",
        "| server, handler | view | req/s (median) | min – max | CPU µs/request | switches/request | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label, view, _ in points:
        runs = results[(key, view)]
        values = [r["rps"] for r in runs]
        errors = sum(r["errors"] for r in runs)
        p50 = statistics.median(r["p50_ms"] for r in runs)
        p99 = statistics.median(r["p99_ms"] or 0.0 for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        switches = statistics.median(r["switches"] for r in runs)
        lines.append(
            f"| {label} | {view} | {rps(key, view):,.0f} | {min(values):,.0f} – {max(values):,.0f} | "
            f"{cpu:,.0f} | {switches:.1f} | {p50:.2f} | {p99:.1f} | {errors} |"
        )
    ours_async = rps("fastbase-asgi-fastbase", "async")
    ours_sync = rps("fastbase-asgi-fastbase", "sync")
    uvicorn_async = rps("uvicorn-asgi-django", "async")
    uvicorn_sync = rps("uvicorn-asgi-django", "sync")
    wsgi = rps("fastbase-wsgi", "sync")

    def cpu_of(key: str, view: str) -> float:
        return statistics.median(r["cpu_us"] for r in results[(key, view)])

    lines += [
        "",
        "Targets (issue 17):",
        "",
        f"- async view, fastbase + its handler ÷ uvicorn + Django's handler: **{ours_async / uvicorn_async:.2f}×** (target ≥ 5×)",
        f"- async view over fastbase ASGI ÷ sync view over fastbase WSGI: **{ours_async / wsgi:.0%}** (target ≥ 50%); "
        f"by server CPU per request: **{cpu_of('fastbase-wsgi', 'sync') / cpu_of('fastbase-asgi-fastbase', 'async'):.0%}**",
        f"- sync view over ASGI, fastbase + its handler ÷ uvicorn + Django's handler: **{ours_sync / uvicorn_sync:.2f}×** (target ≥ 3×)",
        f"- the handler alone, under uvicorn: async {rps('uvicorn-asgi-fastbase', 'async') / uvicorn_async:.2f}×, "
        f"sync {rps('uvicorn-asgi-fastbase', 'sync') / uvicorn_sync:.2f}× Django's",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(args.output).write_text(report)


if __name__ == "__main__":
    main()
