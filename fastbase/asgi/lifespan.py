"""The ASGI lifespan protocol (spec 2.0): the app's startup before the
server serves, its shutdown after."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional

from ..logs import error_log


class LifespanError(Exception):
    """Startup failed; the message is one line."""


class Lifespan:
    """The ASGI lifespan protocol: startup before serving, shutdown after."""

    def __init__(self, app: Callable[..., Any], mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: Dict[str, Any] = {}
        self._queue: Optional[asyncio.Queue] = None
        self._startup_done: Optional[asyncio.Event] = None
        self._shutdown_done: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._failed: Optional[str] = None
        self._shutdown_failed: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._active = False

    async def startup(self) -> None:
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task = loop.create_task(self._main())
        await self._queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self._failed is not None:
            raise LifespanError(f"ASGI lifespan startup failed: {self._failed}")
        if self._error is not None and self.mode == "on":
            raise LifespanError(f"ASGI lifespan startup failed: {type(self._error).__name__}: {self._error}")
        self._active = self._error is None

    async def _main(self) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            if self._failed is not None or self._shutdown_failed is not None:
                pass
            elif self.mode == "auto" and not self._startup_done.is_set():
                error_log.info("ASGI 'lifespan' is not supported by the app; going on without it")
            else:
                error_log.error("Exception in ASGI 'lifespan'", exc_info=exc)
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict:
        assert self._queue is not None
        return await self._queue.get()

    async def _send(self, message: dict) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._failed = str(message.get("message", "")) or "(no message)"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._shutdown_failed = str(message.get("message", "")) or "(no message)"
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")

    async def shutdown(self) -> None:
        if not self._active or self._queue is None or self._shutdown_done is None:
            return
        self._active = False
        await self._queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        if self._shutdown_failed is not None:
            error_log.error("ASGI lifespan shutdown failed: %s", self._shutdown_failed)
        task = self._task
        if task is not None and not task.done():
            task.cancel()
