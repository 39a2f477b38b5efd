#!/usr/bin/env python3
"""Worker scaling: raw WSGI and raw ASGI hello with 1 and 2 worker processes,
fastbase (``--workers N``) next to granian and uvicorn with the same counts.

    python bench/workers_bench.py            # full: ~9 min on 2 cores
    python bench/workers_bench.py --quick    # one short run each, ~1.5 min
    python bench/workers_bench.py --interfaces wsgi --servers fastbase granian --runs 7

Three placements per server and interface, wrk always pinned to
``--client-cpu`` (core 0):

- ``1 worker, pinned``: the server pinned to ``--server-cpu`` (core 1), as in
  run.py: one core for the server, one for wrk.
- ``1 worker, unpinned``: the same server free to run on either core.
- ``2 workers, unpinned``: two worker processes, unpinned.

On a 2-core machine wrk needs a core of its own too, so two workers share the
two cores with wrk: a scaling factor of 2.0 is out of reach by construction,
and what the table shows is how much of the second core each server turns
into throughput. Every run records the CPU time of the server's process tree
and of wrk, so the cores each side actually got are in the results.

As in ws_bench.py, the machine is shared: every configuration of an
interface is started at once (idle ones cost nothing) and runs are
interleaved in a rotated order. Results: ``bench/results/workers-latest.md``
(dated ``.md``/``.json`` in ``bench/results/raw/``) and ``bench/charts/workers.png``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str, filename: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


loadrun = _load("bench_run", "run.py")
wsbench = _load("bench_ws_bench", "ws_bench.py")  # shared argument helpers and rotation
HOST = loadrun.HOST

# --------------------------------------------------------------------------
# Servers, interfaces, placements.
# --------------------------------------------------------------------------

INTERFACES = {"wsgi": "hello:wsgi", "asgi": "hello:asgi"}


@dataclass(frozen=True)
class Placement:
    name: str
    label: str
    workers: int
    pinned: bool


PLACEMENTS = {
    p.name: p
    for p in [
        Placement("w1-pinned", "1 worker, pinned to the server core", 1, True),
        Placement("w1", "1 worker, unpinned", 1, False),
        Placement("w2", "2 workers, unpinned", 2, False),
    ]
}


def _fastbase(python, interface, port, workers):
    return [
        python,
        "-m",
        "fastbase",
        INTERFACES[interface],
        "--host",
        HOST,
        "--port",
        str(port),
        "--interface",
        interface,
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]


def _granian(python, interface, port, workers):
    return [
        python,
        "-m",
        "granian",
        "--interface",
        interface,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        INTERFACES[interface],
    ]


def _uvicorn(python, interface, port, workers):
    return [
        python,
        "-m",
        "uvicorn",
        INTERFACES[interface],
        "--host",
        HOST,
        "--port",
        str(port),
        "--interface",
        {"asgi": "asgi3"}.get(interface, interface),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


SERVERS = {
    "fastbase": ("fastbase", "fastbase", _fastbase, "--workers N (defaults otherwise: 8 WSGI threads, uvloop)"),
    "granian": ("granian", "granian", _granian, "--workers N"),
    "uvicorn": ("uvicorn", "uvicorn (httptools+uvloop)", _uvicorn, "--workers N --http httptools --loop uvloop"),
}


def label(name: str) -> str:
    return SERVERS[name][1] if name in SERVERS else name


def server_argv(name: str, python: str, interface: str, port: int, workers: int) -> list:
    return SERVERS[name][2](python, interface, port, workers)


# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------

FULL = {"duration": 5.0, "warmup": 2.0, "runs": 5}
QUICK = {"duration": 2.0, "warmup": 1.0, "runs": 1}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/workers_bench.py", description="Throughput with 1 and 2 workers: fastbase, granian, uvicorn.")
    p.add_argument("--quick", action="store_true", help="one short run per configuration: a sanity check")
    p.add_argument(
        "--interfaces",
        nargs="+",
        action="extend",
        type=wsbench._names(INTERFACES, "interface"),
        metavar="NAME",
        help="wsgi and/or asgi (default: both)",
    )
    p.add_argument(
        "--servers",
        nargs="+",
        action="extend",
        type=wsbench._names(SERVERS, "server"),
        metavar="NAME",
        help="servers (default: all); fastbase is always added",
    )
    p.add_argument("--connections", type=loadrun.positive(int), default=64, metavar="N", help="wrk connections (default 64)")
    p.add_argument("--duration", type=loadrun.positive(float), metavar="S", help="seconds per wrk run (5 / 2)")
    p.add_argument("--warmup", type=float, metavar="S", help="seconds of wrk warm-up per configuration (2 / 1)")
    p.add_argument("--runs", type=loadrun.positive(int), metavar="N", help="wrk runs per configuration (5 / 1)")
    p.add_argument("--server-cpu", type=int, default=1, metavar="CPU", help="core of the pinned 1-worker servers")
    p.add_argument("--client-cpu", type=int, default=0, metavar="CPU", help="core wrk (and this script) is pinned to")
    p.add_argument("--python", default=sys.executable, help="interpreter the servers run on")
    p.add_argument("--output", type=Path, default=loadrun.RESULTS, help="directory for the results")
    p.add_argument("--charts-dir", type=Path, default=loadrun.CHARTS, help="directory for the PNG chart")
    p.add_argument("--no-charts", action="store_true", help="skip the chart")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    chosen = {n for group in (args.interfaces or []) for n in group}
    args.interfaces = [n for n in INTERFACES if n in chosen] if chosen else list(INTERFACES)
    chosen = {n for group in (args.servers or []) for n in group}
    args.servers = [n for n in SERVERS if n in chosen | {"fastbase"}] if chosen else list(SERVERS)
    return args


def wrk_command(args, port: int, duration: float) -> list:
    return loadrun.pin_prefix(args.client_pin) + [
        "wrk",
        "-t1",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
        f"http://{HOST}:{port}/",
    ]


# --------------------------------------------------------------------------
# CPU accounting.
# --------------------------------------------------------------------------

# The process-tree CPU accounting is ws_bench.py's.
_TICK = wsbench._TICK
parse_stat = wsbench.parse_stat
tree_cpu_seconds = wsbench.tree_cpu_seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured_wrk(args, server_pid: int, port: int) -> dict:
    """One wrk run with the CPU the server tree and wrk used during it, in
    cores (CPU seconds over the run's wall time)."""
    server0, wrk0, t0 = tree_cpu_seconds(server_pid), _children_cpu(), time.monotonic()
    result = loadrun.run_wrk(wrk_command(args, port, args.duration), args.duration)
    wall = time.monotonic() - t0
    result["server_cores"] = (tree_cpu_seconds(server_pid) - server0) / wall
    result["wrk_cores"] = (_children_cpu() - wrk0) / wall
    return result


# --------------------------------------------------------------------------
# Results.
# --------------------------------------------------------------------------


def aggregate(runs: list, connections: int) -> dict:
    point = loadrun.aggregate(runs, connections)
    point["server_cores"] = statistics.median(r["server_cores"] for r in runs)
    point["wrk_cores"] = statistics.median(r["wrk_cores"] for r in runs)
    per_core = [r["rps"] / r["server_cores"] for r in runs if r["server_cores"] > 0]
    point["rps_per_core"] = statistics.median(per_core) if per_core else None
    return point


def median_rps(results: dict, server: str, placement: str):
    r = results.get(server, {}).get(placement)
    if not r or r["status"] != "ok":
        return None
    return r["point"]["rps"]["median"]


def scaling(results: dict, server: str, base: str = "w1-pinned"):
    """2-worker median req/s over the ``base`` placement's; None when either
    did not run."""
    two, one = median_rps(results, server, "w2"), median_rps(results, server, base)
    return two / one if two is not None and one else None


def interface_table(results: dict, servers: list) -> str:
    """Markdown: one row per server and placement, req/s with min – max,
    ratio to fastbase in the same placement, 2-worker scaling, CPU used."""
    head = [
        "server",
        "placement",
        "req/s (median)",
        "min – max",
        "÷ fastbase",
        "p50 ms",
        "p99 ms",
        "server CPU (cores)",
        "req/s per server core",
        "wrk CPU (cores)",
        "errors",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for server in servers:
        for name, placement in PLACEMENTS.items():
            r = results.get(server, {}).get(name)
            if r is None:
                continue
            if r["status"] != "ok":
                lines.append("| " + " | ".join([label(server), placement.label, loadrun.status_cell(r)] + [""] * (len(head) - 3)) + " |")
                continue
            p = r["point"]
            base = median_rps(results, "fastbase", name)
            lines.append(
                "| "
                + " | ".join(
                    [
                        label(server),
                        placement.label,
                        loadrun.fmt_rps(p["rps"]["median"]),
                        f"{loadrun.fmt_rps(p['rps']['min'])} – {loadrun.fmt_rps(p['rps']['max'])}",
                        loadrun.fmt_ratio(p["rps"]["median"] / base) if base else "–",
                        loadrun.fmt_ms(p["p50_ms"]["median"] if p["p50_ms"] else None),
                        loadrun.fmt_ms(p["p99_ms"]["median"] if p["p99_ms"] else None),
                        f"{p['server_cores']:.2f}",
                        loadrun.fmt_rps(p["rps_per_core"]) if p.get("rps_per_core") else "–",
                        f"{p['wrk_cores']:.2f}",
                        str(p["errors"]),
                    ]
                )
                + " |"
            )
    return "\n".join(lines)


def scaling_table(report: dict) -> str:
    """Markdown: per interface and server, the three medians and the two
    scaling factors."""
    head = [
        "interface",
        "server",
        "1 worker pinned",
        "1 worker unpinned",
        "2 workers",
        "2w ÷ 1w pinned",
        "2w ÷ 1w unpinned",
        "2w server CPU (cores)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for section in report["interfaces"]:
        results = section["results"]
        for server in report["servers"]:
            cells = [section["interface"].upper(), label(server)]
            for name in PLACEMENTS:
                value = median_rps(results, server, name)
                cells.append(loadrun.fmt_rps(value) if value is not None else "–")
            for base in ("w1-pinned", "w1"):
                factor = scaling(results, server, base)
                cells.append(loadrun.fmt_ratio(factor) if factor is not None else "–")
            two = results.get(server, {}).get("w2")
            cells.append(f"{two['point']['server_cores']:.2f}" if two and two["status"] == "ok" else "–")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    machine = report["machine"]
    out = [f"# fastbase worker scaling — {report['date']}", ""]
    out.append(
        f"Command: `{report['command']}` ({'quick' if report['quick'] else 'full'} run, "
        f"took {loadrun.format_duration(report['elapsed_s'])})."
    )
    out.append("")
    out.append(
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"{machine['memory']}; Python {machine['python']}; wrk {machine['wrk']}."
    )
    out.append(
        f"- Load average (1/5/15 min) at start: {machine['load_start']}; at end: {machine['load_end']}. "
        "The machine is shared with other work: compare within this file."
    )
    out.append(f"- Pinning: {machine['pinning']}.")
    out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".")
    out.append(
        f"- Method: `wrk -t1 -c{report['connections']} --latency` pinned to CPU {report['client_cpu']}; every "
        f"configuration of an interface started at once, {report['warmup']:g} s wrk warm-up each, then "
        f"{report['runs']} run(s) of {report['duration']:g} s per configuration, interleaved in a rotated "
        "order. req/s is the median with min – max; `÷ fastbase` compares servers in the same placement; "
        "server CPU is the CPU time of the server's whole process tree (supervisor and workers) over the "
        "run's wall time, from /proc; wrk CPU likewise from getrusage. `req/s per server core` divides "
        "each run's req/s by the cores the server used (median over runs): the server's cost per request, "
        "which other work on the machine disturbs far less than req/s."
    )
    out.append("")
    out.append(
        "**Read the scaling factors with the machine in mind.** It has 2 cores and wrk needs one: in the "
        "2-worker runs the two workers and wrk share both cores (wrk pinned to core 0, the workers "
        "wherever the scheduler puts them), so a factor of 2.0 is impossible here and the ceiling is "
        "well below it. `2w ÷ 1w pinned` compares against the usual one-core-each setup; `2w ÷ 1w "
        "unpinned` against one worker under the same scheduling freedom. A factor near 1.0 means the "
        "second worker only took CPU away from wrk."
    )
    out.append("")
    out.append("Servers:")
    out.append("")
    for server in report["servers"]:
        out.append(f"- {label(server)}: {SERVERS[server][3]}")
    out += ["", "## Scaling", "", scaling_table(report)]
    for section in report["interfaces"]:
        iface = section["interface"]
        title = "Raw WSGI hello (13 bytes)" if iface == "wsgi" else "Raw ASGI hello (13 bytes)"
        out += ["", f"## {iface}-hello — {title}", "", f"`GET /` on `apps/hello.py:{iface}`.", ""]
        out.append(interface_table(section["results"], report["servers"]))
    if report.get("chart"):
        out += ["", f"![workers]({report['chart']})"]
    out.append("")
    return "\n".join(out)


def chart_data(results: dict, servers: list) -> dict:
    """Per placement, the median req/s of each server (None when absent)."""
    return {name: [median_rps(results, s, name) for s in servers] for name in PLACEMENTS}


def write_chart(report: dict, path: Path, subtitle: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sections = report["interfaces"]
    if not sections:
        return False
    servers = report["servers"]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(sections), figsize=(6.5 * len(sections), 4.6), squeeze=False)
    colors = {"w1-pinned": "#8d99ae", "w1": "#bcc4d0", "w2": "#2a9d8f"}
    width = 0.27
    for ax, section in zip(axes[0], sections):
        data = chart_data(section["results"], servers)
        for i, (name, values) in enumerate(data.items()):
            xs = [x + (i - 1) * width for x in range(len(servers))]
            heights = [v or 0 for v in values]
            ax.bar(xs, heights, width, label=PLACEMENTS[name].label, color=colors[name])
            if name == "w2":
                for x, s, v in zip(xs, servers, values):
                    factor = scaling(section["results"], s)
                    if v and factor:
                        ax.text(x, v, f"{factor:.2f}×", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(servers)), [label(s) for s in servers], fontsize=8)
        ax.set_ylabel("req/s, median (higher is better)")
        ax.set_title(f"raw {section['interface'].upper()} hello; n× = 2 workers ÷ 1 worker pinned", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"Worker scaling (2 cores shared with wrk)\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------


def pinning(args) -> str:
    # Only wrk is pinned to the client core; this script sleeps in between.
    if not loadrun.pin_cores(args, pin_self=False):
        return "none (needs taskset and two distinct CPUs): every placement unpinned"
    return f"wrk on CPU {args.client_cpu}; 1-worker-pinned servers on CPU {args.server_cpu}; the other placements unpinned"


def run_interface(args, interface: str, installed: dict, log_dir: Path) -> dict:
    print(f"[{interface}-hello]", flush=True)
    results: dict = {}
    live = []
    for server in args.servers:
        module = SERVERS[server][0]
        for name, placement in PLACEMENTS.items():
            entry = {"status": "ok", "detail": "", "placement": name}
            results.setdefault(server, {})[name] = entry
            if not installed.get(module):
                entry.update(status="missing", detail=f"no module {module}")
                continue
            port = loadrun.free_port()
            argv = server_argv(server, args.python, interface, port, placement.workers)
            entry["command"] = shlex.join(argv)
            cpu = args.server_pin if placement.pinned else None
            proc = None
            try:
                proc = loadrun.ServerProcess(loadrun.Launch(argv), cpu, log_dir, f"{interface}-{server}-{name}")
                proc.wait_ready(port, "/")
                if args.warmup > 0:
                    loadrun.run_wrk(wrk_command(args, port, args.warmup), args.warmup)
                live.append((server, name, proc, port))
                print(f"  {server:9} {name:10} up on port {port}", flush=True)
            except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
                entry.update(status="failed", detail=wsbench._first_line(exc))
                print(f"  {server:9} {name:10} failed: {entry['detail']}", flush=True)
                if proc is not None:
                    proc.stop()
    runs: dict = {(s, n): [] for s, n, _, _ in live}
    try:
        for k in range(args.runs):
            for server, name, proc, port in wsbench.rotated(live, k):
                if proc.proc.poll() is not None:
                    results[server][name].update(status="failed", detail=f"exited: {proc.log_tail(2)}")
                    continue
                try:
                    runs[(server, name)].append(measured_wrk(args, proc.proc.pid, port))
                except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
                    results[server][name].update(status="failed", detail=wsbench._first_line(exc))
                time.sleep(0.3)
    finally:
        for _, _, proc, _ in live:
            proc.stop()
    for (server, name), done in runs.items():
        entry = results[server][name]
        if done and entry["status"] == "ok":
            entry["point"] = aggregate(done, args.connections)
            p = entry["point"]
            print(
                f"  {server:9} {name:10} {loadrun.fmt_rps(p['rps']['median']):>9} req/s  server "
                f"{p['server_cores']:.2f} cores  wrk {p['wrk_cores']:.2f} cores",
                flush=True,
            )
        elif entry["status"] == "ok":
            entry.update(status="failed", detail="no run completed")
    return {"interface": interface, "results": results}


def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    wsbench.raise_nofile()
    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    machine = loadrun.machine_info(args)
    machine["pinning"] = pinning(args)
    info = loadrun.probe(args.python)
    report = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "bench/workers_bench.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "quick": args.quick,
        "duration": args.duration,
        "warmup": args.warmup,
        "runs": args.runs,
        "connections": args.connections,
        "client_cpu": args.client_cpu,
        "machine": machine,
        "versions": {k: info["versions"].get(k, "missing") for k in ("fastbase", "granian", "uvicorn", "httptools", "uvloop")},
        "servers": args.servers,
        "interfaces": [],
    }
    print(f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_start']}; {machine['pinning']}")
    with tempfile.TemporaryDirectory(prefix="fastbase-workers-bench-") as tmp:
        for interface in args.interfaces:
            report["interfaces"].append(run_interface(args, interface, info["modules"], Path(tmp)))
    report["elapsed_s"] = time.monotonic() - started
    machine["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    write_outputs(args, report, now)
    return 0


def write_outputs(args, report: dict, now: datetime.datetime) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.no_charts:
        path = args.charts_dir / f"{'quick-' if args.quick else ''}workers.png"
        subtitle = f"{report['machine']['cpu']}, {report['date']}"
        if write_chart(report, path, subtitle):
            report["chart"] = os.path.relpath(path, args.output)
        else:
            print("no chart drawn (matplotlib not installed?)", file=sys.stderr)
    loadrun.write_report(args, report, render_markdown(report), now, name="workers-")


if __name__ == "__main__":
    sys.exit(main())
