"""What an option costs on the hello path: req/s of variants in one run.

Each variant is a fastbase command line (a Python interpreter, so a second
venv can stand for another commit, plus options); every round runs every
variant on the raw WSGI and raw ASGI hello apps (bench/apps/hello.py), the
server pinned to one core and wrk to another, variants interleaved so drift
on a shared machine hits them alike. Prints each variant's median req/s and
server CPU time per request (user + system, all threads: much steadier than
req/s on a shared machine), each with its ratio to the first variant.

    python bench/options_cost.py --variant off= --variant on=--metrics
    python bench/options_cost.py --variant main=/venvs/main/bin/python: \\
                                 --variant branch=
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on {port}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: float, connections: int, cpu: int) -> Tuple[float, int]:
    out = subprocess.run(
        ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not match or not total or int(total.group(1)) == 0 or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(match.group(1)), int(total.group(1))


def parse_variants(specs: List[str]) -> List[Tuple[str, str, List[str]]]:
    """``NAME=[PYTHON:]OPTIONS`` specs as (name, interpreter, options)."""
    variants: List[Tuple[str, str, List[str]]] = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        python = sys.executable
        if ":" in rest.split(" ")[0]:
            python, _, rest = rest.partition(":")
        variants.append((name, python, rest.split()))
    return variants


def server_command(
    python: str, options: List[str], interface: str, args: argparse.Namespace, port: int, wrapper: Sequence[str] = ()
) -> List[str]:
    """The hello server of one variant, pinned to ``args.server_cpu``, run
    under ``wrapper`` (a profiler's command line) when given."""
    return [
        "taskset",
        "-c",
        str(args.server_cpu),
        *wrapper,
        python,
        "-m",
        "fastbase",
        "--port",
        str(port),
        "--app-dir",
        os.path.join(HERE, "apps"),
        "--interface",
        interface,
        "--loop",
        args.loop,
        "--log-level",
        "warning",
        *options,
        "hello:wsgi" if interface == "wsgi" else "hello:asgi",
    ]


def stop(proc: "subprocess.Popen[bytes]", timeout: float) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_once(python: str, options: List[str], interface: str, args: argparse.Namespace) -> Tuple[float, float]:
    """(req/s, server CPU µs per request): on a shared machine the second
    moves much less with other load than the first."""
    port = free_port()
    command = server_command(python, options, interface, args, port)
    # (cwd: no checkout's fastbase/ directory may shadow the interpreter's own)
    proc = subprocess.Popen(command, cwd=os.path.join(HERE, "apps"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        wrk(port, args.warmup, args.connections, args.client_cpu)
        before = cpu_seconds(proc.pid)
        rps, requests = wrk(port, args.duration, args.connections, args.client_cpu)
        return rps, (cpu_seconds(proc.pid) - before) * 1e6 / requests
    finally:
        stop(proc, 10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--variant",
        action="append",
        required=True,
        metavar="NAME=[PYTHON:]OPTIONS",
        help="a variant: its name, optionally an interpreter and ':', then fastbase options (space-separated)",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--loop", default="auto")
    p.add_argument("--interfaces", default="wsgi,asgi")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--client-cpu", type=int, default=0)
    args = p.parse_args()
    variants = parse_variants(args.variant)
    results: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    for round_ in range(args.rounds):
        for interface in args.interfaces.split(","):
            for name, python, options in variants:
                rps, cpu = run_once(python, options, interface, args)
                results.setdefault((interface, name), []).append((rps, cpu))
                print(f"round {round_ + 1} {interface} {name}: {rps:,.0f} req/s, {cpu:.2f} µs CPU/request", flush=True)
    print()
    for interface in args.interfaces.split(","):
        base_runs = results[(interface, variants[0][0])]
        base = statistics.median(r for r, _ in base_runs)
        base_cpu = statistics.median(c for _, c in base_runs)
        for name, _, _ in variants:
            runs = results[(interface, name)]
            median = statistics.median(r for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(
                f"{interface:5} {name:10} {median:>9,.0f} req/s ({median / base:.3f}x)  "
                f"{cpu:6.2f} µs CPU/request ({cpu / base_cpu:.3f}x)  "
                f"runs {', '.join(f'{r:,.0f}/{c:.1f}' for r, c in runs)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
