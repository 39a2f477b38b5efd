"""The per-response counts of ``--metrics``: the pure-Python twin of
``fastbase._tally``, and its readable spec.

``Tally(methods, bounds, log)`` counts each response it is told about by
``record(protocol, request, status, size, seconds, headers=None)``, the
access-log callback's signature, so that ``tally.record`` is what the server
installs as its access log while ``--metrics`` is on:

- one count per (method, status class): the method's row among ``methods``
  (bytes; any other method, or a method that is not bytes, counts in one
  row after them), the column ``status // 100`` (0 when the client left
  before a response; a status outside 0-999 counts there too);
- one count in the duration histogram: the first of ``bounds`` (seconds,
  increasing) that is not below ``seconds``, or the bucket above them all;
- ``seconds`` added to the durations' sum;
- one upgrade when the status is 101 (a WebSocket session accepted).

A ``request`` of None (a head the parser rejected; the connection counts
those) is not counted. Then ``log``, when given, is called with the same
arguments: the access log, when it is on too.

``counts()`` returns ``(requests, buckets, duration_sum, upgrades)``.

``record`` may be called from several threads at once (the WSGI pool's):
each thread counts into a row of its own, and ``counts`` sums the rows, so
no increment is lost and no lock is taken per response.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any, Callable, Iterable, List, Optional, Tuple

#: Columns per method: the status divided by 100 (0: no response was sent).
STATUS_COLUMNS = 10


class Tally:
    """Responses by method and status class, a histogram of their durations
    and the durations' sum, and the 101s (WebSocket sessions accepted)."""

    #: The access-log callback that counts (a closure: a bound method's
    #: call costs more, and this runs once per response).
    record: Callable[..., None]

    def __init__(self, methods: Iterable[bytes], bounds: Iterable[float], log: Optional[Callable[..., None]] = None) -> None:
        methods = tuple(methods)
        for method in methods:
            if type(method) is not bytes:
                raise TypeError(f"methods must be bytes, got {method!r}")
        bounds = tuple(float(bound) for bound in bounds)
        for i in range(1, len(bounds)):
            if not bounds[i] > bounds[i - 1]:
                raise ValueError(f"bounds must increase, got {bounds!r}")
        self._methods = methods
        self._bounds = bounds
        # A row: the request counts (one row of STATUS_COLUMNS per method,
        # then the other methods'), the buckets, the sum, the upgrades.
        requests = (len(methods) + 1) * STATUS_COLUMNS
        histogram = requests
        total = histogram + len(bounds) + 1
        upgrades = total + 1
        self._layout = (requests, total, upgrades)
        self._rows: List[List[Any]] = []
        lock = threading.Lock()
        local = threading.local()
        rows = self._rows
        row_of = {method: i * STATUS_COLUMNS for i, method in enumerate(methods)}.get
        other = len(methods) * STATUS_COLUMNS
        find_bucket = bisect.bisect_left

        def new_row() -> List[Any]:
            row: List[Any] = [0] * (upgrades + 1)
            row[total] = 0.0
            with lock:
                rows.append(row)
            local.row = row
            return row

        def record(protocol: Any, request: Any, status: int, size: int, seconds: float, headers: Any = None) -> None:
            if request is not None:
                try:
                    row = local.row
                except AttributeError:
                    row = new_row()
                method = request.method
                column = status // 100 if 0 <= status < 1000 else 0
                row[(row_of(method, other) if type(method) is bytes else other) + column] += 1
                row[histogram + find_bucket(bounds, seconds)] += 1
                row[total] += seconds
                if status == 101:
                    row[upgrades] += 1
            if log is not None:
                log(protocol, request, status, size, seconds, headers)

        self.record = record
        self._lock = lock

    def counts(self) -> Tuple[List[int], List[int], float, int]:
        """``(requests, buckets, duration_sum, upgrades)``: ``requests`` one
        row of ``STATUS_COLUMNS`` per method, then one for the other
        methods, in one list; ``buckets`` one per bound, then the one above
        them all (not cumulative)."""
        requests, total, upgrades = self._layout
        with self._lock:
            rows = list(self._rows)
        summed: List[Any] = [0] * (upgrades + 1)
        summed[total] = 0.0
        for row in rows:
            for i, number in enumerate(row):
                summed[i] += number
        return summed[:requests], summed[requests:total], summed[total], summed[upgrades]
