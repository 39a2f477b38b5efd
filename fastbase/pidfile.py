"""``--pid-file PATH``: the serving process's pid, for init scripts and
``kill $(cat PATH)``; removed again on a clean exit."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

__all__ = ["PidFileError", "pid_file"]


class PidFileError(OSError):
    """The pid file cannot be written; the message is one line."""


@contextlib.contextmanager
def pid_file(path: Optional[str]) -> Iterator[None]:
    """Write this process's pid to ``path`` (None: do nothing) for the
    duration of the block; the file is removed afterwards unless another
    process has written its own pid there meanwhile."""
    if path is None:
        yield
        return
    pid = str(os.getpid())
    try:
        # Written whole then renamed: a reader never sees a half-written pid.
        temporary = f"{path}.{pid}.tmp"
        with open(temporary, "w") as f:
            f.write(pid + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise PidFileError(f"--pid-file {path!r}: cannot write it ({(exc.strerror or str(exc)).lower()})") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            with open(path) as f:
                mine = f.read().strip() == pid
            if mine:
                os.unlink(path)
