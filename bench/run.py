#!/usr/bin/env python3
"""Load benchmarks: fastbase against its peers, every scenario, one command.

    python bench/run.py                 # the full run (~30 min on 2 cores)
    python bench/run.py --quick         # a sanity check in a few minutes
    python bench/run.py --scenarios wsgi-hello pipelined --servers fastbase granian
    python bench/run.py --list          # scenarios and servers

For each scenario, each server runs as a subprocess of its own on a free port
on 127.0.0.1, pinned to one core (``--server-cpu``), while wrk runs pinned to
another (``--client-cpu``). The script waits until the server answers, warms
it up with wrk, runs wrk ``--runs`` times and keeps the median and min/max of
req/s and the medians of p50/p99 latency, then stops the server as Ctrl-C
would. Results go to ``bench/results/latest.md`` with the machine, versions and
date (the dated markdown and JSON to ``bench/results/raw/``, which git
ignores); charts to ``bench/charts/``.

A peer that is not installed appears in its tables as "missing"; one that
failed to start appears as "failed" with the reason. Only the standard
library is imported here: matplotlib is imported when charts are drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
SCRIPTS = HERE / "scenarios"
RESULTS = HERE / "results"
#: Under the results directory: every run's dated markdown and JSON (git ignores it).
RAW = "raw"
CHARTS = HERE / "charts"
HOST = "127.0.0.1"

# --------------------------------------------------------------------------
# Servers: how each one is started, with its standard single-process command
# line (one worker; access logs off where a flag exists, as fastbase's are by
# default).
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    argv: list
    env: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    name: str
    label: str
    #: Module that must be importable in the server's interpreter; the
    #: server is "missing" otherwise.
    module: str
    #: Interfaces it serves: "wsgi", "asgi", "runserver-wsgi", "runserver-asgi".
    interfaces: tuple
    note: str = ""

    def launch(self, python: str, interface: str, app: str, port: int) -> Launch:
        return _LAUNCHERS[self.name](python, interface, app, port)


def _fastbase(python, interface, app, port):
    if interface.startswith("runserver"):
        argv = [python, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"]
        env = {"BENCH_DJANGO_FASTBASE": "1"}
        if interface == "runserver-asgi":
            argv.append("--asgi")
            env["BENCH_DJANGO_ASGI"] = "1"
        return Launch(argv, env)
    return Launch([python, "-m", "fastbase", app, "--host", HOST, "--port", str(port), "--interface", interface, "--log-level", "warning"])


def _runserver(python, interface, app, port):
    if interface == "runserver-wsgi":
        return Launch([python, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"])
    # No Django project: the same server code, django.core.servers.basehttp.
    return Launch([python, "basehttp_serve.py", str(port), app])


def _uvicorn(http, loop):
    def launch(python, interface, app, port):
        return Launch(
            [
                python,
                "-m",
                "uvicorn",
                app,
                "--host",
                HOST,
                "--port",
                str(port),
                "--interface",
                {"asgi": "asgi3"}.get(interface, interface),
                "--http",
                http,
                "--loop",
                loop,
                "--log-level",
                "warning",
                "--no-access-log",
            ]
        )

    return launch


def _granian(python, interface, app, port):
    return Launch(
        [
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
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
            app,
        ]
    )


def _gunicorn(worker):
    def launch(python, interface, app, port):
        argv = [python, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", "1", "--log-level", "warning", "--worker-class", worker]
        if worker == "gthread":
            argv += ["--threads", "8"]
        return Launch(argv + [app])

    return launch


def _waitress(python, interface, app, port):
    return Launch([python, "-m", "waitress", f"--listen={HOST}:{port}", app])


def _daphne(python, interface, app, port):
    if interface == "runserver-asgi":
        return Launch(
            [python, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"],
            {"BENCH_DJANGO_DAPHNE": "1", "BENCH_DJANGO_ASGI": "1"},
        )
    return Launch([python, "-m", "daphne", "-b", HOST, "-p", str(port), "-v", "0", app])


def _hypercorn(python, interface, app, port):
    return Launch([python, "-m", "hypercorn", "--bind", f"{HOST}:{port}", "--workers", "1", "--log-level", "warning", app])


_LAUNCHERS = {
    "fastbase": _fastbase,
    "runserver": _runserver,
    "uvicorn-httptools": _uvicorn("httptools", "uvloop"),
    "uvicorn-h11": _uvicorn("h11", "asyncio"),
    "granian": _granian,
    "gunicorn-sync": _gunicorn("sync"),
    "gunicorn-gthread": _gunicorn("gthread"),
    "waitress": _waitress,
    "daphne": _daphne,
    "hypercorn": _hypercorn,
}

SERVERS = {
    s.name: s
    for s in [
        Server(
            "fastbase",
            "fastbase",
            "fastbase",
            ("wsgi", "asgi", "runserver-wsgi", "runserver-asgi"),
            "defaults: 8 WSGI threads, uvloop when installed",
        ),
        Server(
            "runserver",
            "Django runserver",
            "django",
            ("wsgi", "runserver-wsgi"),
            "manage.py runserver --noreload; raw apps through django.core.servers.basehttp.run",
        ),
        Server("uvicorn-httptools", "uvicorn (httptools+uvloop)", "uvicorn", ("wsgi", "asgi"), "--http httptools --loop uvloop"),
        Server("uvicorn-h11", "uvicorn (h11)", "uvicorn", ("wsgi", "asgi"), "--http h11 --loop asyncio"),
        Server("granian", "granian", "granian", ("wsgi", "asgi"), "--workers 1"),
        Server("gunicorn-sync", "gunicorn (sync)", "gunicorn", ("wsgi",), "--workers 1 --worker-class sync (no keep-alive)"),
        Server("gunicorn-gthread", "gunicorn (gthread)", "gunicorn", ("wsgi",), "--workers 1 --worker-class gthread --threads 8"),
        Server("waitress", "waitress", "waitress", ("wsgi",), "defaults (4 threads)"),
        Server("daphne", "daphne", "daphne", ("asgi", "runserver-asgi"), "-v 0; runserver: daphne first in INSTALLED_APPS"),
        Server("hypercorn", "hypercorn", "hypercorn", ("wsgi", "asgi"), "--workers 1"),
    ]
}

#: Packages whose versions every results file records.
PACKAGES = [
    "fastbase",
    "Django",
    "uvicorn",
    "httptools",
    "h11",
    "uvloop",
    "granian",
    "gunicorn",
    "waitress",
    "daphne",
    "hypercorn",
    "matplotlib",
]

# --------------------------------------------------------------------------
# Scenarios.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    interface: str
    app: str = ""
    path: str = "/"
    connections: tuple = (64,)
    #: wrk Lua script in bench/scenarios/ and its arguments.
    script: str = ""
    script_args: tuple = ()
    kind: str = "wrk"  # or "memory"
    #: False where wrk's latency is not per request (pipelining: it times a
    #: whole batch, and its percentiles come out as 0 for few batches).
    latency: bool = True
    quick: bool = False
    chart: bool = True


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("wsgi-hello", "Raw WSGI hello (13 bytes)", "wsgi", "hello:wsgi", quick=True),
        Scenario("asgi-hello", "Raw ASGI hello (13 bytes)", "asgi", "hello:asgi", quick=True),
        Scenario(
            "pipelined",
            "ASGI plaintext, 16 requests pipelined per write",
            "asgi",
            "hello:asgi",
            script="pipeline.lua",
            script_args=("16",),
            latency=False,
            quick=True,
        ),
        Scenario("django-wsgi", "Django view through WSGIHandler", "wsgi", "djangosite:wsgi", quick=True),
        Scenario("django-asgi", "Django async view through ASGIHandler", "asgi", "djangosite:asgi", path="/async"),
        Scenario("runserver", "manage.py runserver --noreload (WSGI), Django view", "runserver-wsgi", quick=True),
        Scenario("runserver-asgi", "manage.py runserver --noreload in ASGI mode, async Django view", "runserver-asgi", path="/async"),
        Scenario("response-100k", "WSGI, 100 KB response", "wsgi", "hello:wsgi", path="/100k"),
        Scenario(
            "post-1m",
            "WSGI, 1 MiB POST echoed back",
            "wsgi",
            "hello:wsgi",
            path="/echo",
            connections=(16,),
            script="post.lua",
            script_args=("1048576",),
        ),
        Scenario("sweep", "Concurrency sweep, raw WSGI hello", "wsgi", "hello:wsgi", connections=(1, 64, 1024)),
        Scenario("memory-wsgi", "Memory per idle keep-alive connection, raw WSGI hello", "wsgi", "hello:wsgi", kind="memory"),
        Scenario("memory-asgi", "Memory per idle keep-alive connection, raw ASGI hello", "asgi", "hello:asgi", kind="memory", quick=True),
    ]
}

# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------

FULL = {"duration": 5.0, "warmup": 2.0, "runs": 3, "idle_connections": 10_000}
QUICK = {"duration": 2.0, "warmup": 1.0, "runs": 1, "idle_connections": 1_000}


def _names(choices, what):
    def parse(text):
        names = [n for n in re.split(r"[,\s]+", text) if n]
        for n in names:
            if n not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {n!r} (choose from {', '.join(choices)})")
        return names

    return parse


def positive(kind):
    """An argparse type: ``kind`` (int/float) above zero. Shared by the bench scripts."""

    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Load benchmarks: fastbase against its peers under wrk.",
    )
    p.add_argument("--quick", action="store_true", help="short runs, one each, the quick subset of scenarios: a sanity check in minutes")
    p.add_argument(
        "--scenarios",
        nargs="+",
        action="extend",
        type=_names(SCENARIOS, "scenario"),
        metavar="NAME",
        help="scenarios to run (default: all, or the quick subset)",
    )
    p.add_argument(
        "--servers",
        nargs="+",
        action="extend",
        type=_names(SERVERS, "server"),
        metavar="NAME",
        help="servers to run (default: all); fastbase is always added for the ratios",
    )
    p.add_argument("--duration", type=positive(float), metavar="S", help="seconds per wrk run (full 5, quick 2)")
    p.add_argument("--warmup", type=float, metavar="S", help="seconds of wrk before measuring (full 2, quick 1)")
    p.add_argument("--runs", type=positive(int), metavar="N", help="wrk runs per point (full 3, quick 1)")
    p.add_argument(
        "--idle-connections", type=positive(int), metavar="N", help="connections the memory scenarios open (full 10000, quick 1000)"
    )
    p.add_argument("--server-cpu", type=int, default=1, metavar="CPU", help="core the servers are pinned to")
    p.add_argument("--client-cpu", type=int, default=0, metavar="CPU", help="core wrk (and this script) is pinned to")
    p.add_argument("--python", default=sys.executable, help="interpreter the servers run on")
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
        args.scenarios = [n for n, s in SCENARIOS.items() if s.quick or not args.quick]
    if args.servers:
        chosen = {n for group in args.servers for n in group} | {"fastbase"}
        args.servers = [n for n in SERVERS if n in chosen]
    else:
        args.servers = list(SERVERS)
    return args


# --------------------------------------------------------------------------
# wrk output and statistics.
# --------------------------------------------------------------------------

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def to_ms(value: str, unit: str) -> float:
    """A wrk duration (``"602.34"``, ``"us"``) in milliseconds."""
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict:
    """req/s, p50/p99 latency (ms), request and error counts from the text
    wrk prints with ``--latency``. Raises ValueError when it is not there."""
    rps = _RPS.search(output)
    if rps is None:
        raise ValueError("no 'Requests/sec' line in wrk's output:\n" + output[-2000:])
    percentiles = {float(p): to_ms(v, u) for p, v, u in _PERCENTILE.findall(output)}
    if 50.0 not in percentiles or 99.0 not in percentiles:
        raise ValueError("no latency distribution in wrk's output (run with --latency):\n" + output[-2000:])
    p50, p99 = percentiles[50.0], percentiles[99.0]
    # wrk prints 0 for percentiles its histogram lost track of (seen with
    # pipelining): a p99 below the p50 is not a measurement.
    if p99 < p50:
        p99 = None
    total = _TOTAL.search(output)
    socket_errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": p50,
        "p99_ms": p99,
        "requests": int(total.group(1)) if total else 0,
        "errors": (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0) + (int(non_2xx.group(1)) if non_2xx else 0),
    }


def summarize(values) -> dict:
    """Median, min and max of a non-empty sequence of numbers."""
    values = list(values)
    if not values:
        raise ValueError("no values to summarize")
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _summarize_known(values):
    known = [v for v in values if v is not None]
    return summarize(known) if known else None


def aggregate(runs: list, connections: int) -> dict:
    """One measured point (a server at one connection count) from its runs.
    A latency wrk did not measure (None) is left out of its median."""
    return {
        "connections": connections,
        "runs": runs,
        "rps": summarize(r["rps"] for r in runs),
        "p50_ms": _summarize_known(r["p50_ms"] for r in runs),
        "p99_ms": _summarize_known(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


# --------------------------------------------------------------------------
# Markdown.
# --------------------------------------------------------------------------


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}×"


def _fastbase_point(results: list, connections: int):
    for r in results:
        if r["server"] == "fastbase" and r["status"] == "ok":
            for point in r["points"]:
                if point["connections"] == connections:
                    return point
    return None


def status_cell(result: dict) -> str:
    """A failed point's table cell: its status and detail. Shared by the bench scripts."""
    detail = result.get("detail", "")
    return result["status"] + (f" ({detail})" if detail else "")


