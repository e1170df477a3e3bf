"""``cyclotron pull``: one full cycle for a PC that manages itself through the exchange.

Like ansible-pull, but with Cyclotron's lock, validation, reporting and history:

1. the state dir's lock (a tick that runs pull already holds it);
2. ``playbooks/gather.yml`` through ``cyclotron_py.runner`` on this host alone with the local
   connection, while a thread fetches the exchange and validates everyone's manifests as
   untrusted input (a bad one is reported and left out);
3. the comparison and this host's plan, once, here (the same ``sync.plan_fleet`` the sync run's
   plan step uses, with the host's policy, catalog and approval setting as the gather saw them);
4. only when the plan has something to install (approved approvals included): the gathered
   manifest is published (status WORKING) and ``playbooks/sync.yml`` installs through the
   installer roles with verify and rollback and gathers again. Otherwise no second playbook
   starts and nothing is gathered again: what awaits a person is queued in the local store;
5. the final manifest and status are published (at parity from what steps 2-3 already read
   and compared).

The pull run is recorded (kind ``pull``) with every exchange step; the gather and sync runs it
started are recorded as any ``cyclotron run``.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import CyclotronError
from ..manifest_io import atomic_write_text
from ..models import Manifest
from ..runner import APPROVE_BY_MODE, RunRequest, RunResult, RunState, _settle_approvals, execute, ingest
from ..store import Store
from .repo import ExchangeRepo, PublishResult

if TYPE_CHECKING:
    from ..plan import Plan
    from .publish import ExchangeRead


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
    # the sync run when the plan had something to install, else the gather run
    run: RunResult | None
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
    # Only this cycle's manifests: a host gone from the repository is not planned from.
    for old in dirs["manifests"].glob("*.json"):
        old.unlink()
    inventory = settings.inventory or str(local_inventory(work / "inventory.yml", host))
    # Exchange steps are recorded at the end, from this thread: one store connection holds one
    # transaction at a time, and the validation and the early publish run beside the runner.
    early = _EarlyPublish(repo, request)
    sync: RunResult | None = None
    fetched: list[str] = []
    refused: list[str] = []
    try:
        # The gather starts at once, with the exchange's policy/ and catalog/ as the last pull used
        # them; the fetch and the validation run beside it. Should the fetch bring other ones (a
        # person changed them), the gather runs again with those.
        reader = _Reading(repo)
        vars_file = work / "exchange-vars.json"
        known = _used_vars(vars_file)
        extra = [*settings.extra_args]

        def gather_now(values: Mapping[str, Any]) -> RunResult:
            return execute(store, settings._replace(
                playbook="gather", inventory=inventory, due=None, limit=host,
                # The manifests are validated by the reader (fetched) and the planner (this host's).
                extra_args=["-e", f"cyclotron_manifest_dir={dirs['manifests']}", "--skip-tags", "validate",
                            "-e", "ansible_connection=local", *_input_vars(values, vars_file), *extra],
            ), state)

        gather = gather_now(known)
        read = reader.result()
        inputs = read.inputs.extra_vars(host)
        if inputs != known:
            say("the exchange's policy/ or catalog/ changed: gathering again with them")
            gather = gather_now(inputs)
        local = ["-e", "ansible_connection=local", *_input_vars(inputs, vars_file), *extra]
        if read.inputs.used:
            say(f"using {', '.join(read.inputs.used)} from the exchange")
        from .publish import matrix_gaps, publish, write_manifests

        fetched = write_manifests(read.manifests, dirs["manifests"], skip=host)
        refused = read.problems
        for problem in refused:
            repo.event("fetch-manifest", "refused", problem)
        say(f"fetched {len(fetched)} manifest(s) from {repo.shown_url}"
            + ("" if read.online else " (unreachable: the last fetched copy)")
            + (f"; refused {len(refused)}:" if refused else ""))
        for problem in refused:
            say(f"  {problem}")
        document = _gathered(gather.state, host)
        last = gather
        fleet = None
        if document is not None:
            planned = plan_for(host, document, gather.state.plan_inputs.get(host, {}), dirs["manifests"],
                               store=store, mode=settings.mode)
            if planned.items:
                early.start(Manifest.model_validate(document))
                sync = execute(store, settings._replace(
                    playbook="sync", inventory=inventory, due=None,
                    # localhost too: the plan and report plays run there (implicit localhost obeys --limit).
                    limit=f"{host},localhost",
                    extra_args=[*(a for name, path in dirs.items() for a in ("-e", f"cyclotron_{_var(name)}={path}")),
                                *local],
                ), state)
                early.wait()
                last = sync
                document = _gathered(sync.state, host) or document
            else:
                say(planned.summary)
                planned.settle(store, run_id, settings)
                fleet = matrix_gaps(planned.matrix)
        manifest = Manifest.model_validate(document) if document is not None else None
        if sync is None:  # nothing installed: what was read and compared still holds
            published = publish(repo, manifest=manifest, store=store, phase="idle",
                                expected_every=request.expected_every, read=read, fleet=fleet)
        else:
            published = publish(repo, manifest=manifest, store=store, phase="idle",
                                expected_every=request.expected_every)
        say(f"published {host}: {published.message}")
    except CyclotronError as exc:
        early.wait()
        store.record_exchange_events(run_id, repo.events)
        store.finish_run(run_id, "failed", 1, message=str(exc)[:4000])
        raise
    store.record_exchange_events(run_id, repo.events)
    ok = last.exit_code == 0
    message = (f"{'sync' if sync else 'gather'} run {last.run_id} {last.status} (exit {last.exit_code}); "
               f"fetched {len(fetched)}, refused {len(refused)}; publish: {published.message}")
    store.finish_run(run_id, "successful" if ok else "failed", last.exit_code, message=message)
    return PullResult(run_id, last.exit_code, last, published, fetched, refused, early.result)


def _var(name: str) -> str:
    """sync.yml's variable for one of the pull's dirs: cyclotron_manifest_dir, cyclotron_plans_dir..."""
    return ("manifest" if name == "manifests" else name) + "_dir"


@dataclass
class PlannedHere:
    """This host's plan, made here from the gathered manifest and the fetched ones."""

    host: str
    plan: Plan
    matrix: dict[str, Any]
    decisions: dict[str, dict[str, dict[str, str]]]
    document: dict[str, Any]

    @property
    def items(self) -> int:
        return sum(len(h.items) for h in self.plan.hosts if h.host == self.host)

    @property
    def summary(self) -> str:
        from ..sync import plan_summary

        return "; ".join(line.strip() for line in plan_summary(self.plan)[1:]) or "nothing to install"

    def settle(self, store: Store, run_id: int, settings: RunRequest) -> None:
        """What the sync run would do with its plan when it installs nothing: queue what awaits a
        person, record what is held back, close approvals whose gap has closed."""
        state = RunState(manifests=[self.document])
        ingest(state, {"event": "runner_on_ok", "event_data": {
            "host": "localhost", "task_action": "cyclotron_plan",
            "res": {"plan": self.plan.model_dump(mode="json"), "coverage": self.matrix.get("coverage")}}})
        store.record_items(run_id, state.held)
        store.update_run(run_id, plan_id=state.plan_id)
        _settle_approvals(store, run_id, state, self.decisions, settings)


