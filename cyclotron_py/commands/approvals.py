"""`cyclotron approvals | approve | reject`: the queue of items that wait for a person."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from ..errors import CyclotronError
from ..store import Store, state_dir

COLUMNS = ("id", "host", "capability_id", "manager", "package", "wanted_version", "risk", "plan_id", "created")


def add_parser(subparsers: Any) -> None:
    listing = subparsers.add_parser("approvals", help="list pending approvals")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--host", default="")
    listing.add_argument("--all", action="store_true", help="every state, not only pending")
    listing.set_defaults(func=run_list)

    approve = subparsers.add_parser("approve", help="approve pending items: the next run installs them")
    approve.add_argument("ids", nargs="*", type=int, metavar="ID")
    approve.add_argument("--all", action="store_true", help="every pending item (with --host: that host's)")
    approve.add_argument("--host", default="")
    approve.add_argument("--reason", default="")
    approve.set_defaults(func=run_approve)

    reject = subparsers.add_parser("reject", help="reject pending items: not asked again until a new version is wanted")
    reject.add_argument("ids", nargs="+", type=int, metavar="ID")
    reject.add_argument("--reason", required=True)
    reject.set_defaults(func=run_reject)


def run_list(args: argparse.Namespace) -> int:
    states = ("pending", "approved", "rejected", "expired", "closed") if args.all else ("pending",)
    with Store.open(state_dir()) as store:
        rows = store.approvals(states=states, host=args.host or None)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print("no pending approvals")
        return 0
    for r in rows:
        version = f" {r['wanted_version']}" if r["wanted_version"] else ""
        print(f"{r['id']:>5}  {r['host']:<14} {r['capability_id']}{version} ({r['manager']} {r['package']}), "
              f"risk {r['risk']}: {r['reason']} [{r['state']}, {r['plan_id']}, {r['created']}]")
    return 0


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run_approve(args: argparse.Namespace) -> int:
    with Store.open(state_dir()) as store:
        if args.all:
            ids = [int(a["id"]) for a in store.approvals(host=args.host or None)]
        elif args.ids:
            ids = list(args.ids)
        else:
            raise CyclotronError("name the approvals to approve (cyclotron approve ID...) or use --all [--host H]")
        done = store.decide(ids, "approved", by=_who(), reason=args.reason)
    return _report("approved", ids, done)


def run_reject(args: argparse.Namespace) -> int:
    with Store.open(state_dir()) as store:
        done = store.decide(list(args.ids), "rejected", by=_who(), reason=args.reason)
    return _report("rejected", list(args.ids), done)


def _report(verb: str, asked: list[int], done: list[int]) -> int:
    if done:
        print(f"{verb}: {', '.join(map(str, done))}")
    skipped = [i for i in asked if i not in done]
    if skipped:
        print(f"not pending (unknown or already decided): {', '.join(map(str, skipped))}")
        return 1
    return 0
