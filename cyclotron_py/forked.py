"""Half of a large job in a forked child, the other half here: the CLI's second core.

Used where the work splits into two independent halves whose results are cheap to send back
(fleet_load: the second half of the files; compare.engine: the second half of the capabilities).
The child gets a copy of this process, computes, sends its result pickled through a pipe (one
pickle: an object the result shares in several places crosses once) and leaves with os._exit,
so it runs none of the parent's exit handlers and flushes none of its buffered output.

Anything wrong with the child (no fork on this system, a crash, a result that does not arrive)
gives None, and the caller does that half itself: the answer never depends on the child.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Only in a single-threaded process: a fork copies no other thread, so a lock another thread
    held (logging, a writer) would stay locked in the child forever."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Forked(Generic[T]):
    """A forked child computing a result; ``result()`` waits for it."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd

    def result(self) -> T | None:
        """The child's result, or None when it failed (the caller computes it itself)."""
        try:
            with os.fdopen(self.fd, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(self.pid, 0)
            if status != 0 or not data:
                return None
            result: T = pickle.loads(data)  # noqa: S301 - our own forked child's output
            return result
        except Exception:  # noqa: BLE001 - a failed child: the caller does the work itself
            return None


def fork_call(compute: Callable[[], T]) -> Forked[T] | None:
    """``compute()`` in a forked child, started now; None when this process cannot fork."""
    if not can_fork():
        return None
    try:
        read, write = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid:
        os.close(write)
        return Forked(pid, read)
    code = 1
    try:
        os.close(read)
        data = pickle.dumps(compute(), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)
        code = 0
    finally:
        os._exit(code)
