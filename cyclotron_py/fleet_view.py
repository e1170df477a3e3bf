"""The read side over the store and the manifests: what `cyclotron status/history` print and what
the dashboard (``cyclotron_py.web``) shows, computed once here.

- :class:`FleetView` turns the newest manifest of every host (the store's snapshots, else a
  manifests directory) into the N-way matrix with the compare engine, once per change of its
  inputs (the cache key is the snapshot ids, or the files' names, sizes and mtimes), and lays it
  out as a grid: one cell per host and capability with a state and a text label.
- Runs: per-host outcome counts ("2 ok · 1 failed · 1 unreachable"), a run's detail with its item
  outcomes and its raw output (lines that look like a secret withheld), pages of history.
- Hosts: OS, last gather, source errors and what changed between stored manifests.

Everything here only reads; approvals are written through ``Store.decide`` as the CLI does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from .catalog import Catalog
from .compare import HostRecord, capability_matrix
from .daemon import Config, heartbeat_interval, next_due
from .fleet_load import Loader
from .secrets import secret_kind
from .store import Store, iso, parse_iso, utc_now

# Cell states, in the order a legend lists them; each has a text label besides its colour.
CELL_STATES: Final = ("present", "missing", "drift", "unportable", "excluded", "awaiting", "failed", "ignored")
CELL_TITLES: Final = {
    "present": "present",
    "missing": "missing",
    "drift": "version drift",
    "unportable": "unportable",
    "excluded": "excluded by policy",
    "awaiting": "awaiting approval",
    "failed": "failed in the last run",
    "ignored": "ignored by policy",
}
# Host statuses of a run as the counts name them ("complete" hosts are the "ok" ones).
_COUNT_LABELS: Final = (
    ("complete", "ok"),
    ("ok", "ok"),
    ("in progress", "in progress"),
    ("pending", "pending"),
    ("failed", "failed"),
    ("unreachable", "unreachable"),
    ("abandoned", "abandoned"),
)
_FAILED_OUTCOMES: Final = ("failed", "failed-rolled-back")
MAX_PER_PAGE: Final = 500
RAW_OUTPUT_LIMIT: Final = 256 * 1024


# --------------------------------------------------------------------------- status


def status_document(store: Store, config: Config | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """The status document (`cyclotron status` and the dashboard): heartbeat flagged stale past twice the schedule's
    interval, current run with progress, last run with per-host counts, next due time, approvals, hosts."""
    now = now or utc_now()
    config = config or Config()
    interval = heartbeat_interval(config, now)
    beat = store.heartbeat()
    heartbeat: dict[str, Any] | None = None
    if beat:
        age = (now - parse_iso(beat["at"])).total_seconds()
        stale = interval is not None and age > 2 * interval.total_seconds()
        heartbeat = {**beat, "age_seconds": int(age), "stale": stale}
    due = next_due(store, config, now)
    current = store.current_run()
    if current:
        current["hosts"] = store.host_outcomes(current["id"])
    last = store.last_run()
    if last:
        last["hosts"] = store.host_outcomes(last["id"])
    hosts: dict[str, dict[str, Any]] = {h: {"last_gathered": at} for h, at in store.last_gathered().items()}
    for run in store.runs(limit=50):
        for outcome in store.host_outcomes(run["id"]):
            if outcome["host"] == "localhost" and "localhost" not in hosts:
                continue  # the controller's plan/report plays, not a fleet host (unless it was gathered)
            entry = hosts.setdefault(outcome["host"], {"last_gathered": None})
            entry.setdefault("last_outcome", {"run_id": run["id"], "status": outcome["status"],
                                              "error": outcome["error"]})
    return {
        "schedule": config.schedule.model_dump(exclude_none=True) if config.schedule else None,
        "mode": config.mode,
        "next_due": iso(due) if due else None,
        "heartbeat": heartbeat,
        "current_run": current,
        "last_run": last,
        "pending_approvals": store.approvals(),
        "hosts": hosts,
    }


# --------------------------------------------------------------------------- runs


def host_counts(hosts: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Hosts of one run counted by outcome: ``{"ok": 2, "failed": 1, "unreachable": 1}``."""
    labels = dict(_COUNT_LABELS)
    counts: dict[str, int] = {}
    for h in hosts:
        label = labels.get(str(h.get("status", "")), str(h.get("status", "")))
        counts[label] = counts.get(label, 0) + 1
    order = [label for _, label in _COUNT_LABELS]
    return dict(sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def counts_text(counts: Mapping[str, int]) -> str:
    return " · ".join(f"{n} {label}" for label, n in counts.items()) or "no hosts"


def with_hosts(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    """A run row with its hosts' progress and their outcome counts."""
    hosts = store.host_outcomes(run["id"])
    counts = host_counts(hosts)
    return {**run, "hosts": hosts, "host_counts": counts, "host_counts_text": counts_text(counts)}


def runs_page(store: Store, *, page: int = 1, per_page: int = 20, host: str | None = None) -> dict[str, Any]:
    total = store.count_runs()
    runs = store.runs(limit=per_page, offset=(page - 1) * per_page, host=host)
    return {
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": max(1, -(-total // per_page)),
        "runs": [with_hosts(store, r) for r in runs],
    }


def run_detail(store: Store, run_id: int, *, raw: bool = True) -> dict[str, Any] | None:
    """A run with its hosts, item outcomes and (``raw``) the playbook's output, or None."""
    run = store.run(run_id)
    if run is None:
        return None
    detail = with_hosts(store, run)
    detail["items"] = store.item_outcomes(run_id)
    if raw:
        detail["raw_output"] = raw_output(run.get("data_dir") or "")
    return detail


def raw_output(data_dir: str) -> str:
    """The run's stdout as ansible-runner kept it (the tail, when long), with any line that looks
    like a secret withheld. Empty when the run dir was rotated away."""
    if not data_dir:
        return ""
    files = sorted(Path(data_dir).glob("artifacts/*/stdout"), key=lambda p: p.stat().st_mtime)
    if not files:
        return ""
    try:
        with files[-1].open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - RAW_OUTPUT_LIMIT))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = []
    for line in text.splitlines():
        kind = secret_kind(line)
        lines.append(f"[line withheld: it looks like {kind}]" if kind else _strip_ansi(line))
    return "\n".join(lines)


