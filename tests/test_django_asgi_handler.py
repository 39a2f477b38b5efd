"""fastbase.django.ASGIHandler against Django's own ASGIHandler.

tests/django_handler_scenarios.py runs the same requests (sync and async
views, middleware short cuts and exceptions, bodies, streaming, files,
disconnects, concurrent sync views, the ORM) through one handler in a
process of its own and reports what happened and on which thread; these
tests run it for both handlers and compare. Then the private Django and
asgiref names fastbase.django.handler relies on, and the lane pool itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

django = pytest.importorskip("django")
if django.VERSION < (5, 0):
    pytest.skip("fastbase.django.ASGIHandler needs Django 5.0+", allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
ASYNC_VIEWS = {"async_view", "async_raising_view", "async_orm_view", "forever_view", "async_only before", "async_only after"}

try:
    import uvloop  # noqa: F401

    LOOPS = ["asyncio", "uvloop"]
except ImportError:  # pragma: no cover - platforms without uvloop
    LOOPS = ["asyncio"]

RUNS = [
    (handler, middleware, loop)
    for middleware in ("default", "mixed")
    for loop in LOOPS
    for handler in ("django", "fastbase")
    if middleware == "default" or loop == "asyncio"
]


@pytest.fixture(scope="module")
def observed() -> dict:
    """Every run at once, each in its own process."""
    processes = {}
    for handler, middleware, loop in RUNS:
        env = dict(os.environ, FASTBASE_SCENARIO_MIDDLEWARE=middleware)
        processes[(handler, middleware, loop)] = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "django_handler_scenarios.py"), handler, loop],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=HERE,
        )
    results = {}
    try:
        for key, process in processes.items():
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()[-3000:]
            results[key] = json.loads(out)
    finally:
        # A run that hangs or fails leaves none of them behind.
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.communicate()
    return results


CASES = [(middleware, loop) for _, middleware, loop in RUNS if _ == "django"]


def _pair(observed: dict, middleware: str, loop: str) -> tuple[dict, dict]:
    return observed[("django", middleware, loop)], observed[("fastbase", middleware, loop)]


def _request_scenarios(results: dict) -> list[str]:
    return [name for name, value in results.items() if isinstance(value, dict) and "events" in value]


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_same_responses(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    names = _request_scenarios(django)
    assert len(names) >= 20
    for name in names:
        assert fastbase[name]["response"] == django[name]["response"], name


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_same_hooks_and_signals_in_the_same_order(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    for name in _request_scenarios(django):
        assert [e for e, _ in fastbase[name]["events"]] == [e for e, _ in django[name]["events"]], name


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_sync_code_of_a_request_on_one_thread_never_the_loop(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    for name in _request_scenarios(fastbase):
        for event, thread in fastbase[name]["events"]:
            if event in ASYNC_VIEWS:
                assert thread == "loop", (name, event)
            elif middleware == "mixed" and event.startswith("got_request_exception"):
                # Split runs: Django's own exception conversion between them.
                continue
            else:
                # Django's handler, too, runs all of it on one thread, except
                # exception handling (its thread_sensitive=False call): fastbase
                # keeps that on the request's thread as well.
                assert thread == "T1", (name, event, fastbase[name]["events"])
        for event, thread in django[name]["events"]:
            if event in ASYNC_VIEWS:
                assert thread == "loop"
            elif not event.startswith("got_request_exception"):
                assert thread == "T1", (name, event)


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_concurrent_sync_views_run_in_parallel(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    expected = {"statuses": [200, 200], "view threads": 2, "loop": False}
    assert django["concurrent sync views"] == expected
    assert fastbase["concurrent sync views"] == expected


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_keep_alive_next_request_after_the_previous_request_finished(observed, middleware, loop):
    # fastbase hands a request's lane to the next request on its connection
    # (same client and server addresses) once the previous one's last hop,
    # response.close() with request_finished, is queued on it: the next
    # request's sync code then runs on the same thread, after that hop, never
    # interleaved with it. Django's handler runs them on two threads.
    django, fastbase = _pair(observed, middleware, loop)
    name = "keep-alive, next request started once the response is out"
    assert django[name]["statuses"] == fastbase[name]["statuses"] == [200, 200]
    events = fastbase[name]["calls"]
    names = [e for e, _ in events]
    finished = [i for i, e in enumerate(names) if e.startswith("request_finished")]
    started = [i for i, e in enumerate(names) if e.startswith("request_started")]
    assert len(finished) == len(started) == 2
    sync_threads = {thread for event, thread in events if event not in ASYNC_VIEWS}
    assert "loop" not in sync_threads
    if middleware == "default":
        # The lane was handed on (with other middleware, Django's own path:
        # a lane each, the two requests' sync code in parallel as Django's).
        assert sync_threads == {"T1"}, events
        assert started[0] < finished[0] < started[1] < finished[1], names


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_disconnect_cancels_the_view_and_finishes_the_request(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    name = "disconnect while an async view waits"
    assert django[name]["view cancelled"] is True
    assert fastbase[name] == django[name]
    assert [e for e, _ in fastbase[name]["events"]][-1].startswith("request_finished")
    blocked = fastbase["disconnect while a sync view blocks"]
    assert blocked == django["disconnect while a sync view blocks"]
    assert blocked["response"]["status"] is None
    assert [e for e, _ in blocked["events"]][-3:] == ["blocking_view", "blocking_view returns", "request_finished ASGIHandler ['signal']"]
    mid_body = fastbase["disconnect mid-body"]
    assert mid_body == django["disconnect mid-body"]
    assert mid_body["response"]["status"] is None and mid_body["events"] == []
    # On fastbase's server, which tells fastbase's handler of the disconnect
    # without a listener task: the same as Django's handler on that server.
    served = fastbase["served by fastbase: disconnect while an async view waits"]
    assert served == django["served by fastbase: disconnect while an async view waits"]
    assert served["view started"] and served["view cancelled"] and served["request_finished"], served
    assert [e for e, _ in served["calls"]][-2:] == ["forever_view", "request_finished ASGIHandler ['signal']"], served
    assert served["next request"] == "HTTP/1.1 200 OK", served


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_cancelled_while_closing_waits_for_request_finished(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    name = "cancelled while the response closes"
    assert fastbase[name] == django[name]
    assert fastbase[name]["response"] == "cancelled"
    assert fastbase[name]["ended before the close returned"] is False
    assert [e for e, _ in fastbase[name]["events"]][-3:] == ["close starts", "request_finished ASGIHandler ['signal']", "close returns"]


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_a_complete_response_is_closed_in_the_last_hop_before_it_is_written(observed, middleware, loop):
    """fastbase closes a complete response below 400 (request_finished) at
    the end of the request's last sync hop, saving a round trip to its
    thread; Django writes it first. Error and streaming responses close
    after the write, as under Django. (Other middleware: Django's order.)"""
    django, fastbase = _pair(observed, middleware, loop)
    name = "request_finished against the write"
    after = ["request_started ASGIHandler ['scope', 'signal']", "body written", "request_finished ASGIHandler ['signal']"]
    before = [after[0], after[2], after[1]]
    streaming = [after[0], "body written", "body written", "body written", after[2]]  # two parts and the end
    assert django[name] == {"sync view": after, "async view": after, "not found": after, "streaming": streaming}
    expected = before if middleware == "default" else after
    assert fastbase[name]["sync view"] == expected
    assert fastbase[name]["async view"] == expected
    assert fastbase[name]["not found"] == after
    assert fastbase[name]["streaming"] == streaming


@pytest.mark.parametrize("loop", LOOPS)
def test_cancelled_twice_still_waits_for_request_finished(observed, loop):
    fastbase = observed[("fastbase", "default", loop)]
    for case in ("while the response closes", "while an error response closes", "while an error response goes out"):
        seen = fastbase[f"cancelled twice {case}"]
        assert seen["outcome"] == "cancelled", (case, seen)
        assert seen["ended before the close returned"] is False, (case, seen)
        names = [e for e, _ in seen["calls"]]
        assert names[-3:] == ["close starts", "request_finished ASGIHandler ['signal']", "close returns"], (case, names)
        assert "loop" not in {thread for _, thread in seen["calls"]}, (case, seen)


@pytest.mark.parametrize(("middleware", "loop"), CASES)
def test_pooled_threads_and_none_left_behind(observed, middleware, loop):
    django, fastbase = _pair(observed, middleware, loop)
    assert django["sync view thread names"] == ["ThreadPoolExecutor"]
    assert fastbase["sync view thread names"] == ["fastbase-django"]
    assert fastbase["threads left behind"] == 0
    assert django["threads left behind"] == 0


def test_specific_outcomes(observed):
    fastbase = observed[("fastbase", "default", "asyncio")]
    assert fastbase["sync view"]["response"]["x-var"] == "from process_request"
    assert fastbase["async view"]["response"]["x-var"] == "from async_view"
    assert fastbase["orm in async view"]["response"]["status"] == 500  # SynchronousOnlyOperation
    assert "got_request_exception NoneType /aorm" in [e for e, _ in fastbase["orm in async view"]["events"]]
    assert json.loads(fastbase["orm in sync view again"]["response"]["body"]) == {"closed_at_start": True}
    assert json.loads(fastbase["body in three messages"]["response"]["body"]) == {"length": 9, "rolled": False, "head": "abcdefghi"}
    assert json.loads(fastbase["body spooled to disk"]["response"]["body"])["rolled"] is True
    assert fastbase["file response"]["response"]["body_length"] == 150_000
    assert fastbase["streaming, sync iterator"]["response"]["body"] == "one,two"
    assert fastbase["streaming, async iterator"]["response"]["body"] == "a1,a2"
    assert fastbase["exception in process_request"]["response"]["status"] == 500
    assert fastbase["sync view exception handled by process_exception"]["response"]["status"] == 409
    started = fastbase["sync view"]["events"][0][0]
    assert started == "request_started ASGIHandler ['scope', 'signal']"


def test_the_private_names_fastbase_relies_on():
    """Loud failures when asgiref or Django rename what the handler uses."""
    import asyncio
    import weakref

    from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
    from django.core.handlers import asgi, base, exception
    from django.utils.deprecation import MiddlewareMixin

    import asgiref.sync
    from django.core.signals import request_started

    assert isinstance(SyncToAsync.context_to_thread_executor, weakref.WeakKeyDictionary)
    assert isinstance(SyncToAsync.threadlocal, threading.local)
    assert callable(asgiref.sync._restore_context)
    live = request_started._live_receivers(object)
    assert isinstance(live, tuple) and len(live) == 2  # (sync, async)
    for name in (
        "_get_response_async",
        "adapt_method_mode",
        "resolve_request",
        "make_view_atomic",
        "process_exception_by_middleware",
        "check_response",
        "get_response_async",
    ):
        assert callable(getattr(base.BaseHandler, name)), name
    for name in ("handle", "run_get_response", "read_body", "create_request", "send_response"):
        assert callable(getattr(asgi.ASGIHandler, name)), name
    assert callable(exception.response_for_exception)
    assert callable(MiddlewareMixin.__acall__)

    lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lane-under-test")

    async def check() -> None:
        context = ThreadSensitiveContext()
        await context.__aenter__()
        assert SyncToAsync.thread_sensitive_context.get() is context
        SyncToAsync.context_to_thread_executor[context] = lane
        name = await sync_to_async(lambda: threading.current_thread().name)()
        assert name.startswith("lane-under-test")
        del SyncToAsync.context_to_thread_executor[context]
        await context.__aexit__(None, None, None)
        assert SyncToAsync.thread_sensitive_context.get(None) is None

    asyncio.run(check())
    lane.shutdown()


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_lanes_are_batch_threads_so_their_wake_up_does_not_preempt_the_loop():
    # The loop thread stays a normal one; a lane runs SCHED_BATCH (see
    # fastbase.django.threads._batch_this_thread for why and what it saves).
    from fastbase.django.threads import LanePool

    pool = LanePool()
    lane = pool.acquire()
    assert lane.submit(os.sched_getscheduler, 0).result() == os.SCHED_BATCH
    assert os.sched_getscheduler(0) != os.SCHED_BATCH
    pool.release(lane)
    pool.clear()


def test_lane_pool_reuses_idle_lanes_and_stops_extra_ones():
    from fastbase.django.threads import LanePool

    pool = LanePool(max_idle=1)
    first, second = pool.acquire(), pool.acquire()
    assert first is not second and pool.started == 2
    assert first.submit(threading.get_ident).result() == first.thread.ident
    pool.release(first)
    pool.release(second)  # over max_idle: the older idle one stops
    first.thread.join(5)
    assert not first.thread.is_alive()
    assert pool.acquire() is second and pool.started == 2
    pool.release(second)
    pool.clear()
    assert not second.thread.is_alive()


def test_lane_pool_stops_lanes_idle_too_long(monkeypatch):
    import fastbase.django.threads as threads

    now = [1000.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: now[0])
    pool = threads.LanePool(idle_timeout=30.0)
    lanes = [pool.acquire() for _ in range(3)]
    for lane in lanes:
        pool.release(lane)
    assert pool.idle == 3
    now[0] += 31.0
    busy = pool.acquire()  # the most recently used one
    assert busy is lanes[2]
    pool.release(busy)  # coming back, it finds the other two stale
    assert pool.idle == 1
    for lane in lanes[:2]:
        lane.thread.join(5)
        assert not lane.thread.is_alive()
    pool.clear()


def test_a_lane_released_while_busy_comes_back_when_its_call_returns():
    from fastbase.django.threads import LanePool

    pool = LanePool()
    lane = pool.acquire()
    go = threading.Event()
    running = threading.Event()
    lane.submit(lambda: (running.set(), go.wait(10)))
    running.wait(5)
    pool.release(lane)
    assert pool.idle == 0  # still busy: a new request gets another lane
    other = pool.acquire()
    assert other is not lane
    go.set()
    for _ in range(500):
        if pool.idle:
            break
        threading.Event().wait(0.01)
    assert pool.idle == 1
    pool.release(other)
    pool.clear()


def test_order_of_calls_on_a_lane():
    from fastbase.django.threads import LanePool

    pool = LanePool()
    lane = pool.acquire()
    seen: list[int] = []
    futures = [lane.submit(seen.append, i) for i in range(100)]
    for future in futures:
        future.result(5)
    assert seen == list(range(100))
    pool.release(lane)
    pool.clear()


def test_import_fastbase_does_not_import_django():
    code = "import sys, fastbase; assert 'django' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


# fastbase.django.handler._Hop: sync_to_async's contract on the request's lane.


def _on_a_lane(body):
    """Run ``body(hop_factory)`` inside a request context with a lane, as
    ASGIHandler.__call__ sets one up."""
    import asyncio

    from asgiref.sync import SyncToAsync, ThreadSensitiveContext

    from fastbase.django.handler import _Hop
    from fastbase.django.threads import Borrower, LanePool, borrower

    pool = LanePool()

    async def main():
        context = ThreadSensitiveContext()
        await context.__aenter__()
        lane = pool.acquire()
        SyncToAsync.context_to_thread_executor[context] = lane
        token = borrower.set(Borrower(lane))
        try:
            return await body(_Hop, lane)
        finally:
            borrower.reset(token)
            del SyncToAsync.context_to_thread_executor[context]
            pool.release(lane)
            await context.__aexit__(None, None, None)

    try:
        return asyncio.run(main())
    finally:
        pool.clear()


def test_hop_takes_its_own_path_and_yields_to_asgiref_inside_its_requests_call():
    """A hop queues on its request's lane itself (no sync_to_async), but from
    async code that a call of the same request awaits through async_to_sync
    it goes through asgiref, to the thread that waits (a queued call would
    wait for that call to end: a deadlock)."""
    from asgiref.sync import async_to_sync

    async def body(hop, lane):
        with asgiref_calls() as used:
            assert (await hop(threading.get_ident)()) == lane.thread.ident
            assert used == []

            async def inner():
                return await hop(threading.get_ident)()

            def outer():
                return threading.get_ident(), async_to_sync(inner)()

            outer_thread, inner_thread = await asyncio.wait_for(hop(outer)(), 10)
            assert outer_thread == inner_thread == lane.thread.ident
            assert used == ["asgiref"]

    import asyncio

    _on_a_lane(body)


def test_a_hop_queues_behind_another_requests_call_on_a_handed_on_lane():
    """A lane handed on to the next request of a connection may still run the
    last request's request_finished: the next request's hops queue behind it
    on the lane (their own path), in order."""
    import asyncio

    from fastbase.django.threads import Borrower, borrower

    order = []
    release = threading.Event()

    def previous_request_finished():
        release.wait(10)
        order.append("previous")

    async def body(hop, lane):
        # The previous request's call, made in its own context.
        previous = contextvars_run(lambda: borrower.set(Borrower(lane)))
        previous.run(lane.submit, previous_request_finished)
        with asgiref_calls() as used:
            started = hop(lambda: order.append("next") or threading.get_ident())()
            task = asyncio.ensure_future(started)
            await asyncio.sleep(0)
            assert not task.done()
            release.set()
            assert (await asyncio.wait_for(task, 10)) == lane.thread.ident
        assert order == ["previous", "next"]
        assert used == []  # queued by the hop itself, not sent through sync_to_async

    _on_a_lane(body)


@contextlib.contextmanager
def asgiref_calls():
    """A list that gets "asgiref" for each sync_to_async call made inside."""
    from asgiref.sync import SyncToAsync

    used: list = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        used.append("asgiref")
        return await original(self, *args, **kwargs)

    SyncToAsync.__call__ = counted
    try:
        yield used
    finally:
        SyncToAsync.__call__ = original


def contextvars_run(setup):
    """A copy of the current context with ``setup`` run in it."""
    import contextvars

    context = contextvars.copy_context()
    context.run(setup)
    return context


def test_hop_runs_on_the_lane_and_carries_context_both_ways():
    import contextvars

    from asgiref.local import Local

    var = contextvars.ContextVar("var", default="unset")
    local = Local()

    def func(x):
        seen = (var.get(), getattr(local, "value", None), threading.get_ident())
        var.set("set on the lane")
        local.value = "local from the lane"
        return x * 2, seen

    async def body(hop, lane):
        var.set("set on the loop")
        local.value = "local from the loop"
        result, (seen_var, seen_local, ident) = await hop(func)(21)
        assert result == 42
        assert (seen_var, seen_local) == ("set on the loop", "local from the loop")
        assert ident == lane.thread.ident
        assert var.get() == "set on the lane"
        assert local.value == "local from the lane"

    _on_a_lane(body)


def test_hop_exceptions_and_async_to_sync_inside():
    import asyncio

    from asgiref.sync import async_to_sync, sync_to_async

    loop_thread = threading.get_ident()

    async def on_loop():
        # Back on the loop from inside the hop, and from there thread-sensitive
        # sync code goes back to the lane (the thread waiting in async_to_sync).
        inner = await sync_to_async(threading.get_ident)()
        return threading.get_ident(), inner

    def func():
        return threading.get_ident(), async_to_sync(on_loop)()

    def fails():
        raise KeyError("from the lane")

    async def body(hop, lane):
        ident, (loop_ident, inner) = await hop(func)()
        assert ident == lane.thread.ident == inner
        assert loop_ident == loop_thread
        with pytest.raises(KeyError, match="from the lane"):
            await hop(fails)()
        assert (await hop(threading.get_ident)()) == lane.thread.ident
        return asyncio.get_running_loop()

    _on_a_lane(body)


def test_hop_cancelled_cancels_what_it_awaits_through_async_to_sync():
    import asyncio

    from asgiref.sync import async_to_sync

    state = {}

    async def forever():
        state["started"].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    def func():
        return async_to_sync(forever)()

    async def body(hop, lane):
        state["started"] = asyncio.Event()
        task = asyncio.ensure_future(hop(func)())
        await state["started"].wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert state.get("cancelled") is True
        # The lane's thread is free again: the next hop runs.
        assert (await hop(threading.get_ident)()) == lane.thread.ident

    _on_a_lane(body)


def test_hop_is_sync_to_async_under_a_parent_async_to_sync():
    """In Django's tests (async test methods under async_to_sync) thread-
    sensitive code runs on the test's thread, with fastbase's handler too."""
    from asgiref.sync import async_to_sync

    from fastbase.django.handler import _Hop

    async def body():
        return await _Hop(threading.get_ident)()

    assert async_to_sync(body)() == threading.get_ident()


def test_a_lane_survives_its_requests_loop_closing_under_a_running_call():
    """A request cancelled while its sync code runs, its loop closed before
    that code returns (Django's tests do this): the lane goes back to the pool
    and must still serve the next request."""
    import asyncio

    from asgiref.sync import SyncToAsync, ThreadSensitiveContext

    from fastbase.django.handler import _Hop
    from fastbase.django.threads import LanePool

    pool = LanePool()
    go = threading.Event()
    running = threading.Event()

    def slow():
        running.set()
        go.wait(10)
        return "late"

    async def request():
        context = ThreadSensitiveContext()
        await context.__aenter__()
        lane = pool.acquire()
        SyncToAsync.context_to_thread_executor[context] = lane
        task = asyncio.ensure_future(_Hop(slow)())
        while not running.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        del SyncToAsync.context_to_thread_executor[context]
        pool.release(lane)  # still busy: handed back when slow() returns
        await context.__aexit__(None, None, None)
        return lane

    lane = asyncio.run(request())  # the loop is closed now
    go.set()
    for _ in range(500):
        if pool.idle:
            break
        threading.Event().wait(0.01)
    assert pool.idle == 1
    assert pool.acquire() is lane
    assert lane.submit(lambda: "still serving").result(5) == "still serving"
    pool.release(lane)
    pool.clear()
