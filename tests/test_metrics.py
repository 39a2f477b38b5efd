"""--metrics: a real ``python -m fastbase`` process, scraped over HTTP."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import threading
import time
import urllib.request
from typing import Dict, Tuple

import pytest

from subprocess_server import loop_params, run_fastbase, server_process
from wsclient import frame, TEXT, CLOSE

METRICS_AT = re.compile(r"Metrics at http://127\.0\.0\.1:(\d+)/metrics")
SERVING = re.compile(r"serving (?:WSGI|ASGI) on http://127\.0\.0\.1:(\d+) ")
SAMPLE = re.compile(r"^([a-z_]+)(?:\{([^}]*)\})? (\S+)$")

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Samples by (name, sorted labels); checks the exposition format on
    the way: every sample's family has HELP and TYPE lines before it."""
    samples: Samples = {}
    typed: Dict[str, str] = {}
    helped = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram"), line
            assert name in helped, f"TYPE before HELP: {line}"
            typed[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert family in typed, f"sample before its TYPE line: {line}"
        pairs = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels or "")))
        samples[(name, pairs)] = float(value)
    return samples


def cross_check(text: str, samples: Samples) -> None:
    """When prometheus-client is installed, its parser reads the same
    samples, and no two families share a name (a counter's family drops
    "_total", so a gauge named like it would clash)."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return
    families = list(text_string_to_metric_families(text))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), names
    theirs = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}
    assert theirs == samples


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = response.read().decode()
    samples = parse(text)
    cross_check(text, samples)
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def wait_for(port: int, check, timeout: float = 15.0) -> Samples:
    """Scrape until ``check(samples)`` holds (workers publish periodically)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never satisfied the check: {samples}")
        time.sleep(0.05)


