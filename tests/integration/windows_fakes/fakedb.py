"""The JSON package database the stand-in modules share (see README.md)."""

from __future__ import annotations

import json
import os
import re
from typing import Any


def _key(version: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", version)]


def load() -> dict[str, Any]:
    with open(os.environ["CYCLOTRON_FAKE_STATE"], encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    data.setdefault("installed", {})
    data.setdefault("available", {})
    data.setdefault("log", [])
    return data


def save(data: dict[str, Any]) -> None:
    with open(os.environ["CYCLOTRON_FAKE_STATE"], "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)


def lookup(table: dict[str, Any], name: str) -> str | None:
    """Case-insensitive key lookup, as winget and choco match ids."""
    for key in table:
        if key.lower() == name.lower():
            return key
    return None


def latest(data: dict[str, Any], name: str) -> str | None:
    key = lookup(data["available"], name)
    versions = data["available"].get(key, []) if key else []
    return max(versions, key=_key) if versions else None


def has_version(data: dict[str, Any], name: str, version: str) -> bool:
    key = lookup(data["available"], name)
    return bool(key) and version in data["available"][key]


def newer(left: str, right: str) -> bool:
    return _key(left) > _key(right)
