"""Typing stub for ``fastbase._tally`` (compiled), whose API is the same as
the pure-Python twin ``fastbase._tally_py``."""

from typing import Any, Callable, Iterable, List, Optional, Tuple

STATUS_COLUMNS: int

class Tally:
    def __init__(self, methods: Iterable[bytes], bounds: Iterable[float], log: Optional[Callable[..., None]] = None) -> None: ...
    def record(self, protocol: Any, request: Any, status: int, size: Any, seconds: float, headers: Any = None) -> None: ...
    def counts(self) -> Tuple[List[int], List[int], float, int]: ...
