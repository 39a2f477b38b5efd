#!/usr/bin/env python3
"""WebSocket benchmarks: fastbase against uvicorn (websockets, websockets-sansio
and wsproto backends), daphne and granian, all serving the same raw ASGI echo
app (``apps/ws_echo.py``).

    python bench/ws_bench.py                # the full run (~20 min on 2 cores)
    python bench/ws_bench.py --quick        # a sanity check in ~3 min
    python bench/ws_bench.py --scenarios echo-text --servers fastbase granian --runs 7
    python bench/ws_bench.py --list

Scenarios: ``echo-text`` (messages/s, one 32-byte text message in flight per
connection, 1/16/64 connections), ``echo-binary-16k`` (the same with 16 KiB
binary messages) and ``connect`` (connections/s: TCP connect, opening
handshake, one echo, closing handshake, again and again, from 1 or 16
parallel loops). The load comes from ``ws_load.py`` (asyncio Protocols on
uvloop, frames masked once before the run), pinned to ``--client-cpu``.

The machine this runs on is shared, so every server is started once, all
pinned to ``--server-cpu`` (idle when not under load), and the runs of each
point are interleaved: run 1 of every server, then run 2 in a rotated order,
and so on. A trivial echo server (``ws_trivial.py``: a cached reply per
frame) runs as one more "server" and gives the load generator's own
ceiling; every run also records the generator's CPU time, so its cost per
round trip is known and shown.

Server start/stop, pinning, free ports, machine info and the number
formats come from ``run.py``; results go to ``bench/results/ws-latest.md`` (dated
``.md``/``.json`` in ``bench/results/raw/``) and charts to ``bench/charts/ws-*.png``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load_run():
    """bench/run.py as a module (``bench_run``, the name its tests use too)."""
    name = "bench_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


loadrun = _load_run()


# Small argument and statistics helpers, kept here rather than borrowed from
# run.py's private names.
def _names(choices, what):
    def parse(text):
        names = [n for n in text.replace(",", " ").split() if n]
        for n in names:
            if n not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {n!r} (choose from {', '.join(choices)})")
        return names

    return parse


def _summarize_known(values):
    known = [v for v in values if v is not None]
    return loadrun.summarize(known) if known else None


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


HOST = loadrun.HOST
RESULTS = loadrun.RESULTS
CHARTS = loadrun.CHARTS
APP = "ws_echo:app"
LOAD_SCRIPT = HERE / "ws_load.py"
TRIVIAL_SCRIPT = HERE / "ws_trivial.py"
CEILING = "ceiling"
#: A peer whose median rate reaches this share of the generator's own
#: capacity (round trips per CPU-second of the client) may be limited by
#: the client, not by itself: its row is marked.
CLIENT_BOUND_SHARE = 0.7

# --------------------------------------------------------------------------
# Servers.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WsServer:
    name: str
    label: str
    #: Modules the server's interpreter must import; "missing" otherwise.
    modules: tuple
    note: str = ""

    def argv(self, python: str, port: int) -> list:
        return _ARGV[self.name](python, port)


def _uvicorn(ws):
    def argv(python, port):
        return [
            python,
            "-m",
            "uvicorn",
            APP,
            "--host",
            HOST,
            "--port",
            str(port),
            "--interface",
            "asgi3",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--ws",
            ws,
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    return argv


_ARGV = {
    CEILING: lambda python, port: [python, str(TRIVIAL_SCRIPT), str(port)],
    "fastbase": lambda python, port: [
        python,
        "-m",
        "fastbase",
        APP,
        "--host",
        HOST,
        "--port",
        str(port),
        "--interface",
        "asgi",
        "--log-level",
        "warning",
    ],
    "uvicorn-websockets": _uvicorn("websockets"),
    "uvicorn-websockets-sansio": _uvicorn("websockets-sansio"),
    "uvicorn-wsproto": _uvicorn("wsproto"),
    "daphne": lambda python, port: [python, "-m", "daphne", "-b", HOST, "-p", str(port), "-v", "0", APP],
    "granian": lambda python, port: [
        python,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
        APP,
    ],
}

SERVERS = {
    s.name: s
    for s in [
        WsServer(
            CEILING,
            "trivial echo (generator ceiling)",
            ("uvloop",),
            "ws_trivial.py: 101 built once, each echo a cached reply; not a server to compare",
        ),
        WsServer(
            "fastbase",
            "fastbase",
            ("fastbase",),
            "defaults (uvloop, compiled frames; no compression offered by the client, so none negotiated)",
        ),
        WsServer("uvicorn-websockets", "uvicorn (websockets)", ("uvicorn", "websockets"), "--ws websockets --http httptools --loop uvloop"),
        WsServer(
            "uvicorn-websockets-sansio",
            "uvicorn (websockets-sansio)",
            ("uvicorn", "websockets"),
            "--ws websockets-sansio --http httptools --loop uvloop",
        ),
        WsServer("uvicorn-wsproto", "uvicorn (wsproto)", ("uvicorn", "wsproto"), "--ws wsproto --http httptools --loop uvloop"),
        WsServer("daphne", "daphne", ("daphne",), "-v 0 (Twisted + autobahn)"),
        WsServer("granian", "granian", ("granian",), "--interface asgi --workers 1"),
    ]
}

PACKAGES = ["fastbase", "uvicorn", "websockets", "wsproto", "httptools", "uvloop", "daphne", "autobahn", "Twisted", "granian", "matplotlib"]


def label(name: str) -> str:
    return SERVERS[name].label if name in SERVERS else name


# --------------------------------------------------------------------------
# Scenarios.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WsScenario:
    name: str
    title: str
    mode: str  # ws_load.py's mode: "echo" or "connect"
    size: int
    binary: bool
    connections: tuple
    quick_connections: tuple
    unit: str

    def describe(self) -> str:
        kind = "binary" if self.binary else "text"
        if self.mode == "echo":
            return (
                f"Each connection keeps one {_size(self.size)} {kind} message in flight: send, wait for "
                "the echo, send again. Rate = round trips completed per second over all connections."
            )
        return (
            f"Each of the parallel loops opens a TCP connection, does the opening handshake, one "
            f"{_size(self.size)} {kind} echo and the closing handshake (the client closes TCP once the "
            "server's close frame arrives), then starts again. Rate = connections completed per second."
        )


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n}-byte"


SCENARIOS = {
    s.name: s
    for s in [
        WsScenario("echo-text", "Echo, 32-byte text messages", "echo", 32, False, (1, 16, 64), (16,), "msg/s"),
        WsScenario("echo-binary-16k", "Echo, 16 KiB binary messages", "echo", 16384, True, (1, 16), (16,), "msg/s"),
        WsScenario("connect", "Connection setup: handshake + one echo + close", "connect", 32, False, (1, 16), (16,), "conn/s"),
    ]
}

# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------

FULL = {"duration": 4.0, "warmup": 2.0, "runs": 5}
QUICK = {"duration": 2.0, "warmup": 1.0, "runs": 1}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/ws_bench.py", description="WebSocket benchmarks: fastbase against its peers.")
    p.add_argument("--quick", action="store_true", help="short single runs, one connection count per scenario: a sanity check")
    p.add_argument(
        "--scenarios",
        nargs="+",
        action="extend",
        type=_names(SCENARIOS, "scenario"),
        metavar="NAME",
        help="scenarios to run (default: all)",
    )
    p.add_argument(
        "--servers",
        nargs="+",
        action="extend",
        type=_names(SERVERS, "server"),
        metavar="NAME",
        help="servers to run (default: all); fastbase and the ceiling are always added",
    )
    p.add_argument(
        "--connections",
        nargs="+",
        type=loadrun.positive(int),
        metavar="N",
        help="connection counts for every scenario (default: each scenario's own)",
    )
    p.add_argument("--duration", type=loadrun.positive(float), metavar="S", help="seconds measured per run (full 4, quick 2)")
    p.add_argument(
        "--warmup", type=float, metavar="S", help="seconds of echo and of connect load per server before measuring (full 2, quick 1)"
    )
    p.add_argument("--runs", type=loadrun.positive(int), metavar="N", help="runs per point (full 5, quick 1)")
    p.add_argument("--server-cpu", type=int, default=1, metavar="CPU", help="core the servers are pinned to")
    p.add_argument("--client-cpu", type=int, default=0, metavar="CPU", help="core the load generator is pinned to")
    p.add_argument("--python", default=sys.executable, help="interpreter for the servers and the load generator")
    p.add_argument("--output", type=Path, default=RESULTS, help="directory for the markdown and JSON results")
    p.add_argument("--charts-dir", type=Path, default=CHARTS, help="directory for the PNG charts")
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument("--list", action="store_true", help="list scenarios and servers, then exit")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.scenarios:
        chosen = {n for group in args.scenarios for n in group}
        args.scenarios = [n for n in SCENARIOS if n in chosen]
    else:
        args.scenarios = list(SCENARIOS)
    if args.servers:
        chosen = {n for group in args.servers for n in group} | {CEILING, "fastbase"}
        args.servers = [n for n in SERVERS if n in chosen]
    else:
        args.servers = list(SERVERS)
    return args


def connections_for(args, scenario: WsScenario) -> tuple:
    if args.connections:
        return tuple(args.connections)
    return scenario.quick_connections if args.quick else scenario.connections


def load_command(args, scenario: WsScenario, port: int, connections: int, duration: float, mode: str | None = None) -> list:
    """The ws_load.py command line of one run, pinned to the client core."""
    argv = loadrun.pin_prefix(args.client_pin) + [
        args.python,
        str(LOAD_SCRIPT),
        mode or scenario.mode,
        "--host",
        HOST,
        "--port",
        str(port),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}",
        "--size",
        str(scenario.size),
    ]
    if scenario.binary:
        argv.append("--binary")
    return argv


def rotated(items: list, k: int) -> list:
    """``items`` starting at index ``k`` (mod len), wrapping around: run k's
    order, so no server is always measured first or last."""
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


# --------------------------------------------------------------------------
# Results.
# --------------------------------------------------------------------------


def parse_load_output(stdout: str) -> dict:
    """The JSON object ws_load.py prints last. Raises ValueError with its
    message when the run failed or printed nothing usable."""
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no result from ws_load.py: " + stdout.strip()[-300:])
    result = json.loads(lines[-1])
    if "error" in result:
        raise ValueError(result["error"])
    return result


def capacity(run: dict):
    """The generator's round trips (or connections) per CPU-second of its own
    in one run: what it could do with a whole core. None without CPU time."""
    cpu = run.get("client_cpu") or 0.0
    if cpu <= 0 or not run.get("elapsed_s"):
        return None
    return run["count"] / (cpu * run["elapsed_s"])


def server_cost_us(run: dict):
    """The server's CPU time per round trip (or connection) in one run, in
    µs: its whole process tree's CPU over the load run (setup included, a
    few connections' worth) divided by what was completed. None when not
    measured or nothing completed."""
    cpu = run.get("server_cpu_s")
    if cpu is None or not run.get("count"):
        return None
    return cpu / run["count"] * 1e6


def aggregate(runs: list, connections: int) -> dict:
    """One measured point from its successful runs: median/min/max of the
    rate, medians of p50/p99 (ms), of the client's CPU share and capacity,
    and the errors summed."""
    caps = [c for c in (capacity(r) for r in runs) if c is not None]
    costs = [c for c in (server_cost_us(r) for r in runs) if c is not None]
    return {
        "connections": connections,
        "runs": runs,
        "rate": loadrun.summarize(r["rate"] for r in runs),
        "p50_ms": _summarize_known(r.get("p50_ms") for r in runs),
        "p99_ms": _summarize_known(r.get("p99_ms") for r in runs),
        "client_cpu": statistics.median(r.get("client_cpu", 0.0) for r in runs),
        "capacity": statistics.median(caps) if caps else None,
        "server_us": statistics.median(costs) if costs else None,
        "errors": sum(r.get("errors", 0) for r in runs),
    }


def point_of(result: dict, connections: int):
    if result.get("status") != "ok":
        return None
    return next((p for p in result["points"] if p["connections"] == connections), None)


def find_result(results: list, name: str):
    return next((r for r in results if r["server"] == name), None)


def ratio_to_fastbase(results: list, name: str, connections: int):
    """A server's median rate over fastbase's at the same connection count;
    None when either is missing."""
    mine = point_of(find_result(results, name) or {}, connections)
    base = point_of(find_result(results, "fastbase") or {}, connections)
    if mine is None or base is None or not base["rate"]["median"]:
        return None
    return mine["rate"]["median"] / base["rate"]["median"]


def client_capacity(results: list, connections: int):
    """The generator's capacity at this point: measured against the trivial
    server when it ran, else the best seen against any server."""
    ceiling = point_of(find_result(results, CEILING) or {}, connections)
    if ceiling is not None and ceiling["capacity"]:
        return ceiling["capacity"]
    caps = [p["capacity"] for p in (point_of(r, connections) for r in results) if p and p["capacity"]]
    return max(caps) if caps else None


def fastbase_losses(report: dict) -> list:
    """Every (scenario, connections, peer) where a peer's median beat
    fastbase's: ``(scenario, connections, server, peer rate, fastbase rate,
    ratio, peer best run, fastbase best run)``. The trivial server is not a
    peer. The best runs are there because noise on a shared machine only
    ever slows a run down: a loss that the best runs do not show is suspect."""
    losses = []
    for section in report["scenarios"]:
        results = section["results"]
        for connections in section["connections"]:
            base = point_of(find_result(results, "fastbase") or {}, connections)
            if base is None:
                continue
            for r in results:
                if r["server"] in (CEILING, "fastbase"):
                    continue
                p = point_of(r, connections)
                if p is not None and p["rate"]["median"] > base["rate"]["median"]:
                    losses.append(
                        (
                            section["scenario"],
                            connections,
                            r["server"],
                            p["rate"]["median"],
                            base["rate"]["median"],
                            p["rate"]["median"] / base["rate"]["median"],
                            p["rate"]["max"],
                            base["rate"]["max"],
                        )
                    )
    return losses


# --------------------------------------------------------------------------
# Markdown.
# --------------------------------------------------------------------------


def fmt_pct(value) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def scenario_table(scenario: WsScenario, results: list, connections: tuple) -> str:
    """The markdown table of one scenario: per server and connection count,
    the median rate with min – max, the ratio to fastbase, latency medians,
    the generator's CPU share and the errors. A row at or above
    CLIENT_BOUND_SHARE of the generator's capacity is marked †."""
    unit = scenario.unit
    op = "msg" if scenario.mode == "echo" else "conn"
    head = ["server", "conns", f"{unit} (median)", "min – max", "÷ fastbase", "p50 ms", "p99 ms", f"server µs/{op}", "client CPU", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for result in results:
        name = result["server"]
        if result["status"] != "ok":
            lines.append("| " + " | ".join([label(name), "", loadrun.status_cell(result)] + [""] * (len(head) - 3)) + " |")
            continue
        for c in connections:
            point = point_of(result, c)
            if point is None:
                failure = result.get("failed_points", {}).get(str(c))
                if failure:
                    lines.append("| " + " | ".join([label(name), str(c), f"failed ({failure})"] + [""] * (len(head) - 3)) + " |")
                continue
            ratio = ratio_to_fastbase(results, name, c)
            cap = client_capacity(results, c)
            mark = ""
            if name != CEILING and cap and point["rate"]["median"] >= CLIENT_BOUND_SHARE * cap:
                mark = " †"
            cells = [
                label(name),
                str(c),
                loadrun.fmt_rps(point["rate"]["median"]) + mark,
                f"{loadrun.fmt_rps(point['rate']['min'])} – {loadrun.fmt_rps(point['rate']['max'])}",
                loadrun.fmt_ratio(ratio) if ratio is not None else "–",
                loadrun.fmt_ms(point["p50_ms"]["median"] if point["p50_ms"] else None),
                loadrun.fmt_ms(point["p99_ms"]["median"] if point["p99_ms"] else None),
                f"{point['server_us']:.1f}" if point.get("server_us") is not None else "–",
                fmt_pct(point["client_cpu"]),
                str(point["errors"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def capacity_line(scenario: WsScenario, results: list, connections: tuple) -> str:
    parts = []
    for c in connections:
        cap = client_capacity(results, c)
        if cap:
            parts.append(f"{loadrun.fmt_rps(cap)} at {c} conn{'s' if c != 1 else ''}")
    if not parts:
        return ""
    what = "round trips" if scenario.mode == "echo" else "connections"
    return (
        f"Generator capacity ({what} per CPU-second of the client, median against the trivial server): "
        + ", ".join(parts)
        + f". † marks a server at ≥ {CLIENT_BOUND_SHARE:.0%} of it (possibly client-bound)."
    )


def render_markdown(report: dict) -> str:
    machine = report["machine"]
    out = [f"# fastbase WebSocket benchmarks — {report['date']}", ""]
    out.append(
        f"Command: `{report['command']}` ({'quick' if report['quick'] else 'full'} run, "
        f"took {loadrun.format_duration(report['elapsed_s'])})."
    )
    out.append("")
    out.append(
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"{machine['memory']}; Python {machine['python']}; load generator `ws_load.py` on "
        f"{report.get('client_loop', 'uvloop')}."
    )
    out.append(
        f"- Load average (1/5/15 min) at start: {machine['load_start']}; at end: {machine['load_end']}. "
        "The machine is shared with other work: compare ratios within this file, not absolute numbers "
        "across files."
    )
    out.append(f"- Pinning: {machine['pinning']}.")
    out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".")
    out.append(
        f"- Method: every server started once and left running, all on the server core (idle between "
        f"their runs); per server {report['warmup']:g} s of echo and {report['warmup']:g} s of connect "
        f"load as warm-up; then for each point {report['runs']} run(s) of {report['duration']:g} s, "
        "interleaved across servers in a rotated order. Echo runs open and verify every connection "
        "(one message echoed byte for byte) before the clock starts. Rates are medians with min – max "
        "over the runs; p50/p99 are medians of each run's percentiles (every round trip or connection "
        "timed); `÷ fastbase` is the server's median over fastbase's; `server µs/msg` (or `/conn`) is "
        "the CPU time of the server's process tree during a run divided by what the run completed "
        "(median over runs): its cost per operation, which other work on the machine disturbs far less "
        "than the rate; `client CPU` is the generator's "
        "CPU time over the run's wall time (median); `errors` counts connections that failed during "
        "the measured runs. The client offers no extension, so nothing is compressed."
    )
    out.append("")
    out.append("Servers (all on `apps/ws_echo.py`, the same raw ASGI echo app):")
    out.append("")
    for name in report["servers"]:
        s = SERVERS[name]
        out.append(f"- {s.label}: {s.note}" if s.note else f"- {s.label}")
    for section in report["scenarios"]:
        scenario = SCENARIOS[section["scenario"]]
        connections = tuple(section["connections"])
        out += ["", f"## {scenario.name} — {scenario.title}", "", scenario.describe(), ""]
        out.append(scenario_table(scenario, section["results"], connections))
        line = capacity_line(scenario, section["results"], connections)
        if line:
            out += ["", line]
        if section.get("chart"):
            out += ["", f"![{scenario.name}]({section['chart']})"]
    losses = fastbase_losses(report)
    out += ["", "## Where a peer beats fastbase", ""]
    if losses:
        for scenario, c, name, rate, base, ratio, best, base_best in losses:
            unit = SCENARIOS[scenario].unit
            out.append(
                f"- {scenario}, {c} conn{'s' if c != 1 else ''}: {label(name)} "
                f"{loadrun.fmt_rps(rate)} {unit} against fastbase's {loadrun.fmt_rps(base)} "
                f"({loadrun.fmt_ratio(ratio)}, medians); best runs {loadrun.fmt_rps(best)} against "
                f"{loadrun.fmt_rps(base_best)} ({loadrun.fmt_ratio(best / base_best)})."
            )
    else:
        out.append("Nowhere in this run: fastbase's median is the highest at every point.")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------
# Charts.
# --------------------------------------------------------------------------

CEILING_COLOR = "#dddddd"


def chart_data(results: list, connections: int) -> dict:
    """Bars for one connection count: fastbase first, then the peers fastest
    first, the trivial server last; median with min/max whiskers and the
    ratio to fastbase."""
    rows = [(r["server"], point_of(r, connections)) for r in results]
    rows = [(n, p) for n, p in rows if p is not None]
    base = next((p["rate"]["median"] for n, p in rows if n == "fastbase"), None)
    rows.sort(key=lambda row: (row[0] == CEILING, row[0] != "fastbase", -row[1]["rate"]["median"]))
    colors = {"fastbase": loadrun.FASTBASE_COLOR, CEILING: CEILING_COLOR}
    return {
        "labels": [label(n) for n, _ in rows],
        "values": [p["rate"]["median"] for _, p in rows],
        "low": [p["rate"]["median"] - p["rate"]["min"] for _, p in rows],
        "high": [p["rate"]["max"] - p["rate"]["median"] for _, p in rows],
        "ratios": [p["rate"]["median"] / base if base else None for _, p in rows],
        "colors": [colors.get(n, loadrun.PEER_COLOR) for n, _ in rows],
    }


def chart_filename(scenario_name: str, quick: bool) -> str:
    return f"{'quick-' if quick else ''}ws-{scenario_name}.png"


def write_chart(scenario: WsScenario, results: list, connections: tuple, path: Path, subtitle: str) -> bool:
    """One PNG per scenario, a panel per connection count. False (nothing
    drawn) without matplotlib or data."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [(c, chart_data(results, c)) for c in connections]
    panels = [(c, d) for c, d in panels if d["values"]]
    if not panels:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    height = 0.45 * max(len(d["values"]) for _, d in panels) + 1.8
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), height), squeeze=False)
    for ax, (c, data) in zip(axes[0], panels):
        ax.barh(data["labels"], data["values"], xerr=[data["low"], data["high"]], color=data["colors"], capsize=3)
        for y, (v, ratio) in enumerate(zip(data["values"], data["ratios"])):
            text = f" {v:,.0f}" + (f" ({ratio:.2f}×)" if ratio is not None else "")
            ax.text(v, y, text, va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(max(data["values"]), 1.0) * 1.45)
        ax.set_title(f"{c} connection{'s' if c != 1 else ''}", fontsize=9)
        ax.set_xlabel(f"{scenario.unit}, median (higher is better); (n×) = ÷ fastbase", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"WebSocket: {scenario.title}\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat(text: str):
    """(ppid, utime + stime in seconds) from a /proc/PID/stat line; the
    command name sits in parentheses and may hold spaces or parentheses."""
    fields = text.rsplit(")", 1)[1].split()
    # After the name: state(3) ppid(4) ... utime(14) stime(15), 1-based.
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and every live descendant."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stats[int(entry)] = parse_stat(f.read())
            except (OSError, ValueError, IndexError):
                continue
    children: dict = {}
    for child, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        if p in stats:
            total += stats[p][1]
    return total


_PROBE = r"""
import importlib.metadata, importlib.util, json, sys
mods, pkgs = json.loads(sys.argv[1])
out = {"modules": {m: importlib.util.find_spec(m) is not None for m in mods}, "versions": {}}
for p in pkgs:
    try:
        out["versions"][p] = importlib.metadata.version(p)
    except importlib.metadata.PackageNotFoundError:
        out["versions"][p] = "missing"
print(json.dumps(out))
"""


def probe(python: str) -> dict:
    mods = sorted({m for s in SERVERS.values() for m in s.modules})
    proc = subprocess.run([python, "-c", _PROBE, json.dumps([mods, PACKAGES])], capture_output=True, text=True, cwd=loadrun.APPS)
    if proc.returncode:
        raise SystemExit(f"cannot probe {python}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def pinning(args) -> str:
    if not loadrun.pin_cores(args, pin_self=True):
        return "none (needs taskset and two distinct CPUs)"
    return f"servers on CPU {args.server_cpu}, the load generator (and this script) on CPU {args.client_cpu}"


def run_load(argv: list, duration: float) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    try:
        return parse_load_output(proc.stdout)
    except ValueError:
        if proc.returncode and not proc.stdout.strip():
            raise ValueError(f"ws_load.py failed ({proc.returncode}): {proc.stderr.strip()[-300:]}") from None
        raise


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def start_servers(args, installed: dict, log_dir: Path) -> dict:
    """Start every chosen server (each on its own port, pinned) and warm it
    up; returns name → {"status", "detail", "port", "proc", "command"}."""
    live = {}
    for name in args.servers:
        server = SERVERS[name]
        entry = {"status": "ok", "detail": "", "port": None, "proc": None, "command": ""}
        live[name] = entry
        absent = [m for m in server.modules if not installed.get(m)]
        if absent:
            entry.update(status="missing", detail="no module " + ", ".join(absent))
            print(f"  {name:26} missing ({entry['detail']})", flush=True)
            continue
        port = loadrun.free_port()
        argv = server.argv(args.python, port)
        entry.update(port=port, command=shlex.join(argv))
        try:
            entry["proc"] = loadrun.ServerProcess(loadrun.Launch(argv), args.server_pin, log_dir, f"ws-{name}")
            entry["proc"].wait_ready(port, "/")
            if args.warmup > 0:
                warm = SCENARIOS["echo-text"]
                run_load(load_command(args, warm, port, 16, args.warmup), args.warmup)
                run_load(load_command(args, warm, port, 4, args.warmup, mode="connect"), args.warmup)
            print(f"  {name:26} up on port {port}", flush=True)
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
            entry.update(status="failed", detail=_first_line(exc))
            print(f"  {name:26} failed: {entry['detail']}", flush=True)
            if entry["proc"] is not None:
                entry["proc"].stop()
                entry["proc"] = None
    return live


def run_scenario(args, scenario: WsScenario, live: dict) -> dict:
    connections = connections_for(args, scenario)
    print(f"[{scenario.name}] {scenario.title}", flush=True)
    up = [n for n in args.servers if live[n]["status"] == "ok"]
    runs = {(n, c): [] for n in up for c in connections}
    failures: dict = {}
    for c in connections:
        for k in range(args.runs):
            for name in rotated(up, k):
                entry = live[name]
                if entry["proc"].proc.poll() is not None:
                    failures[(name, c)] = f"server exited ({entry['proc'].log_tail(2)})"
                    continue
                try:
                    pid = entry["proc"].proc.pid
                    before = tree_cpu_seconds(pid)
                    result = run_load(load_command(args, scenario, entry["port"], c, args.duration), args.duration)
                    result["server_cpu_s"] = tree_cpu_seconds(pid) - before
                    runs[(name, c)].append(result)
                except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
                    failures[(name, c)] = _first_line(exc)
                time.sleep(0.3)  # let the last server finish its closing work
        for name in up:
            done = runs[(name, c)]
            if done:
                rate = statistics.median(r["rate"] for r in done)
                print(
                    f"  {name:26} c={c:<3} {loadrun.fmt_rps(rate):>9} {scenario.unit}  client CPU "
                    f"{fmt_pct(statistics.median(r['client_cpu'] for r in done))}",
                    flush=True,
                )
            else:
                print(f"  {name:26} c={c:<3} failed: {failures.get((name, c), '?')}", flush=True)
    results = []
    for name in args.servers:
        entry = live[name]
        result = {
            "server": name,
            "status": entry["status"],
            "detail": entry["detail"],
            "points": [],
            "command": entry["command"],
            "failed_points": {},
        }
        if entry["status"] == "ok":
            for c in connections:
                if runs[(name, c)]:
                    result["points"].append(aggregate(runs[(name, c)], c))
                else:
                    result["failed_points"][str(c)] = failures.get((name, c), "no run completed")
            if not result["points"]:
                result.update(status="failed", detail=next(iter(result["failed_points"].values()), ""))
        results.append(result)
    return {"scenario": scenario.name, "connections": list(connections), "results": results}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:16} {s.title} (connections {', '.join(map(str, s.connections))})")
        print()
        for s in SERVERS.values():
            print(f"{s.name:26} {s.label}: {s.note}")
        return 0
    raise_nofile()
    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    machine = loadrun.machine_info(args)
    machine["pinning"] = pinning(args)
    info = probe(args.python)
    report = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "bench/ws_bench.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "quick": args.quick,
        "duration": args.duration,
        "warmup": args.warmup,
        "runs": args.runs,
        "machine": machine,
        "versions": info["versions"],
        "client_loop": "uvloop" if info["modules"].get("uvloop") else "asyncio",
        "servers": args.servers,
        "scenarios": [],
    }
    print(f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_start']}; {machine['pinning']}")
    with tempfile.TemporaryDirectory(prefix="fastbase-ws-bench-") as tmp:
        live = start_servers(args, info["modules"], Path(tmp))
        try:
            for name in args.scenarios:
                report["scenarios"].append(run_scenario(args, SCENARIOS[name], live))
        finally:
            for entry in live.values():
                if entry["proc"] is not None:
                    entry["proc"].stop()
    report["elapsed_s"] = time.monotonic() - started
    machine["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    write_outputs(args, report, now)
    return 0


def write_outputs(args, report: dict, now: datetime.datetime) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.no_charts:
        pinned = ", servers pinned to 1 core" if args.server_pin is not None else ""
        subtitle = f"{report['machine']['cpu']}{pinned}, {report['date']}"
        drawn = 0
        for section in report["scenarios"]:
            scenario = SCENARIOS[section["scenario"]]
            path = args.charts_dir / chart_filename(scenario.name, args.quick)
            if write_chart(scenario, section["results"], tuple(section["connections"]), path, subtitle):
                section["chart"] = os.path.relpath(path, args.output)
                drawn += 1
        if not drawn and report["scenarios"]:
            print("no charts drawn (matplotlib not installed?)", file=sys.stderr)
    loadrun.write_report(args, report, render_markdown(report), now, name="ws-")


if __name__ == "__main__":
    sys.exit(main())
