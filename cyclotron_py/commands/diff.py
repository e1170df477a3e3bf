"""`cyclotron diff A.json B.json`: what each of two hosts lacks (the original design's Task 2.1)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..compare import capability_matrix, dumps, gaps_from_matrix
from ..errors import ManifestError
from ..reports import render_gaps_text, render_markdown
from .matrix import add_common_options, emit, load_inputs


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="compare two manifests: gaps on each side, version drift, priorities",
        description="Compare two manifest files. JSON output follows the comparison schema (kind: gaps).",
    )
    parser.add_argument("a", metavar="A.json", help="first manifest")
    parser.add_argument("b", metavar="B.json", help="second manifest")
    parser.add_argument(
        "--format",
        choices=("json", "text", "markdown"),
        default="json",
        help="json (default, the Task 2.1 shape), text, or a Markdown report of the two hosts",
    )
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in (args.a, args.b):
        if Path(path).is_dir():
            raise ManifestError(f"{path}: diff compares two manifest files; use `cyclotron matrix DIR`")
    if Path(args.a).resolve() == Path(args.b).resolve():
        raise ManifestError(f"{args.a} is given twice; diff needs two different manifests")
    manifests, catalog, policies = load_inputs([args.a, args.b], args)
    matrix = capability_matrix(manifests, catalog=catalog, policies=policies)
    if args.format == "markdown":
        text = render_markdown(matrix)
    else:
        # pc_a/pc_b follow the command line order.
        gaps = gaps_from_matrix(matrix, manifests[0].host, manifests[1].host)
        text = dumps(gaps) if args.format == "json" else render_gaps_text(gaps)
    emit(text, args.output)
    return 0
