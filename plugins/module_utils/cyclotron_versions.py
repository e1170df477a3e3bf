# Copyright: Cyclotron contributors
# Apache-2.0
"""Order version strings on a host: the standard-library copy of ``cyclotron_py/versions.py``.

Runs on target hosts (the gatherer, the installer), so it depends on the standard library only
and keeps to Python 3.8 syntax. Every version reads one way, like the controller's loose scheme:
``[v][epoch:]release`` then a tail, which is a pre-release (``rc1``, ``-alpha.2``, ``~beta``,
``.dev3``), a post release (``.post1``, ``_1``, ``p2``) or a build tag (``.windows.1``, ``-3``,
``+dfsg``) that sorts after the bare release. That is what hosts compare: the newest of a
formula's Cellar versions, environment markers, and "is the installed version older than wanted".
tests/unit/test_versions.py runs this and the controller's code on tests/fixtures/version_cases.json;
the cases read differently here are marked there with the reason.
"""

from __future__ import annotations

import re
from typing import Any

_DEV, _PRE, _FINAL, _POST = 0, 1, 2, 3
_HEAD = re.compile(r"^[vV]?(?:(\d+):)?(\d+(?:\.\d+)*)(.*)$")
_PRE_WORD = re.compile(r"^(alpha|a|beta|b|preview|pre|rc|c|dev|snapshot)(?![A-Za-z])[.\-_]?(\d*)(.*)$", re.IGNORECASE)
_POST_WORD = re.compile(r"^(post|patch|p|r|rev|_)[.\-_]?(\d+)(.*)$", re.IGNORECASE)
_PRE_NAMES = {"a": "alpha", "alpha": "alpha", "b": "beta", "beta": "beta", "c": "rc", "rc": "rc"}
_PRE_NAMES.update(pre="rc", preview="rc", dev="dev", snapshot="dev")
_SPLIT = re.compile(r"[.\-_+~]+")
_NATURAL = re.compile(r"(\d+)")


def _ident(part: str) -> tuple[int, int, str]:
    """Numbers sort before words, numbers numerically (the semver rule for identifiers)."""
    return (0, int(part), "") if part.isdigit() else (1, 0, part.lower())


def _idents(text: str) -> tuple[tuple[int, int, str], ...]:
    return tuple(_ident(p) for p in _SPLIT.split(text) if p)


def _tail(tail: str) -> tuple[Any, ...]:
    """(stage, rest) of what follows the release numbers."""
    if not tail:
        return (_FINAL,), ()
    body = tail.lstrip(".-_~+")
    tilde = tail.startswith("~")
    pre = _PRE_WORD.match(body)
    if pre and len(pre.group(1)) == 1 and not pre.group(2) and not tilde:
        pre = None  # a bare letter is a patch letter: tmux 3.3a, openssl 1.1.1w
    if pre and (tilde or tail[0] in ".-" or tail[0].isalpha()):
        name = _PRE_NAMES[pre.group(1).lower()]
        stage = (_DEV if name == "dev" else _PRE, (_ident(name), _ident(pre.group(2) or "0")))
        return stage, _idents(pre.group(3))
    if tilde:  # Debian-style "~" tails sort before the release
        return (_PRE, _idents(body)), ()
    post = _POST_WORD.match(tail if tail.startswith("_") else body)
    if post:
        return (_POST, (_ident(post.group(2)),)), _idents(post.group(3))
    return (_FINAL,), _idents(body)


def version_key(text: str) -> tuple[Any, ...]:
    """A key that orders versions of any manager; text that is no version sorts before all of them."""
    match = _HEAD.match(str(text).strip())
    if not match:
        natural = tuple(_ident(p) for p in _NATURAL.split(str(text)) if p)
        return (-1, (), (_FINAL,), natural)
    release = [int(p) for p in match.group(2).split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()  # 1.2.0 == 1.2
    stage, rest = _tail(match.group(3))
    return (int(match.group(1) or 0), tuple(release), stage, rest)


def same_version(a: str, b: str) -> bool:
    """Equal versions, where 1.5 and 1.5.0 are the same (as pip and npm see them)."""
    return version_key(a) == version_key(b)
