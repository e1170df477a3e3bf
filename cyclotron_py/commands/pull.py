"""`cyclotron pull`: gather, exchange, plan and install on this machine alone, through git."""

from __future__ import annotations

import argparse
from typing import Any

from ..daemon import approval_expiry, load_config
from ..errors import CyclotronError
from ..exchange.pull import PullRequest, pull
from ..lock import AlreadyRunning, run_lock
from ..runner import APPROVE_BY_MODE, RunRequest
from ..store import Store, state_dir, utc_now
from .exchange import exchange_repo
from .run import print_summary


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pull", help="one self-managing cycle through the exchange repository (like ansible-pull)",
        description="Takes the lock, gathers this machine with the local connection while it fetches every host's "
        "manifest from the exchange repository (each validated), compares and plans for this host; only when there "
        "is something to install, runs sync.yml on this machine alone (install with verify and rollback as the "
        "mode allows, gather again); publishes this host's manifest and status. Exit codes as cyclotron run.",
    )
    parser.add_argument("--repo", default="", help="the exchange repository (default: exchange_git.repo in config.yml)")
    parser.add_argument("--host", default="", help="this machine's name (default: exchange_git.host, else hostname)")
    parser.add_argument("--mode", choices=list(APPROVE_BY_MODE), default=None,
                        help="manual, semi-auto or full-auto (default: config.yml's mode, else semi-auto)")
    parser.add_argument("-i", "--inventory", default="",
                        help="an inventory with this host's variables (default: exchange_git.inventory, else a "
                        "one-host local inventory)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE",
                        help="plain settings for sync.yml (never a secret)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = state_dir()
    try:
        with run_lock(state):
            return run_locked(args, state)
    except AlreadyRunning as exc:
        raise CyclotronError(f"{exc}: another cyclotron run, pull or tick holds {state / 'lock'}; wait for it") from exc


def run_locked(args: argparse.Namespace, state: Any, *, now: Any = None, due: Any = None) -> int:
    """The cycle, with the lock already held (tick calls this)."""
    config = load_config(state)
    repo, settings, every = exchange_repo(args, state)
    request = PullRequest(repo=repo, expected_every=every, run=RunRequest(
        mode=args.mode or config.mode, inventory=args.inventory or settings.inventory,
        extra_args=[a for value in args.extra_vars for a in ("-e", value)],
        vault_password_file=config.vault_password_file, keep_artifacts=config.keep_runs,
        approval_expires_in=approval_expiry(config), now=now, due=due,
    ))
    with Store.open(state) as store:
        store.abandon_dead_runs(now=now or utc_now())
        result = pull(store, state, request, say=lambda line: print(line, flush=True))
        if result.run:
            print_summary(result.run.state, result.run.run_id, result.run.status, result.run.exit_code)
    print(f"pull run {result.run_id}: exit {result.exit_code}")
    return result.exit_code
