"""--workers: a supervisor with forked workers sharing one socket."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import sys
import tempfile
import threading
import time

import pytest

from subprocess_server import loop_params, server_process

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers needs fork()")

DEADLINE = 30.0


def get(port: int, path: str = "/", timeout: float = 10.0) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200, response.status
        return response.read().decode()
    finally:
        conn.close()


def pids_until(port: int, predicate, what: str) -> set:
    """Request on fresh connections until ``predicate(pids)`` holds."""
    pids: set = set()
    deadline = time.monotonic() + DEADLINE
    while not predicate(pids):
        assert time.monotonic() < deadline, f"{what}: only saw {pids}"
        pids.add(int(get(port)))
    return pids


def test_two_workers_serve_and_a_killed_one_is_replaced():
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", "--log-level", "info") as proc:
        port = proc.wait_serving()
        first = pids_until(port, lambda p: len(p) == 2, "both workers")
        assert proc.pid not in first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        proc.wait_for_line(rf"Worker {victim} died \(signal SIGKILL\); starting a new one")
        # Every request keeps succeeding; a new pid appears.
        pids_until(port, lambda p: bool(p - first), "a replacement worker")


def test_max_requests_recycles_workers_without_failing_requests():
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", "--max-requests", "5", "--log-level", "info") as proc:
        port = proc.wait_serving()
        seen = [int(get(port)) for _ in range(40)]
        # 40 requests over 2 workers recycling every 5: at least 6 distinct pids.
        assert len(set(seen)) >= 6, seen
        proc.wait_for_line(r"Served 5 requests \(--max-requests\)")


def test_sighup_replaces_every_worker_while_requests_continue():
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", "--log-level", "info") as proc:
        port = proc.wait_serving()
        before = pids_until(port, lambda p: len(p) == 2, "both workers")
        failures: list = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                try:
                    get(port)
                except Exception as exc:  # noqa: BLE001 - recorded, asserted below
                    failures.append(exc)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            proc.send_signal(signal.SIGHUP)
            proc.wait_for_line("Reloading: replacing 2 workers")
            pids_until(port, lambda p: len(p - before) == 2, "two new workers")
            for old in before:
                proc.wait_for_line(rf"Worker {old} stopped")
        finally:
            stop.set()
            thread.join(30)
        assert failures == []


def test_sigterm_lets_in_flight_request_finish(tmp_path):
    release = tmp_path / "release"
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", "--log-level", "info") as proc:
        port = proc.wait_serving()
        result: list = []
        thread = threading.Thread(target=lambda: result.append(get(port, f"/slow?{release}", timeout=30)))
        thread.start()
        proc.wait_for_line(r"app: slow \d+")
        proc.send_signal(signal.SIGTERM)
        proc.wait_for_line("Shutting down: stopping 2 workers gracefully")
        release.touch()
        thread.join(30)
        assert result and result[0].isdigit()
        assert proc.wait(DEADLINE) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_blocked_worker_is_killed_and_replaced():
    with server_process(
        "worker_apps:pid",
        "--workers",
        "2",
        "--port",
        "0",
        "--threads",
        "0",
        "--timeout-worker",
        "1",
        "--log-level",
        "info",
    ) as proc:
        port = proc.wait_serving()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        conn.request("GET", "/hang")
        first = int(proc.wait_for_line(r"app: hanging (\d+)").group(1))
        proc.wait_for_line(rf"Worker {first} is blocked \(its event loop stopped\) for \d+ s; killing it")
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.getresponse()
        conn.close()
        assert pids_until(port, lambda p: bool(p - {first}), "a replacement") - {first}


def test_workers_that_cannot_boot_stop_the_supervisor():
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", env={"WORKER_APPS_FAIL": "1"}) as proc:
        code = proc.wait(DEADLINE)
        output = proc.output()
    assert code == 1
    assert "fastbase: error: importing 'worker_apps' raised RuntimeError: the app refuses to start" in output
    assert "Traceback" not in output


def test_workers_stop_when_the_supervisor_dies():
    """A worker whose supervisor is killed (no chance to stop it) notices
    within a heartbeat and exits instead of serving on as an orphan."""
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", "--log-level", "info") as proc:
        port = proc.wait_serving()
        workers = pids_until(port, lambda p: len(p) == 2, "both workers")
        os.kill(proc.pid, signal.SIGKILL)
        for pid in workers:
            proc.wait_for_line(rf"Worker {pid}: the supervisor is gone; stopping")
        deadline = time.monotonic() + DEADLINE
        for pid in workers:
            while running(pid):
                assert time.monotonic() < deadline, f"worker {pid} still running"
                threading.Event().wait(0.05)


def running(pid: int) -> bool:
    """The process exists and is not a zombie (its parent, killed, cannot reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-worker SO_REUSEPORT sockets are Linux's")


def listeners(port: int) -> int:
    """Listening TCP sockets on the port, from /proc/net/tcp and tcp6 (each
    member of a SO_REUSEPORT group has its own line)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    count += 1
    return count


@linux_only
@pytest.mark.parametrize("reuseport, expected", [("1", 3), ("0", 1)])
def test_each_worker_listens_on_its_own_reuseport_socket(reuseport, expected):
    """The supervisor's socket plus one per worker slot (FASTBASE_WORKER_REUSEPORT=0:
    the supervisor's only); both workers take connections either way."""
    env = {"FASTBASE_WORKER_REUSEPORT": reuseport}
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", env=env) as proc:
        port = proc.wait_serving()
        pids_until(port, lambda p: len(p) == 2, "both workers")
        assert listeners(port) == expected


@linux_only
def test_workers_on_a_unix_socket_share_the_supervisors():
    """No SO_REUSEPORT group for UNIX sockets: every worker accepts from the
    supervisor's one socket, and both serve."""
    path = os.path.join(tempfile.mkdtemp(), "w.sock")
    with server_process("worker_apps:pid", "--workers", "2", "--uds", path) as proc:
        proc.wait_for_line(r"serving WSGI on unix:")
        pids = set()
        deadline = time.monotonic() + DEADLINE
        while len(pids) < 2:
            assert time.monotonic() < deadline, pids
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            pids.add(int(data.rpartition(b"\r\n\r\n")[2]))
        # One listening socket (flag __SO_ACCEPTCON) for the path: /proc/net/unix
        # lists each socket once, whatever number of processes hold it.
        with open("/proc/net/unix") as f:
            rows = [line.split() for line in f]
        assert sum(1 for row in rows if len(row) == 8 and row[7] == path and row[3] == "00010000") == 1


@linux_only
@pytest.mark.parametrize("loop", loop_params())
def test_connections_waiting_for_a_killed_worker_are_served_by_its_replacement(loop):
    """A worker is frozen (SIGSTOP), so what the kernel sends to its slot
    socket waits in that queue; then it is killed. The supervisor holds the
    slot socket, so its replacement serves every waiting request: none is
    reset."""
    with server_process("worker_apps:pid", "--workers", "2", "--port", "0", "--loop", loop, "--log-level", "info") as proc:
        port = proc.wait_serving()
        pids = pids_until(port, lambda p: len(p) == 2, "both workers")
        victim = min(pids)
        os.kill(victim, signal.SIGSTOP)
        clients = []
        for _ in range(24):  # each slot gets one at random: all 24 missing it is 1 in 2**24
            client = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            clients.append(client)
        os.kill(victim, signal.SIGKILL)
        proc.wait_for_line(rf"Worker {victim} died \(signal SIGKILL\); starting a new one")
        served_by = set()
        for client in clients:
            data = b""
            while chunk := client.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK"), data
            served_by.add(int(data.rpartition(b"\r\n\r\n")[2]))
            client.close()
        assert victim not in served_by
        assert len(served_by) == 2  # the other worker and the replacement
