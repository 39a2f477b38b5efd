"""Thread hand-offs for the WSGI bridge, built for their cost.

A hop between the loop and a worker thread costs tens of microseconds here,
so each direction is as cheap as it can be: jobs go to workers through a
``SimpleQueue`` (no Future objects), and results come back through a
``LoopCaller`` that coalesces every call posted while the loop is busy into
one wake-up of the loop.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from typing import Any, Callable, List, Optional

from .logs import error_log


class WorkerPool:
    """A fixed set of daemon threads running submitted callables."""

    def __init__(self, size: int, name: str = "fastbase-worker") -> None:
        self._jobs: "queue.SimpleQueue[Optional[Callable[[], Any]]]" = queue.SimpleQueue()
        self.submit = self._jobs.put  # the hot path: no wrapper call
        self._threads: List[threading.Thread] = []
        for i in range(size):
            thread = threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        get = self._jobs.get
        while True:
            job = get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job must never kill its thread
                error_log.exception("Unhandled error in a worker thread")

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Let queued jobs finish, then stop the threads."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()


class LoopCaller:
    """Run callables on the event loop from any thread, in order, with one
    loop wake-up per batch instead of one per call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: collections.deque = collections.deque()
        self._scheduled = False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        self._pending.append((fn, args))
        # Appending before reading the flag pairs with _drain clearing the
        # flag before popping: whichever way threads interleave, the item is
        # drained by a run that starts after it was appended.
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: the server is gone
                self._pending.clear()

    def _drain(self) -> None:
        self._scheduled = False
        pending = self._pending
        while pending:
            fn, args = pending.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001
                error_log.exception("Error in a callback posted to the event loop")
