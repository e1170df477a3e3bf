"""The state dir's OS lock: one run or tick at a time (``cyclotron run`` and ``cyclotron tick``).

Apart from daemon.py so that ``cyclotron run`` does not import the config models (pydantic).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import CyclotronError

LOCK_NAME = "lock"


class AlreadyRunning(CyclotronError):
    def __init__(self, pid: int | None) -> None:
        super().__init__(f"already running (pid {pid if pid else 'unknown'})")
        self.pid = pid


@contextmanager
def run_lock(state: Path) -> Iterator[IO[str]]:
    """The state dir's OS lock, taken without blocking; the holder's pid is written in the file.
    The kernel releases it when the holder dies, so a killed run never leaves it held."""
    path = state / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            raise AlreadyRunning(int(text) if text.isdigit() else None) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()
