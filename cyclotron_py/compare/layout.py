"""The stable JSON text of a comparison document: one entry per line, C encoder throughout."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def dumps(doc: Mapping[str, Any]) -> str:
    """The stable JSON text of a comparison document.

    Keys sorted; the top level and its mappings are laid out one entry per line, as are lists
    of objects below them (recommendations, drift entries), everything deeper on that line.
    A change to one capability changes one line of a diff, and each line goes through the C
    encoder (json's indent= falls back to the pure-Python one: ten times slower).
    """
    out: list[str] = []
    _layout(doc, 0, out, "")
    return "".join(out) + "\n"


def _layout(value: Any, depth: int, out: list[str], lead: str) -> None:
    pad = "  " * depth
    expand = bool(value) and (
        (isinstance(value, Mapping) and depth < 2)
        or (isinstance(value, list) and (depth < 2 or isinstance(value[0], Mapping)) and depth < 3)
    )
    if not expand:
        out.append(f"{pad}{lead}{_ENCODER.encode(value)}")
        return
    if isinstance(value, Mapping):
        out.append(f"{pad}{lead}{{\n")
        items = sorted(value.items())
        for i, (key, item) in enumerate(items):
            _layout(item, depth + 1, out, f"{_ENCODER.encode(str(key))}: ")
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(f"{pad}}}")
    else:
        out.append(f"{pad}{lead}[\n")
        for i, item in enumerate(value):
            _layout(item, depth + 1, out, "")
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append(f"{pad}]")
