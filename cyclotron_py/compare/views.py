"""The public API: the matrix, and views over it (two-way gaps, distribution, unportable, apply)."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..catalog import Catalog, load_catalog
from ..errors import ManifestError
from ..models import Manifest
from ..policy import Policy, parse_policy
from .documents import GAP_CATEGORIES, MATRIX_SCHEMA_VERSION, PRIORITIES, Recommendation
from .engine import _Engine
from .records import CapRow, HostRecord, host_record

# --------------------------------------------------------------------------- public API


def _records(manifests: Iterable[Manifest | HostRecord]) -> list[HostRecord]:
    records: list[HostRecord] = []
    seen: set[str] = set()
    for m in manifests:
        rec = m if isinstance(m, HostRecord) else host_record(m)
        if rec.host in seen:
            raise ManifestError(
                f"duplicate host name {rec.host!r}: two manifests describe the same host; "
                "keep one (each host's manifest is <host>.json)"
            )
        seen.add(rec.host)
        records.append(rec)
    if not records:
        raise ManifestError("no manifests to compare; gather at least one host first")
    records.sort(key=lambda r: r.host)
    return records


def resolve_policies(
    policies: Mapping[str, Policy | Mapping[str, Any] | None] | None, catalog: Catalog
) -> dict[str, Policy]:
    """Validate ``{host: cyclotron_policy}`` against the catalog's domains (PolicyError on bad input)."""
    out: dict[str, Policy] = {}
    for host, value in (policies or {}).items():
        out[str(host)] = parse_policy(value, host=str(host), domains=catalog.domains)
    return out


def capability_matrix(
    manifests: Iterable[Manifest | HostRecord],
    *,
    catalog: Catalog | None = None,
    policies: Mapping[str, Policy | Mapping[str, Any] | None] | None = None,
    domains: Mapping[str, str] | None = None,
    parallel: bool = False,
) -> dict[str, Any]:
    """The N-way matrix (see MatrixDocument) for any number of hosts.

    ``parallel`` (the CLI, a single-threaded process): a large fleet is compared in two processes.
    Raises ManifestError for duplicate host names or no manifests, PolicyError for a bad policy.
    """
    catalog = catalog or load_catalog(None, dict(domains) if domains else None)
    resolved = resolve_policies(policies, catalog)
    engine = _Engine(_records(manifests), catalog, resolved)
    with gc_paused():
        return engine.run(parallel=parallel)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block that builds many acyclic objects.

    The engine allocates hundreds of thousands of dicts and lists and creates no reference
    cycles: pausing the collector saves a third of its time on a large fleet. The commands
    that read a fleet from files (matrix, report, plan) run whole under it: once the matrix
    exists, every collection the renderers trigger would walk all of it again.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def capability_gaps(
    a: Manifest | HostRecord,
    b: Manifest | HostRecord,
    *,
    catalog: Catalog | None = None,
    policies: Mapping[str, Policy | Mapping[str, Any] | None] | None = None,
    domains: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Two hosts: what each lacks that the other has (see GapsDocument; Task 2.1 shape).

    Capabilities a host's policy excludes or ignores are not listed as missing from it.
    """
    ra = a if isinstance(a, HostRecord) else host_record(a)
    rb = b if isinstance(b, HostRecord) else host_record(b)
    matrix = capability_matrix([ra, rb], catalog=catalog, policies=policies, domains=domains)
    return gaps_from_matrix(matrix, ra.host, rb.host)


def gaps_from_matrix(matrix: Mapping[str, Any], host_a: str, host_b: str) -> dict[str, Any]:
    """The two-way gaps document for two hosts of a matrix."""
    gaps: dict[str, list[dict[str, Any]]] = {}
    for h in (host_a, host_b):
        for category in GAP_CATEGORIES.values():
            gaps[f"{category}_missing_from_{h}"] = []
    names: dict[str, set[str]] = {p: set() for p in PRIORITIES}
    for cid, row in matrix["capabilities"].items():
        for h in row["missing"]:
            if h not in (host_a, host_b) or h in row["excluded"]:
                continue
            other = host_b if h == host_a else host_a
            if other not in row["versions"]:
                continue
            category = GAP_CATEGORIES.get(row["type"], "software")
            gaps[f"{category}_missing_from_{h}"].append({
                "id": cid,
                "name": row["name"],
                "domain": row["domain"],
                "priority": row["priority"],
                "version": row["versions"][other],
            })
            names[row["priority"]].add(row["name"])
    pair = {host_a, host_b}
    drift = [e for e in matrix["version_drift"] if pair <= set().union(*e["versions"].values())]
    return {
        "schema_version": MATRIX_SCHEMA_VERSION,
        "kind": "gaps",
        "comparison_timestamp": matrix["comparison_timestamp"],
        "pc_a": host_a,
        "pc_b": host_b,
        "gaps": gaps,
        "version_drift": drift,
        "priority_distribution": {p: sorted(names[p], key=lambda n: (n.lower(), n)) for p in PRIORITIES},
    }


def distribution_plan(matrix: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{host: [recommendation, ...]}`` from a matrix: the input of ``cyclotron_py.plan.build_plan``."""
    dist = matrix.get("recommended_distribution")
    if not isinstance(dist, Mapping) or "hosts" not in matrix:
        raise ManifestError("not a capability matrix: it has no hosts / recommended_distribution")
    return {h: list(dist.get(f"to_{h}", [])) for h in matrix["hosts"]}


def unportable_by_host(matrix: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {h: list(matrix["unportable"].get(f"to_{h}", [])) for h in matrix["hosts"]}


def recommendations_for(matrix: Mapping[str, Any], host: str) -> list[Recommendation]:
    """Typed recommendations for one host (validated with the Recommendation model)."""
    return [Recommendation.model_validate(r) for r in distribution_plan(matrix).get(host, [])]


def apply_recommendations(
    records: Sequence[HostRecord], matrix: Mapping[str, Any]
) -> list[HostRecord]:
    """The fleet as it would be after every recommendation was installed (for tests and what-ifs)."""
    plan = distribution_plan(matrix)
    out = []
    for r in records:
        caps = dict(r.caps)
        for rec in plan.get(r.host, []):
            src = caps.get(rec["id"])
            caps[rec["id"]] = CapRow(
                rec["id"], rec["type"], rec["name"], rec["version"], rec["domain"], rec["priority"],
                rec["risk"], rec["manager"] if src is None else src.source.manager,
                rec["package"], "", True, rec["details"],
            )
        out.append(HostRecord(r.host, r.family, r.distribution, r.managers, r.gathered_at, caps, r.managers_inferred))
    return out
