"""The sync run's controller-side stages: plan the fleet, then report before/after.

Used by the ``cyclotron_plan`` / ``cyclotron_sync_report`` action plugins of
``playbooks/sync.yml`` and by ``cyclotron plan``; the comparison itself lives in
cyclotron_py.compare and the plan in cyclotron_py.plan.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .compare import HostRecord, capability_matrix, distribution_plan, unportable_by_host
from .errors import ManifestError
from .manifest_io import atomic_write_text
from .models import Manifest
from .plan import Plan, build_plan, render_playbook

FAILED_STATUSES = frozenset(("failed", "failed_rolled_back"))
DONE_STATUSES = frozenset(("installed", "upgraded"))


def gathered_manifests(hostvars: Mapping[str, Any], hosts: Iterable[str]) -> dict[str, Any]:
    """``{host: manifest}`` registered by gather.yml's cyclotron_gather task in this run."""
    out: dict[str, Any] = {}
    for host in hosts:
        written = hostvars[host].get("cyclotron_manifest_written") if host in hostvars else None
        if isinstance(written, Mapping) and isinstance(written.get("manifest"), Mapping):
            out[host] = written["manifest"]
    return out


def host_policies(hostvars: Mapping[str, Any], hosts: Iterable[str]) -> dict[str, Any]:
    """Each host's ``cyclotron_policy`` (group and host vars already merged by Ansible)."""
    return {h: hostvars[h].get("cyclotron_policy") for h in hosts if h in hostvars}


def collect_manifests(
    gathered: Mapping[str, Mapping[str, Any]],
    manifest_dir: str | Path | None,
    *,
    domains: Mapping[str, str] | None = None,
) -> list[HostRecord]:
    """This run's manifests (``{host: document}``) plus, from ``manifest_dir``, those of hosts
    not gathered now (unreachable, or pushed by a machine in pull mode). Each host is validated
    once, by the fast loader (the full validator reports what it rejects); a gathered host's
    file on disk is not read again."""
    from .fleet_load import Loader, sort_out
    from .validate import expand_paths, format_report

    loader = Loader(domains)
    records: dict[str, HostRecord] = {}
    problems: list[str] = []
    for host, document in sorted(gathered.items()):
        record, result = loader.load_document(dict(document), file=f"<{host}>", expected_host=host)
        if record is None:
            problems.extend(f"{p.file}: {p.path}: {p.message}. Fix: {p.fix}" for p in result.errors)
        else:
            records[host] = record
    source = Path(manifest_dir) if manifest_dir is not None else None
    if source is not None and (source.is_file() or (source.is_dir() and any(source.glob("*.json")))):
        paths = [p for p in expand_paths(source) if p.stem not in gathered]
        found, bad = sort_out([loader.load_file(path) for path in paths])
        for record in found:
            records.setdefault(record.host, record)
        if bad:
            problems.append(format_report(bad, color=False))
    if problems:
        raise ManifestError("invalid manifests; nothing was planned:\n" + "\n".join(problems))
    return [records[h] for h in sorted(records)]


def plan_fleet(
    manifests: Sequence[HostRecord],
    *,
    targets: Iterable[str] | None,
    catalog: Catalog,
    policies: Mapping[str, Any] | None = None,
    approve: str = "low-risk",
) -> tuple[Plan, dict[str, Any]]:
    """Compare every manifest; plan installs only for ``targets`` (the reachable hosts).

    Hosts outside ``targets`` (unreachable now, or known only from a pushed manifest)
    still count as sources of capabilities.
    """
    matrix = capability_matrix(manifests, catalog=catalog, policies=policies)
    wanted = set(targets) if targets is not None else {m.host for m in manifests}
    distribution = {h: recs for h, recs in distribution_plan(matrix).items() if h in wanted}
    unportable = {h: gaps for h, gaps in unportable_by_host(matrix).items() if h in wanted}
    families = {m.host: m.family for m in manifests}
    plan = build_plan(distribution, families, catalog, approve=approve, unportable=unportable)
    return plan, matrix


def plan_summary(plan: Plan) -> list[str]:
    lines = [f"{plan.plan_id}: {plan.total_items} item(s) to install, approval mode {plan.approve}"]
    for host in plan.hosts:
        if host.items:
            lines.append(f"  {host.host}: " + ", ".join(f"{i.id} ({i.manager})" for i in host.items))
        for item in host.awaiting_approval:
            lines.append(f"  {host.host}: awaiting approval: {item.id} ({item.approval})")
        for gap in host.unportable:
            lines.append(f"  {host.host}: unportable: {gap.get('id')} ({gap.get('reason', '')})")
    if plan.total_items == 0 and not any(h.awaiting_approval for h in plan.hosts):
        lines.append("  nothing to install: the fleet is at parity")
    return lines


