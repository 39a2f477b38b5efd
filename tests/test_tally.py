"""The --metrics tally (fastbase._tally and its twin fastbase._tally_py):
what one response counts, the histogram's edges, the access log it passes
responses on to, threads, and the two twins agreeing on random traffic."""

from __future__ import annotations

import math
import random
import sys
import threading

import pytest

METHODS = (b"GET", b"HEAD", b"POST")
BOUNDS = (0.005, 0.01, 0.25, 1.0)
COLUMNS = 10


class Req:
    """A request as the tally reads it: only its method."""

    def __init__(self, method):
        self.method = method


def parsed(parser_module, method: bytes):
    (request, _) = parser_module.RequestParser().feed(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    return request


def counts_of(tally_impl, calls, methods=METHODS, bounds=BOUNDS):
    tally = tally_impl.Tally(methods, bounds)
    for method, status, seconds in calls:
        tally.record(None, Req(method), status, 0, seconds)
    return tally.counts()


def request_index(method_row: int, column: int) -> int:
    return method_row * COLUMNS + column


def test_status_columns_is_ten(tally_impl):
    assert tally_impl.STATUS_COLUMNS == COLUMNS


# (method, status) -> (row, column): rows follow METHODS, then "other".
CASES = {
    "get-200": (b"GET", 200, 0, 2),
    "head-304": (b"HEAD", 304, 1, 3),
    "post-201": (b"POST", 201, 2, 2),
    "get-404": (b"GET", 404, 0, 4),
    "get-599": (b"GET", 599, 0, 5),
    "get-101": (b"GET", 101, 0, 1),
    "none: the client left first": (b"GET", 0, 0, 0),
    "999": (b"GET", 999, 0, 9),
    "above 999 counts as none": (b"GET", 1000, 0, 0),
    "negative counts as none": (b"GET", -1, 0, 0),
    "unknown method": (b"PROPFIND", 200, 3, 2),
    "lower-case is another method": (b"get", 200, 3, 2),
    "a prefix is another method": (b"GE", 200, 3, 2),
    "a longer name is another method": (b"GETX", 200, 3, 2),
    "empty method": (b"", 500, 3, 5),
    "str is not a method": ("GET", 200, 3, 2),
    "None is not a method": (None, 200, 3, 2),
}


@pytest.mark.parametrize("method,status,row,column", list(CASES.values()), ids=list(CASES))
def test_a_response_counts_in_its_method_row_and_status_column(tally_impl, method, status, row, column):
    requests, buckets, duration_sum, upgrades = counts_of(tally_impl, [(method, status, 0.002)])
    expected = [0] * ((len(METHODS) + 1) * COLUMNS)
    expected[request_index(row, column)] = 1
    assert requests == expected
    assert buckets == [1, 0, 0, 0, 0]
    assert duration_sum == 0.002
    assert upgrades == (1 if status == 101 else 0)


def test_the_compiled_and_the_python_parsers_requests_count_alike(tally_impl, impl):
    tally = tally_impl.Tally(METHODS, BOUNDS)
    for method in (b"GET", b"HEAD", b"POST", b"DELETE", b"GET"):
        tally.record(None, parsed(impl, method), 200, 0, 0.0)
    requests, _, _, _ = tally.counts()
    assert requests[request_index(0, 2)] == 2
    assert requests[request_index(1, 2)] == 1
    assert requests[request_index(2, 2)] == 1
    assert requests[request_index(3, 2)] == 1
    assert sum(requests) == 5


# seconds -> bucket: a bucket holds the durations up to and including its
# bound (Prometheus "le"), the last one everything above the last bound.
EDGES = {
    "zero": (0.0, 0),
    "below the first bound": (0.001, 0),
    "at the first bound": (0.005, 0),
    "just above it": (math.nextafter(0.005, 1.0), 1),
    "at a middle bound": (0.25, 2),
    "at the last bound": (1.0, 3),
    "above the last bound": (1.5, 4),
    "far above": (1e9, 4),
    "negative (a clock step)": (-0.5, 0),
    "an int": (1, 3),
}


@pytest.mark.parametrize("seconds,bucket", list(EDGES.values()), ids=list(EDGES))
def test_a_duration_lands_in_the_first_bucket_whose_bound_is_not_below_it(tally_impl, seconds, bucket):
    _, buckets, duration_sum, _ = counts_of(tally_impl, [(b"GET", 200, seconds)])
    expected = [0] * (len(BOUNDS) + 1)
    expected[bucket] = 1
    assert buckets == expected
    assert duration_sum == seconds
    assert type(duration_sum) is float


def test_the_sum_adds_every_duration(tally_impl):
    durations = [0.001, 0.02, 0.3, 4.0, 0.0005]
    requests, buckets, duration_sum, _ = counts_of(tally_impl, [(b"GET", 200, s) for s in durations])
    # Added one by one, as a counter does (sum() compensates its rounding
    # since Python 3.12, so it may differ in the last bit).
    expected = 0.0
    for seconds in durations:
        expected += seconds
    assert duration_sum == expected
    assert buckets == [2, 0, 1, 1, 1]
    assert sum(requests) == len(durations)


def test_nothing_counted_reads_as_zeros(tally_impl):
    requests, buckets, duration_sum, upgrades = tally_impl.Tally(METHODS, BOUNDS).counts()
    assert requests == [0] * ((len(METHODS) + 1) * COLUMNS)
    assert buckets == [0] * (len(BOUNDS) + 1)
    assert duration_sum == 0.0 and type(duration_sum) is float
    assert upgrades == 0


def test_a_rejected_head_is_not_counted_but_is_logged(tally_impl):
    logged = []
    tally = tally_impl.Tally(METHODS, BOUNDS, lambda *args: logged.append(args))
    tally.record("conn", None, 400, 12, 0.0)
    requests, buckets, duration_sum, upgrades = tally.counts()
    assert sum(requests) == 0 and sum(buckets) == 0 and duration_sum == 0.0 and upgrades == 0
    assert logged == [("conn", None, 400, 12, 0.0, None)]


def test_every_response_is_passed_on_to_the_access_log_as_given(tally_impl):
    logged = []
    tally = tally_impl.Tally(METHODS, BOUNDS, lambda *args: logged.append(args))
    request = Req(b"GET")
    headers = [(b"content-type", b"text/plain")]
    tally.record("conn", request, 200, 13, 0.25, headers)
    tally.record("conn", request, 101, 0, 0.5)
    assert logged == [("conn", request, 200, 13, 0.25, headers), ("conn", request, 101, 0, 0.5, None)]
    requests, _, _, upgrades = tally.counts()
    assert requests[request_index(0, 2)] == 1 and requests[request_index(0, 1)] == 1
    assert upgrades == 1


def test_an_access_log_error_reaches_the_caller_after_the_count(tally_impl):
    def failing(*args):
        raise RuntimeError("log failed")

    tally = tally_impl.Tally(METHODS, BOUNDS, failing)
    with pytest.raises(RuntimeError, match="log failed"):
        tally.record(None, Req(b"GET"), 200, 0, 0.0)
    assert sum(tally.counts()[0]) == 1


def test_counts_are_copies(tally_impl):
    tally = tally_impl.Tally(METHODS, BOUNDS)
    requests, buckets, _, _ = tally.counts()
    requests[0] = buckets[0] = 99
    again, buckets_again, _, _ = tally.counts()
    assert again[0] == 0 and buckets_again[0] == 0


@pytest.mark.parametrize(
    "methods,bounds,error",
    [
        (("GET",), BOUNDS, TypeError),
        ((b"GET", None), BOUNDS, TypeError),
        (METHODS, (0.1, 0.1), ValueError),
        (METHODS, (0.2, 0.1), ValueError),
        (METHODS, (0.1, float("nan")), ValueError),
    ],
    ids=["str method", "None method", "equal bounds", "decreasing bounds", "nan bound"],
)
def test_bad_methods_or_bounds_are_refused(tally_impl, methods, bounds, error):
    with pytest.raises(error):
        tally_impl.Tally(methods, bounds)


def test_no_methods_and_no_bounds_count_everything_as_other_and_above(tally_impl):
    requests, buckets, _, _ = counts_of(tally_impl, [(b"GET", 200, 0.1)], methods=(), bounds=())
    assert requests == [0, 0, 1] + [0] * (COLUMNS - 3)
    assert buckets == [1]


def test_threads_lose_no_increment(tally_impl):
    """Pool threads record at once (the WSGI bridge), with thread switches
    forced as often as the interpreter allows: every response is counted."""
    tally = tally_impl.Tally(METHODS, BOUNDS)
    threads, each = 4, 20000
    start = threading.Barrier(threads + 1)
    request = Req(b"GET")

    def work():
        start.wait()
        for _ in range(each):
            tally.record(None, request, 200, 0, 0.001)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        seen = [tally.counts() for _ in range(20)]  # reading while they count
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    requests, buckets, duration_sum, _ = tally.counts()
    assert requests[request_index(0, 2)] == threads * each
    assert buckets[0] == threads * each
    assert duration_sum == pytest.approx(threads * each * 0.001)
    # What a scrape reads while threads count only grows, and never passes
    # what was counted (a snapshot need not be one instant: the twin sums
    # rows that are being written).
    for column in ([r[request_index(0, 2)] for r, _, _, _ in seen], [b[0] for _, b, _, _ in seen]):
        assert column == sorted(column) and column[-1] <= threads * each


def test_the_twins_agree_on_random_traffic(impl):
    """The compiled tally and its twin count the same random responses alike."""
    import os

    if os.environ.get("FASTBASE_NO_EXTENSIONS") == "1":
        pytest.skip("compiled metrics tally disabled by FASTBASE_NO_EXTENSIONS=1")
    import fastbase._tally as compiled
    import fastbase._tally_py as twin

    rng = random.Random(19)
    methods = (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS")
    bounds = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    tallies = [compiled.Tally(methods, bounds), twin.Tally(methods, bounds)]
    names = [*methods, b"PROPFIND", b"get", b"", b"CONNECT"]
    for _ in range(3000):
        method = rng.choice(names)
        request = parsed(impl, method) if method in methods and rng.random() < 0.5 else Req(method)
        status = rng.choice((0, 101, 200, 204, 301, 304, 400, 404, 499, 500, 503, 999, rng.randrange(-5, 1200)))
        seconds = rng.choice((rng.random() * 12, rng.choice(bounds), rng.random() * 0.01))
        for tally in tallies:
            tally.record(None, request, status, 0, seconds)
    (c_requests, c_buckets, c_sum, c_upgrades), (p_requests, p_buckets, p_sum, p_upgrades) = (t.counts() for t in tallies)
    assert c_requests == p_requests
    assert c_buckets == p_buckets
    assert c_upgrades == p_upgrades
    assert c_sum == p_sum  # (the same additions in the same order)
    assert sum(c_requests) == sum(c_buckets) == 3000
