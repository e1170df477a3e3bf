"""`cyclotron exchange publish|fetch`: share manifests and status through a git repository."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..daemon import load_config
from ..errors import CyclotronError
from ..exchange.config import ExchangeSettings, default_host
from ..exchange.repo import ExchangeError, ExchangeRepo
from ..models import Manifest
from ..store import Store, state_dir, utc_now


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "exchange", help="share manifests and status through a git repository (machines that can't reach each other)",
        description="The exchange repository holds hosts/<host>/{manifest.json,status.json,STATUS.md} and "
        "CLUSTER_STATUS.md; each host writes only its own directory. Settings: exchange_git in config.yml.",
    )
    sub = parser.add_subparsers(dest="exchange_command", metavar="ACTION", required=True)
    pub = sub.add_parser("publish", help="commit this host's manifest and status if they changed, and push")
    _common(pub)
    pub.add_argument("--manifest", default="", help="the manifest to publish (default: the newest in the store)")
    pub.add_argument("--status", default="", help="a status.json to publish as is (default: built from the store)")
    pub.set_defaults(func=run_publish)
    fetch = sub.add_parser("fetch", help="copy every host's valid manifest out of the repository")
    _common(fetch)
    fetch.add_argument("--into", required=True, help="directory for <host>.json files")
    fetch.set_defaults(func=run_fetch)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default="", help="the exchange repository: a path, ssh:// or https:// URL "
                        "(default: exchange_git.repo in config.yml)")
    parser.add_argument("--host", default="", help="this machine's name (default: exchange_git.host, else hostname)")


def exchange_repo(args: argparse.Namespace, state: Path) -> tuple[ExchangeRepo, ExchangeSettings, float | None]:
    """The repository and settings from the command line and config.yml."""
    config = load_config(state)
    settings = config.exchange_git
    repo = ExchangeRepo(args.repo or settings.repo, state, args.host or settings.host or default_host(), settings)
    every = config.schedule.interval(utc_now()).total_seconds() if config.schedule else None
    return repo, settings, every


def load_manifest(path: str, host: str) -> Manifest:
    from ..validate import FileResult, format_report, validate_file

    manifest, problems = validate_file(path)
    if manifest is None:
        raise ExchangeError("the manifest to publish is invalid:\n"
                            + format_report([FileResult(path, None, problems)], color=False))
    if manifest.host != host:
        raise ExchangeError(f"{path}: the manifest is for host {manifest.host!r}, not {host!r}; "
                            f"pass --host {manifest.host} or the right file")
    return manifest


def load_status(path: str, host: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExchangeError(f"{path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("host", host) != host:
        raise ExchangeError(f"{path}: expected a JSON object for host {host!r} (status.json)")
    return {**data, "host": host}


def record(store: Store, kind: str, mode: str, repo: ExchangeRepo, status: str, message: str) -> int:
    run_id = store.start_run(kind, mode, inventory=repo.shown_url)
    store.record_exchange_events(run_id, repo.events)
    store.finish_run(run_id, status, 0, message=message)
    return run_id


def run_publish(args: argparse.Namespace) -> int:
    from ..exchange.publish import publish

    state = state_dir()
    repo, _, every = exchange_repo(args, state)
    with Store.open(state) as store:
        manifest = load_manifest(args.manifest, repo.host) if args.manifest else _stored_manifest(store, repo.host)
        status = load_status(args.status, repo.host) if args.status else None
        try:
            result = publish(repo, manifest=manifest, status=status, store=store, expected_every=every)
        except CyclotronError as exc:
            record(store, "publish", load_config(state).mode, repo, "failed", str(exc))
            raise
        ok = result.pushed or not result.unpushed
        record(store, "publish", load_config(state).mode, repo, "successful" if ok else "failed", result.message)
    print(f"{repo.host} -> {repo.shown_url}: {result.message}")
    return 0


def _stored_manifest(store: Store, host: str) -> Manifest | None:
    history = store.manifest_history(host, 1)
    return Manifest.model_validate(store.manifest_body(history[0]["id"])) if history else None


def run_fetch(args: argparse.Namespace) -> int:
    from ..exchange.publish import fetch_manifests

    state = state_dir()
    repo, _, _ = exchange_repo(args, state)
    hosts, problems, online = fetch_manifests(repo, Path(args.into))
    with Store.open(state) as store:
        store.record_exchange_events(None, repo.events)
    if not online:
        print(f"{repo.shown_url}: unreachable; using the copy fetched last")
    for problem in problems:
        print(f"skipped {problem}")
    print(f"{len(hosts)} manifest(s) into {args.into}: {', '.join(hosts) or 'none'}"
          + (f"; {len(problems)} refused" if problems else ""))
    return 0
