"""Version strings from many package managers, made comparable.

Each manager writes versions its own way: PEP 440 (pip, pipx), semver (npm),
Debian ``[epoch:]upstream[-revision]`` (apt; rpm's ``epoch:version-release`` is
close enough to compare the same way), winget's four-part numbers and tails
like Git for Windows' ``2.43.0.windows.1`` (winget, choco, registry), and brew
revisions (``1.2_1``). ``parse_version`` turns a string into a ``ParsedVersion``
with two orderable keys:

- ``key`` orders versions of the same scheme completely (Debian epochs and
  revisions, PEP 440 post/dev/local parts, semver pre-releases);
- ``upstream`` orders versions across schemes by release numbers and stage
  (dev < pre-release < final < post), dropping packaging-only parts, so that
  winget's ``2.43.0.0`` and Debian's ``1:2.43.0-1`` compare equal.

A string that fits no scheme is ``parseable=False``; callers compare such
strings in natural order (``natural_key``) and flag the result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from . import managers

Scheme = Literal["pep440", "semver", "debian", "winget", "loose", "string"]
SCHEMES: tuple[str, ...] = Scheme.__args__  # type: ignore[attr-defined]

# The scheme a manager's versions follow (cyclotron_py.managers); anything else is detected from the text.
SCHEME_BY_MANAGER: dict[str, str] = managers.SCHEME_BY_MANAGER

# Stage ranks shared by every scheme's ``upstream`` key.
_DEV, _PRE, _FINAL, _POST = 0, 1, 2, 3
_NO_DEV = 1 << 62  # PEP 440: a release without .devN sorts after all its dev releases

_NUMERIC_RE = re.compile(r"^\d+(?:\.\d+)*$")
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_DEBIAN_RE = re.compile(r"^(?:(\d+):)?(\d[A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")
_LOOSE_RE = re.compile(r"^(\d+(?:\.\d+)*)(.*)$")
_PRE_WORD_RE = re.compile(
    r"^(alpha|a|beta|b|preview|pre|rc|c|dev|snapshot)(?![A-Za-z])[.\-_]?(\d*)(.*)$", re.IGNORECASE
)
_POST_WORD_RE = re.compile(r"^(post|patch|p|r|rev|_)[.\-_]?(\d+)(.*)$", re.IGNORECASE)
_SPLIT_RE = re.compile(r"[.\-_+~]+")
_NATURAL_RE = re.compile(r"(\d+)")

_PRE_NAMES = {
    "a": "alpha",
    "alpha": "alpha",
    "b": "beta",
    "beta": "beta",
    "c": "rc",
    "rc": "rc",
    "pre": "rc",
    "preview": "rc",
}
_PEP440_PRE_RANK = {"a": 0, "b": 1, "rc": 2}


@dataclass(frozen=True, slots=True)
class ParsedVersion:
    raw: str
    scheme: str
    parseable: bool
    key: tuple[Any, ...]
    upstream: tuple[Any, ...]


def _ident(part: str) -> tuple[int, int, str]:
    """A pre-release identifier: numbers sort before words, numbers numerically (semver rule)."""
    return (0, int(part), "") if part.isdigit() else (1, 0, part.lower())


def _trim(release: Sequence[int]) -> tuple[int, ...]:
    """1.2.0.0 == 1.2: trailing zeros carry no order."""
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    return tuple(release[:end])


def _release(text: str) -> tuple[int, ...]:
    return _trim([int(p) for p in text.split(".")])


# --------------------------------------------------------------------------- schemes


def _pep440(raw: str) -> ParsedVersion | None:
    try:
        v = Version(raw)
    except InvalidVersion:
        return None
    release = _trim(v.release)
    if v.pre is None and v.post is None and v.dev is not None:
        pre_key: tuple[Any, ...] = (-1,)
        stage: tuple[Any, ...] = (_DEV, (_ident(str(v.dev)),))
    elif v.pre is not None:
        name, number = v.pre
        pre_key = (1, _PEP440_PRE_RANK[name], number)
        stage = (_PRE, (_ident(_PRE_NAMES[name]), _ident(str(number))))
    else:
        pre_key = (2,)
        stage = (_POST, (_ident(str(v.post)),)) if v.post is not None else (_FINAL,)
    local = tuple(_ident(str(p)) for p in v.local.split(".")) if v.local else ()
    key = (
        v.epoch,
        release,
        pre_key,
        -1 if v.post is None else v.post,
        _NO_DEV if v.dev is None else v.dev,
        local,
    )
    return ParsedVersion(raw, "pep440", True, key, (release, stage))


def _semver(raw: str) -> ParsedVersion | None:
    match = _SEMVER_RE.match(raw)
    if not match:
        return None
    release = _trim([int(match.group(i)) for i in (1, 2, 3)])
    pre = match.group(4)
    stage = (_PRE, tuple(_ident(p) for p in pre.split("."))) if pre else (_FINAL,)
    # Build metadata (+...) carries no precedence in semver.
    return ParsedVersion(raw, "semver", True, (release, stage), (release, stage))


def _dpkg_part(text: str) -> tuple[Any, ...]:
    """dpkg's ordering as a key: alternating non-digit runs (``~`` < end < letters < other)
    and numbers, closed by an end marker so that ``1.0~rc1`` < ``1.0`` < ``1.0.1``."""
    pairs: list[tuple[tuple[int, ...], int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and not text[j].isdigit():
            j += 1
        chars = tuple(
            -1 if ch == "~" else ord(ch) if ch.isalpha() else ord(ch) + 256 for ch in text[i:j]
        ) + (0,)
        k = j
        while k < n and text[k].isdigit():
            k += 1
        pairs.append((chars, int(text[j:k]) if k > j else 0))
        i = k
    end = ((0,), 0)
    while pairs and pairs[-1] == end:
        pairs.pop()  # "1.0" == "1.00"... and a missing revision == "0"
    return (*pairs, end)


def _debian(raw: str) -> ParsedVersion | None:
    match = _DEBIAN_RE.match(raw)
    if not match:
        return None
    epoch, upstream, revision = match.group(1), match.group(2), match.group(3) or ""
    loose = _loose(upstream)
    if loose is None:
        return None
    key = (int(epoch or 0), _dpkg_part(upstream), _dpkg_part(revision))
    return ParsedVersion(raw, "debian", True, key, loose.upstream)


def _loose(raw: str, scheme: str = "loose") -> ParsedVersion | None:
    """Leading release numbers, then an optional tail: a pre-release word (``rc1``, ``~beta2``),
    a post/patch release (``_1``, ``p2``, ``.post3``) or anything else (a build tag such as
    ``.windows.1`` or ``+dfsg``), which orders after the bare release but is ignored across schemes."""
    match = _LOOSE_RE.match(raw)
    if not match:
        return None
    release = _release(match.group(1))
    tail = match.group(2)
    if not tail:
        return ParsedVersion(raw, scheme, True, (release, (_FINAL,), ()), (release, (_FINAL,)))
    if any(ch.isspace() for ch in tail) or len(tail) > 60:
        return None
    body = tail.lstrip(".-_~+")
    tilde = tail.startswith("~")
    pre = _PRE_WORD_RE.match(body)
    if pre and len(pre.group(1)) == 1 and not pre.group(2) and not tilde:
        pre = None  # a bare letter is a patch letter: tmux 3.3a, openssl 1.1.1w
    if pre and (tilde or tail[0] in ".-" or tail[0].isalpha()):
        word = pre.group(1).lower()
        ids: tuple[tuple[int, int, str], ...] = (
            _ident(word if word in ("dev", "snapshot") else _PRE_NAMES[word]),
            _ident(pre.group(2) or "0"),
        )
        rest = tuple(_ident(p) for p in _SPLIT_RE.split(pre.group(3)) if p)
        stage: tuple[Any, ...] = (_DEV if word in ("dev", "snapshot") else _PRE, ids)
        return ParsedVersion(raw, scheme, True, (release, stage, rest), (release, stage))
    if tilde:
        # Debian-style "~" tails always sort before the release.
        ids = tuple(_ident(p) for p in _SPLIT_RE.split(body) if p)
        return ParsedVersion(raw, scheme, True, (release, (_PRE, ids), ()), (release, (_PRE, ids)))
    post = _POST_WORD_RE.match(tail if tail.startswith("_") else body)
    if post:
        ids = (_ident(post.group(2)),)
        rest = tuple(_ident(p) for p in _SPLIT_RE.split(post.group(3)) if p)
        return ParsedVersion(raw, scheme, True, (release, (_POST, ids), rest), (release, (_POST, ids)))
    ids = tuple(_ident(p) for p in _SPLIT_RE.split(body) if p)
    if not ids or not all(p.isalnum() for p in _SPLIT_RE.split(body) if p):
        return None
    return ParsedVersion(raw, scheme, True, (release, (_FINAL,), ids), (release, (_FINAL,)))


def _numeric(raw: str, scheme: str) -> ParsedVersion:
    release = _release(raw)
    upstream = (release, (_FINAL,))
    if scheme == "pep440":
        key: tuple[Any, ...] = (0, release, (2,), -1, _NO_DEV, ())
    elif scheme == "semver":
        key = upstream
    elif scheme == "debian":
        key = (0, _dpkg_part(raw), _dpkg_part(""))
    else:
        key = (release, (_FINAL,), ())
    return ParsedVersion(raw, scheme, True, key, upstream)


def _string(raw: str) -> ParsedVersion:
    key = natural_key(raw)
    return ParsedVersion(raw, "string", False, key, key)


def natural_key(text: str) -> tuple[Any, ...]:
    """Order for strings that are not versions: digit runs as numbers (``build10`` > ``build9``)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _NATURAL_RE.split(text) if p)


