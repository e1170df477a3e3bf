"""Writing manifests on the controller: atomic, and "changed" only when content changed."""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .models import Manifest


def manifest_text(manifest: Manifest) -> str:
    return json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def differs(path: str | Path, document: dict[str, Any]) -> bool:
    """Capabilities, managers, OS or errors differ; a new ``gathered_at`` alone is not a change."""
    try:
        with open(path, encoding="utf-8") as handle:
            old = json.load(handle)
    except (OSError, ValueError):
        return True
    if not isinstance(old, dict):
        return True
    return {k: v for k, v in old.items() if k != "gathered_at"} != {
        k: v for k, v in document.items() if k != "gathered_at"
    }


def write_manifest(directory: str | Path, manifest: Manifest, *, check_mode: bool = False) -> tuple[Path, bool]:
    """Write ``<directory>/<host>.json`` with a temp file + rename; returns (path, changed)."""
    path = Path(directory).resolve() / f"{manifest.host}.json"
    document = manifest.model_dump(mode="json")
    changed = differs(path, document)
    if changed and not check_mode:
        atomic_write_text(path, manifest_text(manifest))
    return path, changed


def atomic_write_text(path: str | Path, text: str | bytes, mode: int = 0o644) -> None:
    """Write ``text`` (str as UTF-8, or bytes as they are) to a temp file beside ``path``, then rename."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    with _atomic_file(path, mode) as handle:
        handle.write(data)


@contextmanager
def atomic_writer(path: str | Path, mode: int = 0o644) -> Iterator[Callable[[bytes], None]]:
    """``write(chunk)`` for a file made like atomic_write_text's, for large output made in pieces:
    a thread writes each chunk while the caller makes the next (write() lets go of the GIL, and
    the kernel's copy into new pages of the file is a good part of the time for 100 MB)."""
    with _atomic_file(path, mode) as handle:
        chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        failed: list[BaseException] = []

        def drain() -> None:
            while (chunk := chunks.get()) is not None:
                if not failed:
                    try:
                        handle.write(chunk)
                    except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                        failed.append(exc)

        def write(chunk: bytes) -> None:
            if failed:
                raise failed[0]
            chunks.put(chunk)

        thread = threading.Thread(target=drain, name="atomic-writer", daemon=True)
        thread.start()
        try:
            yield write
        finally:
            chunks.put(None)
            thread.join()
        if failed:
            raise failed[0]


@contextmanager
def _atomic_file(path: str | Path, mode: int) -> Iterator[BinaryIO]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
