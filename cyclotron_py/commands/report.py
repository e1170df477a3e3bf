"""`cyclotron report`: the inventory report (terminal), a Markdown diff report, or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..compare import gc_paused
from ..reports import render, use_color
from .matrix import add_common_options, compute_matrix, emit


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="capability inventory across hosts: terminal text, Markdown or JSON",
        description="Report on manifests. PATH is a manifest file or a directory of <host>.json.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or directories")
    parser.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text", help="report format (default: text)"
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text report: auto = only on a terminal and when NO_COLOR is unset",
    )
    add_common_options(parser)
    parser.set_defaults(func=run, exit_when_done=True)  # cli.main: the process ends after the output


def run(args: argparse.Namespace) -> int:
    with gc_paused():  # see compare.gc_paused
        matrix = compute_matrix(args.paths, args)
        color = args.color == "always" or (args.color == "auto" and not args.output and use_color(sys.stdout))
        emit(render(matrix, args.format, color=color), args.output)
    return 0
