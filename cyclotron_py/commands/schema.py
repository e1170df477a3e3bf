"""`cyclotron schema`: print the manifest JSON Schema."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..models import manifest_json_schema


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("schema", help="print the manifest JSON Schema")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(manifest_json_schema(), indent=2, sort_keys=True))
    return 0
