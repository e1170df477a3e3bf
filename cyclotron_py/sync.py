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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .compare import HostRecord, capability_matrix, distribution_plan, unportable_by_host
from .compare.layout import EncodedOnce
from .errors import ManifestError
from .manifest_io import atomic_write_text
from .models import Manifest
from .plan import Plan, build_plan, render_playbook
from .reports import describe_unreachable, last_seen, md

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
    """Each host's policy (``policy.host_policy``: the inventory's, else the exchange's)."""
    from .policy import host_policy

    return {h: host_policy(hostvars[h]) for h in hosts if h in hostvars}


def collect_manifests(
    gathered: Mapping[str, Mapping[str, Any]],
    manifest_dir: str | Path | None,
    *,
    domains: Mapping[str, str] | None = None,
    parallel: bool = False,
) -> list[HostRecord]:
    """This run's manifests (``{host: document}``) plus, from ``manifest_dir``, those of hosts
    not gathered now (unreachable, or pushed by a machine in pull mode). Each host is validated
    once, by the fast loader (the full validator reports what it rejects); a gathered host's
    file on disk is not read again. ``parallel``: see fleet_load.Loader.load_files (the CLI)."""
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
        found, bad = sort_out(loader.load_files(paths, parallel=parallel))
        for record in found:
            records.setdefault(record.host, record)
        if bad:
            problems.append(format_report(bad, color=False))
    if problems:
        raise ManifestError("invalid manifests; nothing was planned:\n" + "\n".join(problems))
    return [records[h] for h in sorted(records)]


def plan_fleet(
    manifests: Sequence[HostRecord | Manifest],
    *,
    targets: Iterable[str] | None,
    catalog: Catalog,
    policies: Mapping[str, Any] | None = None,
    approve: str = "low-risk",
    decisions: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    parallel: bool = False,
) -> tuple[Plan, dict[str, Any]]:
    """Compare every manifest; plan installs only for ``targets`` (the reachable hosts).

    Hosts outside ``targets`` (unreachable now, or known only from a pushed manifest)
    still count as sources of capabilities. ``parallel``: see capability_matrix (the CLI sets it).
    """
    matrix = capability_matrix(manifests, catalog=catalog, policies=policies, parallel=parallel)
    wanted = set(targets) if targets is not None else {m.host for m in manifests}
    distribution = {h: recs for h, recs in distribution_plan(matrix).items() if h in wanted}
    unportable = {h: gaps for h, gaps in unportable_by_host(matrix).items() if h in wanted}
    # Compact records (the fast loader) or validated Manifests (callers holding models).
    families = {m.host: m.family if isinstance(m, HostRecord) else m.os.family for m in manifests}
    plan = build_plan(
        distribution, families, catalog, approve=approve, unportable=unportable, decisions=decisions
    )
    return plan, matrix


def load_decisions(path: str | Path | None) -> dict[str, dict[str, dict[str, str]]]:
    """The decisions file ``cyclotron run`` writes (``Store.decisions()``); {} without one."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: cannot read the approval decisions ({exc}); run through cyclotron run") from exc
    ok = isinstance(data, dict) and all(
        isinstance(items, dict) and all(isinstance(d, dict) for d in items.values()) for items in data.values()
    )
    if not ok:
        raise ManifestError(f"{path}: expected {{host: {{capability id: {{state, wanted_version}}}}}}")
    return {str(h): {str(c): {str(k): str(v) for k, v in d.items()} for c, d in items.items()}
            for h, items in data.items()}


GATHERED, UNREACHABLE = "gathered", "unreachable"


def _field(manifest: Any, name: str) -> Any:
    """A manifest's field, from a loaded manifest or a plain document (plan.yml reads JSON)."""
    return manifest.get(name) if isinstance(manifest, Mapping) else getattr(manifest, name, None)


