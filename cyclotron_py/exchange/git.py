"""Git for the exchange: argv lists only, and nothing a fetched repository holds ever runs.

Every call is ``git -c core.hooksPath=/dev/null -c core.fsmonitor=false ...``: hooks in the
repository (or a template) never run, nor does an fsmonitor command. The clone's own config is
written by us (``git init`` + ``remote add``), never fetched, and the system config is skipped
(``GIT_CONFIG_NOSYSTEM``). Prompts are off (``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode``), so
an unreachable or password-protected remote fails fast instead of waiting for a person.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import CyclotronError

# Options that keep a fetched repository from running anything and make commits reproducible.
SAFE_OPTIONS: tuple[str, ...] = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "protocol.ext.allow=never",
    "-c", "commit.gpgSign=false",
    "-c", "rebase.autoStash=false",
    "-c", "pull.rebase=false",
    "-c", "advice.detachedHead=false",
)
# What marks a failed push as "someone else pushed first" (retry), not "the remote is gone".
_REJECTED = ("[rejected]", "[remote rejected]", "fetch first", "non-fast-forward", "cannot lock ref",
             "failed to update ref", "incorrect old value")


class GitError(CyclotronError):
    """A git command failed; the message names the command and git's own words."""

    def __init__(self, message: str, *, stderr: str = "", rc: int = 1) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.rc = rc

    @property
    def rejected(self) -> bool:
        return any(mark in self.stderr for mark in _REJECTED)


def git_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C", LANG="C", GIT_ASKPASS="",
               SSH_ASKPASS="")
    # A person's own ssh command (keys, jump hosts) is kept; without one, never prompt and give up soon.
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=10")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    return env


class Git:
    """Runs git in one work tree with the safe options; ``GitError`` on failure."""

    def __init__(self, work_tree: Path, *, timeout: float = 120.0, identity: tuple[str, str] | None = None,
                 options: Sequence[str] = ()) -> None:
        self.work_tree = work_tree
        self.timeout = timeout
        self.identity = identity
        self.options = tuple(options)  # more "-c name=value" pairs (the exchange's CA file)
        self.env = git_environment()

    def __call__(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["git", *SAFE_OPTIONS, *self.options]
        if self.identity:
            argv += ["-c", f"user.name={self.identity[0]}", "-c", f"user.email={self.identity[1]}"]
        argv += ["-C", str(self.work_tree), *args]
        try:
            proc = subprocess.run(argv, capture_output=True, env=self.env, timeout=self.timeout, input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL, check=False)
        except FileNotFoundError as exc:
            raise GitError("git is not installed: install it (apt-get install git) and run again") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} took longer than {self.timeout:.0f} s; the remote may be unreachable",
                           stderr="timeout", rc=124) from exc
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace")
            raise GitError(f"git {_show(args)} failed (exit {proc.returncode}): {_first_lines(stderr)}",
                           stderr=stderr + proc.stdout.decode("utf-8", "replace"), rc=proc.returncode)
        return proc

    def text(self, *args: str) -> str:
        return self(*args).stdout.decode("utf-8", "replace").strip()

    def ok(self, *args: str) -> bool:
        return self(*args, check=False).returncode == 0


_URL_CREDENTIALS = re.compile(r"(://)[^/\s@]+@")


def redact_urls(text: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x`` anywhere in a text (git repeats URLs)."""
    return _URL_CREDENTIALS.sub(r"\1", text)


def _show(args: Sequence[str]) -> str:
    return redact_urls(" ".join(args))


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact_urls("; ".join(lines[:count])) or "no message"
