"""Request threads for the ASGI handler: a pool of single-thread lanes.

Django's ASGI handler gives every request a ``ThreadSensitiveContext``, and
asgiref gives every such context a fresh one-thread executor the first time
sync code runs in it: one new OS thread per request, plus one more to join it
when the request ends. A lane is that one-thread executor, kept and reused: a
request borrows one for its whole life, so all its thread-sensitive sync code
runs on that one thread, in order, and another request never shares it while
it is borrowed.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any

_names = itertools.count(1)


class Borrower:
    """A request that borrowed a lane, as its calls see it: ``running`` counts
    its calls executing on the lane right now (written by the lane's thread
    only). Nonzero while its handler wants another hop means that hop comes
    from code the running call is waiting for (async_to_sync), or runs
    alongside it: such a hop must not queue behind it."""

    __slots__ = ("lane", "running")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.running = 0


#: The borrower whose context this is (set by fastbase.django.handler for the
#: request's task); each call queued on a lane records it when queued.
borrower: contextvars.ContextVar[Borrower | None] = contextvars.ContextVar("fastbase_lane_borrower", default=None)


def _batch_this_thread() -> None:
    """Mark the calling thread SCHED_BATCH (Linux; no privilege needed).

    A lane is woken by the event loop for each hop; as a normal thread its
    wake-up preempts the loop on a busy core, and it then only waits for the
    GIL the loop still holds: two context switches for nothing, three hops a
    request. A batch thread does not preempt on wake-up; it runs when the
    loop blocks (and so has let go of the GIL) or its slice ends. Measured
    with 16-64 keep-alive connections on one core: context switches per
    async request 16 -> 12-13, server CPU per request 5-10% lower. Fair
    CPU sharing is unchanged, so a long sync view still gets its share."""
    setscheduler = getattr(os, "sched_setscheduler", None)
    batch = getattr(os, "SCHED_BATCH", None)
    if setscheduler is None or batch is None:
        return
    try:
        setscheduler(0, batch, os.sched_param(0))
    except OSError:  # pragma: no cover - a seccomp filter, say
        pass


class Lane(Executor):
    """An executor with exactly one worker thread, running one call at a time,
    in the order submitted. ``pending`` counts calls submitted and not yet
    finished; the pool takes a lane back only when it is zero."""

    def __init__(self, pool: LanePool) -> None:
        self._pool = pool
        self._queue: SimpleQueue[tuple[Future[Any] | None, Callable[..., Any], tuple[Any, ...], dict[str, Any], Borrower | None] | None] = (
            SimpleQueue()
        )
        self._lock = threading.Lock()
        self.pending = 0
        # Set when the request that borrowed the lane has ended while a call
        # (a sync view its client gave up on, say) is still running: the
        # worker hands the lane back once that call returns.
        self.returned = False
        # Requests holding the lane (the event loop's thread only): the one
        # that borrowed it, and the next one on its connection once it has
        # queued its last hop (see fastbase.django.handler's _parked).
        self.holders = 0
        self._closed = False
        self.thread = threading.Thread(target=self._work, name=f"fastbase-django-{next(_names)}", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._put((future, fn, args, kwargs, borrower.get()))
        return future

    def call(self, fn: Callable[..., Callable[[], Any]], /, *args: Any) -> None:
        """Run ``fn(*args)`` on the lane's thread, with no Future. ``fn`` must
        not raise; it returns what publishes its outcome, called once the
        lane counts the call done (whoever awaits the outcome may release
        the lane at once and must find it idle)."""
        self._put((None, fn, args, {}, borrower.get()))

    def _put(self, item: Any) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a lane after shutdown")
            self.pending += 1
        self._queue.put(item)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        if wait and threading.current_thread() is not self.thread:
            self.thread.join()

    def _work(self) -> None:
        _batch_this_thread()
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            future, fn, args, kwargs, owner = item
            del item
            if future is None:
                # The lane's thread outlives anything a call does: a lane whose
                # worker died would hang every request that borrowed it.
                if owner is not None:
                    owner.running += 1
                try:
                    publish = fn(*args)
                except BaseException:  # pragma: no cover - fn catches its own
                    publish = None
                if owner is not None:
                    owner.running -= 1
                self._done()
                if publish is not None:
                    try:
                        publish()
                    except Exception:  # pragma: no cover - publish guards itself
                        pass
                del fn, args, kwargs, publish
                continue
            if not future.set_running_or_notify_cancel():
                self._done()
                continue
            if owner is not None:
                owner.running += 1
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                if owner is not None:
                    owner.running -= 1
                # Counted done before the result is out: whoever awaits it
                # may release the lane at once and must find it idle.
                self._done()
                future.set_exception(exc)
                del exc
            else:
                if owner is not None:
                    owner.running -= 1
                self._done()
                future.set_result(result)
                del result
            del future, fn, args, kwargs, owner

    def _done(self) -> None:
        with self._lock:
            self.pending -= 1
            hand_back = self.pending == 0 and self.returned
            if hand_back:
                self.returned = False
        if hand_back:
            self._pool._take_back(self)


class LanePool:
    """Lanes for requests: ``acquire`` lends an idle lane (or starts one when
    all are busy, so a request never waits for another's sync code, as under
    Django's handler), ``release`` takes it back. The most recently used lane
    is lent first; a lane left idle for ``idle_timeout`` seconds stops (checked
    when a lane comes back), and at most ``max_idle`` are kept."""

    def __init__(self, max_idle: int = 256, idle_timeout: float = 30.0) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        # (lane, when it came back), oldest first.
        self._idle: list[tuple[Lane, float]] = []
        self._lock = threading.Lock()
        self.started = 0

    def acquire(self) -> Lane:
        with self._lock:
            if self._idle:
                return self._idle.pop()[0]
            self.started += 1
        return Lane(self)

    def release(self, lane: Lane) -> None:
        with lane._lock:
            if lane.pending:
                # Still running something; the worker hands it back after.
                lane.returned = True
                return
        self._take_back(lane)

    def _take_back(self, lane: Lane) -> None:
        now = time.monotonic()
        stale: list[Lane] = []
        with self._lock:
            idle = self._idle
            while idle and (len(idle) >= self.max_idle or now - idle[0][1] > self.idle_timeout):
                stale.append(idle.pop(0)[0])
            if self.max_idle > 0:
                idle.append((lane, now))
            else:
                stale.append(lane)
        for old in stale:
            old.shutdown(wait=False)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def clear(self) -> None:
        """Stop every idle lane (busy ones stop when handed back)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for lane, _ in idle:
            lane.shutdown(wait=True)

    def _after_fork(self) -> None:
        # A forked child has none of the parent's threads.
        self._idle = []
        self._lock = threading.Lock()


pool = LanePool()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=pool._after_fork)
