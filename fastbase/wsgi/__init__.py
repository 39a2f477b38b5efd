"""The WSGI bridge (PEP 3333).

- ``bridge``: ``WSGIBridge``, what a server's connections share, making a
  cycle per request.
- ``cycle``: ``WSGICycle``, one request/response exchange.
- ``input``: ``wsgi.input`` (``EmptyInput``, ``StreamInput``).
- ``threads``: the thread pool the apps run in, and the calls back to the loop.
"""

from .bridge import WSGIBridge
from .cycle import FileWrapper, WSGICycle
from .input import BODY_HIGH_WATER, BODY_LOW_WATER, NO_INPUT, EmptyInput, StreamInput

__all__ = [
    "WSGIBridge",
    "WSGICycle",
    "FileWrapper",
    "EmptyInput",
    "StreamInput",
    "NO_INPUT",
    "BODY_HIGH_WATER",
    "BODY_LOW_WATER",
]
