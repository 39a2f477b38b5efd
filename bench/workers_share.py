#!/usr/bin/env python3
"""How ``fastbase --workers 2`` spreads connections and requests over its
workers under wrk: each worker's share, with one shared listening socket
(``FASTBASE_WORKER_REUSEPORT=0``, the old way) and with a SO_REUSEPORT socket
per worker slot, steered to by a BPF program (the default on Linux).

    python bench/workers_share.py                # 3 runs x 2 modes x 2 patterns, ~1.5 min
    python bench/workers_share.py --runs 5 --duration 5

Two connection patterns: ``keep-alive`` (wrk's 64 connections held for the
run: the split of those 64 decides the requests), and ``close`` (wrk sends
``Connection: close``: a new connection per request, so every request is
placed anew). Workers count what they served and write it at exit into the
directory named by FASTBASE_BENCH_WORKER_STATS (read only by this script).
Goal: no worker above 60% with 2 workers. Results:
``bench/results/workers-share-*.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = [("shared socket", "0"), ("per-worker SO_REUSEPORT", "1")]
PATTERNS = [("keep-alive", []), ("close", ["-H", "Connection: close"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("fastbase did not start")


def one_run(reuseport: str, wrk_extra: list, args) -> dict:
    port = free_port()
    stats = tempfile.mkdtemp(prefix="fastbase-share-")
    env = dict(os.environ, FASTBASE_BENCH_WORKER_STATS=stats, FASTBASE_WORKER_REUSEPORT=reuseport)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastbase",
            "--workers",
            "2",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--app-dir",
            str(HERE / "apps"),
            "hello:wsgi",
        ],
        env=env,
    )
    try:
        wait_listening(port, time.monotonic() + 30)
        # Both workers up: each answers once the supervisor started it.
        time.sleep(1.0)
        wrk = subprocess.run(
            [
                "taskset",
                "-c",
                args.client_cpu,
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                *wrk_extra,
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    workers = [json.loads(p.read_text()) for p in Path(stats).glob("worker-*.json")]
    shutil.rmtree(stats, ignore_errors=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
    errors = re.search(r"Socket errors: (.*)", wrk)
    conns = sum(w["connections"] for w in workers) or 1
    reqs = sum(w["requests"] for w in workers) or 1
    return {
        "rps": float(match.group(1)) if match else 0.0,
        "workers": len(workers),
        "connection_shares": sorted((w["connections"] / conns for w in workers), reverse=True),
        "request_shares": sorted((w["requests"] / reqs for w in workers), reverse=True),
        "connections": conns,
        "requests": reqs,
        "errors": errors.group(1) if errors else "0",
    }


def pct(values: list) -> str:
    return " / ".join(f"{v * 100:.0f}%" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    started = time.monotonic()
    load = os.getloadavg()
    rows = []
    for pattern, extra in PATTERNS:
        # Interleaved, alternating which mode goes first: a run of new
        # connections leaves TIME_WAIT entries that slow the next one down.
        results: dict = {mode: [] for mode, _ in MODES}
        for i in range(args.runs):
            for mode, flag in MODES if i % 2 == 0 else MODES[::-1]:
                results[mode].append(one_run(flag, extra, args))
        for mode, _ in MODES:
            runs = results[mode]
            rows.append((pattern, mode, runs))
            top = [r["request_shares"][0] for r in runs]
            print(f"{pattern:10} {mode:24} busiest worker's requests: {pct(top)}", flush=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")
    lines = [
        f"# fastbase --workers 2: each worker's share — {stamp} UTC",
        "",
        f"Command: `python bench/workers_share.py --runs {args.runs} --duration {args.duration}` "
        f"(took {time.monotonic() - started:.0f} s). Machine: {os.cpu_count()} cores, shared (load "
        f"{load[0]:.2f} at start); Python {sys.version.split()[0]}; wrk pinned to CPU {args.client_cpu}, "
        f"`wrk -t1 -c{args.connections} -d{args.duration}s`, the server unpinned; raw WSGI hello (`bench/apps/hello.py:wsgi`).",
        "",
        "Each worker counts the connections it accepted and the requests it served and writes them at exit "
        "(`FASTBASE_BENCH_WORKER_STATS`). Shares are per run, busiest worker first; goal: no worker above 60%. "
        "The two modes' runs are interleaved, alternating which goes first. On this 2-core machine wrk has core 0 and the "
        "workers share both cores with it, so a worker that shares a core with wrk serves its connections more slowly: "
        "with keep-alive the request shares also reflect that, not only how connections were spread.",
        "`shared socket` is every worker accepting from the supervisor's one socket (`FASTBASE_WORKER_REUSEPORT=0`, "
        "as before); `per-worker SO_REUSEPORT` is the default on Linux: the supervisor also binds one socket per worker slot "
        "in the same SO_REUSEPORT group, each worker serves its slot's, and a BPF program on the group sends each new "
        "connection to a slot socket at random.",
        "",
        "| connections | listening | run | connections (busiest / other) | requests (busiest / other) | req/s | wrk socket errors |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for pattern, mode, runs in rows:
        for i, r in enumerate(runs, 1):
            lines.append(
                f"| {pattern} | {mode} | {i} | {pct(r['connection_shares'])} of {r['connections']:,} | "
                f"{pct(r['request_shares'])} of {r['requests']:,} | {r['rps']:,.0f} | {r['errors']} |"
            )
    lines += ["", "Busiest worker's share, median of the runs:", ""]
    for pattern, mode, runs in rows:
        lines.append(
            f"- {pattern}, {mode}: connections {statistics.median(r['connection_shares'][0] for r in runs) * 100:.0f}%, "
            f"requests {statistics.median(r['request_shares'][0] for r in runs) * 100:.0f}%"
        )
    out = Path(args.out) / f"workers-share-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