def _latency_cell(scenario: Scenario, summary) -> str:
    return fmt_ms(summary["median"]) if scenario.latency and summary else "–"


def scenario_table(scenario: Scenario, results: list) -> str:
    """The markdown table of one wrk scenario. ``results`` holds one dict
    per server: ``{"server", "status", "detail", "points": [aggregate()…]}``.
    The ratio column is each server's median req/s divided by fastbase's
    at the same connection count."""
    sweep = len(scenario.connections) > 1
    head = ["server"] + (["conns"] if sweep else []) + ["req/s (median)", "min – max", "÷ fastbase", "p50 ms", "p99 ms", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for result in results:
        label = SERVERS[result["server"]].label if result["server"] in SERVERS else result["server"]
        if result["status"] != "ok":
            cells = [label] + ([""] if sweep else []) + [status_cell(result)] + [""] * (len(head) - 2 - sweep)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        for point in result["points"]:
            base = _fastbase_point(results, point["connections"])
            ratio = fmt_ratio(point["rps"]["median"] / base["rps"]["median"]) if base and base["rps"]["median"] else "–"
            cells = (
                [label]
                + ([str(point["connections"])] if sweep else [])
                + [
                    fmt_rps(point["rps"]["median"]),
                    f"{fmt_rps(point['rps']['min'])} – {fmt_rps(point['rps']['max'])}",
                    ratio,
                    _latency_cell(scenario, point["p50_ms"]),
                    _latency_cell(scenario, point["p99_ms"]),
                    str(point["errors"]),
                ]
            )
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(results: list) -> str:
    """The markdown table of a memory scenario: server RSS (the whole process
    tree) before and after opening the idle keep-alive connections."""
    head = ["server", "asked", "still open", "RSS before MB", "RSS after MB", "KB per connection", "÷ fastbase"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    base = next(
        (
            r["memory"]["kb_per_conn"]
            for r in results
            if r["server"] == "fastbase" and r["status"] == "ok" and r["memory"].get("kb_per_conn")
        ),
        None,
    )
    for result in results:
        label = SERVERS[result["server"]].label if result["server"] in SERVERS else result["server"]
        if result["status"] != "ok":
            lines.append("| " + " | ".join([label, status_cell(result)] + [""] * (len(head) - 2)) + " |")
            continue
        m = result["memory"]
        per = m.get("kb_per_conn")
        lines.append(
            "| "
            + " | ".join(
                [
                    label,
                    f"{m['asked']:,}",
                    f"{m['open']:,}",
                    f"{m['rss_before_kb'] / 1024:.1f}",
                    f"{m['rss_after_kb'] / 1024:.1f}",
                    f"{per:.1f}" if per is not None else "–",
                    fmt_ratio(per / base) if per is not None and base else "–",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min {seconds} s"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def render_markdown(report: dict) -> str:
    """The whole results file: header (date, command, duration, machine,
    versions, method), then one section per scenario."""
    machine = report["machine"]
    out = [f"# fastbase load benchmarks — {report['date']}", ""]
    out.append(
        f"Command: `{report['command']}` ({'quick' if report['quick'] else 'full'} run, took {format_duration(report['elapsed_s'])})."
    )
    out.append("")
    out.append(
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"{machine['memory']}; Python {machine['python']}; wrk {machine['wrk']}."
    )
    out.append(f"- Load average (1/5/15 min) at start: {machine['load_start']}; at end: {machine['load_end']}.")
    out.append(f"- Pinning: {machine['pinning']}.")
    out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".")
    out.append(
        f"- Method: in the wrk scenarios all servers run at once, idle but for the one being measured; "
        f"each gets {report['warmup']:g} s of wrk warm-up, then {report['runs']} wrk run(s) of "
        f"{report['duration']:g} s per point, taken round-robin across the servers "
        "(`wrk -t1 --latency --timeout 10s`); req/s is the median with min – max over the runs, p50/p99 the medians. `÷ fastbase` is the server's median req/s over fastbase's in "
        "the same run: the headline. Absolute numbers hold for this machine only. `errors` counts wrk's "
        "socket errors plus non-2xx responses over the measured runs."
    )
    out.append("")
    out.append("Servers (each with its standard single-process command line):")
    out.append("")
    for name in report["servers"]:
        s = SERVERS[name]
        out.append(f"- {s.label}: {s.note}" if s.note else f"- {s.label}")
    for section in report["scenarios"]:
        scenario = SCENARIOS[section["scenario"]]
        out += ["", f"## {scenario.name} — {scenario.title}", ""]
        if scenario.kind == "memory":
            out.append(
                f"`GET {scenario.path}` once on each of {report['idle_connections']:,} "
                "connections opened in batches of 200, then kept open idle; RSS summed over the server's process "
                'tree from /proc. "still open" counts connections the server had not closed when RSS was '
                f"read (a server gets {IDLE_BUDGET_S:g} s to take them; responses with `Connection: close` are "
                "closed by the client); KB per connection divides the RSS growth by it."
            )
            out += ["", memory_table(section["results"])]
        else:
            conns = ", ".join(str(c) for c in scenario.connections)
            script = f", `{scenario.script} {' '.join(scenario.script_args)}`" if scenario.script else ""
            method = "POST" if scenario.script == "post.lua" else "GET"
            out.append(
                f"`{method} {scenario.path}`, {conns} connection(s){script}."
                + ("" if scenario.latency else " No latency: wrk times a whole pipelined batch, not a request.")
            )
            out += ["", scenario_table(scenario, section["results"])]
        skipped = section.get("not_applicable")
        if skipped:
            out += ["", "Not applicable (interface not served): " + ", ".join(SERVERS[n].label for n in skipped) + "."]
        if section.get("chart"):
            out += ["", f"![{scenario.name}]({section['chart']})"]
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------
# Charts: data preparation is plain Python (tested without matplotlib);
# drawing imports matplotlib.
# --------------------------------------------------------------------------

FASTBASE_COLOR = "#d1495b"
PEER_COLOR = "#8d99ae"
#: Line colours for peers in the sweep: no red, so fastbase stands out.
PEER_LINE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79"]


def bar_chart_data(results: list, connections: int | None = None) -> dict:
    """Bars of median req/s (fastbase first, then fastest to slowest), with
    min/max whiskers and the ratio to fastbase as text."""
    rows = []
    for r in results:
        if r["status"] != "ok":
            continue
        point = next((p for p in r["points"] if connections is None or p["connections"] == connections), None)
        if point is not None:
            rows.append((r["server"], point))
    base = next((p["rps"]["median"] for n, p in rows if n == "fastbase"), None)
    rows.sort(key=lambda row: (row[0] != "fastbase", -row[1]["rps"]["median"]))
    return {
        "labels": [SERVERS[n].label if n in SERVERS else n for n, _ in rows],
        "values": [p["rps"]["median"] for _, p in rows],
        "low": [p["rps"]["median"] - p["rps"]["min"] for _, p in rows],
        "high": [p["rps"]["max"] - p["rps"]["median"] for _, p in rows],
        "ratios": [p["rps"]["median"] / base if base else None for _, p in rows],
        "colors": [FASTBASE_COLOR if n == "fastbase" else PEER_COLOR for n, _ in rows],
    }


def sweep_chart_data(results: list) -> dict:
    """Per server: connection counts with median req/s and p99 (ms)."""
    series = {}
    for r in results:
        if r["status"] != "ok":
            continue
        points = sorted(r["points"], key=lambda p: p["connections"])
        series[SERVERS[r["server"]].label if r["server"] in SERVERS else r["server"]] = {
            "connections": [p["connections"] for p in points],
            "rps": [p["rps"]["median"] for p in points],
            "p99_ms": [p["p99_ms"]["median"] if p["p99_ms"] else None for p in points],
        }
    return series


def memory_chart_data(results: list) -> dict:
    rows = [
        (r["server"], r["memory"]["kb_per_conn"]) for r in results if r["status"] == "ok" and r["memory"].get("kb_per_conn") is not None
    ]
    rows.sort(key=lambda row: (row[0] != "fastbase", row[1]))
    return {
        "labels": [SERVERS[n].label if n in SERVERS else n for n, _ in rows],
        "values": [v for _, v in rows],
        "colors": [FASTBASE_COLOR if n == "fastbase" else PEER_COLOR for n, _ in rows],
    }


def chart_filename(scenario_name: str, quick: bool) -> str:
    return f"{'quick-' if quick else ''}{scenario_name}.png"


def write_chart(scenario: Scenario, results: list, path: Path, subtitle: str) -> bool:
    """Draw one scenario's chart to ``path``. Returns False (and draws
    nothing) when matplotlib is not installed or there is nothing to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    if scenario.kind == "memory":
        data = memory_chart_data(results)
        if not data["values"]:
            return False
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(data["values"]) + 1.6))
        ax.barh(data["labels"], data["values"], color=data["colors"])
        for y, v in enumerate(data["values"]):
            ax.text(v, y, f" {v:.1f}", va="center", fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, max(max(data["values"]), 1.0) * 1.15)
        ax.set_xlabel("KB of server RSS per idle keep-alive connection (lower is better)")
    elif len(scenario.connections) > 1:
        data = sweep_chart_data(results)
        if not data:
            return False
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
        peers = iter(PEER_LINE_COLORS * 2)
        for label, s in data.items():
            if label == "fastbase":
                style = {"color": FASTBASE_COLOR, "linewidth": 3, "zorder": 3}
            else:
                style = {"color": next(peers), "linewidth": 1.2, "linestyle": "--"}
            ax1.plot(s["connections"], s["rps"], marker="o", label=label, **style)
            ax2.plot(s["connections"], [float("nan") if v is None else v for v in s["p99_ms"]], marker="o", label=label, **style)
        for ax in (ax1, ax2):
            ax.set_xscale("log")
            ax.set_xticks(list(scenario.connections), [str(c) for c in scenario.connections])
            ax.set_xlabel("connections")
            ax.grid(True, alpha=0.3)
        ax1.set_ylabel("req/s (higher is better)")
        ax2.set_yscale("log")
        ax2.set_ylabel("p99 latency, ms (lower is better)")
        ax1.legend(fontsize=8)
    else:
        data = bar_chart_data(results)
        if not data["values"]:
            return False
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(data["values"]) + 1.6))
        ax.barh(data["labels"], data["values"], xerr=[data["low"], data["high"]], color=data["colors"], capsize=3)
        for y, (v, ratio) in enumerate(zip(data["values"], data["ratios"])):
            text = f" {v:,.0f}" + (f"  ({ratio:.2f}×)" if ratio is not None else "")
            ax.text(v, y, text, va="center", fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, max(max(data["values"]), 1.0) * 1.35)
        ax.set_xlabel("requests per second, median (higher is better); (n×) = ÷ fastbase")
    fig.suptitle(f"{scenario.title}\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------
# Machine, versions, processes.
# --------------------------------------------------------------------------


def machine_info(args) -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "memory unknown"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    wrk = "missing"
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout + ""
        match = re.search(r"wrk\s+(\S+)", out)
        wrk = match.group(1) if match else "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "memory": memory,
        "python": platform.python_version(),
        "wrk": wrk,
        "load_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "load_end": "",
        "pinning": "",
    }


_PROBE = r"""
import importlib.metadata, importlib.util, json, sys
mods, pkgs = json.loads(sys.argv[1])
out = {"modules": {m: importlib.util.find_spec(m) is not None for m in mods}, "versions": {}}
for p in pkgs:
    try:  # fastbase's distribution is fastbase-server (the name fastbase is taken on PyPI)
        out["versions"][p] = importlib.metadata.version("fastbase-server" if p == "fastbase" else p)
    except importlib.metadata.PackageNotFoundError:
        out["versions"][p] = "missing"
try:
    import fastbase.parser
    out["versions"]["fastbase"] += " (parser: " + {"c": "compiled", "py": "pure-Python twin"}[fastbase.parser.IMPLEMENTATION] + ")"
except Exception as exc:
    out["versions"]["fastbase"] += f" (not importable: {exc})"
print(json.dumps(out))
"""


def probe(python: str) -> dict:
    """Which server modules the server interpreter can import, and the
    versions of the packages the results name."""
    mods = sorted({s.module for s in SERVERS.values()})
    proc = subprocess.run(
        [python, "-c", _PROBE, json.dumps([mods, PACKAGES])], capture_output=True, text=True, cwd=APPS, env=_server_env({})
    )
    if proc.returncode:
        raise SystemExit(f"cannot probe {python}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _server_env(extra: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


_PORTS_GIVEN: set = set()


def free_port() -> int:
    """A port nothing listens on, never the same twice in one run (servers
    that run side by side must not race for one)."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def pin_prefix(cpu: int | None) -> list:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


class ServerProcess:
    """One server subprocess in its own process group, output to a log file."""

    def __init__(self, launch: Launch, cpu: int | None, log_dir: Path, name: str):
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.argv = pin_prefix(cpu) + launch.argv
        self.proc = subprocess.Popen(
            self.argv,
            cwd=APPS,
            env=_server_env(launch.env),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_raise_nofile,
        )

    def log_tail(self, lines: int = 5) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " / ".join(text[-lines:])

    def wait_ready(self, port: int, path: str, timeout: float = 60.0) -> None:
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, port), timeout=2) as s:
                    s.sendall(request)
                    if s.recv(16).startswith(b"HTTP/1."):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"did not answer within {timeout:g} s: {self.log_tail()}")

    def stop(self) -> None:
        """Ctrl-C to the server's process group, then SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Workers left behind by a master that died first (same group).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()

    def tree_rss_kb(self) -> int:
        return tree_rss_kb(self.proc.pid)


def _children_map() -> dict:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree_rss_kb(pid: int) -> int:
    """Resident memory (KB) of ``pid`` and all its descendants."""
    children = _children_map()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


# --------------------------------------------------------------------------
# Load: wrk, and the idle-connection client.
# --------------------------------------------------------------------------


def wrk_command(args, scenario: Scenario, port: int, connections: int, duration: float) -> list:
    argv = pin_prefix(args.client_pin) + [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if scenario.script:
        argv += ["-s", str(SCRIPTS / scenario.script)]
    argv.append(f"http://{HOST}:{port}{scenario.path}")
    if scenario.script_args:
        argv += ["--", *scenario.script_args]
    return argv


def run_wrk(argv: list, duration: float) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_wrk(proc.stdout)


#: Seconds a server gets to take the idle connections; one that accepts
#: more slowly (runserver: a listen backlog of 5 and a thread each) is
#: measured with the connections it took by then.
IDLE_BUDGET_S = 60.0


async def _open_idle(port: int, count: int, path: str, batch: int = 200, budget: float = IDLE_BUDGET_S):
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    streams = []
    failures = closed = 0

    async def one():
        nonlocal failures, closed
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if match:
                await asyncio.wait_for(reader.readexactly(int(match.group(1))), 10)
            if re.search(rb"(?im)^connection:\s*close", head):
                # Not a keep-alive connection (gunicorn's sync worker): close
                # it as any client would; the server may linger until we do.
                writer.close()
                closed += 1
            else:
                streams.append((reader, writer))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            failures += 1

    deadline = time.monotonic() + budget
    for start in range(0, count, batch):
        if time.monotonic() > deadline:
            break
        await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
    return streams, failures, closed


def measure_idle_memory(server: ServerProcess, port: int, count: int, path: str) -> dict:
    """Open ``count`` keep-alive connections, one request each, leave them
    idle, and read the server's RSS before and after."""
    # Settle the server first: a few requests on short connections.
    for _ in range(20):
        with socket.create_connection((HOST, port), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            while s.recv(65536):
                pass
    time.sleep(1.0)
    before = server.tree_rss_kb()
    loop = asyncio.new_event_loop()
    try:
        started = time.monotonic()
        streams, failures, closed = loop.run_until_complete(_open_idle(port, count, path))
        opened_s = time.monotonic() - started
        loop.run_until_complete(asyncio.sleep(0.5))
        after = server.tree_rss_kb()
        still_open = sum(1 for reader, _ in streams if not reader.at_eof())
        for _, writer in streams:
            writer.close()
        loop.run_until_complete(asyncio.sleep(0.2))
    finally:
        loop.close()
    per = (after - before) / still_open if still_open else None
    return {
        "asked": count,
        "opened": len(streams),
        "failed": failures,
        "closed_by_server": closed,
        "open": still_open,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "kb_per_conn": per,
        "open_time_s": opened_s,
    }


# --------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------


_EXPECTED = (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired)


def _fail(result: dict, exc: BaseException) -> None:
    result["status"] = "failed"
    result["detail"] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    print(f"  {result['server']:18} failed: {result['detail']}", flush=True)


def _start(args, scenario: Scenario, server: Server, log_dir: Path):
    port = free_port()
    launch = server.launch(args.python, scenario.interface, scenario.app, port)
    result = {"server": server.name, "status": "ok", "detail": "", "points": [], "command": shlex.join(launch.argv)}
    return result, ServerProcess(launch, args.server_pin, log_dir, f"{scenario.name}-{server.name}"), port


def run_memory(args, scenario: Scenario, servers: list, log_dir: Path) -> list:
    """One server at a time: nothing else holds connections while RSS is read."""
    results = []
    for server in servers:
        result, proc, port = _start(args, scenario, server, log_dir)
        results.append(result)
        try:
            proc.wait_ready(port, scenario.path)
            result["memory"] = m = measure_idle_memory(proc, port, args.idle_connections, scenario.path)
            per = f"{m['kb_per_conn']:.1f} KB/conn" if m["kb_per_conn"] is not None else "n/a"
            print(f"  {server.name:18} {m['open']:>6,} open  {per}  (opened in {m['open_time_s']:.1f} s)", flush=True)
        except _EXPECTED as exc:
            _fail(result, exc)
        finally:
            proc.stop()
    return results


def interleaved_order(names: list, run_index: int) -> list:
    """The servers' order in run ``run_index``: rotated by one each run, so
    no server is always measured first (or right after the slowest one)."""
    if not names:
        return []
    shift = run_index % len(names)
    return names[shift:] + names[:shift]


def run_wrk_scenario(args, scenario: Scenario, servers: list, log_dir: Path) -> list:
    """Every server of the scenario runs at once (idle while another one is
    measured) and the wrk runs go round-robin across them: a burst of load
    from elsewhere on the machine then hits each server's runs alike instead
    of one server's whole measurement."""
    started = {}
    results = []
    try:
        for server in servers:
            result, proc, port = _start(args, scenario, server, log_dir)
            results.append(result)
            started[server.name] = (result, proc, port)
        for name, (result, proc, port) in list(started.items()):
            try:
                proc.wait_ready(port, scenario.path)
                if args.warmup > 0:
                    warm = run_wrk(wrk_command(args, scenario, port, scenario.connections[0], args.warmup), args.warmup)
                    if warm["requests"] == 0:
                        raise RuntimeError("answered no request during the warm-up")
            except _EXPECTED as exc:
                _fail(result, exc)
                proc.stop()
                del started[name]
        for connections in scenario.connections:
            runs = {name: [] for name in started}
            for index in range(args.runs):
                for name in interleaved_order(list(started), index):
                    result, proc, port = started[name]
                    try:
                        runs[name].append(run_wrk(wrk_command(args, scenario, port, connections, args.duration), args.duration))
                    except _EXPECTED as exc:
                        _fail(result, exc)
                        proc.stop()
                        del started[name]
            for name in started:
                result = started[name][0]
                point = aggregate(runs[name], connections)
                result["points"].append(point)
                print(
                    f"  {name:18} c={connections:<5} {fmt_rps(point['rps']['median']):>9} req/s  "
                    f"p50 {_latency_cell(scenario, point['p50_ms'])} ms  "
                    f"p99 {_latency_cell(scenario, point['p99_ms'])} ms" + (f"  errors {point['errors']}" if point["errors"] else ""),
                    flush=True,
                )
    finally:
        for _, proc, _ in started.values():
            proc.stop()
    return results


def run_scenario(args, scenario: Scenario, installed: dict, log_dir: Path) -> dict:
    print(f"[{scenario.name}] {scenario.title}", flush=True)
    section = {"scenario": scenario.name, "results": [], "not_applicable": []}
    runnable = []
    for name in args.servers:
        server = SERVERS[name]
        if scenario.interface not in server.interfaces:
            section["not_applicable"].append(name)
        elif not installed.get(server.module):
            print(f"  {name:18} missing", flush=True)
        else:
            runnable.append(server)
    run = run_memory if scenario.kind == "memory" else run_wrk_scenario
    measured = {r["server"]: r for r in run(args, scenario, runnable, log_dir)}
    # The table keeps the servers' canonical order, missing ones included.
    for name in args.servers:
        if name in measured:
            section["results"].append(measured[name])
        elif name not in section["not_applicable"]:
            section["results"].append({"server": name, "status": "missing", "detail": f"no module {SERVERS[name].module}", "points": []})
    return section


def pin_cores(args, pin_self: bool) -> bool:
    """Pin servers to --server-cpu and the load generator to --client-cpu
    (args.server_pin / args.client_pin; None each when that cannot be done:
    no taskset, fewer than two CPUs, or the same CPU twice). With
    ``pin_self`` this script's own work moves to the client core too.
    Shared by the bench scripts; True when pinned."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if not shutil.which("taskset") or len(cpus) < 2 or args.server_cpu == args.client_cpu:
        args.server_pin = args.client_pin = None
        return False
    args.server_pin, args.client_pin = args.server_cpu, args.client_cpu
    if pin_self:
        os.sched_setaffinity(0, {args.client_cpu})
    return True


def pinning(args) -> str:
    # This script's own work (the idle-connection client) stays off the
    # server's core too.
    if not pin_cores(args, pin_self=True):
        return "none (needs taskset and two distinct CPUs)"
    return f"servers on CPU {args.server_cpu}, wrk and the idle-connection client on CPU {args.client_cpu}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the servers
    # started so far are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:16} {'quick ' if s.quick else '      '}{s.title}")
        print()
        for s in SERVERS.values():
            print(f"{s.name:18} {s.label}: {', '.join(s.interfaces)}")
        return 0
    if not shutil.which("wrk") and any(SCENARIOS[n].kind == "wrk" for n in args.scenarios):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    _raise_nofile()
    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info(args)
    machine["pinning"] = pinning(args)
    info = probe(args.python)
    report = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "bench/run.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "quick": args.quick,
        "duration": args.duration,
        "warmup": args.warmup,
        "runs": args.runs,
        "idle_connections": args.idle_connections,
        "machine": machine,
        "versions": info["versions"],
        "servers": args.servers,
        "scenarios": [],
    }
    print(f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_start']}; {machine['pinning']}")
    with tempfile.TemporaryDirectory(prefix="fastbase-bench-") as tmp:
        for name in args.scenarios:
            report["scenarios"].append(run_scenario(args, SCENARIOS[name], info["modules"], Path(tmp)))
    report["elapsed_s"] = time.monotonic() - started
    machine["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    write_outputs(args, report, now)
    return 0


def write_report(args, report: dict, markdown: str, now: datetime.datetime, name: str = "") -> None:
    """Write a run's markdown to --output as ``{quick-}{name}latest.md``, and
    the dated markdown and JSON (``{quick-}{name}{stamp}.md``/``.json``) to
    its ``raw/`` folder, which git ignores: only the reports the READMEs
    link are committed. Shared by the bench scripts."""
    prefix = ("quick-" if args.quick else "") + name
    stamp = now.strftime("%Y-%m-%d-%H%M")
    raw = args.output / RAW
    raw.mkdir(parents=True, exist_ok=True)
    latest = args.output / f"{prefix}latest.md"
    latest.write_text(markdown)
    (raw / f"{prefix}{stamp}.md").write_text(markdown)
    (raw / f"{prefix}{stamp}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"\nwrote {latest} (and {RAW}/{prefix}{stamp}.md, .json); took {format_duration(report['elapsed_s'])}")


def write_outputs(args, report: dict, now: datetime.datetime) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.no_charts:
        pinned = ", server pinned to 1 core" if args.server_pin is not None else ""
        subtitle = f"{report['machine']['cpu']}{pinned}, {report['date']}"
        drawn = 0
        for section in report["scenarios"]:
            scenario = SCENARIOS[section["scenario"]]
            if not scenario.chart:
                continue
            path = args.charts_dir / chart_filename(scenario.name, args.quick)
            if write_chart(scenario, section["results"], path, subtitle):
                section["chart"] = os.path.relpath(path, args.output)
                drawn += 1
        if not drawn and report["scenarios"]:
            print("no charts drawn (matplotlib not installed?)", file=sys.stderr)
    write_report(args, report, render_markdown(report), now)


if __name__ == "__main__":
    sys.exit(main())
