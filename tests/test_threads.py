"""The WSGI bridge's thread hand-offs (fastbase/wsgi/threads.py): batching must
never cost a blocked request its concurrency or a finished response its
delivery."""

from __future__ import annotations

import asyncio
import threading

import pytest

from fastbase.wsgi import threads
from fastbase.wsgi.threads import LoopCaller, ThreadPool


def run_on_loop(body, size, timeout=10.0):
    """Run body(loop, pool, caller) on a fresh event loop with a pool of
    `size` workers; body returns an awaitable, whose result is returned."""
    loop = asyncio.new_event_loop()
    caller = LoopCaller(loop)
    pool = ThreadPool(size, loop, caller)
    try:
        return loop.run_until_complete(asyncio.wait_for(body(loop, pool, caller), timeout))
    finally:
        pool.shutdown(2.0)
        loop.close()


def test_jobs_blocked_together_each_get_a_worker():
    # Four jobs that can only finish together: one worker per job is needed,
    # although they arrive in one batch and start out in the quick regime.
    barrier = threading.Barrier(4, timeout=5)

    async def body(loop, pool, caller):
        done = [loop.create_future() for _ in range(4)]
        for future in done:

            def job(future=future):
                barrier.wait()
                caller.call(future.set_result, threading.current_thread().name)

            pool.submit(job)
        return await asyncio.gather(*done)

    names = run_on_loop(body, size=4)
    assert len(set(names)) == 4


def test_a_quick_batch_runs_on_one_worker(monkeypatch):
    # The point of the batching: quick jobs queued in one pass of the loop
    # wake one worker, not one each (no ramp-up within the test's time).
    monkeypatch.setattr(threads, "RAMP_DELAY", 60.0)

    async def body(loop, pool, caller):
        await asyncio.sleep(0.05)  # let every worker reach its idle wait
        names = []
        finished = loop.create_future()
        for i in range(50):

            def job(i=i):
                names.append(threading.current_thread().name)
                if i == 49:
                    caller.defer(finished.set_result, None)

            pool.submit(job)
        await finished
        return names

    names = run_on_loop(body, size=8)
    assert len(names) == 50
    assert len(set(names)) == 1


def test_a_held_back_response_is_delivered_while_its_worker_blocks():
    # One worker takes a quick job, holds its result back for the batch, then
    # blocks in a second job until the first result reaches the loop.
    delivered = threading.Event()

    async def body(loop, pool, caller):
        first = loop.create_future()

        def deliver():
            first.set_result("first")
            delivered.set()

        pool.submit(lambda: caller.defer(deliver))
        second = loop.create_future()

        def blocking_job():
            ok = delivered.wait(5)
            caller.call(second.set_result, ok)

        pool.submit(blocking_job)
        return await first, await second

    assert run_on_loop(body, size=1) == ("first", True)


def test_slow_jobs_switch_the_pool_to_waking_a_worker_per_job():
    async def body(loop, pool, caller):
        release = threading.Event()
        started = []
        done = [loop.create_future() for _ in range(3)]
        for future in done:

            def job(future=future):
                started.append(1)
                release.wait(5)
                caller.call(future.set_result, None)

            pool.submit(job)
        while len(started) < 3:
            await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*done)
        return pool.average

    assert run_on_loop(body, size=3) > threads.SLOW_JOB


@pytest.mark.parametrize("size", [1, 3])
def test_shutdown_runs_queued_jobs_then_stops_the_threads(size):
    async def body(loop, pool, caller):
        ran = []
        for i in range(20):
            pool.submit(lambda i=i: ran.append(i))
        pool.shutdown(5.0)
        return ran, pool._threads

    ran, left = run_on_loop(body, size=size)
    assert sorted(ran) == list(range(20))
    assert left == []


class _HeldBack:
    """Two jobs for one worker: the first holds its result back for the
    batch (LoopCaller.defer) once let finish; the second blocks until
    released. ``result`` is the loop's future for the first's result."""

    def __init__(self, loop, caller):
        self.first_started = threading.Event()
        self.finish_first = threading.Event()
        self.second_started = threading.Event()
        self.release_second = threading.Event()
        self.result = loop.create_future()
        self._caller = caller

    def first_job(self):
        self.first_started.set()
        self.finish_first.wait(5)
        self._caller.defer(self.result.set_result, "first")

    def second_job(self):
        self.second_started.set()
        self.release_second.wait(5)


def test_a_held_back_response_is_delivered_when_its_worker_took_the_next_job_before_the_wake_up():
    # A worker finishes a job, holds its result back and takes a job queued
    # in this pass before the pass's wake-up runs (the loop handed it the GIL,
    # e.g. in its select): the wake-up then finds the queue empty, yet the
    # held result must still reach the loop while that second job blocks.
    async def body(loop, pool, caller):
        jobs = _HeldBack(loop, caller)
        pool.submit(jobs.first_job)
        while not jobs.first_started.is_set() or pool._ramp_armed or pool._wake_scheduled:
            await asyncio.sleep(0.001)  # the ramp timer has looked and stopped
        try:
            pool.submit(jobs.second_job)
            jobs.finish_first.set()
            # Still in this pass: the worker moves on before _wake runs.
            assert jobs.second_started.wait(5)
            return await asyncio.wait_for(jobs.result, 10)
        finally:
            jobs.release_second.set()

    assert run_on_loop(body, size=1) == "first"


def test_a_held_back_response_is_delivered_when_its_worker_took_the_last_job_during_a_ramp_look():
    # The GIL passes to the worker while the ramp timer runs, after it
    # delivered what was held back and before it looks at the queue: the
    # worker holds its finished job's result back and takes the last queued
    # job, which blocks. The ramp must look again and deliver it.
    async def body(loop, pool, caller):
        jobs = _HeldBack(loop, caller)
        drain = caller.drain

        def drain_then_switch():
            drain()
            if not jobs.finish_first.is_set() and pool._jobs:
                jobs.finish_first.set()
                assert jobs.second_started.wait(5)

        pool.submit(jobs.first_job)
        while not jobs.first_started.is_set():
            await asyncio.sleep(0.001)
        pool.submit(jobs.second_job)
        caller.drain = drain_then_switch
        try:
            return await asyncio.wait_for(jobs.result, 10)
        finally:
            jobs.finish_first.set()
            jobs.release_second.set()

    assert run_on_loop(body, size=1) == "first"
