"""The exchange repository: a local clone under the state dir, what is in it, and publishing.

Layout of the repository: ``hosts/<host>/{manifest.json,status.json,STATUS.md}``,
``CLUSTER_STATUS.md``, and optionally ``policy/`` and ``catalog/`` kept by a person. A host
writes only ``hosts/<itself>/`` and ``CLUSTER_STATUS.md``, so rebasing its commit onto anyone
else's never conflicts except in the cluster file, which it writes again anyway.

Whatever the repository holds is untrusted: files are read from git's object store (never
followed as links from the work tree), by mode and path: a symlink, a submodule, a path outside
``hosts/<host>/`` or a host name that is not its directory is refused and reported, and the rest
is used. The clone's work tree is only ever written at ``hosts/<this host>/``, after checking no
part of that path is a link.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import secrets
from ..errors import CyclotronError
from ..models import HOST_RE, Manifest
from ..store import iso, parse_iso, utc_now
from ..validate import MAX_MANIFEST_BYTES, Problem, validate_data
from ..validate.reading import _decode, _parse_json
from .config import ExchangeSettings
from .git import Git, GitError, redact_urls
from .guard import check_files
from .inputs import INPUT_DIRS, INPUT_SUFFIXES, MAX_INPUT_BYTES

HOST_FILES = ("manifest.json", "status.json", "STATUS.md")
CLUSTER_FILE = "CLUSTER_STATUS.md"
_MAX_STATUS_BYTES = 1024 * 1024
_MODE_FILE = ("100644", "100755")


class ExchangeError(CyclotronError):
    """The exchange repository cannot be used as asked; the message says why and what to do."""


@dataclass
class HostFiles:
    """One host's files as read from the repository (bytes, unparsed)."""

    host: str
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class TreeContents:
    hosts: dict[str, HostFiles]
    problems: list[str]
    # policy/ and catalog/ files (repository path -> bytes), when read_tree was asked for them
    inputs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class PublishResult:
    committed: bool = False
    pushed: bool = False
    reachable: bool = True
    attempts: int = 0
    unpushed: int = 0
    unpushed_since: str = ""
    outcome: str = ""
    message: str = ""


