"""Publishing one host's manifest and status, and reading everyone's manifests out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..compare import capability_matrix, distribution_plan
from ..errors import ManifestError
from ..manifest_io import atomic_write_text, manifest_text
from ..models import Manifest
from ..store import Store, parse_iso, utc_now
from .inputs import ExchangeInputs, read_inputs
from .repo import (
    CLUSTER_FILE,
    ExchangeRepo,
    PublishResult,
    TreeContents,
    dumps,
    read_statuses,
    validated_manifests,
)
from .status import build_status, cluster_markdown, status_markdown

# Status fields that change on every publish without anything having happened (and the times of
# a gather or run that found the same): refreshed with the heartbeat, not committed each time.
_VOLATILE = ("heartbeat_at", "state")


_VOLATILE_PARTS = {"last_gather": ("at",), "last_run": ("id", "started", "finished")}


def _stable(status: Mapping[str, Any]) -> dict[str, Any]:
    """What a status says, without when: a run that ended the same way again is no news."""
    out = {k: v for k, v in status.items() if k not in _VOLATILE}
    for key, parts in _VOLATILE_PARTS.items():
        if isinstance(out.get(key), Mapping):
            out[key] = {k: v for k, v in out[key].items() if k not in parts}
    return out


def fleet_gaps(manifests: Mapping[str, Manifest]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Per host, what the others have that it lacks (the plan's candidates) and its coverage."""
    if not manifests:
        return {}, {}
    try:
        matrix = capability_matrix(list(manifests.values()))
    except ManifestError:
        return {}, {}
    return matrix_gaps(matrix)


