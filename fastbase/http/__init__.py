"""The sans-IO HTTP/1.1 core: bytes in, events out; response parts in, bytes out.

- ``parser``: the API the rest of fastbase uses, selecting ``_parser``
  (compiled, ``_parser.pyx``/``.pxd``/``.pyi``) or its pure-Python twin
  ``_parser_py`` through ``twins``.
- ``wire``: the framing modes, fixed byte strings and ``to_bytes`` both
  writer twins share.
- ``errors``, ``limits``, ``status``: the protocol errors (each with its
  status), the default size limits, the reason phrases.

Nothing here does I/O or imports anything outside this package
(tests/test_layout.py enforces it).
"""
