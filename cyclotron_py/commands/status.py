"""`cyclotron status`: heartbeat, current and last run, pending approvals, per-host last gather."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..daemon import load_config
from ..fleet_view import status_document
from ..store import Store, state_dir


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="heartbeat, current/last run, pending approvals, hosts")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = state_dir()
    config = load_config(state)
    with Store.open(state) as store:
        doc = status_document(store, config)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return 0
    beat = doc["heartbeat"]
    print("heartbeat: " + (f"{beat['at']} ({beat['age_seconds']} s ago{', STALE' if beat['stale'] else ''})"
                           if beat else "none yet"))
    for label in ("current_run", "last_run"):
        run_row = doc[label]
        if not run_row:
            print(f"{label.replace('_', ' ')}: none")
            continue
        print(f"{label.replace('_', ' ')}: {run_row['id']} {run_row['kind']} ({run_row['mode']}) {run_row['status']}, "
              f"started {run_row['started']}" + (f", rc {run_row['rc']}" if run_row["rc"] is not None else ""))
        for h in run_row["hosts"]:
            print(f"    {h['host']}: {h['status']} · {h['ok']} ok · {h['changed']} changed · {h['failed']} failed · "
                  f"{h['unreachable']} unreachable · items {h['items_done']}/{h['items_total']}"
                  + (f" · {h['error']}" if h["error"] else ""))
    schedule = doc["schedule"]
    print(f"schedule: {', '.join(f'{k} {v}' for k, v in schedule.items()) if schedule else 'none'} ({doc['mode']}); "
          f"next due: {doc['next_due'] or '-'}")
    pending = doc["pending_approvals"]
    print(f"pending approvals: {len(pending)}" + (" (cyclotron approve ID... | cyclotron reject ID... --reason TEXT)"
                                                   if pending else ""))
    for a in pending[:20]:
        wanted = f" {a['wanted_version']}" if a["wanted_version"] else ""
        print(f"  {a['id']:>5}  {a['host']}  {a['capability_id']}{wanted} ({a['risk'] or '?'} risk)")
    if len(pending) > 20:
        print(f"  ... {len(pending) - 20} more: cyclotron approvals")
    for host, info in sorted(doc["hosts"].items()):
        last = info.get("last_outcome") or {}
        print(f"  {host}: last gathered {info.get('last_gathered') or 'never'}; last outcome {last.get('status', '-')}")
    return 0
