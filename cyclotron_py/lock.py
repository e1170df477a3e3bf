"""The state dir's OS lock: one run or tick at a time (``cyclotron run`` and ``cyclotron tick``).

Apart from daemon.py so that ``cyclotron run`` does not import the config models (pydantic).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import CyclotronError

LOCK_NAME = "lock"
# How long a process that finds the lock held waits for the holder's pid to appear in the file:
# the holder writes it just after taking the lock.
PID_WAIT_SECONDS = 1.0


class AlreadyRunning(CyclotronError):
    def __init__(self, pid: int | None) -> None:
        super().__init__(f"already running (pid {pid if pid else 'unknown'})")
        self.pid = pid


@contextmanager
def run_lock(state: Path) -> Iterator[IO[str]]:
    """The state dir's OS lock, taken without blocking; the holder's pid is written in the file.
    The kernel releases it when the holder dies, so a killed run never leaves it held.

    The pid is written over the old content, then the file is cut to its length: a reader sees
    the old first line or the new one, never an empty file or half a number."""
    path = state / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    handle = open(fd, "r+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(_holder(fd)) from None
        line = f"{os.getpid()}\n".encode()
        os.pwrite(fd, line, 0)
        os.ftruncate(fd, len(line))
        yield handle
    finally:
        handle.close()


def _holder(fd: int) -> int | None:
    """The pid in the lock file once it names a live process; the holder may not have written
    its own yet (the file is then empty, or names the previous, dead holder)."""
    deadline = time.monotonic() + PID_WAIT_SECONDS
    while True:
        first, newline, _ = os.pread(fd, 64, 0).partition(b"\n")
        pid = int(first) if newline and first.strip().isdigit() else None
        if pid and _alive(pid):
            return pid
        if time.monotonic() >= deadline:
            return pid
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process, or not a pid at all
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True
