"""The ASGI 3 bridge: what a server needs to serve an ASGI app.

``ASGIBridge`` holds what a connection's requests share (the app, the
lifespan and its state) and makes the cycle of each request: an
``ASGICycle`` (cycle.py) for HTTP, a ``WebSocketCycle`` (websocket.py) for a
WebSocket upgrade.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ..config import Config
from ..http.parser import Request
from ..protocol import HttpProtocol
from .cycle import TASK_NAME, ASGICycle
from .lifespan import Lifespan
from .websocket import WebSocketCycle


class ASGIBridge:
    #: Pipelined GET/HEAD requests may run while an earlier response is in
    #: progress: each app call is its own task, and the connection keeps
    #: their responses in order (protocol.PendingOutput).
    early_start = True

    def __init__(self, app: Callable[..., Any], loop: asyncio.AbstractEventLoop, config: Config) -> None:
        self.app = app
        self.loop = loop
        self.root_path = config.root_path
        self.server = config.server_field
        self.lifespan = Lifespan(app, config.lifespan)
        self.state = self.lifespan.state
        self.config = config
        self.websockets = config.ws != "none"

    def start_task(self, coro: Any) -> asyncio.Task:
        """Run one request's app coroutine as a task of its own.

        Built here rather than by ``loop.create_task``: given no name, a task
        formats a fresh "Task-N" for itself, and uvloop's create_task can only
        rename it afterwards; a constant name saves that work on every
        request. A task factory set on the loop is still used.
        Inlined in ASGICycle.start for speed.
        """
        loop = self.loop
        if loop.get_task_factory() is None:
            return asyncio.Task(coro, loop=loop, name=TASK_NAME)
        # The loop names the factory's task its own way (asyncio tolerates a
        # factory whose tasks cannot be named).
        return loop.create_task(coro, name=TASK_NAME)

    def connection_scope(self, protocol: HttpProtocol) -> dict:
        """What the scopes of a connection's requests share, kept in
        ``protocol.bridge_cache``: http_scope copies it and fills in the
        request's entries (placeholders here, so the copy never grows)."""
        base = {
            "type": "http",
            "asgi": None,
            "http_version": None,
            "server": protocol.server,
            "client": protocol.client,
            "scheme": protocol.scheme,
            "method": None,
            "root_path": self.root_path,
            "path": None,
            "raw_path": None,
            "query_string": None,
            "headers": None,
            "state": None,
            "extensions": None,
        }
        protocol.bridge_cache = base
        return base

    def new_cycle(self, protocol: HttpProtocol, request: Request) -> Any:
        upgrade = request.upgrade
        if upgrade is not None and self.websockets and b"websocket" in upgrade.lower():
            return WebSocketCycle(self, protocol, request)
        return ASGICycle(self, protocol, request)

    async def startup(self) -> None:
        await self.lifespan.startup()

    async def shutdown(self) -> None:
        await self.lifespan.shutdown()
