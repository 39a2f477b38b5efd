"""The load benchmark script's own logic (bench/run.py): argument parsing,
wrk output parsing, statistics, the markdown and chart writers. No server is
started and wrk is never run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent / "run.py"
_spec = importlib.util.spec_from_file_location("bench_run", _PATH)
run = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = run  # dataclasses look their module up by name
_spec.loader.exec_module(run)


WRK_MS = """\
Running 5s test @ http://127.0.0.1:8000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.27ms  412.33us  12.01ms   90.12%
    Req/Sec    32.41k     1.20k   34.50k    80.00%
  Latency Distribution
     50%    1.21ms
     75%    1.40ms
     90%    1.62ms
     99%    2.50ms
  161234 requests in 5.00s, 20.14MB read
Requests/sec:  32246.80
Transfer/sec:      4.03MB
"""

WRK_US_AND_ERRORS = """\
Running 2s test @ http://127.0.0.1:8000/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    61.00us   10.00us   1.00ms   95.00%
    Req/Sec    16.00k   500.00    16.50k    70.00%
  Latency Distribution
     50%   58.00us
     75%   62.00us
     90%   70.00us
     99%  120.50us
  32000 requests in 2.00s, 3.00MB read
  Socket errors: connect 3, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 7
Requests/sec:  15999.50
Transfer/sec:      1.50MB
"""

WRK_SECONDS = """\
Running 5s test @ http://127.0.0.1:8000/
  1 threads and 1024 connections
  Latency Distribution
     50%  750.00ms
     75%    1.20s
     90%    1.90s
     99%    2.45s
  3000 requests in 5.01s, 300.00KB read
  Socket errors: connect 0, read 0, write 0, timeout 120
Requests/sec:    598.80
Transfer/sec:     59.88KB
"""

WRK_PIPELINED_ZEROES = """\
  Latency Distribution
     50%  262.38ms
     75%    0.00us
     90%    0.00us
     99%    0.00us
  10258 requests in 2.02s, 1.33MB read