def get(port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read()


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def start(*args: str):
    return server_process("--port", "0", "--metrics", "--metrics-port", "0", *args)


def ports(proc) -> Tuple[int, int]:
    metrics = int(proc.wait_for_line(METRICS_AT).group(1))
    return int(proc.wait_for_line(SERVING).group(1)), metrics


def histogram_is_consistent(samples: Samples) -> None:
    buckets = sorted(
        (
            (float("inf") if labels[0][1] == "+Inf" else float(labels[0][1]), count)
            for (name, labels), count in samples.items()
            if name == "fastbase_request_duration_seconds_bucket"
        ),
    )
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "buckets must be cumulative"
    assert buckets[-1][0] == float("inf")
    assert buckets[-1][1] == value(samples, "fastbase_request_duration_seconds_count")


@pytest.mark.parametrize("loop", loop_params())
def test_requests_statuses_bytes_and_rejections_are_counted(loop):
    with start("--loop", loop, "ops_apps:wsgi") as proc:
        port, metrics = ports(proc)
        before = scrape(metrics)
        assert value(before, "fastbase_requests_total", method="GET", status="2xx") == 0
        for _ in range(3):
            assert get(port) == b"hello"
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(port, "/missing")
        missing.value.close()
        post = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        assert post.startswith(b"HTTP/1.1 200 ")
        assert raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        assert raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
        assert raw(port, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 505 ")
        # Each connection above is closed: the kernel's byte counts are in.
        samples = wait_for(metrics, lambda s: value(s, "fastbase_open_connections") == 0)
        assert value(samples, "fastbase_requests_total", method="GET", status="2xx") == 3
        assert value(samples, "fastbase_requests_total", method="GET", status="4xx") == 1
        assert value(samples, "fastbase_requests_total", method="POST", status="2xx") == 1
        assert value(samples, "fastbase_parser_rejections_total", status="400") == 1
        assert value(samples, "fastbase_parser_rejections_total", status="431") == 1
        assert value(samples, "fastbase_parser_rejections_total", status="505") == 1
        assert value(samples, "fastbase_parser_rejections_total", status="413") == 0
        assert value(samples, "fastbase_request_duration_seconds_count") == 5
        assert value(samples, "fastbase_request_duration_seconds_sum") > 0
        histogram_is_consistent(samples)
        assert value(samples, "fastbase_connections_total") == 8
        # The 70 KB header alone was received; at least five hellos were sent.
        assert value(samples, "fastbase_received_bytes_total") > 70000
        assert value(samples, "fastbase_sent_bytes_total") > 5 * len(b"HTTP/1.1 200 OK\r\n")
        assert value(samples, "fastbase_requests_in_flight") == 0
        assert value(samples, "fastbase_wsgi_threads") == 8
        assert value(samples, "fastbase_worker_restarts_total") == 0


def test_the_endpoint_answers_only_get_and_head_on_metrics():
    with start("ops_apps:wsgi") as proc:
        _, metrics = ports(proc)
        head = raw(metrics, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        assert raw(metrics, b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
        refused = raw(metrics, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 405 ") and b"allow: GET, HEAD\r\n" in refused


def test_a_wsgi_queue_shows_busy_threads_and_queue_depth():
    with start("--threads", "1", "ops_apps:wsgi") as proc:
        port, metrics = ports(proc)
        replies: list = []
        clients = [threading.Thread(target=lambda: replies.append(get(port, "/block"))) for _ in range(3)]
        for client in clients:
            client.start()
        proc.wait_for_line("app: entered /block")
        samples = wait_for(metrics, lambda s: value(s, "fastbase_wsgi_queue_depth") == 2)
        assert value(samples, "fastbase_wsgi_threads") == 1
        assert value(samples, "fastbase_wsgi_threads_busy") == 1
        assert value(samples, "fastbase_requests_in_flight") == 3
        assert value(samples, "fastbase_open_connections") == 3
        for _ in clients:
            proc.proc.stdin.write(b"test\n")
            proc.proc.stdin.flush()
        for client in clients:
            client.join(20)
        assert replies == [b"released by test"] * 3
        samples = wait_for(metrics, lambda s: value(s, "fastbase_wsgi_queue_depth") == 0)
        assert value(samples, "fastbase_requests_in_flight") == 0
        assert value(samples, "fastbase_requests_total", method="GET", status="2xx") == 3


@pytest.mark.parametrize("loop", loop_params())
def test_websocket_sessions_are_counted(loop):
    with start("--loop", loop, "ops_apps:asgi") as proc:
        port, metrics = ports(proc)
        key = base64.b64encode(os.urandom(16))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101 ")
            sock.sendall(frame(TEXT, b"ping"))
            assert b"ping" in sock.recv(4096)
            samples = scrape(metrics)
            assert value(samples, "fastbase_open_websocket_sessions") == 1
            assert value(samples, "fastbase_websocket_sessions_total") == 1
            assert value(samples, "fastbase_requests_total", method="GET", status="1xx") == 1
            assert value(samples, "fastbase_open_connections") == 0  # (no longer an HTTP connection)
            sock.sendall(frame(CLOSE, (1000).to_bytes(2, "big")))
            while sock.recv(4096):
                pass
        samples = wait_for(metrics, lambda s: value(s, "fastbase_open_websocket_sessions") == 0)
        assert value(samples, "fastbase_websocket_sessions_total") == 1
        assert get(port) == b"hello"
        samples = scrape(metrics)
        assert value(samples, "fastbase_requests_total", method="GET", status="2xx") == 1
        assert value(samples, "fastbase_wsgi_threads") == 0  # an ASGI app has no pool


def test_workers_are_summed_and_a_killed_worker_is_a_restart():
    with start("--workers", "2", "worker_apps:pid") as proc:
        port, metrics = ports(proc)
        pids = set(re.findall(r"Started worker (\d+)", proc.output()))
        while len(pids) < 2:
            proc.wait_for_line(r"Started worker")
            pids = set(re.findall(r"Started worker (\d+)", proc.output()))
        served_by = {int(get(port)) for _ in range(40)}
        samples = wait_for(metrics, lambda s: value(s, "fastbase_requests_total", method="GET", status="2xx") == 40)
        assert value(samples, "fastbase_workers") == 2
        assert value(samples, "fastbase_worker_restarts_total") == 0
        assert value(samples, "fastbase_wsgi_threads") == 16  # 8 per worker, summed
        victim = served_by.pop() if served_by else int(next(iter(pids)))
        os.kill(victim, signal.SIGKILL)
        proc.wait_for_line(rf"Worker {victim} died")
        samples = wait_for(metrics, lambda s: value(s, "fastbase_worker_restarts_total") == 1 and value(s, "fastbase_workers") == 2)
        # What the killed worker had published is kept: counters never go down.
        assert value(samples, "fastbase_requests_total", method="GET", status="2xx") == 40
        for _ in range(10):
            get(port)
        wait_for(metrics, lambda s: value(s, "fastbase_requests_total", method="GET", status="2xx") == 50)


def test_a_metrics_port_in_use_is_one_line_and_a_failure():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for extra in ((), ("--workers", "2")):
            result = run_fastbase("--port", "0", "--metrics", "--metrics-port", str(port), *extra, "ops_apps:wsgi")
            assert result.returncode != 0
            errors = [line for line in result.stderr.splitlines() if "error" in line]
            assert errors == [f"fastbase: error: --metrics-port {port}: address 127.0.0.1:{port} is already in use"], result.stderr
            assert "Traceback" not in result.stderr


def test_408_and_413_rejections_are_counted():
    with start("--timeout-request-header", "0.5", "--limit-request-body", "10", "ops_apps:wsgi") as proc:
        port, metrics = ports(proc)
        too_large = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890")
        assert too_large.startswith(b"HTTP/1.1 413 ")
        # Half a head, then nothing: the sweeper answers 408 and closes.
        assert raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n").startswith(b"HTTP/1.1 408 ")
        samples = scrape(metrics)
        assert value(samples, "fastbase_parser_rejections_total", status="413") == 1
        assert value(samples, "fastbase_parser_rejections_total", status="408") == 1
        assert value(samples, "fastbase_parser_rejections_total", status="400") == 0
        assert value(samples, "fastbase_requests_total", method="POST", status="4xx") == 0  # never a request


@pytest.mark.parametrize("loop", loop_params())
def test_asgi_responses_are_counted_and_still_logged_with_the_access_log_on(loop):
    """The tally counts ASGI responses on the loop and passes each one on
    to the access log."""
    with start("--loop", loop, "--access-log", "ops_apps:asgi") as proc:
        port, metrics = ports(proc)
        for _ in range(3):
            assert get(port) == b"hello"
        head = raw(port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        proc.wait_for_line(r'"HEAD / HTTP/1\.1" 200 0 ')
        assert len(re.findall(r'"GET / HTTP/1\.1" 200 5 ', proc.output())) == 3
        samples = scrape(metrics)
        assert value(samples, "fastbase_requests_total", method="GET", status="2xx") == 3
        assert value(samples, "fastbase_requests_total", method="HEAD", status="2xx") == 1
        assert value(samples, "fastbase_request_duration_seconds_count") == 4
        histogram_is_consistent(samples)


def test_the_totals_put_each_tally_count_in_its_exposition_line():
    """What the tally counted comes out of the endpoint's text under the
    right names and labels: the row layout and the tally's order agree.
    (Both twins count alike: tests/test_tally.py.)"""
    from fastbase import metrics

    tally = metrics.new_tally()
    responses = [
        (b"GET", 200, 0.003),
        (b"GET", 204, 0.2),
        (b"GET", 101, 0.001),
        (b"POST", 404, 0.02),
        (b"OPTIONS", 0, 0.004),
        (b"PROPFIND", 503, 12.0),
    ]
    for method, status, seconds in responses:
        tally.record(None, type("Request", (), {"method": method})(), status, 0, seconds)
    row = [0] * metrics.GAUGES
    row[metrics.CONNECTIONS_TOTAL] = 4
    row[metrics.REJECTIONS] = 2  # 400s
    samples = parse(metrics.render(metrics.totals(row, tally)).decode())
    assert value(samples, "fastbase_requests_total", method="GET", status="2xx") == 2
    assert value(samples, "fastbase_requests_total", method="GET", status="1xx") == 1
    assert value(samples, "fastbase_requests_total", method="POST", status="4xx") == 1
    assert value(samples, "fastbase_requests_total", method="OPTIONS", status="none") == 1
    assert value(samples, "fastbase_requests_total", method="other", status="5xx") == 1
    assert sum(v for (name, _), v in samples.items() if name == "fastbase_requests_total") == len(responses)
    buckets = {labels[0][1]: v for (name, labels), v in samples.items() if name == "fastbase_request_duration_seconds_bucket"}
    assert buckets == {
        "0.005": 3,
        "0.01": 3,
        "0.025": 4,
        "0.05": 4,
        "0.075": 4,
        "0.1": 4,
        "0.25": 5,
        "0.5": 5,
        "0.75": 5,
        "1.0": 5,
        "2.5": 5,
        "5.0": 5,
        "7.5": 5,
        "10.0": 5,
        "+Inf": 6,
    }
    assert value(samples, "fastbase_request_duration_seconds_count") == 6
    assert value(samples, "fastbase_request_duration_seconds_sum") == pytest.approx(0.003 + 0.2 + 0.001 + 0.02 + 0.004 + 12.0)
    assert value(samples, "fastbase_websocket_sessions_total") == 1
    assert value(samples, "fastbase_connections_total") == 4
    assert value(samples, "fastbase_parser_rejections_total", status="400") == 2
