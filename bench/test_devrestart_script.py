"""The dev-restart benchmark script's own logic (bench/devrestart_bench.py):
which server each kind runs, the project copies, the DevTools client on a
fake connection, the reload/exit lines, the tables. No server, no browser."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent / "devrestart_bench.py"
_spec = importlib.util.spec_from_file_location("bench_devrestart", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_devrestart"] = bench  # dataclasses look their module up by name
_spec.loader.exec_module(bench)


# -- which server each row runs -------------------------------------------------


def test_stock_runs_without_fastbase():
    # The first version passed the kind's name as the fastbase flag: every
    # row, "stock runserver" too, ran runserver through fastbase.
    assert bench.server_env("stock")["BENCH_FASTBASE"] == "0"
    assert bench.server_env("fastbase")["BENCH_FASTBASE"] == "1"
    assert bench.server_env("reload")["BENCH_FASTBASE"] == "1"


def test_commands():
    assert bench.server_command("stock", 8555)[1:] == ["manage.py", "runserver", "127.0.0.1:8555"]
    assert bench.server_command("fastbase", 8555) == bench.server_command("stock", 8555)
    reload = bench.server_command("reload", 8555)
    assert reload[1:4] == ["-m", "fastbase", "--reload"] and "8555" in reload and reload[-1] == "mysite.wsgi:application"


def test_pinned():
    assert bench.pinned(["x", "y"], None) == ["x", "y"]
    assert bench.pinned(["x", "y"], "1") == ["taskset", "-c", "1", "x", "y"]


def test_parse_kinds():
    assert bench.parse_kinds("stock, fastbase") == ["stock", "fastbase"]
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_kinds("stock,gunicorn")
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_kinds(",")


# -- project copies ----------------------------------------------------------------


def test_socket_project_is_the_test_project(tmp_path):
    project = bench.prepare_project(str(tmp_path))
    assert bench.VIEWS_LINE in (project / "mysite" / "views.py").read_text()
    assert (project / "benchsettings.py").read_text() == bench.BENCHSETTINGS
    assert not (project / "benchurls.py").exists()


def test_admin_project_serves_the_admin(tmp_path):
    project = bench.prepare_project(str(tmp_path), admin=True)
    assert (project / "bench.sqlite3").exists()  # migrated
    assert bench.TITLE_LINE in (project / "benchurls.py").read_text()
    env = dict(os.environ, **bench.server_env("stock"), PYTHONPATH=str(project))
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/admin/login/')\n"
        "print(r.status_code, b'<title>Log in | Django site admin</title>' in r.content)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["200", "True"]


# -- the DevTools client ----------------------------------------------------------------


class FakeSocket:
    """Answers each command with the messages queued for it."""

    def __init__(self, script):
        self.script = script  # method -> list of messages (an "id" of None is the command's)
        self.sent = []
        self.inbox = []

    def send(self, text):
        message = json.loads(text)
        self.sent.append(message)
        for reply in self.script.get(message["method"], []):
            if "id" in reply and reply["id"] is None:
                reply = dict(reply, id=message["id"])
            self.inbox.append(json.dumps(reply))

    def recv(self, timeout=None):
        if not self.inbox:
            raise TimeoutError
        return self.inbox.pop(0)


LOAD = {"method": "Page.lifecycleEvent", "params": {"name": "load", "loaderId": "L2"}}


def test_call_keeps_the_events_before_its_result():
    ws = FakeSocket(
        {
            "Page.navigate": [
                {"method": "Page.lifecycleEvent", "params": {"name": "init", "loaderId": "L2"}},
                {"id": None, "result": {"frameId": "F", "loaderId": "L2"}},
                LOAD,
            ]
        }
    )
    tab = bench.DevTools(ws)
    assert tab.call("Page.navigate", url="http://x/") == {"frameId": "F", "loaderId": "L2"}
    assert ws.sent == [{"id": 1, "method": "Page.navigate", "params": {"url": "http://x/"}}]
    assert [e["params"]["name"] for e in tab.events] == ["init"]
    assert tab.wait_event(bench.is_load_of("L2"), timeout=1) == LOAD
    assert tab.events == []


def test_wait_event_matches_the_loader():
    assert bench.is_load_of("L2")(LOAD)
    assert not bench.is_load_of("L1")(LOAD)
    assert not bench.is_load_of("L2")({"method": "Page.lifecycleEvent", "params": {"name": "DOMContentLoaded", "loaderId": "L2"}})
    tab = bench.DevTools(FakeSocket({}))
    tab.events.append({"method": "Page.lifecycleEvent", "params": {"name": "load", "loaderId": "L1"}})
    with pytest.raises(bench.DevToolsError, match="timed out"):
        tab.wait_event(bench.is_load_of("L2"), timeout=1)


def test_call_errors():
    tab = bench.DevTools(FakeSocket({"Page.navigate": [{"id": None, "error": {"code": -32000, "message": "Cannot navigate"}}]}))
    with pytest.raises(bench.DevToolsError, match="Page.navigate: Cannot navigate"):
        tab.call("Page.navigate", url="bad")
    with pytest.raises(bench.DevToolsError, match="timed out waiting for Page.enable"):
        tab.call("Page.enable")


# -- the server's lines -------------------------------------------------------------------


def test_reload_and_exit_lines(tmp_path):
    server = bench.Runserver.__new__(bench.Runserver)
    server.reloads, server.exits = [], []
    server.log = open(tmp_path / "log", "w")  # noqa: SIM115
    server.proc = types.SimpleNamespace(
        stderr=io.StringIO(
            "Watching for file changes with StatReloader\n"
            "/tmp/p/benchurls.py changed, reloading.\n"
            "bench: process 99999999 exiting at 1796617224.158\n"
            "2026-12-07 04:00:00 [INFO] Changes in app.py; restarting\n"
        )
    )
    server._read()
    server.log.close()
    assert len(server.reloads) == 2
    assert [exit[:2] for exit in server.exits] == [[1, 1796617224.158]]
    assert len((tmp_path / "log").read_text().splitlines()) == 4


def test_old_process_gone():
    exits = [[0, 5.0, 5.1], [1, 10.003, None], [2, 20.0, 20.04], [3, 29.998, None]]
    assert bench.old_process_gone(exits, 0, 10.0) == pytest.approx(0.003)  # never seen gone: its atexit hook
    assert bench.old_process_gone(exits, 1, 19.5) == pytest.approx(0.54)
    # Written before this script read the reload line: an exit at once.
    assert bench.old_process_gone(exits, 2, 30.0) == 0.0
    assert bench.old_process_gone(exits, 3, 40.0) is None


# -- reports ----------------------------------------------------------------------------------


def test_watch_exit():
    if not Path("/proc/self").exists():
        pytest.skip("no /proc")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    exit = [0, 0.0, None]
    bench.watch_exit(child.pid, exit, timeout=0.05)
    assert exit[2] is None  # still running
    child.wait()
    bench.watch_exit(child.pid, exit)
    assert exit[2] is not None


def test_summary():
    assert bench.summary([]) == "-"
    assert bench.summary([None]) == "-"
    assert bench.summary([1.0, None, 3.0, 2.0]) == "2.000 (1.000-3.000)"


def test_browser_rows():
    refused = "net::ERR_CONNECTION_REFUSED"
    results = [
        bench.BrowserRound("stock", 1.5, 0.9, 0.0, 1.7, 12, {refused: 3}, 5),
        bench.BrowserRound("fastbase", 1.0, 0.8, 0.02, 1.2, 10, {refused: 4}, 4),
        bench.BrowserRound("stock", 1.7, 1.1, 0.0, 1.9, 14, {refused: 2, "net::ERR_EMPTY_RESPONSE": 1}, 6),
        bench.BrowserRound("fastbase", 1.2, None, None, 1.4, 11, {}, 6),
    ]
    rows = bench.browser_rows(results, ["stock", "fastbase"])
    assert rows == [
        "| stock runserver | 1.600 (1.500-1.700) | 1.000 (0.900-1.100) | 0.000 (0.000-0.000) | 1.800 (1.700-1.900) | 13 "
        "| net::ERR_CONNECTION_REFUSED 5, net::ERR_EMPTY_RESPONSE 1 |",
        "| runserver via fastbase | 1.100 (1.000-1.200) | 0.800 (0.800-0.800) | 0.020 (0.020-0.020) | 1.300 (1.200-1.400) | 10.5 "
        "| net::ERR_CONNECTION_REFUSED 4 |",
    ]
    assert all(row.count("|") == bench.BROWSER_TABLE[0].count("|") for row in rows)
