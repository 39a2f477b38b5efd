"""The sans-IO WebSocket core (RFC 6455, permessage-deflate RFC 7692).

- ``frames``: the frame parser and writers the rest of fastbase uses,
  selecting ``_frames`` (compiled, ``_frames.pyx``/``.pxd``/``.pyi``) or its
  pure-Python twin ``_frames_py``.
- ``handshake``: the opening handshake (checking the upgrade request,
  encoding the 101 or the refusal).
- ``deflate``: permessage-deflate negotiation and compression.
- ``errors``, ``limits``: close codes and the protocol error, size limits.

Nothing here does I/O. The one import from outside this package is the
sans-IO HTTP core, ``fastbase.http`` (the handshake is an HTTP/1.1 exchange;
tests/test_layout.py enforces both rules).
"""