Requests/sec:   5069.58
"""


# --- argument parsing ------------------------------------------------------


def test_full_defaults():
    args = run.parse_args([])
    assert (args.duration, args.warmup, args.runs, args.idle_connections) == (5.0, 2.0, 3, 10_000)
    assert args.scenarios == list(run.SCENARIOS)
    assert args.servers == list(run.SERVERS)
    assert (args.server_cpu, args.client_cpu) == (1, 0)
    assert not args.quick and not args.no_charts


def test_quick_defaults_and_subset():
    args = run.parse_args(["--quick"])
    assert (args.duration, args.warmup, args.runs, args.idle_connections) == (2.0, 1.0, 1, 1_000)
    assert args.scenarios == [n for n, s in run.SCENARIOS.items() if s.quick]
    assert 0 < len(args.scenarios) < len(run.SCENARIOS)


def test_explicit_values_win_over_quick():
    args = run.parse_args(["--quick", "--duration", "7", "--runs", "5", "--warmup", "0", "--idle-connections", "50"])
    assert (args.duration, args.runs, args.warmup, args.idle_connections) == (7.0, 5, 0.0, 50)


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenarios", "sweep", "wsgi-hello"],
        ["--scenarios", "sweep,wsgi-hello"],
        ["--scenarios", "sweep", "--scenarios", "wsgi-hello"],
    ],
    ids=["spaces", "commas", "repeated"],
)
def test_scenarios_in_canonical_order(argv):
    assert run.parse_args(argv).scenarios == ["wsgi-hello", "sweep"]


def test_servers_always_include_fastbase():
    args = run.parse_args(["--servers", "granian", "waitress"])
    assert args.servers == ["fastbase", "granian", "waitress"]


@pytest.mark.parametrize(
    "argv",
    [["--scenarios", "nope"], ["--servers", "apache"], ["--runs", "0"], ["--duration", "-1"], ["--runs", "x"]],
    ids=["scenario", "server", "zero-runs", "negative-duration", "not-a-number"],
)
def test_bad_arguments_exit(argv, capsys):
    with pytest.raises(SystemExit) as info:
        run.parse_args(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


# --- wrk output ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value, unit, ms",
    [("58.00", "us", 0.058), ("1.21", "ms", 1.21), ("2.45", "s", 2450.0), ("1.50", "m", 90_000.0)],
)
def test_to_ms(value, unit, ms):
    assert run.to_ms(value, unit) == pytest.approx(ms)


def test_parse_wrk_milliseconds():
    result = run.parse_wrk(WRK_MS)
    assert result == {"rps": 32246.80, "p50_ms": pytest.approx(1.21), "p99_ms": pytest.approx(2.50), "requests": 161234, "errors": 0}


def test_parse_wrk_microseconds_and_errors():
    result = run.parse_wrk(WRK_US_AND_ERRORS)
    assert result["rps"] == 15999.50
    assert result["p50_ms"] == pytest.approx(0.058)
    assert result["p99_ms"] == pytest.approx(0.1205)
    assert result["errors"] == 3 + 2 + 1 + 4 + 7


def test_parse_wrk_seconds():
    result = run.parse_wrk(WRK_SECONDS)
    assert result["p50_ms"] == pytest.approx(750.0)
    assert result["p99_ms"] == pytest.approx(2450.0)
    assert result["errors"] == 120 and result["requests"] == 3000


def test_parse_wrk_lost_percentiles_are_none():
    result = run.parse_wrk(WRK_PIPELINED_ZEROES)
    assert result["p50_ms"] == pytest.approx(262.38)
    assert result["p99_ms"] is None


@pytest.mark.parametrize(
    "output",
    [
        "",
        "unable to connect to 127.0.0.1:8000 Connection refused\n",
        WRK_MS.replace("     50%    1.21ms\n", "").replace("     99%    2.50ms\n", ""),
    ],
    ids=["empty", "refused", "no-latency"],
)
def test_parse_wrk_refuses_output_without_numbers(output):
    with pytest.raises(ValueError):
        run.parse_wrk(output)


# --- statistics ----------------------------------------------------------------


@pytest.mark.parametrize(
    "values, expected",
    [([3.0], (3.0, 3.0, 3.0)), ([5.0, 1.0, 3.0], (3.0, 1.0, 5.0)), ([4, 1, 2, 10], (3.0, 1, 10))],
    ids=["one", "odd", "even"],
)
def test_summarize(values, expected):
    s = run.summarize(values)
    assert (s["median"], s["min"], s["max"]) == expected


def test_summarize_empty():
    with pytest.raises(ValueError):
        run.summarize([])


def _run(rps, p50=1.0, p99=2.0, errors=0):
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": int(rps), "errors": errors}


def test_aggregate_medians_and_errors():
    point = run.aggregate([_run(100, 1.0, 5.0, 1), _run(300, 3.0, 9.0), _run(200, 2.0, None, 2)], 64)
    assert point["connections"] == 64
    assert point["rps"] == {"median": 200, "min": 100, "max": 300}
    assert point["p50_ms"]["median"] == 2.0
    assert point["p99_ms"] == {"median": 7.0, "min": 5.0, "max": 9.0}  # the None is left out
    assert point["errors"] == 3


def test_aggregate_no_latency_at_all():
    assert run.aggregate([_run(10, None, None)], 1)["p99_ms"] is None


# --- tables --------------------------------------------------------------------


def _ok(server, *points):
    return {
        "server": server,
        "status": "ok",
        "detail": "",
        "points": [run.aggregate([_run(rps, p50, p99)], conns) for conns, rps, p50, p99 in points],
    }


def _rows(table):
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]


def test_scenario_table():
    results = [
        _ok("fastbase", (64, 40_000, 1.2, 3.456)),
        _ok("granian", (64, 20_000, 2.5, 120.4)),
        {"server": "daphne", "status": "missing", "detail": "no module daphne", "points": []},
        {"server": "waitress", "status": "failed", "detail": "exited with 1", "points": []},
    ]
    rows = _rows(run.scenario_table(run.SCENARIOS["wsgi-hello"], results))
    assert rows[0] == ["server", "req/s (median)", "min – max", "÷ fastbase", "p50 ms", "p99 ms", "errors"]
    assert rows[1][0] == "---" and set(rows[1][1:]) == {"---:"}
    assert rows[2] == ["fastbase", "40,000", "40,000 – 40,000", "1.00×", "1.20", "3.46", "0"]
    assert rows[3] == ["granian", "20,000", "20,000 – 20,000", "0.50×", "2.50", "120", "0"]
    # A missing or failed peer stays in the table, saying so.
    assert rows[4][:2] == ["daphne", "missing (no module daphne)"]
    assert rows[5][:2] == ["waitress", "failed (exited with 1)"]
    assert all(len(r) == len(rows[0]) for r in rows)


def test_scenario_table_without_fastbase_has_no_ratio():
    results = [{"server": "fastbase", "status": "failed", "detail": "boom", "points": []}, _ok("granian", (64, 20_000, 2.5, 12.0))]
    rows = _rows(run.scenario_table(run.SCENARIOS["wsgi-hello"], results))
    assert rows[3][3] == "–"


def test_sweep_table_has_a_row_per_connection_count_and_ratio_per_count():
    results = [
        _ok("fastbase", (1, 10_000, 0.1, 0.2), (64, 40_000, 1.0, 2.0), (1024, 30_000, 30.0, 60.0)),
        _ok("waitress", (1, 5_000, 0.2, 0.4), (64, 10_000, 6.0, 9.0), (1024, 30_000, 300.0, 900.0)),
    ]
    rows = _rows(run.scenario_table(run.SCENARIOS["sweep"], results))
    assert rows[0][:2] == ["server", "conns"]
    waitress = [r for r in rows if r[0] == "waitress"]
    assert [(r[1], r[4]) for r in waitress] == [("1", "0.50×"), ("64", "0.25×"), ("1024", "1.00×")]


def test_pipelined_table_shows_no_latency():
    rows = _rows(run.scenario_table(run.SCENARIOS["pipelined"], [_ok("fastbase", (64, 100_000, 9.0, 20.0))]))
    assert rows[2][4:6] == ["–", "–"]


def _mem(server, asked, still_open, before, after):
    per = (after - before) / still_open if still_open else None
    return {
        "server": server,
        "status": "ok",
        "detail": "",
        "points": [],
        "memory": {"asked": asked, "open": still_open, "rss_before_kb": before, "rss_after_kb": after, "kb_per_conn": per},
    }


def test_memory_table():
    results = [
        _mem("fastbase", 10_000, 10_000, 20_480, 60_480),
        _mem("uvicorn-h11", 10_000, 9_000, 30_720, 120_720),
        _mem("gunicorn-sync", 10_000, 0, 10_240, 10_240),
        {"server": "daphne", "status": "missing", "detail": "", "points": []},
    ]
    rows = _rows(run.memory_table(results))
    assert rows[2] == ["fastbase", "10,000", "10,000", "20.0", "59.1", "4.0", "1.00×"]
    assert rows[3] == ["uvicorn (h11)", "10,000", "9,000", "30.0", "117.9", "10.0", "2.50×"]
    assert rows[4][-2:] == ["–", "–"]
    assert rows[5][:2] == ["daphne", "missing"]


@pytest.mark.parametrize("value, text", [(0.0581, "0.06"), (12.34, "12.3"), (1234.5, "1,234"), (None, "–")])
def test_fmt_ms(value, text):
    assert run.fmt_ms(value) == text


@pytest.mark.parametrize("seconds, text", [(42.4, "42 s"), (125, "2 min 5 s"), (3725, "1 h 2 min 5 s")])
def test_format_duration(seconds, text):
    assert run.format_duration(seconds) == text


def _report(tmp_chart=None):
    wrk_section = {
        "scenario": "wsgi-hello",
        "not_applicable": ["daphne"],
        "results": [_ok("fastbase", (64, 40_000, 1.2, 3.4)), _ok("granian", (64, 20_000, 2.5, 5.0))],
    }
    if tmp_chart:
        wrk_section["chart"] = tmp_chart
    return {
        "date": "2026-11-26 22:40 UTC",
        "command": "python bench/run.py --quick",
        "quick": True,
        "elapsed_s": 125.0,
        "duration": 2.0,
        "warmup": 1.0,
        "runs": 1,
        "idle_connections": 1000,
        "machine": {
            "cpu": "AMD EPYC",
            "cores": 2,
            "kernel": "6.1",
            "memory": "24 GiB RAM",
            "python": "3.11.7",
            "wrk": "4.1.0",
            "load_start": "0.10 / 0.20 / 0.30",
            "load_end": "1.00 / 0.50 / 0.40",
            "pinning": "servers on CPU 1, wrk on CPU 0",
        },
        "versions": {"fastbase": "0.1.0 (parser: compiled)", "granian": "2.8.9", "daphne": "missing"},
        "servers": ["fastbase", "granian", "daphne"],
        "scenarios": [
            wrk_section,
            {"scenario": "memory-asgi", "not_applicable": [], "results": [_mem("fastbase", 1000, 1000, 20_000, 24_000)]},
        ],
    }


def test_render_markdown():
    text = run.render_markdown(_report("../charts/quick-wsgi-hello.png"))
    assert text.startswith("# fastbase load benchmarks — 2026-11-26 22:40 UTC\n")
    for needle in [
        "took 2 min 5 s",
        "AMD EPYC, 2 cores",
        "Python 3.11.7",
        "0.10 / 0.20 / 0.30",
        "granian 2.8.9",
        "daphne missing",
        "## wsgi-hello — ",
        "| granian | 20,000 |",
        "Not applicable (interface not served): daphne.",
        "![wsgi-hello](../charts/quick-wsgi-hello.png)",
        "## memory-asgi — ",
        "| fastbase | 1,000 | 1,000 |",
    ]:
        assert needle in text, needle


# --- charts ---------------------------------------------------------------------


def test_bar_chart_data_puts_fastbase_first_then_fastest():
    results = [
        _ok("waitress", (64, 10_000, 1, 2)),
        _ok("fastbase", (64, 40_000, 1, 2)),
        {"server": "daphne", "status": "missing", "detail": "", "points": []},
        _ok("granian", (64, 50_000, 1, 2)),
    ]
    results[0]["points"] = [run.aggregate([_run(9_000), _run(10_000), _run(12_000)], 64)]
    data = run.bar_chart_data(results)
    assert data["labels"] == ["fastbase", "granian", "waitress"]
    assert data["values"] == [40_000, 50_000, 10_000]
    assert data["ratios"] == [1.0, 1.25, 0.25]
    assert (data["low"][2], data["high"][2]) == (1_000, 2_000)
    assert data["colors"][0] == run.FASTBASE_COLOR and set(data["colors"][1:]) == {run.PEER_COLOR}


def test_sweep_chart_data():
    results = [_ok("fastbase", (1024, 30_000, 30.0, 60.0), (1, 10_000, 0.1, 0.2))]
    assert run.sweep_chart_data(results) == {"fastbase": {"connections": [1, 1024], "rps": [10_000, 30_000], "p99_ms": [0.2, 60.0]}}


def test_memory_chart_data_lowest_first_after_fastbase():
    results = [
        _mem("uvicorn-h11", 100, 100, 0, 1000),
        _mem("granian", 100, 100, 0, 300),
        _mem("fastbase", 100, 100, 0, 500),
        _mem("gunicorn-sync", 100, 0, 0, 0),
    ]
    data = run.memory_chart_data(results)
    assert data["labels"] == ["fastbase", "granian", "uvicorn (h11)"]
    assert data["values"] == [5.0, 3.0, 10.0]


def test_chart_filename():
    assert run.chart_filename("sweep", quick=False) == "sweep.png"
    assert run.chart_filename("sweep", quick=True) == "quick-sweep.png"


@pytest.mark.parametrize("scenario", ["wsgi-hello", "sweep", "memory-asgi"])
def test_write_chart(tmp_path, scenario):
    """Draws a PNG when matplotlib is installed; otherwise says it drew
    nothing instead of failing (matplotlib is in the bench extra only)."""
    if scenario == "memory-asgi":
        results = [_mem("fastbase", 100, 100, 0, 500), _mem("granian", 100, 100, 0, 300)]
    elif scenario == "sweep":
        results = [_ok("fastbase", (1, 10_000, 0.1, 0.2), (64, 40_000, 1.0, None), (1024, 30_000, 30.0, 60.0))]
    else:
        results = [_ok("fastbase", (64, 40_000, 1.2, 3.4)), _ok("granian", (64, 20_000, 2.5, 5.0))]
    path = tmp_path / "charts" / f"{scenario}.png"
    drawn = run.write_chart(run.SCENARIOS[scenario], results, path, "test machine")
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert drawn is has_matplotlib
    assert path.exists() is has_matplotlib
    if drawn:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_write_chart_nothing_to_draw(tmp_path):
    results = [{"server": "fastbase", "status": "failed", "detail": "", "points": []}]
    assert run.write_chart(run.SCENARIOS["wsgi-hello"], results, tmp_path / "x.png", "") is False


# --- server command lines ------------------------------------------------------


def test_every_server_has_a_launcher_for_each_interface():
    for server in run.SERVERS.values():
        for interface in server.interfaces:
            launch = server.launch("python", interface, "hello:wsgi", 12345)
            assert launch.argv[0] == "python"
            assert any("12345" in a for a in launch.argv), (server.name, interface)


def test_fastbase_runserver_adds_the_app_only_for_fastbase():
    fb = run.SERVERS["fastbase"].launch("python", "runserver-wsgi", "", 9000)
    stock = run.SERVERS["runserver"].launch("python", "runserver-wsgi", "", 9000)
    assert fb.argv == stock.argv == ["python", "manage.py", "runserver", "127.0.0.1:9000", "--noreload"]
    assert fb.env == {"BENCH_DJANGO_FASTBASE": "1"} and stock.env == {}
    asgi = run.SERVERS["fastbase"].launch("python", "runserver-asgi", "", 9000)
    assert "--asgi" in asgi.argv and asgi.env["BENCH_DJANGO_ASGI"] == "1"


def test_wrk_command(tmp_path):
    args = run.parse_args(["--quick"])
    args.client_pin = 0
    argv = run.wrk_command(args, run.SCENARIOS["post-1m"], 8123, 16, 2.0)
    assert argv[:3] == ["taskset", "-c", "0"]
    assert argv[3:9] == ["wrk", "-t1", "-c16", "-d2s", "--latency", "--timeout"]
    assert argv[-5:-3] == ["-s", str(run.SCRIPTS / "post.lua")]
    assert argv[-3:] == ["http://127.0.0.1:8123/echo", "--", "1048576"]
    args.client_pin = None
    assert run.wrk_command(args, run.SCENARIOS["wsgi-hello"], 8123, 64, 0.4)[:4] == ["wrk", "-t1", "-c64", "-d1s"]


def test_lua_scripts_exist():
    for scenario in run.SCENARIOS.values():
        if scenario.script:
            assert (run.SCRIPTS / scenario.script).is_file()


def test_tree_rss_of_this_process():
    import os

    assert run.tree_rss_kb(os.getpid()) > 1000


def test_interleaved_order_rotates():
    names = ["fastbase", "granian", "waitress"]
    assert [run.interleaved_order(names, i) for i in range(4)] == [
        ["fastbase", "granian", "waitress"],
        ["granian", "waitress", "fastbase"],
        ["waitress", "fastbase", "granian"],
        ["fastbase", "granian", "waitress"],
    ]
    assert run.interleaved_order([], 3) == []


def test_free_ports_are_distinct():
    ports = {run.free_port() for _ in range(50)}
    assert len(ports) == 50
