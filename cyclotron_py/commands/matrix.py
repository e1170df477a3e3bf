"""`cyclotron matrix`: the N-way capability matrix of every manifest given.

Also home of the options and helpers `diff` and `report` share: reading manifests, policy,
catalog overrides and domains, and writing output files only once they are complete.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..catalog import Catalog, load_catalog
from ..compare import HostRecord, capability_matrix, dump_utf8, dumps_utf8, gc_paused
from ..errors import CatalogError, CyclotronError, PolicyError
from ..fleet_load import load_records
from ..manifest_io import atomic_write_text, atomic_writer
from ..policy import parse_policy
from ..reports import render_matrix_table, use_color
from ..validate import load_domains

MAX_INPUT_BYTES = 10 * 1024 * 1024


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "matrix",
        help="compare any number of manifests: who has what, drift, what each host should get",
        description="Compare manifests N-way. PATH is a manifest file or a directory of <host>.json.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or directories")
    parser.add_argument("--json", action="store_true", help="print the matrix as JSON (comparison schema)")
    add_common_options(parser)
    parser.set_defaults(func=run, exit_when_done=True)  # cli.main: the process ends after the output


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="YAML/JSON mapping host -> cyclotron_policy ('all' applies to hosts without their own)",
    )
    parser.add_argument(
        "--catalog", metavar="FILE", help="catalog overrides (the cyclotron_catalog shape), YAML or JSON"
    )
    parser.add_argument("--domains", metavar="FILE", help="domains file (cyclotron_domains)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write FILE (atomically, once complete) instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    with gc_paused():  # see compare.gc_paused: no collection walks the fleet's records or matrix
        matrix = compute_matrix(args.paths, args)
        color = not args.output and use_color(sys.stdout)
        if args.json and args.output:
            write_json(Path(args.output), matrix)
        else:
            emit(dumps_utf8(matrix) if args.json else render_matrix_table(matrix, color=color), args.output)
    return 0


# --------------------------------------------------------------------------- shared helpers


def load_inputs(
    paths: Sequence[str], args: argparse.Namespace
) -> tuple[list[HostRecord], Catalog, dict[str, Any]]:
    """Validated manifests as host records (file order), the catalog with overrides, and each host's policy."""
    domains = load_domains(args.domains) if args.domains else None
    catalog = load_catalog_file(args.catalog, domains)
    manifests = load_records(list(paths), domains=catalog.domains, parallel=True)
    policy = read_policy_file(args.policy) if args.policy else None
    return manifests, catalog, policies_for(manifests, policy, domains=catalog.domains)


def compute_matrix(paths: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    manifests, catalog, policies = load_inputs(paths, args)
    return capability_matrix(manifests, catalog=catalog, policies=policies, parallel=True)


def _read_yaml(path: str, what: str) -> Any:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_INPUT_BYTES:
            raise CyclotronError(f"{path}: too large for a {what} file (over 10 MB)")
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CyclotronError(f"{path}: cannot read {what} file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CyclotronError(f"{path}: {what} file is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise CyclotronError(f"{path}: {what} file is not valid YAML/JSON{at}") from None


def load_catalog_file(path: str | None, domains: Mapping[str, str] | None) -> Catalog:
    if not path:
        return load_catalog(None, dict(domains) if domains else None)
    data = _read_yaml(path, "catalog")
    if isinstance(data, dict) and "cyclotron_catalog" in data:
        data = data["cyclotron_catalog"]
    try:
        return load_catalog(data, dict(domains) if domains else None)
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from None


def read_policy_file(path: str) -> dict[str, Any]:
    """``{host: policy}`` (``all`` = default), or a group_vars file holding ``cyclotron_policy``."""
    data = _read_yaml(path, "policy")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping of host names to cyclotron_policy mappings")
    if "cyclotron_policy" in data:
        return {"all": data["cyclotron_policy"]}
    return {str(k): v for k, v in data.items()}


def policies_for(
    manifests: Sequence[HostRecord],
    policy: Mapping[str, Any] | None,
    *,
    domains: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Each host's policy: its own entry, else ``all`` (Ansible's host-over-group precedence)."""
    if not policy:
        return {}
    hosts = {m.host for m in manifests}
    for name in sorted(set(policy) - hosts - {"all"}):
        print(f"cyclotron: warning: policy for {name}: no manifest for that host; ignored", file=sys.stderr)
    out: dict[str, Any] = {}
    for host in sorted(hosts):
        if host in policy:
            out[host] = policy[host]
        elif "all" in policy:
            out[host] = policy["all"]
    # Entries for unknown hosts are still checked, so a typo in them is not silently kept.
    for name, value in policy.items():
        if name not in hosts:
            parse_policy(value, host=name, domains=domains)
    return out


def emit(text: str | bytes, output: str | None) -> None:
    """Print, or write ``output`` atomically: a temp file in the same directory, then rename.
    ``bytes`` are UTF-8 text already (the JSON layouts write them as they are)."""
    if not output:
        try:
            buffer = getattr(sys.stdout, "buffer", None)
            if isinstance(text, bytes) and buffer is not None:
                sys.stdout.flush()
                buffer.write(text)
            elif isinstance(text, bytes):  # a text-only stdout (a test's capture)
                sys.stdout.write(text.decode("utf-8", "surrogatepass"))
            else:
                sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (head, a pager) went away: not an error. Keep Python quiet at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    write_atomic(Path(output), text)


def write_atomic(path: Path, text: str | bytes) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise CyclotronError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """``dumps(doc)`` into ``path`` atomically, written while it is laid out (large matrices)."""
    try:
        with atomic_writer(path) as write:
            dump_utf8(doc, write)
    except OSError as exc:
        raise CyclotronError(f"{path}: cannot write: {exc.strerror or exc}") from None


__all__ = [
    "add_common_options",
    "compute_matrix",
    "emit",
    "load_catalog_file",
    "load_inputs",
    "policies_for",
    "write_atomic",
    "write_json",
]