def _strip_ansi(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\x1b" and i + 1 < len(line) and line[i + 1] == "[":
            j = i + 2
            while j < len(line) and not line[j].isalpha():
                j += 1
            i = j + 1
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def last_failures(store: Store) -> dict[tuple[str, str], str]:
    """``(host, capability id) -> reason`` for items that failed in the last finished sync run."""
    finished = [r for r in store.runs(limit=10) if r["status"] not in ("running", "missed") and r["kind"] == "sync"]
    if not finished:
        return {}
    return {
        (i["host"], i["capability_id"]): i["reason"] or i["outcome"]
        for i in store.item_outcomes(finished[0]["id"])
        if i["outcome"] in _FAILED_OUTCOMES
    }


def pending_by_item(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["host"], a["capability_id"]): a for a in store.approvals()}


# --------------------------------------------------------------------------- hosts


def host_detail(store: Store, host: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
    """OS, last gather, source errors (from the newest manifest ``body``) and manifest history."""
    body = body or {}
    return {
        "host": host,
        "os": body.get("os") or {},
        "managers": list(body.get("managers") or []),
        "capabilities": len(body.get("capabilities") or []),
        "last_gathered": store.last_gathered().get(host) or body.get("gathered_at"),
        "errors": list(body.get("errors") or []),
        "snapshots": store.manifest_history(host),
        "changes": store.host_changes(host),
        "runs": [with_hosts(store, r) for r in store.runs(limit=10, host=host)],
    }


# --------------------------------------------------------------------------- the grid


@dataclass
class Grid:
    """One computed comparison: the matrix plus the lookups a cell needs."""

    key: Any
    source: str
    matrix: dict[str, Any]
    bodies: dict[str, dict[str, Any]]
    invalid: list[str]
    order: list[str] = field(default_factory=list)  # capability ids: domain order, then id
    unportable: dict[tuple[str, str], str] = field(default_factory=dict)
    excluded: dict[tuple[str, str], str] = field(default_factory=dict)
    latest: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def build(cls, key: Any, source: str, records: list[HostRecord], bodies: dict[str, dict[str, Any]],
              invalid: list[str], catalog: Catalog | None, policies: Mapping[str, Any] | None) -> Grid:
        if records:
            known = {r.host for r in records}
            matrix = capability_matrix(records, catalog=catalog,
                                       policies={h: p for h, p in (policies or {}).items() if h in known})
        else:
            matrix = _empty_matrix()
        grid = cls(key, source, matrix, bodies, invalid)
        rank = {d: i for i, d in enumerate(matrix["domains"])}
        rows = matrix["capabilities"]
        grid.order = sorted(rows, key=lambda cid: (rank.get(rows[cid]["domain"], len(rank)), cid))
        for label, target in (("unportable", grid.unportable), ("policy_excluded", grid.excluded)):
            for to_host, items in matrix[label].items():
                for item in items:
                    target.setdefault((to_host[3:], item["id"]), item["reason"])
        for entry in matrix["version_drift"]:
            grid.latest[entry["id"]] = (entry["latest"], frozenset(entry["latest_hosts"]))
        return grid

    def cell(self, cid: str, row: Mapping[str, Any], host: str, overlay: Overlay) -> dict[str, Any]:
        """The state of one capability on one host, with its text label."""
        failed = overlay.failed.get((host, cid))
        if failed is not None:
            return {"state": "failed", "label": f"failed: {failed}"}
        approval = overlay.awaiting.get((host, cid))
        if approval is not None:
            return {"state": "awaiting", "label": f"awaiting approval ({approval.get('risk') or '?'} risk)",
                    "approval_id": approval["id"]}
        versions = row["versions"]
        if host in versions:
            version = versions[host]
            latest = self.latest.get(cid)
            if row["drift"] and latest is not None and host not in latest[1]:
                return {"state": "drift", "label": f"drift {version or '?'} → {latest[0]}",
                        "version": version, "latest": latest[0]}
            return {"state": "present", "label": f"present {version}" if version else "present", "version": version}
        if host in row["ignored"]:
            return {"state": "ignored", "label": "ignored by policy"}
        reason = self.excluded.get((host, cid))
        if reason is not None or host in row["excluded"]:
            return {"state": "excluded", "label": f"excluded by policy: {reason or ''}".rstrip(": ")}
        reason = self.unportable.get((host, cid))
        if reason is not None:
            return {"state": "unportable", "label": f"unportable: {reason}"}
        return {"state": "missing", "label": "missing"}


@dataclass
class Overlay:
    """What the store adds to the comparison: pending approvals and the last run's failures."""

    awaiting: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def read(cls, store: Store) -> Overlay:
        return cls(pending_by_item(store), last_failures(store))

    def capabilities(self) -> set[str]:
        return {cid for _, cid in self.awaiting} | {cid for _, cid in self.failed}


@dataclass(frozen=True)
class MatrixQuery:
    domain: str = ""
    type: str = ""
    host: str = ""
    q: str = ""
    gaps_only: bool = True
    page: int = 1
    per_page: int = 50


class FleetView:
    """The fleet as the dashboard shows it, recomputed only when its inputs change.

    ``manifests_dir`` is the fallback source when the store holds no manifest snapshot. Which
    snapshots or files there are is looked up again when another connection wrote the store
    (SQLite's data_version) or ``rescan_seconds`` have passed, not on every request.
    """

    rescan_seconds = 1.0

    def __init__(self, store: Store, *, manifests_dir: Path | None = None, catalog: Catalog | None = None,
                 policies: Mapping[str, Any] | None = None,
                 policy_for: Callable[[Sequence[HostRecord]], Mapping[str, Any]] | None = None) -> None:
        self.store = store
        self.manifests_dir = manifests_dir
        self.catalog = catalog
        self.policies = policies
        self.policy_for = policy_for
        self._grid: Grid | None = None
        self._lock = threading.Lock()
        self._seen: tuple[int, float, tuple[str, Any]] | None = None

    # ----------------------------------------------------------------- sources

    def _source_key(self) -> tuple[str, Any]:
        version, now = self.store.data_version, time.monotonic()
        seen = self._seen
        if seen is not None and seen[0] == version and now - seen[1] < self.rescan_seconds:
            return seen[2]
        key = self._scan()
        self._seen = (version, now, key)
        return key

    def _scan(self) -> tuple[str, Any]:
        snapshots = self.store.latest_manifests()
        if snapshots:
            return "store", tuple(sorted(snapshots.items()))
        if self.manifests_dir is not None and self.manifests_dir.is_dir():
            files = []
            for entry in sorted(os.scandir(self.manifests_dir), key=lambda e: e.name):
                if entry.name.endswith(".json") and entry.is_file():
                    st = entry.stat()
                    files.append((entry.name, st.st_size, st.st_mtime_ns))
            return f"manifest files in {self.manifests_dir}", tuple(files)
        return "none", ()

    def grid(self) -> Grid:
        """The current comparison (computed again only when a snapshot or manifest file changed)."""
        source, key = self._source_key()
        grid = self._grid
        if grid is not None and grid.key == (source, key):
            return grid
        with self._lock:
            if self._grid is not None and self._grid.key == (source, key):
                return self._grid
            self._grid = self._compute(source, key)
            return self._grid

    def _compute(self, source: str, key: Any) -> Grid:
        loader = Loader(self.catalog.domains if self.catalog else None)
        records: list[HostRecord] = []
        bodies: dict[str, dict[str, Any]] = {}
        invalid: list[str] = []
        if source == "store":
            for host, snapshot_id in key:
                body = self.store.manifest_body(snapshot_id)
                record, result = loader.load_document(body, file=f"store snapshot {snapshot_id} ({host})",
                                                      expected_host=host)
                self._keep(record, result.file, body, records, bodies, invalid)
        elif key:
            assert self.manifests_dir is not None
            for name, _, _ in key:
                path = self.manifests_dir / name
                record, result = loader.load_file(path)
                body = _read_json(path) if record is not None else {}
                self._keep(record, result.file, body, records, bodies, invalid)
        policies = self.policy_for(records) if self.policy_for else self.policies
        return Grid.build((source, key), source, records, bodies, invalid, self.catalog, policies)

    @staticmethod
    def _keep(record: HostRecord | None, file: str, body: dict[str, Any], records: list[HostRecord],
              bodies: dict[str, dict[str, Any]], invalid: list[str]) -> None:
        if record is None or record.host in bodies:
            invalid.append(file)
            return
        records.append(record)
        bodies[record.host] = body

    # ----------------------------------------------------------------- views

    def matrix_page(self, query: MatrixQuery) -> dict[str, Any]:
        """One page of grid rows for the filters in ``query`` (rows are never all laid out)."""
        grid = self.grid()
        overlay = Overlay.read(self.store)
        matrix = grid.matrix
        hosts = [h for h in matrix["hosts"] if not query.host or h == query.host]
        rows = matrix["capabilities"]
        flagged = overlay.capabilities()
        needle = query.q.casefold()
        selected = []
        for cid in grid.order:
            row = rows[cid]
            if query.domain and row["domain"] != query.domain:
                continue
            if query.type and row["type"] != query.type:
                continue
            if needle and needle not in cid.casefold() and needle not in row["name"].casefold():
                continue
            if query.gaps_only and not _has_gap(grid, cid, row, hosts, flagged, overlay):
                continue
            selected.append(cid)
        total = len(selected)
        pages = max(1, -(-total // query.per_page))
        start = (query.page - 1) * query.per_page
        page_rows = []
        for cid in selected[start:start + query.per_page]:
            row = rows[cid]
            page_rows.append({
                "id": cid,
                "name": row["name"],
                "type": row["type"],
                "domain": row["domain"],
                "coverage": row["coverage"],
                "cells": {h: grid.cell(cid, row, h, overlay) for h in hosts},
            })
        coverage = matrix["coverage"]
        return {
            "source": grid.source,
            "hosts": hosts,
            "domains": matrix["domains"],
            "types": sorted({r["type"] for r in rows.values()}),
            "filters": {"domain": query.domain, "type": query.type, "host": query.host, "q": query.q,
                        "gaps_only": query.gaps_only},
            "page": query.page,
            "per_page": query.per_page,
            "pages": pages,
            "total_rows": total,
            "rows": page_rows,
            "coverage": {
                "overall": coverage["overall"],
                "by_host": {h: coverage["by_host"][h] for h in hosts},
                "by_domain": coverage["by_domain"],
            },
        }

    def host_body(self, host: str) -> dict[str, Any] | None:
        return self.grid().bodies.get(host)

    def fleet_summary(self, status: Mapping[str, Any]) -> dict[str, Any]:
        """``/api/fleet``: hosts with OS, coverage, gaps and last gather; coverage; runs; heartbeat."""
        grid = self.grid()
        matrix = grid.matrix
        gaps = {h: 0 for h in matrix["hosts"]}
        for row in matrix["capabilities"].values():
            for h in row["missing"]:
                gaps[h] += 1
        hosts = {}
        for h in matrix["hosts"]:
            info = matrix["host_info"][h]
            extra = status.get("hosts", {}).get(h, {})
            hosts[h] = {
                "os": info["os"],
                "distribution": info["distribution"],
                "capabilities": info["capabilities"],
                "gathered_at": info["gathered_at"],
                "coverage": matrix["coverage"]["by_host"][h],
                "gaps": gaps[h],
                "unportable": len(matrix["unportable"].get(f"to_{h}", [])),
                "recommended": len(matrix["recommended_distribution"].get(f"to_{h}", [])),
                "source_errors": len((grid.bodies.get(h) or {}).get("errors") or []),
                "last_outcome": extra.get("last_outcome"),
            }
        current, last = status.get("current_run"), status.get("last_run")
        return {
            "source": grid.source,
            "invalid_manifests": grid.invalid,
            "hosts": hosts,
            "coverage": matrix["coverage"],
            "summary": matrix["summary"],
            "gaps": sum(gaps.values()),
            "current_run": _run_brief(current),
            "last_run": _run_brief(last),
            "heartbeat": status.get("heartbeat"),
            "next_due": status.get("next_due"),
            "pending_approvals": len(status.get("pending_approvals") or []),
        }


def _run_brief(run: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not run:
        return None
    hosts = run.get("hosts") or []
    counts = host_counts(hosts)
    keep = ("id", "kind", "mode", "status", "started", "finished", "rc", "items_total", "items_done", "items_failed")
    return {**{k: run.get(k) for k in keep}, "host_counts": counts, "host_counts_text": counts_text(counts),
            "hosts": [{k: h[k] for k in ("host", "status", "items_done", "items_total", "current_task", "error")}
                      for h in hosts]}


def _has_gap(grid: Grid, cid: str, row: Mapping[str, Any], hosts: Sequence[str], flagged: set[str],
             overlay: Overlay) -> bool:
    if len(hosts) == len(grid.matrix["hosts"]):
        return bool(row["missing"]) or row["drift"] or cid in flagged
    return any(grid.cell(cid, row, h, overlay)["state"] not in ("present", "ignored") for h in hosts)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _empty_matrix() -> dict[str, Any]:
    empty = {"present": 0, "total": 0, "percent": 100.0}
    return {
        "hosts": [], "host_info": {}, "domains": [], "capabilities": {}, "version_drift": [],
        "unportable": {}, "policy_excluded": {}, "recommended_distribution": {},
        "coverage": {"overall": empty, "by_host": {}, "by_domain": {}},
        "summary": {"hosts": 0, "capabilities": 0, "universal": 0, "partial": 0, "unique": 0, "drifted": 0,
                    "recommendations": 0, "unportable": 0, "excluded": 0},
    }


__all__ = [
    "CELL_STATES",
    "CELL_TITLES",
    "FleetView",
    "Grid",
    "MatrixQuery",
    "Overlay",
    "counts_text",
    "host_counts",
    "host_detail",
    "run_detail",
    "runs_page",
    "status_document",
    "with_hosts",
]
