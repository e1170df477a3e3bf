"""Messages: pydantic errors in plain English, values quoted for a report, JSON paths."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from ..models import CAPABILITY_TYPES, MANAGERS, Manifest
from .report import Problem
from .secret_checks import _is_control, _secret_kind

REGATHER = "re-gather the host (playbooks/gather.yml) or restore it from git"
EXAMPLE_TIME = '"2025-01-31T12:00:00Z"'
_SHELL_CHARS = frozenset(";&|`$<>'\"\\")

# --------------------------------------------------------------------------- pydantic errors in plain English

_TYPE_WORDS = {
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
}

_FIELD_FIXES: dict[tuple[str, str], str] = {
    ("Manifest", "host"): 'add "host": "<inventory hostname>" — the file name without .json',
    ("Manifest", "gathered_at"): f'add "gathered_at": {EXAMPLE_TIME} (ISO 8601 with a time zone)',
    ("Manifest", "os"): 'add "os": {"family": "windows" | "linux" | "darwin"}',
    ("Manifest", "managers"): 'write the package managers found as a list, e.g. ["winget", "pip"]',
    ("Manifest", "errors"): 'write "errors": [] or a list of {"source": ..., "message": ...}',
    ("Manifest", "capabilities"): 'write "capabilities": [ ... ] (an empty list is allowed)',
    ("Capability", "id"): "add an id: a catalog id like 'nodejs' or a qualified id like 'pip:requests'",
    ("Capability", "type"): f"add a type: one of {', '.join(CAPABILITY_TYPES)}",
    ("Capability", "name"): 'add "name": the display name, e.g. "Node.js"',
    ("Capability", "source"): 'add "source": {"manager": "<manager>", "package": "<package id>"}',
    ("Capability", "version"): 'write the version as a string, e.g. "1.2.3", or null when unknown',
    ("Capability", "details"): "details is an object of type-specific data, e.g. {}",
    ("CapabilitySource", "manager"): f"add a manager: one of {', '.join(MANAGERS)}",
    ("OsInfo", "family"): "add the OS family: windows, linux or darwin",
    ("SourceError", "source"): "name the manager, command or file that failed",
    ("SourceError", "message"): "add the error message",
}


def _translate(err: Any, file: str, domains: dict[str, str]) -> Problem:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    value = err.get("input")
    path = _json_loc(loc)
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    key = loc[-1] if loc else ""
    model = _model_at(loc[:-1])
    model_name = model.__name__ if model else ""
    field_fix = _FIELD_FIXES.get((model_name, name), "see `cyclotron schema` for the expected format")
    if (model_name, name) == ("Capability", "domain"):
        field_fix = f"add a domain: one of {', '.join(domains)}"

    if kind == "missing":
        return Problem(file, path, f"required key {_show(name)} is missing", field_fix)
    if kind == "extra_forbidden":
        return _extra_key(file, path, str(key), model)
    if kind == "literal_error":
        choices = _literal_choices(model, name)
        guess = _closest(str(value), choices) if isinstance(value, str) else None
        what = "capability type" if (model_name, name) == ("Capability", "type") else name
        allowed = ", ".join(choices)
        fix = f"use {_show(guess)} (allowed: {allowed})" if guess else f"use one of: {allowed}"
        return Problem(file, path, f"{_show(value)} is not a valid {what}", fix)
    if kind == "value_error":
        return _value_error(file, path, model_name, name, value, err)
    if kind in _TYPE_WORDS:
        return Problem(
            file,
            path,
            f"must be {_TYPE_WORDS[kind]}, not {_describe(value)}",
            field_fix if (model_name, name) in _FIELD_FIXES else f"change it to {_TYPE_WORDS[kind]}",
        )
    if kind == "string_too_short":
        return Problem(file, path, f"{name} is empty", field_fix)
    if kind == "string_too_long":
        limit = (err.get("ctx") or {}).get("max_length", "?")
        size = len(value) if isinstance(value, str) else "?"
        return Problem(
            file,
            path,
            f"{name} is {size} characters long, over the limit of {limit}",
            f"shorten it; a value this long is not a real {name}",
        )
    if kind.startswith(("datetime", "date", "time")):
        reason = str(err.get("msg", "")).partition(", ")[2] or "unrecognised format"
        return Problem(
            file,
            path,
            f"{_show(value)} is not a valid timestamp ({reason})",
            f"use ISO 8601 with a time zone, e.g. {EXAMPLE_TIME}, or " + REGATHER,
        )
    return Problem(file, path, str(err.get("msg", "invalid value")).rstrip("."), field_fix)


def _value_error(file: str, path: str, model_name: str, name: str, value: Any, err: Any) -> Problem:
    if (model_name, name) == ("CapabilitySource", "manager"):
        guess = _closest(str(value), list(MANAGERS)) if isinstance(value, str) else None
        fix = f"use {_show(guess)}" if guess else "use a known manager"
        return Problem(
            file, path, f"{_show(value)} is not a known manager", f"{fix} (known: {', '.join(MANAGERS)})"
        )
    if (model_name, name) == ("Capability", "id"):
        text = value if isinstance(value, str) else ""
        if text.startswith("-"):
            why = "starts with '-' (option injection)"
        elif any(ch in _SHELL_CHARS or _is_control(ch) for ch in text):
            why = "contains shell metacharacters"
        else:
            why = "does not follow the id grammar"
        return Problem(
            file,
            path,
            f"capability id {_show(value)} {why}",
            "use a lowercase catalog id like 'nodejs' or a qualified id like 'pip:requests' "
            "(letters, digits, '.', '_', '+', '-', '@', '/'); " + REGATHER,
        )
    if (model_name, name) == ("Manifest", "host"):
        return Problem(
            file,
            path,
            f"host {_show(value)} is not an inventory hostname",
            "use letters, digits, '.', '_' or '-', the same as the file name <host>.json",
        )
    ctx = err.get("ctx") or {}
    message = str(ctx.get("error") or err.get("msg", "invalid value"))
    return Problem(
        file,
        path,
        message.removeprefix("Value error, ").rstrip("."),
        _FIELD_FIXES.get((model_name, name), "see `cyclotron schema` for the expected format"),
    )


def _extra_key(file: str, path: str, key: str, model: type[BaseModel] | None) -> Problem:
    if model is None:
        return Problem(file, path, f"unknown key {_show(key)}", "remove it")
    allowed = list(model.model_fields)
    guess = _closest(key, allowed)
    if guess:
        fix = f"did you mean {_show(guess)}? rename it"
    else:
        # A key that belongs one level down, e.g. "package" written beside "source".
        home = next(
            (
                name
                for name, info in model.model_fields.items()
                if (sub := _model_in(info.annotation)) is not None and key in sub.model_fields
            ),
            None,
        )
        fix = f"move it into {_show(home)}" if home else f"remove it (allowed here: {', '.join(allowed)})"
    return Problem(file, path, f"unknown key {_show(key)}", fix)


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the object at ``loc`` (None when not a model)."""
    model: type[BaseModel] = Manifest
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        inner = _model_in(info.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return _model_in(args[0]) if args else None
    return None


def _literal_choices(model: type[BaseModel] | None, name: str) -> list[str]:
    info = model.model_fields.get(name) if model else None
    if info is None or get_origin(info.annotation) is not Literal:
        return []
    return [str(a) for a in get_args(info.annotation)]


# --------------------------------------------------------------------------- helpers


def _closest(value: str, choices: Sequence[str]) -> str | None:
    """The choice a typo most likely meant: same word in other case, a prefix, or a near spelling."""
    low = value.strip().lower()
    if not low:
        return None
    for choice in choices:
        if choice.lower() == low:
            return choice
    if len(low) >= 2:
        prefixed = [c for c in choices if c.lower().startswith(low) or low.startswith(c.lower())]
        if len(prefixed) == 1:
            return prefixed[0]
    match = difflib.get_close_matches(low, [c.lower() for c in choices], n=1, cutoff=0.6)
    if match:
        return next(c for c in choices if c.lower() == match[0])
    return None


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _join(path: str, key: Any) -> str:
    if isinstance(key, str) and _IDENT_RE.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(str(key))}]"