def cache_dir_for(state: Path, url: str) -> Path:
    """``<state>/exchange/<name>-<hash of the URL>``: one clone per exchange repository."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1]).strip("-.")[:40] or "repo"
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return state / "exchange" / f"{name}-{digest}"


class ExchangeRepo:
    """A local clone of one exchange repository, for one host."""

    def __init__(self, url: str, state: Path, host: str, settings: ExchangeSettings | None = None) -> None:
        if not url:
            raise ExchangeError("no exchange repository given: pass --repo URL (a path, ssh:// or https:// URL)")
        if url.startswith("-") or any(ord(c) < 32 for c in url):
            raise ExchangeError(f"--repo {url!r} is not a repository path or URL")
        userinfo = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[0] if "://" in url else ""
        if ":" in userinfo or (userinfo and secrets.secret_kind(userinfo + " " * 16)):
            raise ExchangeError(
                f"--repo {redact_urls(url)}: the URL holds a password or token, which would be stored in the "
                "clone's config; use an ssh key, or a git credential helper (git config --global credential.helper)")
        if not HOST_RE.match(host):
            raise ExchangeError(f"host name {host!r} must be letters, digits, '.', '_' or '-' (--host NAME)")
        self.url = url
        self.shown_url = redact_urls(url)
        self.host = host
        self.settings = settings or ExchangeSettings()
        self.branch = self.settings.branch
        self.dir = cache_dir_for(state, url)
        options: tuple[str, ...] = ()
        if self.settings.ca_file:
            ca = Path(self.settings.ca_file).expanduser()
            if not ca.is_file():
                raise ExchangeError(f"exchange_git.ca_file {str(ca)!r} in config.yml is not a file: give the PEM file "
                                    "of the CA that signed the https:// remote's certificate")
            options = ("-c", f"http.sslCAInfo={ca.resolve()}")
        self.git = Git(self.dir, identity=(f"cyclotron {host}", f"cyclotron@{host}"), options=options)
        self.events: list[dict[str, Any]] = []
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.reachable = True

    # ------------------------------------------------------------------ the clone

    def event(self, action: str, outcome: str, detail: str = "", attempt: int = 0) -> None:
        record = {"at": iso(utc_now()), "host": self.host, "repo": self.shown_url, "action": action,
                  "attempt": attempt, "outcome": outcome, "detail": redact_urls(detail)[:2000]}
        self.events.append(record)
        if self.on_event:
            self.on_event(record)

    @contextmanager
    def opened(self) -> Iterator[ExchangeRepo]:
        """The clone, created if missing, held by this process (a second publisher waits)."""
        self.dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir.parent / f".{self.dir.name}.lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (self.dir / ".git").is_dir():
                self.dir.mkdir(mode=0o700, exist_ok=True)
                self.git("init", "--quiet", f"--initial-branch={self.branch}")
                self.git("remote", "add", "origin", self.url)
            elif self.git.text("remote", "get-url", "origin") != self.url:
                self.git("remote", "set-url", "origin", self.url)
            yield self

    def fetch(self, attempt: int = 0) -> bool:
        """Fetch the remote; False (and recorded) when it cannot be reached."""
        try:
            self.git("fetch", "--quiet", "--prune", "--no-tags", "origin",
                     f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        except GitError as exc:
            if "couldn't find remote ref" in exc.stderr:
                self.event("fetch", "empty", "the remote has no branch yet", attempt)
                self.reachable = True
                return True
            self.event("fetch", "unreachable", str(exc), attempt)
            self.reachable = False
            return False
        self.event("fetch", "ok", attempt=attempt)
        self.reachable = True
        return True

    @property
    def remote_ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}"

    def _sha(self, ref: str) -> str:
        proc = self.git("rev-parse", "--verify", "--quiet", ref, check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else ""

    def _has(self, ref: str) -> bool:
        return self.git.ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def unpushed(self) -> tuple[int, str]:
        """(commits on the local branch the remote does not have, committer time of the oldest)."""
        local = f"refs/heads/{self.branch}"
        if not self._has(local):
            return 0, ""
        span = f"{self.remote_ref}..{local}" if self._has(self.remote_ref) else local
        stamps = self.git.text("log", "--format=%cI", "--reverse", span).splitlines()
        if not stamps:
            return 0, ""
        return len(stamps), iso(parse_iso(stamps[0]))

    def integrate(self, attempt: int = 0) -> None:
        """Bring the local branch onto the remote's: fast-forward, or rebase our unpushed commits
        (our version of a conflicting hunk wins: only CLUSTER_STATUS.md can conflict)."""
        if not self._has(self.remote_ref):
            if not self._has("HEAD"):
                return  # empty remote and nothing committed yet
            self.git("reset", "--quiet", "--hard", "HEAD")
            return
        count, _ = self.unpushed()
        if not self._has("HEAD") or count == 0:
            self.git("checkout", "--quiet", "-B", self.branch, self.remote_ref)
            self.git("reset", "--quiet", "--hard", self.remote_ref)
            return
        proc = self.git("rebase", "--quiet", "-X", "theirs", self.remote_ref, check=False)
        if proc.returncode == 0:
            self.event("rebase", "ok", f"{count} local commit(s) onto the remote", attempt)
            return
        self.git("rebase", "--abort", check=False)
        # Our files are rewritten from their sources on every publish: start again from the remote.
        self.event("rebase", "replaced", proc.stderr.decode("utf-8", "replace")[:500], attempt)
        self.git("checkout", "--quiet", "-B", self.branch, self.remote_ref)
        self.git("reset", "--quiet", "--hard", self.remote_ref)

    # ------------------------------------------------------------------ reading

    def read_tree(self, ref: str = "HEAD", names: tuple[str, ...] = HOST_FILES, *,
                  inputs: bool = False) -> TreeContents:
        """Every host's files (those in ``names``) at ``ref`` from git's objects, each path, mode and
        name checked; with ``inputs``, the files of policy/ and catalog/ too."""
        if not self._has(ref):
            return TreeContents({}, [])
        listing = self.git("ls-tree", "-r", "-z", "--full-tree", "-l", ref).stdout.decode("utf-8", "replace")
        hosts: dict[str, HostFiles] = {}
        problems: list[str] = []
        wanted: list[tuple[str, str, str]] = []
        extra: list[tuple[str, str]] = []
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            mode, kind, sha, size = (meta.split() + ["", "", "", ""])[:4]
            parts = path.split("/")
            if parts[0] in INPUT_DIRS and inputs:
                problem = _input_problem(path, parts, mode, kind, size)
                if problem:
                    problems.append(f"{path}: {problem}: refused")
                else:
                    extra.append((path, sha))
                continue
            if parts[0] != "hosts":
                if parts[-1] in HOST_FILES:
                    problems.append(f"{path}: not under hosts/<host>/: refused")
                continue
            if len(parts) != 3 or parts[2] not in HOST_FILES:
                problems.append(f"{path}: not a host file (hosts/<host>/manifest.json, status.json or "
                                "STATUS.md): refused")
                continue
            host = parts[1]
            if not HOST_RE.match(host):
                problems.append(f"{path}: {host!r} is not a valid host name: refused")
            elif mode == "120000":
                problems.append(f"{path}: is a symlink: refused")
            elif kind != "blob" or mode not in _MODE_FILE:
                problems.append(f"{path}: is not a regular file (mode {mode}): refused")
            elif size.isdigit() and int(size) > (MAX_MANIFEST_BYTES if parts[2] == "manifest.json"
                                                 else _MAX_STATUS_BYTES):
                problems.append(f"{path}: {int(size)} bytes, too large: refused")
            elif parts[2] in names:
                wanted.append((host, parts[2], sha))
        blobs = self._blobs([sha for _, _, sha in wanted] + [sha for _, sha in extra])
        for host, name, sha in wanted:
            hosts.setdefault(host, HostFiles(host)).files[name] = blobs[sha]
        return TreeContents(hosts, problems, {path: blobs[sha] for path, sha in extra})

    def _blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Blob contents in one ``cat-file --batch`` call."""
        if not shas:
            return {}
        out = self.git("cat-file", "--batch", input="".join(f"{s}\n" for s in dict.fromkeys(shas)).encode()).stdout
        blobs: dict[str, bytes] = {}
        pos = 0
        while pos < len(out):
            header_end = out.index(b"\n", pos)
            sha, _, size = out[pos:header_end].decode().split(" ")
            start = header_end + 1
            blobs[sha] = out[start:start + int(size)]
            pos = start + int(size) + 1
        return blobs

    # ------------------------------------------------------------------ writing

    def host_dir(self) -> Path:
        """``hosts/<host>/`` in the work tree, refusing any part of it that is a link."""
        path = self.dir
        for part in ("hosts", self.host):
            path = path / part
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                raise ExchangeError(f"{path}: is a link or a file, not a directory; the exchange repository holds "
                                    f"something unexpected at hosts/{self.host}: remove it there")
            path.mkdir(exist_ok=True)
        return path

    def write(self, files: Mapping[str, str]) -> None:
        """Write ``{repo-relative path: text}`` (this host's files and the cluster file) after the guard."""
        check_files(files)
        host_dir = self.host_dir()
        for rel, text in files.items():
            target = self.dir / rel
            if target.parent not in (host_dir, self.dir) or target.is_symlink():
                raise ExchangeError(f"{rel}: outside hosts/{self.host}/ or a link: not written")
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)

    def commit(self, message: str) -> bool:
        """Commit this host's directory and the cluster file; False when nothing changed."""
        self.git("add", "--all", "--", f"hosts/{self.host}", CLUSTER_FILE)
        if self.git.ok("diff", "--cached", "--quiet"):
            return False
        self.git("commit", "--quiet", "--no-verify", "-m", message)
        self.event("commit", "ok", self.git.text("rev-parse", "--short", "HEAD"))
        return True

    def push(self, refresh: Callable[[], None] | None = None) -> PublishResult:
        """Push without force; a rejection fetches, rebases and tries again with exponential backoff
        and jitter until ``retry.total`` seconds; an unreachable remote keeps the commits for later."""
        from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential, wait_random

        retry = self.settings.retry
        result = PublishResult()
        built_on = self._sha(self.remote_ref)
        if self.unpushed()[0] == 0:
            # Nothing committed here that the remote lacks (as of the fetch this publish began with).
            result.outcome = "nothing to push"
            return result

        def before_sleep(state: Any) -> None:
            wait = state.next_action.sleep if state.next_action else 0.0
            self.event("push", "rejected", f"someone pushed first; retrying in {wait:.2f} s", state.attempt_number)

        retrying = Retrying(
            stop=stop_before_delay(retry.total),
            wait=wait_exponential(multiplier=retry.base, max=retry.max) + wait_random(0, retry.jitter),
            retry=retry_if_exception(lambda exc: isinstance(exc, GitError) and exc.rejected),
            before_sleep=before_sleep,
            reraise=True,
            sleep=time.sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    result.attempts = number
                    # Fetch again right before every push (the first too: building the files took
                    # time), so the window in which someone else can push first stays small.
                    if not self.fetch(number):
                        raise _Offline()
                    self.integrate(number)
                    if self.unpushed()[0] == 0:
                        result.outcome = "nothing to push"
                        break
                    moved = self._sha(self.remote_ref)
                    if refresh and moved != built_on:
                        refresh()  # others' commits arrived: the cluster file again
                        built_on = moved
                    self.git("push", "--quiet", "--porcelain", "origin", f"HEAD:refs/heads/{self.branch}")
                    self.git("update-ref", self.remote_ref, "HEAD")
                    result.pushed, result.outcome = True, "pushed"
                    self.event("push", "ok", f"attempt {number}", number)
        except _Offline:
            result.reachable, result.outcome = False, "offline"
        except GitError as exc:
            if exc.rejected:
                result.outcome = "gave up"
                self.event("push", "gave-up", f"still rejected after {retry.total:.0f} s: {exc}", result.attempts)
            else:
                result.reachable, result.outcome = False, "offline"
                self.event("push", "unreachable", str(exc), result.attempts)
        result.unpushed, result.unpushed_since = self.unpushed()
        return result


def _input_problem(path: str, parts: list[str], mode: str, kind: str, size: str) -> str:
    """Why a file under policy/ or catalog/ is not read, or ''."""
    if len(parts) != 2 or not parts[1] or parts[1].startswith("."):
        return f"only files directly in {parts[0]}/ are read"
    if not parts[1].endswith(INPUT_SUFFIXES):
        return f"not a {', '.join(INPUT_SUFFIXES)} file"
    if mode == "120000":
        return "is a symlink"
    if kind != "blob" or mode not in _MODE_FILE:
        return f"is not a regular file (mode {mode})"
    if size.isdigit() and int(size) > MAX_INPUT_BYTES:
        return f"{int(size)} bytes, too large"
    return ""


class _Offline(Exception):
    """The remote went away between two attempts."""


def parse_json_blob(data: bytes, file: str) -> tuple[Any, list[Problem]]:
    """Untrusted bytes -> JSON, as the validator reads a manifest file (UTF-8, no duplicate keys)."""
    text, problems = _decode(data, file)
    if text is None:
        return None, problems
    return _parse_json(text, file)


def validated_manifests(contents: TreeContents, *, skip: str = "") -> tuple[dict[str, Manifest], list[str]]:
    """Each host's manifest that passes the validator, and a problem line for each that does not."""
    good: dict[str, Manifest] = {}
    problems: list[str] = []
    for host, entry in sorted(contents.hosts.items()):
        raw = entry.files.get("manifest.json")
        if host == skip or raw is None:
            continue
        file = f"hosts/{host}/manifest.json"
        data, read_problems = parse_json_blob(raw, file)
        if data is None or any(p.severity == "error" for p in read_problems):
            problems += [f"{p.file}: {p.path}: {p.message}" for p in read_problems]
            continue
        if isinstance(data, dict) and data.get("host") != host:
            problems.append(f"{file}: $.host: host {str(data.get('host'))[:60]!r} does not match its directory "
                            f"hosts/{host}/: refused")
            continue
        manifest, found = validate_data(data, file=file, expected_host=host)
        if manifest is None:
            problems += [f"{p.file}: {p.path}: {p.message}" for p in found if p.severity == "error"]
            continue
        good[host] = manifest
    return good, problems


def read_statuses(contents: TreeContents) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each host's status.json that is a JSON object naming its own host; problems for the rest."""
    good: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for host, entry in sorted(contents.hosts.items()):
        raw = entry.files.get("status.json")
        if raw is None:
            continue
        file = f"hosts/{host}/status.json"
        data, found = parse_json_blob(raw, file)
        if not isinstance(data, dict) or found:
            problems.append(f"{file}: not a JSON object ({'; '.join(p.message for p in found) or 'wrong type'})")
        elif data.get("host") != host:
            problems.append(f"{file}: names host {str(data.get('host'))[:60]!r}, not its directory: refused")
        else:
            good[host] = data
    return good, problems


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
