"""Secrets: the one detector and the one redaction, on the controller.

- ``secret_kind`` says what kind of secret a string holds (an API key by its provider's prefix, a
  token by its randomness, a password in a URL, a private key); ``secret_under_key`` finds a value
  that is a secret because of the key it sits under (``client_secret: ...``). The validator uses
  both on every string of a manifest.
- ``redact_args``, ``redact_value`` and ``strip_url`` remove credentials from MCP server commands,
  arguments and URLs: the Windows parser (``windows.py``) uses them here, and the POSIX gatherer
  uses the standard-library copy ``plugins/module_utils/cyclotron_redact.py``, which
  tests/unit/test_secrets.py holds to the same cases (tests/fixtures/secret_cases.json).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# --------------------------------------------------------------------------- detection

# Keys whose name ends in a credential word (GITHUB_TOKEN, client_secret), not token_env or tokenizer.
SECRET_KEY_RE = re.compile(r"(?i)(secret|token|passw(or)?d|pwd|api[_-]?key|credentials?|private[_-]?key)$")
# A value naming a variable (OPENAI_API_KEY, ${GITHUB_TOKEN}, %TOKEN%) rather than holding one.
VAR_REFERENCE_RE = re.compile(r"^(?:[A-Z_][A-Z0-9_]*|\$\{?[A-Za-z_]\w*\}?|%[A-Za-z_]\w*%)$")
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
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


def secret_kind(text: str) -> str | None:
    """What kind of secret ``text`` holds, or None. Tuned to pass commit ids, GUIDs and paths."""
    if len(text) < 16:
        return None
    for kind, pattern in SECRET_PATTERNS:
        match = pattern.search(text)
        if match and (kind != "an OpenAI/Anthropic API key" or _mixed(match.group()[3:])):
            return kind
    for token in _TOKEN_RE.findall(text):
        if _mixed(token) and _entropy(token) >= 4.0 and _class_changes(token) >= 0.35:
            return "a high-entropy token"
    return None


def secret_under_key(key: str, value: str) -> bool:
    """True when ``value`` is a secret because of its key: ``GITHUB_TOKEN: <8+ chars>``, unless the
    value only names a variable (``${GITHUB_TOKEN}``)."""
    text = value.strip()
    return bool(SECRET_KEY_RE.search(key)) and len(text) >= 8 and not VAR_REFERENCE_RE.match(text)


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


# --------------------------------------------------------------------------- redaction

REDACTED = "<redacted>"
# Flag and key names whose value is a credential: --token, --api-key, --key, DB_PASSWORD=..., X-Auth.
SENSITIVE_NAME_RE = re.compile(r"(?i)(token|api[-_]?key|^-*key$|passw(or)?d|secret|credential|auth)")
HEADER_FLAGS = ("--header", "--headers", "-H")
# Values that are a credential by their shape: the prefixes providers give their keys.
TOKEN_VALUE_RE = re.compile(
    r"^(sk-|sk_|rk_|pk_live_|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|AIza|hf_|gsk_|"
    r"pplx-|r8_|npm_)[A-Za-z0-9_\-]{8,}"
)
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
_KEY_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def strip_url(url: str, keep_query: bool = False) -> str:
    """Drop userinfo (and the query/fragment unless *keep_query*) from a URL; scp-like git URLs pass."""
    if "://" not in url:
        return url  # git@host:org/repo.git carries no secret
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        # ssh://git@host keeps a bare user name: it is an account, not a credential.
        keep = parts.scheme in _SSH_SCHEMES and ":" not in userinfo
        netloc = userinfo + "@" + hostport if keep else hostport
    query = parts.query if keep_query else ""
    fragment = parts.fragment if keep_query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_value(value: str) -> str:
    """Redact a free-standing value: KEY=VALUE with a sensitive key, a token-like string, or a URL."""
    if TOKEN_VALUE_RE.match(value):
        return REDACTED
    if "://" in value:
        return strip_url(value)
    key, sep, _ = value.partition("=")
    if sep and key and _KEY_NAME_RE.match(key) and SENSITIVE_NAME_RE.search(key):
        return key + "=" + REDACTED
    return value


def redact_header(value: str) -> str:
    name, sep, _ = value.partition(":")
    return name + ": " + REDACTED if sep else REDACTED


def redact_args(args: Iterable[Any]) -> list[str]:
    """Hide values that follow or are attached to --token/--api-key/--key/--password/--header flags,
    token-like values, URL credentials and KEY=VALUE pairs with a sensitive key."""
    out: list[str] = []
    pending = ""  # "value" or "header": what the previous flag announced
    for raw in args:
        arg = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, (dict, list)) else str(raw)
        if pending and not arg.startswith("-"):
            out.append(redact_header(arg) if pending == "header" else REDACTED)
            pending = ""
            continue
        pending = ""
        if arg.startswith("-") and len(arg) > 1:
            flag, sep, value = arg.partition("=")
            if flag in HEADER_FLAGS or flag.lower() in HEADER_FLAGS[:2]:
                out.append(flag + "=" + redact_header(value) if sep else arg)
                pending = "" if sep else "header"
            elif SENSITIVE_NAME_RE.search(flag.lstrip("-")):
                out.append(flag + "=" + REDACTED if sep else arg)
                pending = "" if sep else "value"
            else:
                out.append(arg)
            continue
        out.append(redact_value(arg))
    return out


__all__ = [
    "REDACTED",
    "SECRET_KEY_RE",
    "redact_args",
    "redact_header",
    "redact_value",
    "secret_kind",
    "secret_under_key",
    "strip_url",
]