def _json_loc(loc: Sequence[Any]) -> str:
    path = "$"
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


_PATH_TOKEN_RE = re.compile(r'\[(\d+)\]|\.([A-Za-z_]\w*)|\[("(?:[^"\\]|\\.)*")\]')


def _path_key(path: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key in document order: keys in model field order, $.capabilities[10] after [9]."""
    key: list[tuple[int, int, str]] = []
    model: type[BaseModel] | None = Manifest
    for index, name, quoted in _PATH_TOKEN_RE.findall(path):
        if index:
            key.append((1, int(index), ""))
            continue
        name = name or quoted
        fields = list(model.model_fields) if model else []
        key.append((2, fields.index(name) if name in fields else len(fields), name))
        info = model.model_fields.get(name) if model else None
        model = _model_in(info.annotation) if info else None
    return tuple(key)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    if isinstance(value, dict | list):
        return f"an {_json_type(value)}"
    if value is None:
        return "null"
    return f"the {_json_type(value)} {_show(value)}"


def _show(value: Any, limit: int = 60) -> str:
    """A value quoted for a report: escaped, shortened, and never a secret."""
    if isinstance(value, str):
        if _secret_kind(value):
            return "'<redacted>'"
        return repr(value if len(value) <= limit else value[:limit] + "…")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return f"a JSON {_json_type(value)}"


