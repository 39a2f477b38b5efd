"""The ASGI 3 bridge.

- ``bridge``: ``ASGIBridge``, what a server's connections share, making a
  cycle per request.
- ``cycle``: ``ASGICycle``, one HTTP request/response exchange.
- ``websocket``: ``WebSocketCycle``/``WebSocketProtocol``, the WebSocket
  session (the protocol itself is ``fastbase.websocket``).
- ``lifespan``: startup and shutdown (``Lifespan``, ``LifespanError``).
"""

from .bridge import ASGIBridge
from .cycle import ASGICycle
from .lifespan import Lifespan, LifespanError

__all__ = ["ASGIBridge", "ASGICycle", "Lifespan", "LifespanError"]