def plan_for(host: str, document: dict[str, Any], inputs: Mapping[str, Any], manifest_dir: Path, *,
             store: Store, mode: str) -> PlannedHere:
    """Compare this host's gathered manifest with the fetched ones and plan for this host only,
    with the policy, catalog, domains and approval setting its gather reported (sync.yml's plan
    step, here)."""
    from ..catalog import load_catalog
    from ..sync import collect_manifests, plan_fleet

    catalog = load_catalog(inputs.get("catalog") or None, inputs.get("domains") or None)
    records = collect_manifests({host: document}, manifest_dir, domains=catalog.domains)
    decisions = store.decisions()
    plan, matrix = plan_fleet(records, targets=[host], catalog=catalog, policies={host: inputs.get("policy")},
                              approve=str(inputs.get("approve") or APPROVE_BY_MODE[mode]), decisions=decisions)
    return PlannedHere(host, plan, matrix, decisions, document)


def _gathered(state: RunState, host: str) -> dict[str, Any] | None:
    """The newest manifest this run gathered for ``host`` (the re-gather's when it installed)."""
    for document in reversed(state.manifests):
        if document.get("host") == host:
            return document
    return None


def _used_vars(path: Path) -> dict[str, Any]:
    """The exchange's variables the last pull passed (its -e @file), {} without one."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def _input_vars(values: Mapping[str, Any], path: Path) -> list[str]:
    """``-e @file`` with the exchange's catalog and this host's policy (plain data, checked to hold
    no template markup), or nothing when the exchange has neither."""
    if not values:
        path.unlink(missing_ok=True)
        return []
    if _used_vars(path) != values:
        atomic_write_text(path, json.dumps(values, sort_keys=True), mode=0o600)
    return ["-e", f"@{path}"]


class _Reading:
    """The exchange fetched, integrated, read and validated in a thread while the gather runs, and
    what planning needs loaded meanwhile."""

    def __init__(self, repo: ExchangeRepo) -> None:
        self.repo = repo
        self.value: ExchangeRead | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, name="cyclotron-fetch", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            from .publish import read_exchange

            with self.repo.opened():
                self.value = read_exchange(self.repo, inputs=True)
            from ..catalog import load_catalog
            from ..sync import plan_fleet  # noqa: F401

            load_catalog()
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc

    def result(self) -> ExchangeRead:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


class _EarlyPublish:
    """Publishes the gathered manifest (status WORKING) in a thread while the installs run, so
    the others see it; the final publish reports the same problem if this one fails."""

    def __init__(self, repo: ExchangeRepo, request: PullRequest) -> None:
        self.repo, self.request = repo, request
        self.thread: threading.Thread | None = None
        self.result: PublishResult | None = None
        self.error = ""

    def start(self, manifest: Manifest) -> None:
        self.thread = threading.Thread(target=self._publish, args=(manifest,), name="cyclotron-publish", daemon=True)
        self.thread.start()

    def _publish(self, manifest: Manifest) -> None:
        from .publish import publish

        try:
            self.result = publish(self.repo, manifest=manifest, store=None, phase="working",
                                  expected_every=self.request.expected_every, fetch=False)
        except CyclotronError as exc:
            self.error = str(exc)

    def wait(self) -> None:
        if self.thread:
            self.thread.join()