def _gathered_at(manifest: Any) -> datetime | None:
    value = _field(manifest, "gathered_at")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def fleet_status(
    expected: Iterable[str],
    gathered: Iterable[str],
    manifests: Sequence[Any],
    *,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """``{host: status}`` for every host this run meant to gather (``expected``, the play's hosts).

    A host of ``expected`` missing from ``gathered`` was unreachable or failed to gather: it is
    marked unreachable with its last known manifest's ``gathered_at`` and age (None when there is
    no manifest), so no report can count it as compared. Hosts known only from a manifest file
    (pull mode) are not expected and get no status.
    """
    now = now or datetime.now(UTC)
    reached = set(gathered)
    known = {str(_field(m, "host")): _gathered_at(m) for m in manifests}
    out: dict[str, dict[str, Any]] = {}
    for host in sorted(set(expected)):
        when = known.get(host)
        out[host] = {
            "status": GATHERED if host in reached else UNREACHABLE,
            "last_gathered_at": when.isoformat().replace("+00:00", "Z") if when else None,
            "age_seconds": max(0, int((now - when).total_seconds())) if when else None,
        }
    return out


def unreachable_hosts(status: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted(h for h, s in status.items() if s.get("status") != GATHERED)


def _installs(items: list[Any]) -> list[str]:
    return [f"{item.id} ({item.manager})" for item in items]


def _awaits(items: list[Any]) -> list[str]:
    return [f"{item.id} ({item.approval})" for item in items]


def _unportable(gaps: list[Any]) -> list[str]:
    return [f"{gap.get('id')} ({gap.get('reason', '')})" for gap in gaps]


def plan_summary(plan: Plan, status: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """One line per planned item; ``status`` (from fleet_status) adds the hosts not gathered now."""
    status = status or {}
    lines = [f"{plan.plan_id}: {plan.total_items} item(s) to install, approval mode {plan.approve}"]
    # Hosts share items and gap entries (plan.build_plan): each one's words are made once.
    installs, awaits, unportable = EncodedOnce(_installs), EncodedOnce(_awaits), EncodedOnce(_unportable)
    for host in plan.hosts:
        if host.items:
            lines.append(f"  {host.host}: " + ", ".join(installs(host.items)))
        lines += [f"  {host.host}: awaiting approval: " + said for said in awaits(host.awaiting_approval)]
        for item in host.rejected:
            lines.append(f"  {host.host}: not installed, {item.approval}: {item.id}")
        lines += [f"  {host.host}: unportable: " + said for said in unportable(host.unportable)]
    missing = unreachable_hosts(status)
    for name in missing:
        last = last_seen(status[name])
        lines.append(f"  {name}: UNREACHABLE - not gathered in this run, nothing planned for it; {last}")
    busy = {h.host for h in plan.hosts if h.items or h.awaiting_approval}
    if not busy:
        if missing:
            at_parity = [h for h in status if h not in missing]
            lines.append(
                f"  {len(at_parity)} of {len(status)} hosts at parity; "
                + "; ".join(describe_unreachable(h, status[h]) for h in missing)
            )
        elif status or plan.hosts:
            lines.append("  nothing to install: the fleet is at parity")
        else:
            lines.append("  nothing planned: no host was gathered in this run")
    return lines


@dataclass
class SyncReport:
    plan_id: str
    coverage_before: float
    coverage_after: float
    outcomes: dict[str, list[dict[str, Any]]]
    unreachable: list[str]
    counts: Counter[str] = field(default_factory=Counter)
    # fleet_status() of every host this run meant to reach, with "stage" for the unreachable ones:
    # "gather" (never gathered in this run, so never compared as it is now) or "install".
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[tuple[str, dict[str, Any]]]:
        return [(h, o) for h, items in self.outcomes.items() for o in items if o.get("status") in FAILED_STATUSES]

    def fleet_line(self) -> str | None:
        """'2 of 3 hosts reached; pc3 unreachable, last gathered 3 h ago' when a host was missed."""
        if not self.unreachable:
            return None
        total = len(self.hosts) or len(self.unreachable)
        reached = total - len(self.unreachable)
        missed = "; ".join(describe_unreachable(h, self.hosts.get(h, {})) for h in self.unreachable)
        return f"{reached} of {total} hosts reached, the fleet is not known to be at parity; {missed}"

    def _why(self, host: str) -> str:
        status = self.hosts.get(host, {})
        last = last_seen(status)
        if status.get("stage") == "gather":
            return f"not gathered in this run, so not compared as it is now; {last}"
        return f"not reached after planning, not changed; {last}; run again when it is back"

    def lines(self) -> list[str]:
        out = [
            f"Cyclotron sync {self.plan_id}: coverage {self.coverage_before:.0f}% -> {self.coverage_after:.0f}%",
            "Outcomes: " + (", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "nothing to do"),
        ]
        fleet = self.fleet_line()
        if fleet:
            out.insert(1, f"Fleet: {fleet}")
        for host in sorted(self.outcomes):
            for o in self.outcomes[host]:
                version = o.get("version_after") or o.get("version_before") or ""
                reason = f" - {o['reason']}" if o.get("reason") else ""
                out.append(f"  {host}: {o.get('id')} [{o.get('manager')}] {o.get('status')} {version}{reason}".rstrip())
        for host in self.unreachable:
            out.append(f"  {host}: UNREACHABLE - {self._why(host)}")
        return out

    def markdown(self) -> str:
        rows = [
            f"# Cyclotron sync {self.plan_id}",
            "",
            f"Coverage before: **{self.coverage_before:.0f}%**, after: **{self.coverage_after:.0f}%**.",
            "",
        ]
        fleet = self.fleet_line()
        if fleet:
            rows += [f"**Fleet: {md(fleet)}.**", ""]
        rows += [
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
            rows.append(f"| {host} | - | - | unreachable | | | {md(self._why(host))} |")
        return "\n".join(rows) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "coverage_before": self.coverage_before,
            "coverage_after": self.coverage_after,
            "counts": dict(self.counts),
            "outcomes": self.outcomes,
            "unreachable": self.unreachable,
            "hosts": self.hosts,
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
    status: Mapping[str, Mapping[str, Any]] | None = None,
) -> SyncReport:
    """``after`` None: a dry run (--check), which installs nothing and so leaves coverage as it was.

    ``status`` is the plan stage's fleet_status(): its unreachable hosts were never gathered in
    this run and are reported so, beside the planned hosts not reached after installing.
    """
    before = float(coverage_before.get("overall", {}).get("percent", 0.0))
    if after is None:
        coverage_after = before
    else:
        matrix_after = capability_matrix(after, catalog=catalog, policies=policies)
        coverage_after = float(matrix_after["coverage"]["overall"]["percent"])
    reached_set = set(reached)
    planned = [h.host for h in plan.hosts if h.items]
    hosts = {h: dict(s) for h, s in (status or {}).items()}
    for host in unreachable_hosts(hosts):
        hosts[host]["stage"] = "gather"
    for host in planned:
        if host not in reached_set:
            entry = hosts.setdefault(host, {"last_gathered_at": None, "age_seconds": None})
            entry.update(status=UNREACHABLE, stage="install")
    clean = {h: [_public_outcome(o) for o in outcomes.get(h, [])] for h in sorted(outcomes)}
    counts: Counter[str] = Counter(o["status"] for items in clean.values() for o in items)
    return SyncReport(
        plan_id=plan.plan_id,
        coverage_before=before,
        coverage_after=coverage_after,
        outcomes={h: items for h, items in clean.items() if items},
        unreachable=unreachable_hosts(hosts),
        counts=counts,
        hosts=hosts,
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


__all__ = [
    "SyncReport",
    "fleet_status",
    "plan_fleet",
    "plan_summary",
    "render_playbook",
    "sync_report",
    "write_report",
]
