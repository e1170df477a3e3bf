# Copyright: Cyclotron contributors
# Apache-2.0
"""Helpers every gatherer source shares: errors entries, paths against a home, JSON(C) files, commands.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations are strings at run time, so targets on Python 3.8 never evaluate these
    from typing import TypeAlias

    Errors: TypeAlias = list[dict[str, str]]
    Pkg: TypeAlias = dict[str, Any]

COMMAND_TIMEOUT = 10
PYTHON_PROBE_TIMEOUT = 20
RPM_TIMEOUT = 120


# --------------------------------------------------------------------------- helpers


def _add_error(errors: Errors, source: str, message: str) -> None:
    errors.append({"source": str(source), "message": message})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
    if isinstance(exc, OSError):
        return exc.strerror or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {exc}"


def _file_error(errors: Errors, path: str, exc: BaseException, fix: str = "") -> None:
    if isinstance(exc, PermissionError):
        fix = fix or "make it readable by the connecting user, or run the module as its owner"
    elif isinstance(exc, (ValueError, UnicodeDecodeError)):
        fix = fix or "fix or remove the file; the rest of the host was still gathered"
    else:
        fix = fix or "check the file; the rest of the host was still gathered"
    _add_error(errors, path, f"{_reason(exc)}: {fix}")


def expand_path(path: str, home: str) -> str:
    """Expand ``~`` and ``$HOME`` against *home* (not the process HOME), then other variables."""
    path = str(path)
    if path == "~":
        path = home
    elif path.startswith("~/"):
        path = os.path.join(home, path[2:])
    path = path.replace("${HOME}", home)
    if path.startswith("$HOME"):
        path = home + path[5:]
    path = os.path.expandvars(path)
    return os.path.normpath(os.path.join(home, path)) if not os.path.isabs(path) else os.path.normpath(path)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="strict") as handle:
        return handle.read()


def _strip_jsonc(text: str) -> str:
    """Remove // and /* */ comments (outside strings) and trailing commas: VS Code files are JSONC."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
            i += 1
            continue
        if ch == '"':
            in_str = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(ch)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def load_json_file(path: str, jsonc: bool = False) -> Any:
    """Parse a JSON file; with *jsonc* retry after stripping comments and trailing commas."""
    text = _read_text(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text)
    except ValueError:
        if not jsonc:
            raise
        try:
            return json.loads(_strip_jsonc(text))
        except ValueError:
            pass
        raise


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def _c_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    env["LANG"] = "C"
    env["LC_ALL"] = "C"
    # A version probe must not write: HashiCorp tools otherwise create ~/.terraform.d/checkpoint_*.
    env["CHECKPOINT_DISABLE"] = "1"
    return env


def _run(argv: Sequence[str], environ: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run argv (never a shell) with LANG=C; return (rc, stdout+stderr)."""
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_c_env(environ),
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")
