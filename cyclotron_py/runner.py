"""Run a Cyclotron playbook through ansible-runner and record it in the store.

Each run gets a private data dir ``<state>/runs/<run id>/`` (0700). The event handler only puts
events on a queue; one consumer thread turns them into per-host progress and outcomes, writes
them to the store in batches and draws progress. What reaches the store is what the outcome
contract names, never a raw result.

Leak paths closed here (ansible-runner 2.4):
- runner copies the whole process environment into ``artifacts/<ident>/command`` and into its
  ``starting`` status payload, whatever ``suppress_env_files`` says: the run gets a minimal
  environment (:func:`minimal_environment`), and the run dir is private;
- inline extravars show up in process arguments and in that file: the only extra variables
  passed are the approval mode and similar plain settings, never a secret; the vault stays with
  Ansible (``--vault-password-file``).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import queue
import re
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from .store import ItemOutcome, Store, utc_now

REPO_ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ("sync", "gather", "plan")
# cyclotron run --mode -> the plan's approval setting (cyclotron_approve)
APPROVE_BY_MODE = {"manual": "none", "semi-auto": "low-risk", "full-auto": "all"}
# Exit codes of `cyclotron run` (README): 0 ok, 1 bad input or config, 2 some item failed (and
# was rolled back), 4 some host unreachable.
EXIT_OK, EXIT_BAD_INPUT, EXIT_ITEMS_FAILED, EXIT_UNREACHABLE = 0, 1, 2, 4

# What a run keeps of the controller's environment: what Ansible, SSH and the registries need.
_KEEP_ENV = re.compile(
    r"^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|LC_[A-Z]+|TERM|TMPDIR|TZ|SHELL|VIRTUAL_ENV|PYTHONPATH|SSH_AUTH_SOCK"
    r"|ANSIBLE_[A-Z0-9_]+|CYCLOTRON_[A-Z0-9_]+|npm_config_cache|NPM_CONFIG_CACHE"
    r"|(?i:https?_proxy|no_proxy)|NODE_EXTRA_CA_CERTS|PIP_CERT|PIP_INDEX_URL|PIP_EXTRA_INDEX_URL|PIP_TRUSTED_HOST"
    r"|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE)$"
)
# Even a kept name is dropped when it names a credential (ANSIBLE_VAULT_PASSWORD, CYCLOTRON_TOKEN).
SECRET_NAME = re.compile(r"(?i)(passw(or)?d|secret|token|api_?key|credential|private_?key)(?!_FILE$)")


def minimal_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The controller environment a run may see: no API keys, tokens or passwords."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if _KEEP_ENV.match(k) and not SECRET_NAME.search(k)}


# Plain classes and NamedTuples, not dataclasses: `cyclotron run` would import dataclasses (and
# inspect, ast, dis) and build the classes before the playbook starts (~8 ms of a 0.1 s head start).
_HOST_FIELDS = ("status", "ok", "changed", "failed", "unreachable", "skipped", "items_total", "items_done",
                "current_task", "error")


class HostProgress:
    __slots__ = ("host", *_HOST_FIELDS)

    def __init__(self, host: str, status: str = "pending") -> None:
        self.host = host
        self.status = status
        self.ok = self.changed = self.failed = self.unreachable = self.skipped = 0
        self.items_total = self.items_done = 0
        self.current_task = self.error = ""

    def as_row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _HOST_FIELDS}

    def __repr__(self) -> str:
        return f"HostProgress({self.host!r}, {self.as_row()!r})"


class RunState:
    """What the consumer has learnt from the event stream so far."""

    def __init__(self, *, outcomes: list[ItemOutcome] | None = None,
                 manifests: list[dict[str, Any]] | None = None) -> None:
        self.hosts: dict[str, HostProgress] = {}
        self.plan_id = ""
        self.coverage_before: float | None = None
        self.coverage_after: float | None = None
        self.outcomes: list[ItemOutcome] = outcomes if outcomes is not None else []
        self.manifests: list[dict[str, Any]] = manifests if manifests is not None else []
        self.summary_lines: list[str] = []
        self.awaiting: list[dict[str, Any]] = []
        # host -> capability ids the plan still has a gap for (to install, awaiting or rejected)
        self.open_gaps: dict[str, set[str]] = {}
        # what the plan held back: awaiting approval or rejected by a person
        self.held: list[ItemOutcome] = []
        # host -> what its plan depends on besides manifests (cyclotron_gather's plan_inputs; pull plans with it)
        self.plan_inputs: dict[str, dict[str, Any]] = {}

    def host(self, name: str) -> HostProgress:
        if name not in self.hosts:
            self.hosts[name] = HostProgress(name)
        return self.hosts[name]


_COUNTED = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


def ingest(state: RunState, event: Mapping[str, Any]) -> set[str]:
    """Fold one ansible-runner event into ``state``; returns the hosts whose progress changed.

    Reads only the fields the outcome contract names from a result (``res``); a no_log
    result stays censored.
    """
    kind = str(event.get("event", ""))
    data = event.get("event_data") or {}
    host = str(data.get("host") or "")
    if kind == "runner_on_start" and host:
        progress = state.host(host)
        progress.current_task = str(data.get("task") or "")[:300]
        if progress.status == "pending":
            progress.status = "in progress"
        return {host}
    counter = _COUNTED.get(kind)
    if counter is None or not host:
        return set()
    res = data.get("res") or {}
    if kind == "runner_on_failed" and data.get("ignore_errors"):
        counter = "ok"
    progress = state.host(host)
    setattr(progress, counter, getattr(progress, counter) + 1)
    if kind == "runner_on_ok" and res.get("changed"):
        progress.changed += 1
    if kind == "runner_on_unreachable":
        progress.status = "unreachable"
        progress.error = _message(res) or "unreachable"
    elif kind == "runner_on_failed" and counter == "failed":
        progress.status = "failed"
        progress.error = f"{data.get('task', '')}: {_message(res)}"[:2000]
    action = str(data.get("task_action") or "")
    # The report task fails on purpose when an item failed; its result still carries the report.
    readable = kind == "runner_on_ok" or (kind == "runner_on_failed" and action.endswith("cyclotron_sync_report"))
    if readable and isinstance(res, Mapping) and "censored" not in res:
        return {host} | _read_result(state, host, action, res)
    return {host}


def _message(res: Mapping[str, Any]) -> str:
    if "censored" in res:
        return "the output was hidden by no_log"
    return str(res.get("msg") or res.get("stderr") or "")[:2000]


def _read_result(state: RunState, host: str, action: str, res: Mapping[str, Any]) -> set[str]:
    """Read what the contract names from one result; returns other hosts whose progress it changed."""
    short = action.rsplit(".", 1)[-1]
    facts = res.get("ansible_facts")
    if short == "set_fact" and isinstance(facts, Mapping) and isinstance(facts.get("cyclotron_outcomes"), list):
        # An installer role recorded an item's outcome (INSTALLER_CONTRACT): items done so far, live.
        state.host(host).items_done = len(facts["cyclotron_outcomes"])
    elif short == "cyclotron_gather" and isinstance(res.get("manifest"), Mapping):
        state.manifests.append(dict(res["manifest"]))
        if isinstance(res.get("plan_inputs"), Mapping):
            state.plan_inputs[host] = dict(res["plan_inputs"])
    elif short == "cyclotron_plan":
        plan = res.get("plan") or {}
        state.plan_id = str(plan.get("plan_id") or state.plan_id)
        for host_plan in plan.get("hosts") or []:
            name = str(host_plan.get("host", ""))
            state.host(name).items_total = len(host_plan.get("items") or [])
            gaps = state.open_gaps.setdefault(name, set())
            for key, outcome in (("items", ""), ("awaiting_approval", "awaiting-approval"), ("rejected", "rejected")):
                for item in host_plan.get(key) or []:
                    gaps.add(str(item.get("id", "")))
                    if outcome == "awaiting-approval":
                        state.awaiting.append(_approval_item(name, item, state.plan_id))
                    if outcome:
                        state.held.append(_outcome(name, {**item, "status": outcome,
                                                          "reason": item.get("approval") or ""}))
        state.coverage_before = _percent(res.get("coverage"))
        return {str(h.get("host", "")) for h in plan.get("hosts") or []}
    elif short == "cyclotron_sync_report":
        others: set[str] = set()
        nested = res.get("report")
        report: Mapping[str, Any] = nested if isinstance(nested, Mapping) else res
        for name, outcomes in (report.get("outcomes") or {}).items():
            for o in outcomes:
                state.outcomes.append(_outcome(str(name), o))
            state.host(str(name)).items_done = len(outcomes)
            others.add(str(name))
        lines = res.get("lines")
        if isinstance(lines, list):
            state.summary_lines = [str(line) for line in lines]
        state.coverage_after = _percent(report.get("coverage_after"))
        if state.coverage_before is None:
            state.coverage_before = _percent(report.get("coverage_before"))
        return others
    return set()


def _percent(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = (value.get("overall") or value).get("percent")
    return float(value) if isinstance(value, int | float) else None


def _outcome(host: str, o: Mapping[str, Any]) -> ItemOutcome:
    return ItemOutcome(
        host=host,
        capability_id=str(o.get("id", "")),
        outcome=str(o.get("status") or o.get("outcome") or ""),
        manager=str(o.get("manager") or ""),
        package=str(o.get("package") or ""),
        version_before=str(o.get("version_before") or ""),
        version_after=str(o.get("version_after") or ""),
        reason=str(o.get("reason") or ""),
    )


def _approval_item(host: str, item: Mapping[str, Any], plan_id: str) -> dict[str, Any]:
    return {
        "host": host, "capability_id": str(item.get("id", "")), "manager": str(item.get("manager", "")),
        "package": str(item.get("package", "")), "wanted_version": str(item.get("version") or ""),
        "risk": str(item.get("risk", "")), "reason": str(item.get("approval") or item.get("reason") or ""),
        "plan_id": plan_id,
    }


class RunRequest(NamedTuple):
    playbook: str = "sync"
    inventory: str = ""
    mode: str = "semi-auto"
    check: bool = False
    limit: str = ""
    vault_password_file: str = ""
    keep_artifacts: int = 10
    extra_args: Sequence[str] = ()
    approval_expires_in: timedelta | None = None
    # The run's start time as recorded (tick --now); None: the clock.
    now: datetime | None = None
    # The schedule slot a tick runs it for.
    due: datetime | None = None


class RunResult(NamedTuple):
    run_id: int
    status: str
    rc: int
    exit_code: int
    state: RunState
    data_dir: Path


Progress = Callable[[RunState, set[str]], None]


def execute(store: Store, request: RunRequest, state_dir: Path, *, progress: Progress | None = None) -> RunResult:
    """Run the playbook and record it; the store row goes from running to its final status."""
    runner_config, runner_class, dump_artifacts, signal_handler = _runner_api()

    if request.playbook not in PLAYBOOKS:
        raise ValueError(f"playbook {request.playbook!r} is not one of {', '.join(PLAYBOOKS)}")
    playbook = REPO_ROOT / "playbooks" / f"{request.playbook}.yml"
    inventory = Path(request.inventory or REPO_ROOT / "inventory/demo/hosts.yml").resolve()
    run_id = store.start_run(
        request.playbook, request.mode, inventory=str(inventory), check_mode=request.check, now=request.now,
        due=request.due,
    )
    started = utc_now()
    runs_dir = state_dir / "runs"
    runs_dir.mkdir(mode=0o700, exist_ok=True)
    data_dir = runs_dir / str(run_id)
    data_dir.mkdir(mode=0o700)
    os.chmod(data_dir, 0o700)
    store.update_run(run_id, data_dir=str(data_dir))

    cmdline = ["-e", f"cyclotron_approve={APPROVE_BY_MODE[request.mode]}"]
    if request.check:
        cmdline.append("--check")
    if request.vault_password_file:
        cmdline += ["--vault-password-file", str(Path(request.vault_password_file).resolve())]
    cmdline += list(request.extra_args)
    # A person's standing answers (approved / rejected) for the plan step: plain data, no secret.
    decisions = store.decisions()
    decisions_file = data_dir / "decisions.json"
    decisions_file.write_text(json.dumps(decisions, sort_keys=True), encoding="utf-8")
    os.chmod(decisions_file, 0o600)
    cmdline += ["-e", f"cyclotron_decisions_file={decisions_file}"]

    events: queue.Queue[Mapping[str, Any] | None] = queue.Queue()
    state = RunState()
    consumer = threading.Thread(
        target=_consume, args=(events, state, store, run_id, progress), name="cyclotron-ingest", daemon=True
    )
    consumer.start()
    env = minimal_environment()
    env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
    # ansible-playbook from the same environment as this Python, even when it is not activated.
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p)
    # runner appends its own callback dir to this; Cyclotron's (the preload) must stay on it.
    env["ANSIBLE_CALLBACK_PLUGINS"] = str(REPO_ROOT / "plugins" / "callback")
    try:
        with _only_environment(env), _close_without_a_fixed_sleep():
            # What ansible_runner.run() does (interface.init_runner), through the documented
            # RunnerConfig + Runner interface.
            options: dict[str, Any] = dict(
                private_data_dir=str(data_dir),
                project_dir=str(REPO_ROOT),
                playbook=str(playbook),
                inventory=str(inventory),
                limit=request.limit or None,
                cmdline=shlex.join(cmdline),
                suppress_env_files=True,
                quiet=True,
                rotate_artifacts=max(request.keep_artifacts, 1),
                settings={"suppress_ansible_output": True},
            )
            dump_artifacts(options)
            config = runner_config(**options)
            config.prepare()
            result = runner_class(config, event_handler=_enqueue_to(events), cancel_callback=signal_handler())
            # Old run dirs go while the playbook runs rather than after it (this one is the newest).
            rotation = threading.Thread(target=_rotate_runs, args=(runs_dir, request.keep_artifacts),
                                        name="cyclotron-rotate", daemon=True)
            rotation.start()
            result.run()
        rc = int(result.rc if result.rc is not None else 1)
    finally:
        events.put(None)
        consumer.join()
    _scrub_environment(data_dir)
    exit_code, status = _exit_code(rc, state)
    store.record_hosts(run_id, {h: p.as_row() for h, p in state.hosts.items()})
    store.record_items(run_id, [*state.outcomes, *state.held])
    if request.playbook == "sync" and not request.check:
        _settle_approvals(store, run_id, state, decisions, request)
    for manifest in state.manifests:
        store.snapshot_manifest(manifest, run_id=run_id)
    store.update_run(run_id, plan_id=state.plan_id,
                     items_total=sum(h.items_total for h in state.hosts.values()))
    finished = request.now + (utc_now() - started) if request.now else None
    store.finish_run(run_id, status, rc, message="\n".join(state.summary_lines)[:4000], now=finished)
    rotation.join()
    _skip_the_last_collection()
    return RunResult(run_id, status, rc, exit_code, state, data_dir)


def _skip_the_last_collection() -> None:
    """When the process exits, Python's last garbage collection walks every object that ansible_runner,
    pexpect and the run left (~15 ms, 1% of a run at parity) to free memory the OS takes back anyway.
    gc.freeze() from an exit handler (they run before that collection) leaves it nothing to walk; files
    and the store are closed explicitly, not by the collector."""
    atexit.unregister(gc.freeze)  # registered once however many runs this process makes
    atexit.register(gc.freeze)


def _runner_api() -> tuple[Any, Any, Callable[[dict[str, Any]], None], Callable[[], Any]]:
    """ansible_runner's RunnerConfig, Runner, dump_artifacts and signal_handler.

    When nothing has imported ansible_runner yet, its modules load under a package object whose
    ``__init__`` has not run: that file imports importlib.metadata and reads the entry points of
    every installed distribution to load runner plugins, ~20 ms before the playbook can start (a
    sixth of what a run adds to ansible-playbook at parity). Cyclotron runs no runner plugin: one
    would be handed every event with its whole result, and the starting status with the run's
    environment. The package stays whole for anyone else: the first name asked of it that is
    neither set nor a submodule (``ansible_runner.run``, say) runs the real ``__init__`` into it."""
    if "ansible_runner" not in sys.modules:
        _load_runner_package_lazily()
    from ansible_runner.config.runner import RunnerConfig
    from ansible_runner.runner import Runner
    from ansible_runner.utils import dump_artifacts, signal_handler

    return RunnerConfig, Runner, dump_artifacts, signal_handler


def _load_runner_package_lazily() -> None:
    import importlib.util

    spec = importlib.util.find_spec("ansible_runner")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return  # not a package on disk: import it the ordinary way
    loader, where = spec.loader, list(spec.submodule_search_locations)
    package = importlib.util.module_from_spec(spec)

    def complete(name: str) -> Any:
        if name.startswith("__") or any(
            os.path.exists(os.path.join(d, name)) or os.path.exists(os.path.join(d, f"{name}.py")) for d in where
        ):
            raise AttributeError(name)  # a submodule: the import system loads it
        del package.__getattr__  # once: the real __init__ sets every other name
        loader.exec_module(package)
        return getattr(package, name)

    setattr(package, "__getattr__", complete)  # noqa: B010 - a module's own __getattr__ (PEP 562)
    sys.modules["ansible_runner"] = package
    try:
        import ansible_runner.runner  # noqa: F401 - sets package.plugins to the plugins subpackage
    except BaseException:
        del sys.modules["ansible_runner"]
        raise
    setattr(package, "plugins", {})  # noqa: B010 - what __init__ sets when no plugin is installed


def _settle_approvals(store: Store, run_id: int, state: RunState,
                      decisions: Mapping[str, Mapping[str, Mapping[str, str]]], request: RunRequest) -> None:
    """After a sync: queue what awaits a person, close approved items the run installed, and close
    approvals whose gap closed by other means on the hosts gathered in this run."""
    if state.awaiting:
        store.queue_approvals(state.awaiting, plan_id=state.plan_id, requested_by=f"run {run_id}",
                              expires_in=request.approval_expires_in, now=request.now)
    installed = [
        int(decisions[o.host][o.capability_id]["approval_id"])
        for o in state.outcomes
        if o.outcome.replace("_", "-") in ("installed", "upgraded", "already-present")
        and decisions.get(o.host, {}).get(o.capability_id, {}).get("state") == "approved"
    ]
    if installed:
        store.consume_approved(run_id, installed)
    gathered = {str(m.get("host", "")) for m in state.manifests}
    store.close_resolved({h: gaps for h, gaps in state.open_gaps.items() if h in gathered}, now=request.now)


def _enqueue_to(events: queue.Queue[Mapping[str, Any] | None]) -> Callable[[Mapping[str, Any]], bool]:
    """The runner event handler: it only enqueues. It returns False: runner then writes no
    ``job_events/*.json``, a file per event holding every task's whole result (a second copy of
    what the store keeps in contract form, a leak surface, and a JSON dump per event); the run's
    text output stays in ``artifacts/<ident>/stdout``."""

    def enqueue(event: Mapping[str, Any]) -> bool:
        events.put(event)
        return False

    return enqueue


@contextmanager
def _only_environment(env: Mapping[str, str]) -> Iterator[None]:
    """runner seeds a run with a copy of os.environ (and writes it to artifacts/<id>/command):
    let it see only ``env`` while it prepares and runs, then put the controller's back."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _close_without_a_fixed_sleep() -> Iterator[None]:
    """ptyprocess's close() always sleeps 0.1 s ("give the kernel time to update process status")
    before it checks the child. runner closes ansible-playbook after reading its EOF, when it has
    exited or is exiting: wait for that, for up to the same 0.1 s, instead (5% of a run at parity)."""
    from ptyprocess import PtyProcess

    original = PtyProcess.close

    def close(self: Any, force: bool = True) -> None:
        if not self.closed:
            deadline = time.monotonic() + self.delayafterclose
            while self.isalive() and time.monotonic() < deadline:
                time.sleep(0.002)
            self.delayafterclose = 0  # this instance: already waited
        original(self, force)

    PtyProcess.close = close
    try:
        yield
    finally:
        PtyProcess.close = original


def _consume(events: queue.Queue[Mapping[str, Any] | None], state: RunState, store: Store, run_id: int,
             progress: Progress | None) -> None:
    """Drain the queue; write host progress in one transaction per burst of events."""
    while True:
        event = events.get()
        batch = [event]
        while not events.empty():  # a burst: everything already queued goes in one write
            batch.append(events.get_nowait())
        touched: set[str] = set()
        done = False
        for item in batch:
            if item is None:
                done = True
                continue
            touched |= ingest(state, item)
        if touched:
            store.record_hosts(run_id, {h: state.hosts[h].as_row() for h in touched})
            if progress:
                progress(state, touched)
        if done:
            return


def _exit_code(rc: int, state: RunState) -> tuple[int, str]:
    for progress in state.hosts.values():
        if progress.status in ("pending", "in progress"):
            progress.status = "complete"
    if any(h.unreachable for h in state.hosts.values()):
        return EXIT_UNREACHABLE, "failed"
    failed_items = [o for o in state.outcomes if o.outcome.replace("_", "-") in ("failed", "failed-rolled-back")]
    if failed_items:
        return EXIT_ITEMS_FAILED, "failed"
    if rc != 0:
        return EXIT_BAD_INPUT, "failed"
    return EXIT_OK, "successful"


def _scrub_environment(data_dir: Path) -> None:
    """runner writes ``artifacts/<ident>/command`` with the run's environment: keep only its argv."""
    for command in data_dir.glob("artifacts/*/command"):
        try:
            doc = json.loads(command.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            command.unlink(missing_ok=True)
            continue
        doc["env"] = {k: v for k, v in (doc.get("env") or {}).items() if k in ("PATH", "HOME", "LANG")}
        command.write_text(json.dumps(doc), encoding="utf-8")
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.is_dir():
            os.chmod(path, 0o700)
        elif path.is_file():
            os.chmod(path, 0o600)


def _rotate_runs(runs_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` run dirs (their rows stay in the store until pruned)."""
    dirs = sorted((p for p in runs_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    for old in dirs[: max(len(dirs) - max(keep, 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)


def plain_progress(write: Callable[[str], Any]) -> Progress:
    """Progress as plain lines (output piped): one line per host whose status changed."""
    last: dict[str, str] = {}

    def draw(state: RunState, touched: Iterable[str]) -> None:
        for host in sorted(touched):
            h = state.hosts[host]
            if last.get(host) == h.status:
                continue  # one line per host and status change
            last[host] = h.status
            line = (f"{host}: {h.status} · {h.items_done}/{h.items_total} items · ok {h.ok} changed {h.changed}"
                    f" failed {h.failed} unreachable {h.unreachable}")
            write(line + (f" · {h.current_task}" if h.current_task else ""))

    return draw
