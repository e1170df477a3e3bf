"""The leak guard: no file is committed to the exchange while the validator's secret checks find
a value in it. JSON files go through the validator's string checks (every value, and every value
under a credential-named key); Markdown is checked line by line with the same detector."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from .. import secrets
from ..errors import CyclotronError
from ..validate.checks import _check_strings

# "KEY: value", "KEY=value", "| KEY | value |": a value that is a secret because of its key.
_KEY_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=|]\s*`?([^\s`|]+)")


class SecretLeak(CyclotronError):
    """A file about to be committed holds a secret value (the message names the file and key)."""


def check_files(files: Mapping[str, str]) -> None:
    """Raise SecretLeak naming every file and key that holds a secret; the values are never shown."""
    found: list[str] = []
    for name, text in sorted(files.items()):
        found += [f"{name}: {where}" for where in _findings(name, text)]
    if found:
        raise SecretLeak(
            "refusing to commit to the exchange: secret value(s) found in "
            + "; ".join(found)
            + ". Remove the value at its source (manifests and status carry key names only) and rotate it"
        )


def _findings(name: str, text: str) -> list[str]:
    if name.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError:
            return ["not valid JSON"]
        return [f"key {_key(p.path)} ({p.path})" for p in _check_strings(data, name) if "secret" in p.message]
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        pair = next((m for m in _KEY_VALUE.finditer(line) if secrets.secret_under_key(m.group(1), m.group(2))), None)
        if pair:
            out.append(f"key {pair.group(1)!r} (line {number})")
        elif secrets.secret_kind(line):
            out.append(f"line {number} ({secrets.secret_kind(line)})")
    return out


def _key(path: str) -> str:
    """The last key of a JSON path: ``$.errors[0].GITHUB_TOKEN`` -> ``'GITHUB_TOKEN'``."""
    last = re.split(r"[.\[]", path.rstrip("]"))[-1].strip("'\"")
    return repr(last)
