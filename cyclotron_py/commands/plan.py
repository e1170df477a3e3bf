"""`cyclotron plan MANIFESTS...`: write the distribution plan and its generated playbook."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from ..catalog import load_catalog
from ..compare import gc_paused
from ..errors import PolicyError
from ..plan import APPROVAL_MODES, write_plan
from ..sync import collect_manifests, plan_fleet, plan_summary
from ..validate import expand_paths


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="plan what each host receives; write plans/<id>.json and generated/<id>.yml",
        description="Compare manifests and write the distribution plan plus a playbook that applies it.",
    )
    parser.add_argument("manifests", nargs="+", help="manifest files or directories of <host>.json files")
    parser.add_argument("--approve", choices=APPROVAL_MODES, default="low-risk",
                        help="which risk levels to install (default: low-risk; the rest await approval)")
    parser.add_argument("--policy", metavar="FILE", help="YAML mapping of host -> cyclotron_policy")
    parser.add_argument("--hosts", metavar="H1,H2", help="plan installs only for these hosts")
    parser.add_argument("--out", metavar="DIR", default=".", help="directory holding plans/ and generated/")
    parser.add_argument("--check", action="store_true", help="print what would be installed where; write nothing")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=run, exit_when_done=True)  # cli.main: the process ends after the output


def _policies(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping of host name -> policy")
    return data


def run(args: argparse.Namespace) -> int:
    with gc_paused():  # see compare.gc_paused: no collection walks the fleet's records, matrix or plan
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    manifests = []
    for source in args.manifests:
        expand_paths(source)  # ManifestError for no such path or a directory without manifests
        manifests.extend(collect_manifests({}, source, parallel=True))
    targets = args.hosts.split(",") if args.hosts else None
    plan, _ = plan_fleet(
        manifests, targets=targets, catalog=catalog, policies=_policies(args.policy), approve=args.approve,
        parallel=True,
    )
    def show() -> None:
        if args.json:
            print(json.dumps(plan.model_dump(mode="json"), indent=2))
        else:
            print("\n".join(plan_summary(plan)))

    if args.check:
        show()
        return 0
    out = Path(args.out)
    # Shown while a forked child writes the playbook; a failed write still exits non-zero.
    plan_path, playbook_path = write_plan(plan, out / "plans", out / "generated", parallel=True, meanwhile=show)
    if not args.json:
        print(f"wrote {plan_path} and {playbook_path}")
    return 0
