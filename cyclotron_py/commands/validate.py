"""`cyclotron validate FILE_OR_DIR...`: check manifests and report each problem with a fix.

Exit status (the same scheme as every command, see cyclotron_py.cli): 0 when every manifest is
valid (warnings allowed), 1 when any has an error or there is nothing to read (a path that does
not exist, a directory without manifests, an unreadable domains file), 2 for a command line
argparse rejects.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..models import DEFAULT_DOMAINS
from ..validate import expand_paths, format_report, load_domains, validate_paths


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check manifests: schema, domains, ids, versions, package names, secrets",
        description=(
            "Validate capability manifests. Directories expand to the *.json files in them. "
            f"Known domains unless --domains is given: {', '.join(DEFAULT_DOMAINS)}."
        ),
        epilog="exit status: 0 all valid (warnings allowed); 1 a manifest has errors, or bad input "
        "(no such path, no manifests, unreadable --domains); 2 invalid command line",
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="manifest files or directories")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="report format (default: text)"
    )
    parser.add_argument(
        "--domains",
        metavar="FILE.yml",
        help="YAML with the fleet's domains: {name: description}, a list, or cyclotron_domains: ...",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Bad input raises CyclotronError: the CLI prints it and exits 1, as every command does.
    domains = load_domains(args.domains) if args.domains else None
    paths = expand_paths(args.paths)
    results = validate_paths(paths, domains=domains)
    color = args.format == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(format_report(results, color=color, fmt=args.format))
    return 0 if all(result.valid for result in results) else 1
