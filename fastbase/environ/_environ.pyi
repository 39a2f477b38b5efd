"""Typing stub for ``fastbase.environ._environ`` (compiled), whose API is the same as
the pure-Python twin ``fastbase.environ._environ_py``."""

from typing import Any, Tuple

from fastbase.http._parser import Request

MAX_CACHED_NAMES: int

def wsgi_environ(base: dict, request: Request, root_path: str, body: Any) -> dict: ...
def scope_paths(raw_path: bytes, root_path: str) -> Tuple[str, bytes]: ...
def http_scope(base: dict, request: Request, state: dict) -> dict: ...