@dataclass
class SyncReport:
    plan_id: str
    coverage_before: float
    coverage_after: float
    outcomes: dict[str, list[dict[str, Any]]]
    unreachable: list[str]
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> list[tuple[str, dict[str, Any]]]:
        return [(h, o) for h, items in self.outcomes.items() for o in items if o.get("status") in FAILED_STATUSES]

    def lines(self) -> list[str]:
        out = [
            f"Cyclotron sync {self.plan_id}: coverage {self.coverage_before:.0f}% -> {self.coverage_after:.0f}%",
            "Outcomes: " + (", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "nothing to do"),
        ]
        for host in sorted(self.outcomes):
            for o in self.outcomes[host]:
                version = o.get("version_after") or o.get("version_before") or ""
                reason = f" - {o['reason']}" if o.get("reason") else ""
                out.append(f"  {host}: {o.get('id')} [{o.get('manager')}] {o.get('status')} {version}{reason}".rstrip())
        for host in self.unreachable:
            out.append(f"  {host}: UNREACHABLE - not changed; run again when it is back")
        return out

    def markdown(self) -> str:
        rows = [
            f"# Cyclotron sync {self.plan_id}",
            "",
            f"Coverage before: **{self.coverage_before:.0f}%**, after: **{self.coverage_after:.0f}%**.",
            "",
            "| Host | Capability | Manager | Outcome | Version before | Version after | Reason |",
            "|---|---|---|---|---|---|---|",
        ]
        for host in sorted(self.outcomes):
            for o in self.outcomes[host]:
                rows.append(
                    f"| {host} | {o.get('id')} | {o.get('manager')} | {o.get('status')} | "
                    f"{o.get('version_before') or ''} | {o.get('version_after') or ''} | "
                    f"{str(o.get('reason') or '').replace('|', '/')} |"
                )
        for host in self.unreachable:
            rows.append(f"| {host} | - | - | unreachable | | | host not reached; nothing changed |")
        return "\n".join(rows) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "coverage_before": self.coverage_before,
            "coverage_after": self.coverage_after,
            "counts": dict(self.counts),
            "outcomes": self.outcomes,
            "unreachable": self.unreachable,
        }


def sync_report(
    plan: Plan,
    coverage_before: Mapping[str, Any],
    after: Sequence[Manifest | HostRecord] | None,
    outcomes: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    reached: Iterable[str],
    catalog: Catalog,
    policies: Mapping[str, Any] | None = None,
) -> SyncReport:
    """``after`` None: a dry run (--check), which installs nothing and so leaves coverage as it was."""
    before = float(coverage_before.get("overall", {}).get("percent", 0.0))
    if after is None:
        coverage_after = before
    else:
        matrix_after = capability_matrix(after, catalog=catalog, policies=policies)
        coverage_after = float(matrix_after["coverage"]["overall"]["percent"])
    reached_set = set(reached)
    planned = [h.host for h in plan.hosts if h.items]
    clean = {h: [_public_outcome(o) for o in outcomes.get(h, [])] for h in sorted(outcomes)}
    counts: Counter[str] = Counter(o["status"] for items in clean.values() for o in items)
    return SyncReport(
        plan_id=plan.plan_id,
        coverage_before=before,
        coverage_after=coverage_after,
        outcomes={h: items for h, items in clean.items() if items},
        unreachable=sorted(h for h in planned if h not in reached_set),
        counts=counts,
    )


_OUTCOME_KEYS = ("id", "manager", "package", "status", "version_before", "version_after", "reason")


def _public_outcome(outcome: Mapping[str, Any]) -> dict[str, Any]:
    """Only the documented keys: a role cannot smuggle a value into the report."""
    return {k: outcome.get(k) for k in _OUTCOME_KEYS}


def write_report(report: SyncReport, reports_dir: str | Path) -> tuple[Path, Path]:
    base = Path(reports_dir)
    md = base / f"sync-{report.plan_id}.md"
    js = base / f"sync-{report.plan_id}.json"
    atomic_write_text(md, report.markdown())
    atomic_write_text(js, json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n")
    return md, js


__all__ = ["plan_fleet", "plan_summary", "render_playbook", "sync_report", "write_report", "SyncReport"]
