"""`cyclotron run`: run sync/gather/plan through ansible-runner and record it in the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import CyclotronError
from ..lock import AlreadyRunning, run_lock
from ..runner import APPROVE_BY_MODE, PLAYBOOKS, RunRequest, RunState, execute, plain_progress
from ..store import Store, state_dir


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a playbook through ansible-runner and record it (exit 0 ok, 1 bad input, 2 items failed, "
        "4 host unreachable)",
        description="Run sync, gather or plan with a private data dir under the state dir "
        "($CYCLOTRON_STATE_DIR) and record hosts, item outcomes, manifests and approvals in its store.",
    )
    parser.add_argument("-i", "--inventory", default="", help="inventory (default: the demo fleet)")
    parser.add_argument("--mode", choices=list(APPROVE_BY_MODE), default="semi-auto",
                        help="manual: plan only, queue every item for approval; semi-auto: install low-risk items "
                        "and queue the rest; full-auto: install everything (default: semi-auto)")
    parser.add_argument("--playbook", choices=list(PLAYBOOKS), default="sync")
    parser.add_argument("--check", action="store_true", help="Ansible check mode: change nothing")
    parser.add_argument("--limit", default="", help="only these hosts (Ansible --limit pattern)")
    parser.add_argument("--vault-password-file", default="", help="passed to Ansible (never read by cyclotron)")
    parser.add_argument("--keep-runs", type=int, default=10, help="run dirs (artifacts) to keep (default: 10)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE",
                        help="plain settings for the playbook (e.g. cyclotron_manifest_dir=...); never a secret: "
                        "they appear in process arguments")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = state_dir()
    request = RunRequest(
        playbook=args.playbook, inventory=args.inventory, mode=args.mode, check=args.check, limit=args.limit,
        vault_password_file=args.vault_password_file, keep_artifacts=args.keep_runs,
        extra_args=[arg for value in args.extra_vars for arg in ("-e", value)],
    )
    try:
        with run_lock(state):
            return _run_locked(args, state, request)
    except AlreadyRunning as exc:
        raise CyclotronError(f"{exc}: another cyclotron run or tick holds {state / 'lock'}; wait for it") from exc


def _run_locked(args: argparse.Namespace, state: Path, request: RunRequest) -> int:
    with Store.open(state) as store:
        store.abandon_dead_runs()
        if sys.stdout.isatty():
            with RichProgress() as bars:
                result = execute(store, request, state, progress=bars.draw)
        else:
            result = execute(store, request, state, progress=plain_progress(lambda line: print(line, flush=True)))
        print_summary(result.state, result.run_id, result.status, result.exit_code)
    return result.exit_code


class RichProgress:
    """One rich bar per host: items done/total, status, counts and the current task."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.fields[host]:<14}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]:<12} ok {task.fields[ok]} · changed {task.fields[changed]} · "
                       "failed {task.fields[failed]} · unreachable {task.fields[unreachable]}  {task.fields[task]}"),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def draw(self, state: RunState, touched: set[str]) -> None:
        for host in touched:
            h = state.hosts[host]
            fields: dict[str, Any] = {
                "host": host, "status": h.status, "ok": h.ok, "changed": h.changed, "failed": h.failed,
                "unreachable": h.unreachable, "task": h.current_task[:50],
            }
            if host not in self.tasks:
                self.tasks[host] = self.progress.add_task(host, total=h.items_total or None, **fields)
            self.progress.update(self.tasks[host], total=h.items_total or None, completed=h.items_done, **fields)


def print_summary(state: RunState, run_id: int, status: str, exit_code: int, out: Any = None) -> None:
    out = out or sys.stdout
    print(f"run {run_id}: {status} (exit {exit_code})", file=out)
    for host in sorted(state.hosts):
        h = state.hosts[host]
        print(f"  {host}: {h.status}; {h.ok} ok · {h.changed} changed · {h.failed} failed · "
              f"{h.unreachable} unreachable; items {h.items_done}/{h.items_total}"
              + (f"; {h.error}" if h.error else ""), file=out)
    if state.coverage_before is not None or state.coverage_after is not None:
        before, after = (f"{c}%" if c is not None else "?" for c in (state.coverage_before, state.coverage_after))
        print(f"  coverage {before} -> {after}", file=out)
    if state.awaiting:
        print(f"  {len(state.awaiting)} item(s) await approval: cyclotron approvals", file=out)
    for line in state.summary_lines:
        print(f"  {line}", file=out)
