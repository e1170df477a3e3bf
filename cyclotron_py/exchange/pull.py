"""``cyclotron pull``: one full cycle for a PC that manages itself through the exchange.

Like ansible-pull, but with Cyclotron's lock, validation, reporting and history:

1. the state dir's lock (a tick that runs pull already holds it);
2. fetch everyone's manifests from the exchange, each validated as untrusted input
   (a bad one is reported and left out; only valid ones reach the manifest dir);
3. ``playbooks/sync.yml`` through ``cyclotron_py.runner`` on this host alone with the local
   connection: gather, compare N-way with the fetched manifests, plan for this host only,
   install through the installer roles with verify and rollback as the mode allows (pending
   approvals go to the local store), gather again;
4. as soon as the plan has something to install, this host's freshly gathered manifest is
   published (status WORKING) while the installs run;
5. at the end the final manifest and status are published.

The pull run is recorded (kind ``pull``) with every exchange step; the sync run it started is
recorded as any ``cyclotron run``.
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import CyclotronError
from ..manifest_io import atomic_write_text
from ..models import Manifest
from ..runner import RunRequest, RunResult, RunState, execute
from ..store import Store
from .publish import fetch_manifests, publish
from .repo import ExchangeRepo, PublishResult


@dataclass
class PullRequest:
    repo: ExchangeRepo
    # mode, inventory, vault, artifacts, approval expiry, now/due and extra -e settings for sync.yml
    run: RunRequest
    expected_every: float | None = None


@dataclass
class PullResult:
    run_id: int
    exit_code: int
    sync: RunResult | None
    published: PublishResult | None
    fetched: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    early: PublishResult | None = None


def local_inventory(path: Path, host: str) -> Path:
    """A one-host inventory for this machine: local connection, the system's python3."""
    python = shutil.which("python3") or sys.executable
    body = {"all": {"hosts": {host: {"ansible_connection": "local", "ansible_python_interpreter": python}}}}
    atomic_write_text(path, "# written by cyclotron pull; pass -i to use your own\n" + yaml.safe_dump(body),
                      mode=0o600)
    return path


def pull(store: Store, state: Path, request: PullRequest, *, say: Callable[[str], Any] = print) -> PullResult:
    """One pull cycle; the caller holds the state dir's lock."""
    repo = request.repo
    host = repo.host
    work = state / "pull"
    dirs = {name: work / name for name in ("manifests", "plans", "generated", "reports")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings = request.run
    run_id = store.start_run("pull", settings.mode, inventory=repo.shown_url, now=settings.now, due=settings.due)
    early = _EarlyPublish(repo, host, request)
    # Exchange steps are recorded at the end, from this thread: the early publish runs beside the
    # runner's consumer, and one store connection holds one transaction at a time.
    try:
        # Only this cycle's manifests: a host gone from the repository is not planned from.
        for old in dirs["manifests"].glob("*.json"):
            old.unlink()
        fetched, refused, online = fetch_manifests(repo, dirs["manifests"], skip=host)
        say(f"fetched {len(fetched)} manifest(s) from {repo.shown_url}"
            + ("" if online else " (unreachable: the last fetched copy)")
            + (f"; refused {len(refused)}:" if refused else ""))
        for problem in refused:
            say(f"  {problem}")
        inventory = settings.inventory or str(local_inventory(work / "inventory.yml", host))
        extra = [f"cyclotron_{name[:-1] if name == 'manifests' else name}_dir={path}" for name, path in dirs.items()]
        sync = execute(store, replace(
            settings, playbook="sync", inventory=inventory, due=None,
            # localhost too: the plan and report plays run there (implicit localhost obeys --limit).
            limit=f"{host},localhost",
            extra_args=[*(a for value in extra for a in ("-e", value)), "-e", "ansible_connection=local",
                        *settings.extra_args],
        ), state, progress=early.watch)
        early.wait()
        manifest = _manifest(sync.state, host) or _manifest_file(dirs["manifests"] / f"{host}.json")
        published = publish(repo, manifest=manifest, store=store, phase="idle",
                            expected_every=request.expected_every, fetch=early.thread is not None)
        say(f"published {host}: {published.message}")
    except CyclotronError as exc:
        early.wait()
        store.record_exchange_events(run_id, repo.events)
        store.finish_run(run_id, "failed", 1, message=str(exc)[:4000])
        raise
    store.record_exchange_events(run_id, repo.events)
    ok = sync.exit_code == 0
    message = (f"sync run {sync.run_id} {sync.status} (exit {sync.exit_code}); fetched {len(fetched)}, "
               f"refused {len(refused)}; publish: {published.message}")
    store.finish_run(run_id, "successful" if ok else "failed", sync.exit_code, message=message)
    return PullResult(run_id, sync.exit_code, sync, published, fetched, refused, early.result)


def _manifest(state: RunState, host: str) -> Manifest | None:
    """The newest manifest this run gathered for ``host`` (the re-gather's when it installed)."""
    for document in reversed(state.manifests):
        if document.get("host") == host:
            return Manifest.model_validate(document)
    return None


def _manifest_file(path: Path) -> Manifest | None:
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _EarlyPublish:
    """Publishes the gathered manifest (status WORKING) as soon as the plan has items for this
    host, in a thread, so the others see it while the installs run. A plan with nothing to
    install publishes once, at the end."""

    def __init__(self, repo: ExchangeRepo, host: str, request: PullRequest) -> None:
        self.repo, self.host, self.request = repo, host, request
        self.thread: threading.Thread | None = None
        self.result: PublishResult | None = None
        self.error = ""

    def watch(self, state: RunState, touched: set[str]) -> None:
        progress = state.hosts.get(self.host)
        if self.thread or not state.plan_id or progress is None or not progress.items_total:
            return
        manifest = _manifest(state, self.host)
        if manifest is None:
            return
        self.thread = threading.Thread(target=self._publish, args=(manifest,), name="cyclotron-publish", daemon=True)
        self.thread.start()

    def _publish(self, manifest: Manifest) -> None:
        try:
            self.result = publish(self.repo, manifest=manifest, store=None, phase="working",
                                  expected_every=self.request.expected_every)
        except CyclotronError as exc:  # the final publish reports the same problem
            self.error = str(exc)

    def wait(self) -> None:
        if self.thread:
            self.thread.join()
