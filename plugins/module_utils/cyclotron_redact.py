# Copyright: Cyclotron contributors
# Apache-2.0
"""Redact credentials from URLs, command arguments and KEY=VALUE strings, on a host.

The standard-library, Python 3.8 copy of the redaction in ``cyclotron_py/secrets.py``, for the
POSIX gatherer (which must not send a secret off the host). tests/unit/test_secrets.py runs both
on tests/fixtures/secret_cases.json, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
