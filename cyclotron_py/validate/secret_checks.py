"""The validator's string checks: secret values (through cyclotron_py.secrets) and control characters."""

from __future__ import annotations

import re

from .. import secrets


def _secret_kind(text: str) -> str | None:
    """What kind of secret ``text`` holds, or None (the one detector: cyclotron_py.secrets)."""
    return secrets.secret_kind(text)


# C0 and C1 control characters except tab, newline and carriage return (as _is_control below).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 32 or 0x7F <= code <= 0x9F