# --------------------------------------------------------------------------- public API


@lru_cache(maxsize=100_000)
def parse_version(raw: str, manager: str | None = None) -> ParsedVersion:
    """Parse ``raw`` as a version of ``manager`` (which picks the scheme; None: detect it)."""
    text = raw.strip()
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]
    scheme = SCHEME_BY_MANAGER.get(manager or "", "")
    if not text or len(text) > 100:
        return _string(raw)
    if _NUMERIC_RE.match(text):
        # The common case, and cheap: 1.2.3 in whatever scheme the manager uses.
        return _with_raw(_numeric(text, scheme or "pep440"), raw)
    parsed: ParsedVersion | None
    if scheme == "pep440":
        parsed = _pep440(text) or _loose(text)
    elif scheme == "semver":
        parsed = _semver(text) or _pep440(text) or _loose(text)
    elif scheme == "debian":
        parsed = _debian(text) or _loose(text)
    elif scheme in ("winget", "loose"):
        parsed = _loose(text, scheme) or _pep440(text)
    elif ":" in text:
        parsed = _debian(text)
    else:
        parsed = _pep440(text) or _semver(text) or _loose(text)
    if parsed is None:
        return _string(raw)
    return _with_raw(parsed, raw)


def _with_raw(parsed: ParsedVersion, raw: str) -> ParsedVersion:
    if parsed.raw == raw:
        return parsed
    return ParsedVersion(raw, parsed.scheme, parsed.parseable, parsed.key, parsed.upstream)


