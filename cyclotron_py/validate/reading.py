"""Reading and decoding: a manifest file as untrusted bytes -> JSON data, or Problems naming why not."""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import CyclotronError, ManifestError
from .messages import REGATHER, _join, _show
from .report import Problem

# A real manifest is well under 1 MB; anything this big is not one.
MAX_MANIFEST_BYTES = 50 * 1024 * 1024
MAX_DOMAINS_BYTES = 1024 * 1024

_DOMAIN_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
_YAML_START_RE = re.compile(r"^(?:---|%YAML|- |[A-Za-z_][\w .-]*:(?:\s|$))")


def _load_json(path: Path, file: str) -> tuple[Any, list[Problem]]:
    raw, problems = _read_bytes(path, file)
    if raw is None:
        return None, problems
    text, problems = _decode(raw, file)
    if text is None:
        return None, problems
    return _parse_json(text, file)


def _read_bytes(path: Path, file: str) -> tuple[bytes | None, list[Problem]]:
    def fail(message: str, fix: str) -> tuple[None, list[Problem]]:
        return None, [Problem(file, "$", message, fix)]

    try:
        st = path.stat()
    except FileNotFoundError:
        return fail("file not found", "check the path; manifests are written by playbooks/gather.yml")
    except OSError as exc:
        return fail(f"cannot read the file: {exc.strerror or exc}", "check the path and its permissions")
    if stat.S_ISDIR(st.st_mode):
        return fail("this is a directory", "pass the directory to `cyclotron validate` to check its *.json")
    if not stat.S_ISREG(st.st_mode):
        return fail("not a regular file", "point at the manifest file itself")
    too_big = (
        f"the file is over {MAX_MANIFEST_BYTES // (1024 * 1024)} MB, far larger than any manifest",
        "this is not a manifest or it is corrupt; " + REGATHER,
    )
    if st.st_size > MAX_MANIFEST_BYTES:
        return fail(*too_big)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)  # the size may change after stat
    except OSError as exc:
        return fail(f"cannot read the file: {exc.strerror or exc}", "check the file's permissions")
    if len(raw) > MAX_MANIFEST_BYTES:
        return fail(*too_big)
    return raw, []


def _decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    def fail(message: str, fix: str) -> tuple[None, list[Problem]]:
        return None, [Problem(file, "$", message, fix)]

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return fail(
            "the file is UTF-16 text (PowerShell 5 writes that with '>' or Out-File), not UTF-8",
            "re-save it as UTF-8 (Set-Content -Encoding utf8) or " + REGATHER,
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark is harmless
    if not raw.strip():
        return fail("the file is empty", REGATHER)
    if b"\x00" in raw:
        return fail(
            "the file holds NUL bytes: it is binary or UTF-16 data, not a UTF-8 JSON manifest", REGATHER
        )
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return fail(
            f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at line {line} column {column}",
            "re-save the file as UTF-8 (a hand edit may have saved it as Windows-1252) or " + REGATHER,
        )


class _DuplicateKeys:
    """object_pairs_hook that remembers objects with repeated keys (JSON readers keep only the last)."""

    def __init__(self) -> None:
        self.found: dict[int, list[str]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            self.found[id(obj)] = [key for key, n in counts.items() if n > 1]
        return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(text: str, file: str) -> tuple[Any, list[Problem]]:
    def fail(message: str, fix: str) -> tuple[None, list[Problem]]:
        return None, [Problem(file, "$", message, fix)]

    hook = _DuplicateKeys()
    try:
        data = json.loads(text, object_pairs_hook=hook, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return fail(*_explain_json_error(text, exc))
    except ValueError as exc:  # NaN / Infinity
        return fail(f"invalid JSON: {exc}", "write a number or null; " + REGATHER)
    except RecursionError:
        return fail("the JSON is nested too deeply to be a manifest", REGATHER)
    problems = []
    if hook.found:
        for path, obj in _walk_objects(data):
            for key in hook.found.get(id(obj), []):
                problems.append(
                    Problem(
                        file,
                        path,
                        f"key {_show(key)} appears more than once in this object "
                        "(JSON readers silently keep only the last)",
                        "keep one of them",
                    )
                )
    return data, problems


def _explain_json_error(text: str, exc: json.JSONDecodeError) -> tuple[str, str]:
    head = text.lstrip()
    where = f"line {exc.lineno} column {exc.colno}"
    if head.startswith("<"):
        return (
            "this is HTML or XML, not JSON (a web or error page saved in place of the manifest?)",
            REGATHER,
        )
    if not head.startswith(("{", "[")) and _YAML_START_RE.match(head):
        return (
            "this looks like YAML, not JSON; manifests are JSON",
            "manifests are written by the gather playbook: " + REGATHER,
        )
    if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
        return (
            f"the file looks truncated: the JSON ends early at {where} ({exc.msg})",
            REGATHER,
        )
    return (f"invalid JSON at {where}: {exc.msg}", "fix the JSON syntax there, or " + REGATHER)


def _walk_objects(data: Any) -> Iterator[tuple[str, Any]]:
    """(JSON path, value) for every object and array, without recursion."""
    stack: list[tuple[str, Any]] = [("$", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            yield path, value
            stack.extend((_join(path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            yield path, value
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))



def expand_paths(paths_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files to validate: each directory expands to the ``*.json`` files in it (sorted, dotfiles skipped).

    Raises ManifestError for a path that does not exist or a directory without manifests.
    """
    items = [paths_or_dir] if isinstance(paths_or_dir, str | os.PathLike) else list(paths_or_dir)
    if not items:
        raise ManifestError("no manifest files or directories given")
    out: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if not p.name.startswith(".") and not p.is_dir())
            if not found:
                raise ManifestError(f"{path}: no *.json manifests in this directory")
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            raise ManifestError(f"{path}: no such file or directory")
        for p in found:
            key = Path(os.path.realpath(p))  # unlike Path.resolve, never raises on a symlink loop
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def load_domains(path: str | os.PathLike[str]) -> dict[str, str]:
    """Domains from a YAML file: ``{name: description}``, a list of names, or a group_vars file
    holding ``cyclotron_domains``. Raises CyclotronError naming the file and the fix."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_DOMAINS_BYTES:
            raise CyclotronError(f"{path}: too large for a domains file (over 1 MB)")
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise CyclotronError(f"{path}: cannot read domains file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CyclotronError(f"{path}: domains file is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where else ""
        raise CyclotronError(f"{path}: domains file is not valid YAML{at}") from None
    if isinstance(data, dict) and "cyclotron_domains" in data:
        data = data["cyclotron_domains"]
    if isinstance(data, list):
        data = {name: "" for name in data}
    if not isinstance(data, dict) or not data:
        raise CyclotronError(
            f"{path}: expected a mapping of domain names to descriptions (or cyclotron_domains: ...)"
        )
    out: dict[str, str] = {}
    for name, description in data.items():
        if not isinstance(name, str) or not _DOMAIN_NAME_RE.match(name):
            raise CyclotronError(
                f"{path}: domain name {name!r} must be lowercase letters, digits, '_' or '-' (max 50)"
            )
        out[name] = "" if description is None else str(description)
    return out

