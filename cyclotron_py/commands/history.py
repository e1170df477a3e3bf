"""`cyclotron history`: runs, and for a host what changed between stored manifests."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..fleet_view import with_hosts
from ..store import Store, state_dir


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("history", help="past runs; with --host, what changed on that host")
    parser.add_argument("--host", default="")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    sub = parser.add_subparsers(dest="history_command", metavar="ACTION")
    prune = sub.add_parser("prune", help="delete old runs (keep N / D days), then VACUUM")
    prune.add_argument("--keep", type=int, default=None, help="runs to keep")
    prune.add_argument("--days", type=int, default=None, help="keep runs newer than this many days")
    prune.set_defaults(func=run_prune)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with Store.open(state_dir()) as store:
        runs = [with_hosts(store, r) for r in store.runs(limit=args.limit, host=args.host or None)]
        changes = store.host_changes(args.host, args.limit) if args.host else []
    if args.json:
        print(json.dumps({"runs": runs, "changes": changes}, indent=2, sort_keys=True))
        return 0
    for r in runs:
        print(f"{r['id']:>5}  {r['started']}  {r['kind']:<6} {r['mode']:<9} {r['status']:<10} "
              f"rc {r['rc'] if r['rc'] is not None else '-'}  {r['host_counts_text']}")
    for c in changes:
        versions = "; ".join(f"{d['direction']} {d['id']} {d['from']} -> {d['to']}" for d in c["changed"])
        print(f"{args.host} {c['gathered_at']}: +{len(c['added'])} -{len(c['removed'])} ~{len(c['changed'])}"
              + (f"  added {', '.join(c['added'])}" if c["added"] else "")
              + (f"  removed {', '.join(c['removed'])}" if c["removed"] else "")
              + (f"  {versions}" if versions else ""))
    if not runs and not changes:
        print("no runs recorded yet")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    if args.keep is None and args.days is None:
        args.keep = 100
    with Store.open(state_dir()) as store:
        removed = store.prune(keep_runs=args.keep, keep_days=args.days)
    print(f"pruned {removed} run(s)")
    return 0
