"""Writing manifests on the controller: atomic, and "changed" only when content changed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