def matrix_gaps(matrix: Mapping[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Per host, its gaps and coverage from a comparison already made (a pull's plan has one)."""
    gaps = {
        host: [{"id": r["id"], "reason": r["reason"], "version": r.get("version") or r.get("source_version"),
                "from_host": r["from_host"], "manager": r["manager"]} for r in recs]
        for host, recs in distribution_plan(matrix).items()
    }
    coverage = {h: float(c["percent"]) for h, c in (matrix.get("coverage") or {}).get("by_host", {}).items()}
    return gaps, coverage


@dataclass
class ExchangeRead:
    """The repository as one read saw it: reached or not, the tree at HEAD (the remote's branch
    with our unpushed commits on top), every valid manifest and a line per file refused."""

    online: bool
    contents: TreeContents
    manifests: dict[str, Manifest] = field(default_factory=dict)
    manifest_problems: list[str] = field(default_factory=list)
    # policy/ and catalog/ (when read with inputs=True)
    inputs: ExchangeInputs = field(default_factory=ExchangeInputs)

    @property
    def problems(self) -> list[str]:
        return [*self.contents.problems, *self.manifest_problems, *self.inputs.problems]

    def validate(self) -> None:
        """Every host's manifest through the validator (the CPU-heavy part of a read)."""
        self.manifests, self.manifest_problems = validated_manifests(self.contents)


def read_exchange(repo: ExchangeRepo, *, fetch: bool = True, validate: bool = True,
                  inputs: bool = False) -> ExchangeRead:
    """Fetch (unless the caller just did), bring the local branch onto the remote's and read the
    tree (with ``inputs``: policy/ and catalog/ too); the caller holds ``repo.opened()``.
    ``validate=False``: the caller calls ``validate()`` later (a pull, while its gather runs)."""
    online = repo.fetch() if fetch else repo.reachable
    if online:
        repo.integrate()
    read = ExchangeRead(online, repo.read_tree("HEAD", inputs=inputs))
    if inputs:
        read.inputs = read_inputs(read.contents.inputs)
    if validate:
        read.validate()
    return read


@dataclass
class _FleetView:
    """What the first pass learnt (everyone's gaps and coverage from the matrix, manifests that did
    not validate), reused when the cluster file is written again after a rebase: that must be quick,
    or the next push loses the race again."""

    gaps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def cluster(self, repo: ExchangeRepo, ours: Mapping[str, Any] | None, now: datetime) -> str:
        """CLUSTER_STATUS.md from the statuses at the work tree's HEAD plus ours (not yet committed)."""
        contents = repo.read_tree("HEAD", names=("status.json",))
        statuses, status_problems = read_statuses(contents)
        if ours is not None:
            statuses[repo.host] = dict(ours)
        rows = [{**s, "gaps": self.gaps.get(h, s.get("gaps") or []),
                 "coverage": self.coverage.get(h, s.get("coverage"))} for h, s in statuses.items()]
        return cluster_markdown(rows, problems=[*contents.problems, *self.problems, *status_problems], now=now)


def _unchanged(old: Mapping[str, Any] | None, new: Mapping[str, Any], heartbeat_every: float, now: datetime) -> bool:
    """The status says nothing new, and its heartbeat is recent enough to keep."""
    if old is None:
        return False
    if _stable(old) != _stable(new):
        return False
    try:
        return now - parse_iso(str(old.get("heartbeat_at"))) < timedelta(seconds=heartbeat_every)
    except ValueError:
        return False


def publish(
    repo: ExchangeRepo,
    *,
    manifest: Manifest | None,
    status: Mapping[str, Any] | None = None,
    store: Store | None = None,
    phase: str = "idle",
    expected_every: float | None = None,
    now: datetime | None = None,
    fetch: bool = True,
    read: ExchangeRead | None = None,
    fleet: tuple[dict[str, list[dict[str, Any]]], dict[str, float]] | None = None,
) -> PublishResult:
    """Write hosts/<host>/ (manifest.json, status.json, STATUS.md) and CLUSTER_STATUS.md, commit
    only if something changed, and push (see ExchangeRepo.push). Never raises for an unreachable
    remote: the result says how many commits wait and since when. ``fetch=False``: the caller
    has just fetched (pull); the push still fetches again before it pushes anything. A pull at
    parity passes what it has already read (``read``) and its comparison's gaps and coverage
    (``fleet``, from :func:`matrix_gaps`), so neither is done twice."""
    stamp = now or utc_now()
    host = repo.host
    with repo.opened():
        if read is None:
            read = read_exchange(repo, fetch=fetch)
        online = read.online
        manifests = dict(read.manifests)
        statuses, _ = read_statuses(read.contents)
        old_manifest = manifests.get(host)
        if manifest is not None:
            manifests[host] = manifest
        current = manifest or old_manifest
        gaps, coverage = fleet if fleet is not None else fleet_gaps(manifests)
        view = _FleetView(gaps, coverage, read.manifest_problems)
        if status is None:
            document = current.model_dump(mode="json") if current else None
            status = build_status(host, manifest=document, store=store, phase=phase, gaps=gaps.get(host, []),
                                  coverage=coverage.get(host), expected_every=expected_every, now=stamp)
        files: dict[str, str] = {}
        if manifest is not None and (old_manifest is None or _content(old_manifest) != _content(manifest)):
            files[f"hosts/{host}/manifest.json"] = manifest_text(manifest)
        if files or not _unchanged(statuses.get(host), status, repo.settings.heartbeat_every, stamp):
            files[f"hosts/{host}/status.json"] = dumps(status)
            files[f"hosts/{host}/STATUS.md"] = status_markdown(status, stamp)
            files[CLUSTER_FILE] = view.cluster(repo, status, stamp)
        committed = False
        if files:
            repo.write(files)
            what = "manifest and status" if f"hosts/{host}/manifest.json" in files else "status"
            committed = repo.commit(f"{host}: {what} ({status.get('state', '')})")
        if online:
            result = repo.push(refresh=lambda: _refresh_cluster(repo, view, stamp))
        else:
            result = PublishResult(reachable=False, outcome="offline")
            result.unpushed, result.unpushed_since = repo.unpushed()
        result.committed = committed
        result.message = describe(result)
        repo.event("publish", result.outcome or "done", result.message, result.attempts)
        return result


def _content(manifest: Manifest) -> dict[str, Any]:
    return {k: v for k, v in manifest.model_dump(mode="json").items() if k != "gathered_at"}


def _refresh_cluster(repo: ExchangeRepo, view: _FleetView, now: datetime) -> None:
    """After a rebase onto others' commits: the cluster file again, folded into our unpushed commit."""
    text = view.cluster(repo, None, now)
    repo.write({CLUSTER_FILE: text})
    repo.git("add", "--", CLUSTER_FILE)
    if not repo.git.ok("diff", "--cached", "--quiet"):
        repo.git("commit", "--quiet", "--no-verify", "--amend", "--no-edit")


def describe(result: PublishResult) -> str:
    if result.pushed:
        retries = result.attempts - 1
        return "pushed" + (f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else "")
    if result.unpushed:
        why = "remote unreachable" if not result.reachable else "the remote kept rejecting the push"
        return f"{result.unpushed} unpushed since {result.unpushed_since} ({why}; the next publish pushes them)"
    return "up to date: nothing new to publish"


def fetch_manifests(repo: ExchangeRepo, into: Path, *, skip: str = "") -> tuple[list[str], list[str], bool]:
    """Copy every host's valid manifest to ``into/<host>.json``, and the exchange's valid policies and
    catalog extension to ``into/policy.yml`` and ``into/catalog.yml``; (hosts written, problems,
    remote reached). Offline, the last fetched copy is used."""
    with repo.opened():
        online = repo.fetch()
        contents = repo.read_tree(repo.remote_ref, inputs=True)
        manifests, problems = validated_manifests(contents, skip=skip)
        inputs = read_inputs(contents.inputs)
        problems = [*contents.problems, *problems, *inputs.problems]
        write_manifests(manifests, into)
        for old in ("policy.yml", "catalog.yml"):  # only this fetch's
            (into / old).unlink(missing_ok=True)
        for path in inputs.write(into):
            repo.event("fetch-input", "ok", f"{', '.join(inputs.used)} -> {path.name}")
        for problem in problems:
            repo.event("fetch-manifest", "refused", problem)
        return sorted(manifests), problems, online


def write_manifests(manifests: Mapping[str, Manifest], into: Path, *, skip: str = "") -> list[str]:
    """``into/<host>.json`` for each manifest but ``skip``'s; the hosts written."""
    into.mkdir(parents=True, exist_ok=True)
    for host, manifest in manifests.items():
        if host != skip:
            atomic_write_text(into / f"{host}.json", manifest_text(manifest))
    return sorted(h for h in manifests if h != skip)
