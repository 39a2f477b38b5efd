"""Thread hand-offs for the WSGI bridge, built for their cost.

On one core a hop between the loop and a pool thread is two context
switches plus a fight for the GIL, which costs more than a small request
itself. So hand-offs are batched in both directions:

- Jobs queued during one pass of the event loop wake one thread once, at the
  end of the pass, instead of one wake-up per request.
- While requests are quick (the pool measures them), one awake thread runs
  the whole batch and more are woken only if the queue stops moving (a job
  blocked on I/O): a short timer checks. Once requests are slow on average,
  every queued job wakes a thread straight away.
- A thread hands finished responses back to the loop when its queue runs
  dry, one loop wake-up for the batch, through ``LoopCaller``; in a long
  batch it does so every millisecond and yields the GIL, so the loop writes
  them and reads new requests without waiting for a forced GIL switch.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
from typing import Any, Callable, List, Optional

from ..logs import error_log

#: Jobs slower than this on average (seconds, wall clock) wake threads eagerly.
SLOW_JOB = 0.0002
#: In the quick regime, how long queued jobs may sit without one being taken
#: before another thread is woken. uvloop's timers have millisecond
#: resolution and round half a millisecond to zero (a busy loop), so no less.
RAMP_DELAY = 0.001
#: Longest a finished response waits for its thread's batch to end.
FLUSH_DELAY = 0.001

#: Releases the GIL and lets another runnable thread have the CPU.
yield_to_loop = getattr(os, "sched_yield", lambda: time.sleep(0))


class LoopCaller:
    """Run callables on the event loop from any thread, in order, with one
    loop wake-up per batch instead of one per call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: collections.deque = collections.deque()
        self._scheduled = False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the loop soon."""
        self._pending.append((fn, args))
        self.flush()

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue fn(*args) for the loop without waking it: the next call or
        flush() (the thread's, when its batch ends) carries it over."""
        self._pending.append((fn, args))

    def flush(self) -> None:
        # Appending before reading the flag pairs with drain() clearing the
        # flag before popping: whichever way threads interleave, every item
        # is drained by a run that starts after it was appended.
        if not self._scheduled and self._pending:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop is closed: the server is gone
                self._pending.clear()

    def drain(self) -> None:
        """Run what is pending (loop thread only)."""
        self._scheduled = False
        pending = self._pending
        while pending:
            fn, args = pending.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001
                error_log.exception("Error in a callback posted to the event loop")


class ThreadPool:
    """A fixed set of daemon threads running callables submitted from the
    event loop's thread."""

    def __init__(
        self,
        size: int,
        loop: asyncio.AbstractEventLoop,
        caller: LoopCaller,
        name: str = "fastbase-thread",
    ) -> None:
        self._loop = loop
        self._caller = caller
        self._jobs: collections.deque = collections.deque()
        self._mutex = threading.Lock()
        #: The wake-up locks of sleeping threads (each held while it sleeps).
        self._idle: List[threading.Lock] = []
        self._size = size
        self._wake_scheduled = False
        self._ramp_armed = False
        #: The job at the head of the queue at the ramp timer's last look:
        #: still there at the next look means no job was taken in between.
        self._ramp_mark: Optional[Callable[[], Any]] = None
        #: Moving average of a job's wall-clock time.
        self.average = 0.0
        self._threads: List[threading.Thread] = []
        for i in range(size):
            thread = threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- the loop's side -------------------------------------------------------

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue a job (loop thread only); threads wake at the end of this
        pass of the loop."""
        self._jobs.append(job)
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._loop.call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_scheduled = False
        jobs = self._jobs
        if jobs:
            quick = self.average < SLOW_JOB
            with self._mutex:
                idle = self._idle
                if quick:
                    # One awake thread takes the whole batch.
                    wake = 1 if len(idle) == self._size else 0
                else:
                    wake = min(len(jobs), len(idle))
                for _ in range(wake):
                    idle.pop().release()
        # Armed also when an awake thread has taken this pass's jobs already:
        # it may hold its previous job's response back while it runs them.
        if not self._ramp_armed:
            self._ramp_armed = True
            self._ramp_mark = self._head()
            self._loop.call_later(RAMP_DELAY, self._ramp)

    def _head(self) -> Optional[Callable[[], Any]]:
        try:
            return self._jobs[0]
        except IndexError:  # (a thread may take the last job meanwhile)
            return None

    def _ramp(self) -> None:
        """A look at the pool while it has work: deliver the responses
        threads hold back for their batch (one of them may have gone on to a
        slow request), and if no queued job was taken since the last look,
        the awake threads are stuck in slow requests: wake one more."""
        self._ramp_armed = False
        # The queue is looked at before the drain: a thread holds a response
        # back before it takes its next job, so if that job is gone at this
        # look the drain below delivers the response, and if not the timer
        # looks again.
        busy = bool(self._jobs)
        self._caller.drain()
        if not busy:
            self._ramp_mark = None  # (holds a request's job otherwise)
            return
        head = self._head()
        if head is not None and head is self._ramp_mark:
            with self._mutex:
                if self._idle:
                    self._idle.pop().release()
        self._ramp_armed = True
        self._ramp_mark = head
        self._loop.call_later(RAMP_DELAY, self._ramp)

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Let queued jobs finish, then stop the threads."""
        with self._mutex:
            for _ in self._threads:
                self._jobs.append(None)
            while self._idle:
                self._idle.pop().release()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    # -- a thread's side ---------------------------------------------------------

    def _work(self) -> None:
        jobs = self._jobs
        mutex = self._mutex
        idle = self._idle
        caller = self._caller
        clock = time.perf_counter
        wakeup = threading.Lock()
        wakeup.acquire()
        # A job is timed from the end of the one before it (or from waking
        # up): one clock reading per job. Responses held back since
        # unflushed_since are handed over after FLUSH_DELAY at the latest.
        started = unflushed_since = clock()
        while True:
            try:
                job = jobs.popleft()
            except IndexError:
                # Out of work: hand the batch's responses over, then sleep.
                caller.flush()
                unflushed_since = started  # (the last job's end: about now)
                with mutex:
                    if jobs:
                        continue
                    idle.append(wakeup)
                wakeup.acquire()
                started = unflushed_since = clock()
                continue
            if job is None:
                caller.flush()
                return
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job must never kill its thread
                error_log.exception("Unhandled error in a pool thread")
            ended = clock()
            self.average += (ended - started - self.average) * 0.125
            started = ended
            if ended - unflushed_since >= FLUSH_DELAY:
                caller.flush()
                # A thread going from job to job never blocks, so the loop
                # would wait for the GIL's switch interval (5 ms) to write
                # these responses and read new requests: hand it the GIL
                # (and, on one core, the CPU) now.
                yield_to_loop()
                # (The loop's turn is not the next job's time.)
                started = unflushed_since = clock()
