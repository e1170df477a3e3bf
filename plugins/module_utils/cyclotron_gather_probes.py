# Copyright: Cyclotron contributors
# Apache-2.0
"""Versions of chosen commands, with a cache keyed by the executable's identity.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ansible.module_utils.cyclotron_gather_common import (
    COMMAND_TIMEOUT,
    _add_error,
    _reason,
    _run,
    _which,
    load_json_file,
)

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors


# --------------------------------------------------------------------------- command probes


class ProbeCache:
    """Versions keyed on the executable's identity (path, inode, size, mtime).

    Starting every tool to ask its version is most of a gather's cost; a binary that has
    not changed since the last run reports the version it reported then.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.dirty = False
        if path:
            try:
                data = load_json_file(path)
                if isinstance(data, dict) and data.get("format") == 1 and isinstance(data.get("entries"), dict):
                    self.entries = data["entries"]
            except (OSError, ValueError):
                self.entries = {}  # a missing or damaged cache is rebuilt

    @staticmethod
    def key(exe: str, argv: Sequence[str], regex: str) -> str | None:
        try:
            st = os.stat(exe)
        except OSError:
            return None
        ident = f"{os.path.realpath(exe)}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
        return ident + "|" + "\x1f".join(argv[1:]) + "|" + regex

    def get(self, key: str | None) -> Any:
        return self.entries.get(key) if key else None

    def put(self, key: str | None, version: str | None) -> None:
        if key and self.path:
            self.entries[key] = version
            self.dirty = True

    def save(self) -> None:
        if not (self.path and self.dirty):
            return
        try:
            directory = os.path.dirname(self.path)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump({"format": 1, "entries": self.entries}, handle)
            os.replace(tmp, self.path)
        except OSError:
            pass  # the cache only saves time; gathering is correct without it


def _probe(
    spec: Mapping[str, Any], environ: Mapping[str, str], errors: Errors, cache: ProbeCache | None = None
) -> dict[str, Any] | None:
    argv = [str(a) for a in spec.get("argv") or []]
    if not argv:
        _add_error(errors, str(spec.get("name") or "commands"), "argv is empty: give the command as a list")
        return None
    exe = _which(argv[0], environ)
    if not exe:
        return None
    name = str(spec.get("name") or os.path.basename(argv[0]))
    result: dict[str, Any] = {"name": name, "path": exe, "version": None}
    cache_key = cache.key(exe, argv, str(spec.get("regex") or "")) if cache else None
    if cache is not None and cache_key in cache.entries:
        result["version"] = cache.get(cache_key)
        return result
    try:
        _, out = _run([exe] + argv[1:], environ, COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        _add_error(
            errors,
            " ".join(argv),
            f"timed out after {COMMAND_TIMEOUT} s: check the command runs non-interactively",
        )
        return result
    except (OSError, subprocess.SubprocessError) as exc:
        _add_error(errors, " ".join(argv), f"{_reason(exc)}: check the command runs for the connecting user")
        return result
    regex = spec.get("regex")
    if regex:
        try:
            match = re.search(regex, out)
        except re.error as exc:
            _add_error(errors, name, f"invalid regex {regex!r} ({exc}): fix commands[].regex")
            return result
        if match:
            result["version"] = match.group(1) if match.re.groups else match.group(0)
    if cache is not None:
        cache.put(cache_key, result["version"])
    return result


def gather_commands(
    specs: Sequence[Mapping[str, Any]],
    environ: Mapping[str, str],
    errors: Errors,
    cache_path: str = "",
    save_cache: bool = True,
) -> list[dict[str, Any]]:
    if not specs:
        return []
    cache = ProbeCache(cache_path) if cache_path else None
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda s: _probe(s, environ, errors, cache), specs))
    if cache is not None and save_cache:
        cache.save()
    return [r for r in results if r]
