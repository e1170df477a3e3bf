"""`cyclotron tick`: what a timer calls. Runs the configured job when it is due, at most once."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..daemon import approval_expiry, decide, housekeeping, load_config
from ..errors import CyclotronError
from ..lock import AlreadyRunning, run_lock
from ..runner import RunRequest, execute, plain_progress
from ..store import Store, iso, state_dir, utc_now
from .run import print_summary


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tick", help="run the scheduled job if it is due (idempotent; for timers)",
        description="Takes the state dir's lock without blocking, marks runs of dead processes abandoned, "
        "beats the heartbeat and runs the job from config.yml when due: once, or recorded as missed when "
        "the machine was off past the grace period.",
    )
    parser.add_argument("-i", "--inventory", default="", help="inventory (default: config.yml's, else the demo)")
    parser.add_argument("--now", default="", help="evaluate the schedule at this ISO time (tests)")
    parser.set_defaults(func=run)


def parse_now(text: str) -> datetime:
    if not text:
        return utc_now()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CyclotronError(f"--now {text!r} is not an ISO time like 2026-12-01T12:00:00Z") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run_pull(args: argparse.Namespace, state: Path, *, now: datetime, due: datetime | None) -> int:
    """``exchange: git`` in config.yml: the job is ``cyclotron pull`` with exchange_git's settings."""
    from . import pull

    pull_args = argparse.Namespace(repo="", host="", mode=None, inventory=args.inventory, extra_vars=[])
    return pull.run_locked(pull_args, state, now=now, due=due)


def run(args: argparse.Namespace) -> int:
    state = state_dir()
    config = load_config(state)
    now = parse_now(args.now)
    try:
        with run_lock(state), Store.open(state) as store:
            abandoned = store.abandon_dead_runs(now=now)
            for run_id in abandoned:
                print(f"run {run_id} was left running by a process that is gone: marked abandoned")
            decision = decide(config, store.last_started(), now)
            store.beat(note=decision.action, now=now)
            print(f"tick {iso(now)}: {decision.action}: {decision.message}")
            code = 0
            kind = "pull" if config.exchange == "git" else config.playbook
            if decision.action == "missed" and decision.due is not None:
                store.record_missed(kind, config.mode, due=decision.due, message=decision.message, now=now)
            elif decision.action == "run" and config.exchange == "git":
                code = run_pull(args, state, now=now, due=decision.due)
                store.beat(note=f"pull exit {code}", now=now)
            elif decision.action == "run":
                request = RunRequest(
                    playbook=config.playbook, inventory=args.inventory or config.inventory, mode=config.mode,
                    vault_password_file=config.vault_password_file, keep_artifacts=config.keep_runs,
                    approval_expires_in=approval_expiry(config), now=now, due=decision.due,
                    extra_args=config.extra_args(),
                )
                result = execute(store, request, state, progress=plain_progress(lambda line: print(line, flush=True)))
                store.beat(result.run_id, note=f"run {result.run_id} {result.status}", now=now)
                print_summary(result.state, result.run_id, result.status, result.exit_code)
                code = result.exit_code
            housekeeping(store, config, now)
            return code
    except AlreadyRunning as exc:
        print(str(exc))
        return 0