def comparable_keys(versions: Sequence[ParsedVersion]) -> list[tuple[Any, ...]] | None:
    """Keys that order ``versions`` among themselves: the full keys when they share a scheme,
    else the cross-scheme ``upstream`` keys. None when any of them is unparseable."""
    if not all(v.parseable for v in versions):
        return None
    if len({v.scheme for v in versions}) == 1:
        return [v.key for v in versions]
    return [v.upstream for v in versions]


def compare_versions(
    a: str, b: str, manager_a: str | None = None, manager_b: str | None = None
) -> int | None:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``; None when either
    does not parse (compare ``natural_key`` then, and say the result is a guess)."""
    # One manager given: both versions are read as that manager's (symmetric either way).
    manager_a, manager_b = manager_a or manager_b, manager_b or manager_a
    keys = comparable_keys([parse_version(a, manager_a), parse_version(b, manager_b)])
    if keys is None:
        return None
    ka, kb = keys
    return (ka > kb) - (ka < kb)


def is_parseable(raw: str, manager: str | None = None) -> bool:
    return parse_version(raw, manager).parseable


__all__ = [
    "SCHEMES",
    "SCHEME_BY_MANAGER",
    "ParsedVersion",
    "comparable_keys",
    "compare_versions",
    "is_parseable",
    "natural_key",
    "parse_version",
]
