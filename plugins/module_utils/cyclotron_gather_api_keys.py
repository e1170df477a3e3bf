# Copyright: Cyclotron contributors
# Apache-2.0
"""API key names (never values) from the environment and .env files.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ansible.module_utils.cyclotron_gather_common import _add_error, _file_error, expand_path

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors

DEFAULT_API_KEY_PATTERNS = [
    r"(?i).*_API_KEY$",
    r"(?i).*_TOKEN$",
    r"(?i).*_SECRET(_KEY)?$",
    r"(?i)^(OPENAI|ANTHROPIC|GEMINI|GOOGLE|GROQ|MISTRAL|HF|HUGGINGFACE|GITHUB|GITLAB|AWS|AZURE)_.*KEY.*$",
]


# --------------------------------------------------------------------------- API key names


def env_file_names(path: str) -> list[str]:
    """Variable names defined in a .env file; values are skipped as they are read."""
    names = []
    quote = ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if quote:  # inside a multi-line quoted value
                if quote in line:
                    quote = ""
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("export "):
                stripped = stripped[7:].lstrip()
            key, sep, rest = stripped.partition("=")
            key = key.strip()
            if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", key):
                continue
            rest = rest.strip()
            if rest[:1] in ("'", '"') and rest[1:].find(rest[0]) < 0:
                quote = rest[0]
            names.append(key)
    return names


def gather_api_keys(
    patterns: Sequence[str],
    read_environment: bool,
    env_files: Sequence[str],
    home: str,
    environ: Mapping[str, str],
    errors: Errors,
) -> list[dict[str, str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            _add_error(errors, "api_key_patterns", f"invalid regex {pattern!r} ({exc}): fix the pattern")

    def matches(name: str) -> bool:
        return any(rx.search(name) for rx in compiled)

    found: list[dict[str, str]] = []
    if read_environment:
        found += [{"name": n, "origin": "env"} for n in sorted(environ) if matches(n)]
    for env_file in env_files:
        path = expand_path(env_file, home)
        try:
            names = env_file_names(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            _file_error(errors, path, exc)
            continue
        for name in sorted(set(names)):
            if matches(name):
                found.append({"name": name, "origin": path})
    return found
