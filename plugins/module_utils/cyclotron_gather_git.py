# Copyright: Cyclotron contributors
# Apache-2.0
"""Git repositories under chosen roots: branch, head and origin read from the .git files.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ansible.module_utils.cyclotron_gather_common import _file_error, _read_text
from ansible.module_utils.cyclotron_redact import strip_url

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors

DEFAULT_GIT_ROOTS = ["~/src", "~/code", "~/projects", "~/git", "~/repos"]


# --------------------------------------------------------------------------- git


def find_git_repos(roots: Sequence[str], max_depth: int, errors: Errors) -> list[str]:
    """Dirs containing .git under roots, down to max_depth levels; repos, node_modules, .venv not entered."""
    found: list[str] = []
    seen = set()
    skip = {"node_modules", ".venv", "venv", "__pycache__", ".tox", ".cache"}
    for root in roots:
        if not os.path.isdir(root):
            continue
        stack = [(root, 0)]
        while stack:
            path, depth = stack.pop()
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            if os.path.exists(os.path.join(path, ".git")):
                found.append(path)
                continue
            if depth >= max_depth:
                continue
            try:
                children = [
                    e.path
                    for e in os.scandir(path)
                    if e.name not in skip and not e.name.startswith(".") and e.is_dir()
                ]
            except OSError as exc:
                if path == root:
                    _file_error(errors, path, exc, "fix its permissions or drop it from git_roots")
                continue
            stack.extend((child, depth + 1) for child in sorted(children, reverse=True))
    return sorted(found)


def _git_dirs(repo: str) -> tuple[str, str]:
    """(gitdir, commondir) of a work tree; .git may be a 'gitdir:' file (worktrees, submodules)."""
    dotgit = os.path.join(repo, ".git")
    gitdir = dotgit
    if os.path.isfile(dotgit):
        text = _read_text(dotgit).strip()
        if text.startswith("gitdir:"):
            gitdir = os.path.normpath(os.path.join(repo, text[7:].strip()))
    common = gitdir
    try:
        rel = _read_text(os.path.join(gitdir, "commondir")).strip()
        common = os.path.normpath(os.path.join(gitdir, rel))
    except (OSError, ValueError):
        pass
    return gitdir, common


def _resolve_ref(ref: str, gitdir: str, common: str) -> str:
    for base in (gitdir, common):
        try:
            sha = _read_text(os.path.join(base, ref)).strip()
            if sha:
                return sha
        except (OSError, ValueError):
            continue
    try:
        for line in _read_text(os.path.join(common, "packed-refs")).splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return sha
    except (OSError, ValueError):
        pass
    return ""  # unborn branch


def parse_git_remotes(text: str) -> dict[str, str]:
    """{remote name: url} from a git config file."""
    remotes: dict[str, str] = {}
    section: tuple[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            match = re.match(r'\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]', stripped)
            if not match:
                section = None
            elif match.group(2) is not None:
                section = (match.group(1).lower(), match.group(2))
            else:
                kind, _, sub = match.group(1).partition(".")  # legacy [remote.origin]
                section = (kind.lower(), sub)
            continue
        if section and section[0] == "remote":
            key, sep, value = stripped.partition("=")
            if sep and key.strip().lower() == "url" and section[1] not in remotes:
                remotes[section[1]] = value.strip().strip('"')
    return remotes


def read_git_repo(repo: str, errors: Errors) -> dict[str, str] | None:
    try:
        gitdir, common = _git_dirs(repo)
        head_text = _read_text(os.path.join(gitdir, "HEAD")).strip()
    except (OSError, ValueError) as exc:
        _file_error(
            errors, os.path.join(repo, ".git"), exc, "check the repository (git status) or its permissions"
        )
        return None
    branch = head = ""
    if head_text.startswith("ref:"):
        ref = head_text[4:].strip()
        branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
        head = _resolve_ref(ref, gitdir, common)
    else:
        head = head_text
    remote = ""
    config = os.path.join(common, "config")
    try:
        remotes = parse_git_remotes(_read_text(config))
        remote = remotes.get("origin") or next(iter(remotes.values()), "")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        _file_error(errors, config, exc)
    return {"path": repo, "remote": strip_url(remote), "branch": branch, "head": head}
