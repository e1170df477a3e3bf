"""What a secret value and a control character look like (the validator's string checks)."""

from __future__ import annotations

import math
import re
from collections import Counter

# Keys whose name ends in a credential word (GITHUB_TOKEN, client_secret), not token_env or tokenizer.
_SECRET_KEY_RE = re.compile(r"(?i)(secret|token|passw(or)?d|pwd|api[_-]?key|credentials?|private[_-]?key)$")
# A value naming a variable (OPENAI_API_KEY, ${GITHUB_TOKEN}, %TOKEN%) rather than holding one.
_VAR_REFERENCE_RE = re.compile(r"^(?:[A-Z_][A-Z0-9_]*|\$\{?[A-Za-z_]\w*\}?|%[A-Za-z_]\w*%)$")
_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an OpenAI/Anthropic API key", re.compile(r"\bsk-(?:[a-z]+-){0,2}[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}")),
    ("a PyPI token", re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("a password in a URL", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
    ("a bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")),
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_+=-]{32,}")


def _secret_kind(text: str) -> str | None:
    """What kind of secret ``text`` holds, or None. Tuned to pass commit ids, GUIDs and paths."""
    if len(text) < 16:
        return None
    for kind, pattern in _SECRET_PATTERNS:
        match = pattern.search(text)
        if match and (kind != "an OpenAI/Anthropic API key" or _mixed(match.group()[3:])):
            return kind
    for token in _TOKEN_RE.findall(text):
        if _mixed(token) and _entropy(token) >= 4.0 and _class_changes(token) >= 0.35:
            return "a high-entropy token"
    return None


def _mixed(token: str) -> bool:
    """Upper and lower case letters and digits: random, not a word, a hex digest or a GUID."""
    return (
        any(c.isupper() for c in token)
        and any(c.islower() for c in token)
        and any(c.isdigit() for c in token)
    )


def _class_changes(token: str) -> float:
    """Share of neighbouring characters that switch between upper, lower, digit and other.

    About 0.6 for random base62; about 0.2 for CamelCase or dashed words.
    """

    def cls(ch: str) -> int:
        return 0 if ch.isupper() else 1 if ch.islower() else 2 if ch.isdigit() else 3

    changes = sum(1 for a, b in zip(token, token[1:], strict=False) if cls(a) != cls(b))
    return changes / (len(token) - 1)


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


# C0 and C1 control characters except tab, newline and carriage return (as _is_control below).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 32 or 0x7F <= code <= 0x9F

