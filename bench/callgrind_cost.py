"""What an option costs on the hello path, in instructions per request.

The deterministic counterpart of options_cost.py, for a machine too busy to
time: each variant's server runs under ``valgrind --tool=callgrind`` pinned
to one CPU, and a client on another CPU sends a fixed number of requests
(keep-alive, a few connections, one request in flight on each). Callgrind
dumps its counts after a warm-up, after N1 requests and after N2 more, and
the cost per request is (I(N2) - I(N1)) / (N2 - N1), so start-up and
per-phase constants cancel. User-space instructions only: the kernel's
share of a request (socket reads and writes, epoll) is not in them.

Under ASGI the count repeats to a few instructions; under WSGI it moves by
a few percent from run to run (how responses are batched between the pool
threads and the loop depends on timing), so take the median of several
``--runs``. The dumps stay in bench/results/raw/callgrind/ for
``callgrind_annotate``.

    python bench/callgrind_cost.py --variant off= --variant "on=--metrics --metrics-port 0"
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Tuple

from options_cost import HERE, free_port, parse_variants, server_command, stop, wait_listening

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)


def drive(port: int, count: int, connections: int) -> None:
    """Send ``count`` requests over ``connections`` keep-alive connections,
    one in flight on each, and read every response."""
    selector = selectors.DefaultSelector()
    buffers: Dict[socket.socket, bytes] = {}
    left = count
    for _ in range(min(connections, count)):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sock.send(REQUEST)
        left -= 1
        buffers[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    done = 0
    while done < count:
        for key, _ in selector.select(30):
            sock = key.fileobj
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed a connection")
            buffer = buffers[sock] + data
            while True:
                end = buffer.find(b"\r\n\r\n")
                length = LENGTH.search(buffer, 0, end) if end >= 0 else None
                if length is None or len(buffer) < end + 4 + int(length.group(1)):
                    break
                if not buffer.startswith(b"HTTP/1.1 200 "):
                    raise RuntimeError(f"unexpected response: {buffer[:80]!r}")
                buffer = buffer[end + 4 + int(length.group(1)) :]
                done += 1
                if left:
                    sock.send(REQUEST)
                    left -= 1
            buffers[sock] = buffer
    for sock in buffers:
        sock.close()


def dumped_total(path: str) -> int:
    with open(path) as file:
        for line in file:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def run_once(python: str, options: List[str], interface: str, args: argparse.Namespace, stem: str) -> float:
    """Instructions per request of one server under callgrind."""
    for old in glob.glob(stem + ".out*"):
        os.remove(old)
    port = free_port()
    command = server_command(python, options, interface, args, port, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={stem}.out"])
    env = dict(os.environ, PYTHONHASHSEED="0")
    with open(stem + ".log", "w") as log:
        proc = subprocess.Popen(command, cwd=os.path.join(HERE, "apps"), env=env, stdout=subprocess.DEVNULL, stderr=log)
    totals: List[int] = []

    def dump(phase: str) -> None:
        before = set(glob.glob(stem + ".out.*"))
        subprocess.run(["callgrind_control", "--dump=" + phase, str(proc.pid)], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while True:
            new = set(glob.glob(stem + ".out.*")) - before
            if new:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("callgrind wrote no dump")
            time.sleep(0.1)
        (path,) = new
        time.sleep(0.5)  # (written in one go, but let it finish)
        totals.append(dumped_total(path))

    try:
        try:
            wait_listening(port, timeout=120)
        except RuntimeError:
            raise RuntimeError(f"the server did not listen on {port} (exit status {proc.poll()}; see {stem}.log)") from None
        drive(port, args.warmup, args.connections)
        dump("warmup")
        drive(port, args.n1, args.connections)
        dump("n1")
        drive(port, args.n2, args.connections)
        dump("n2")
    finally:
        stop(proc, 60)
    return (totals[2] - totals[1]) / (args.n2 - args.n1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", action="append", required=True, metavar="NAME=[PYTHON:]OPTIONS", help="as in options_cost.py")
    p.add_argument("--runs", type=int, default=1, help="runs per variant and interface; the median is reported")
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--n1", type=int, default=1000)
    p.add_argument("--n2", type=int, default=5000)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--loop", default="auto")
    p.add_argument("--interfaces", default="wsgi,asgi")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--client-cpu", type=int, default=0)
    p.add_argument("--out", default=os.path.join(HERE, "results", "raw", "callgrind"))
    args = p.parse_args()
    if args.n2 <= args.n1:
        p.error("--n2 must be larger than --n1")
    args.out = os.path.abspath(args.out)  # (the server runs in bench/apps)
    os.makedirs(args.out, exist_ok=True)
    os.sched_setaffinity(0, {args.client_cpu})
    variants = parse_variants(args.variant)
    results: Dict[Tuple[str, str], List[float]] = {}
    for run in range(args.runs):
        for interface in args.interfaces.split(","):
            for name, python, options in variants:
                stem = os.path.join(args.out, f"{name}-{interface}-{run + 1}")
                per_request = run_once(python, options, interface, args, stem)
                results.setdefault((interface, name), []).append(per_request)
                print(f"run {run + 1} {interface} {name}: {per_request:,.0f} instructions/request", flush=True)
    print()
    for interface in args.interfaces.split(","):
        base = statistics.median(results[(interface, variants[0][0])])
        for name, _, _ in variants:
            runs = results[(interface, name)]
            median = statistics.median(runs)
            print(
                f"{interface:5} {name:10} {median:>9,.0f} instructions/request ({median / base:.3f}x, {median - base:+,.0f})  "
                f"runs {', '.join(f'{r:,.0f}' for r in runs)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
