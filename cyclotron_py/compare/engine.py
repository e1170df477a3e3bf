"""The engine: one pass over every capability of every host, producing the matrix document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import safety
from ..catalog import Catalog
from ..forked import fork_call
from ..policy import Policy, PolicyMatcher
from ..versions import comparable_keys, parse_version
from .capability import _Cap
from .documents import MATRIX_SCHEMA_VERSION, PRIORITY_RANK
from .portability import UPGRADE_MANAGERS, _checked, _Portability, _Profile
from .records import HostRecord


def _percent(present: int, total: int) -> float:
    return round(100.0 * present / total, 1) if total else 100.0


def _figure(present: int, total: int) -> dict[str, Any]:
    return {"present": present, "total": total, "percent": _percent(present, total)}


class _Engine(_Portability):
    def __init__(self, records: list[HostRecord], catalog: Catalog, policies: Mapping[str, Policy]) -> None:
        self.records = records
        self.catalog = catalog
        self.hosts = [r.host for r in records]
        # Hosts with equal OS/managers share portability answers; equal policies share decisions.
        self.profile_of: dict[str, _Profile] = {}
        profiles: dict[tuple[str, frozenset[str], bool], _Profile] = {}
        for r in records:
            host_managers = frozenset(r.managers)
            has_git = "git" in host_managers or "git" in r.caps or "command:git" in r.caps
            key = (r.family, host_managers, has_git)
            if key not in profiles:
                profiles[key] = _Profile(*key)
            self.profile_of[r.host] = profiles[key]
        matchers: dict[str, PolicyMatcher] = {}
        self.policy_of: dict[str, Policy] = {}
        self.matcher_of: dict[str, PolicyMatcher] = {}
        for h in self.hosts:
            policy = policies.get(h) or Policy()
            self.policy_of[h] = policy
            canon = policy.canonical()
            if canon not in matchers:
                matchers[canon] = PolicyMatcher(policy)
            self.matcher_of[h] = matchers[canon]
        self.filtering = {h for h in self.hosts if self.policy_of[h].filters}
        self.special = {h for h in self.hosts if self.policy_of[h].pinned or self.policy_of[h].overrides}
        self.pinned_ids = {cid for h in self.special for cid in self.policy_of[h].pinned}
        # Hosts grouped by a shared policy that ignores something: one check per group and id.
        groups: dict[int, tuple[PolicyMatcher, list[str]]] = {}
        for h in self.hosts:
            m = self.matcher_of[h]
            if m.policy.ignore:
                groups.setdefault(id(m), (m, []))[1].append(h)
        self.ignore_groups = list(groups.values())
        self._decisions: dict[tuple[int, str], tuple[str, str]] = {}
        self._options: dict[tuple[str, _Profile], tuple[dict[str, Any] | None, str]] = {}
        self._gaps: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    # ----------------------------------------------------------------- policy

    def decide(self, host: str, cap: _Cap) -> tuple[str, str]:
        matcher = self.matcher_of[host]
        key = (id(matcher), cap.cid)
        found = self._decisions.get(key)
        if found is None:
            meta = cap.meta()
            found = self._decisions[key] = matcher.decide(cap.cid, meta.domain, meta.tags)
        return found

    # ----------------------------------------------------------------- main pass

    def run(self, *, parallel: bool = False) -> dict[str, Any]:
        """The matrix document. ``parallel`` (the CLI): on a large fleet the second half of the
        capabilities is compared in a forked child meanwhile (cyclotron_py.forked); each
        capability's answer depends on it alone, so the halves join into the same document."""
        cids = sorted(set().union(*(r.caps for r in self.records)))
        half = len(cids) // 2
        worker = None
        if parallel and sum(len(r.caps) for r in self.records) >= PARALLEL_MIN_ENTRIES:
            worker = fork_call(lambda: self._pass(cids[half:]))
        if worker is None:
            return self._document(self._pass(cids))
        done = self._pass(cids[:half])
        rest = worker.result()
        done.extend(rest if isinstance(rest, _Pass) else self._pass(cids[half:]))
        return self._document(done)

    def _pass(self, cids: Sequence[str]) -> _Pass:
        """Compare the capabilities ``cids`` (in this order) across the fleet; a capability no host
        has at the top level (only as another's dependency) has no row."""
        holdings = [(r.host, r.caps.get) for r in self.records]  # hosts in name order
        hosts = self.hosts
        entries = self.catalog.entries
        filtering, special = self.filtering, self.special
        done = _Pass(hosts)
        rows, universal, partial, unique, drift_list = done.rows, done.universal, done.partial, done.unique, done.drift
        recs, unportable, excluded = done.recs, done.unportable, done.excluded
        missing_count, ignored_count, domain_counts = done.missing_count, done.ignored_count, done.domain_counts

        for cid in cids:
            d = {h: c for h, held in holdings if (c := held(cid)) is not None}
            if not any(c.top_level for c in d.values()):
                continue
            entry = entries.get(cid)
            considered: Sequence[str] = hosts
            ignored: list[str] = []
            if self.ignore_groups:
                tags = tuple(entry.tags) if entry is not None else ()
                for matcher, members in self.ignore_groups:
                    if matcher.ignores(cid, tags):
                        ignored.extend(members)
                if ignored:
                    drop = set(ignored)
                    ignored = [h for h in hosts if h in drop]
                    d = {h: c for h, c in d.items() if h not in drop}
                    if not d:
                        continue
                    considered = [h for h in hosts if h not in drop]
            versions = {h: c.version for h, c in d.items()}
            cap = _Cap(cid, d, versions, entry)
            present = len(d)
            total = len(considered)
            missing = [] if present == total else [h for h in considered if h not in d]
            drifted = not cap.flat and self._drift(cap, drift_list)

            excluded_here: list[str] = []
            # Templates carry the capability's priority: its hosts' list of that rank, found once.
            recs_here = recs.of_priority(cap.meta().priority)
            for h in missing:
                missing_count[h] += 1
                if h in filtering:
                    decision, why = self.decide(h, cap)
                    if decision == "excluded":
                        excluded_here.append(h)
                        excluded.add(h, self._gap_item(cap, h, "missing", why))
                        continue
                tmpl, why = self.template(cap, self.profile_of[h])
                if tmpl is None:
                    unportable.add(h, self._gap_item(cap, h, "missing", why))
                    continue
                if h in special:
                    rec = dict(tmpl)
                    self._personalise(rec, h)
                    recs.add(h, rec)
                else:
                    # Every host of the profile shares the template itself (read-only from here
                    # on): plan.build_plan and compare.layout do a shared one's work once.
                    recs_here[h].append(tmpl)
            if drifted or cid in self.pinned_ids:
                self._upgrades(cap, drifted, recs, unportable, excluded)
            for h in ignored:
                ignored_count[h] += 1

            meta = cap.meta()
            if present == total:
                status = "universal"
                universal.append(cid)
            elif present == 1:
                status = "unique"
                unique[next(iter(d))].append(cid)
            else:
                status = "partial"
                partial[cid] = list(d)
            rows[cid] = {
                "name": meta.name,
                "type": meta.type,
                "domain": meta.domain,
                "priority": meta.priority,
                "risk": meta.risk,
                "status": status,
                "coverage": _percent(present, total),
                "versions": versions,
                "missing": missing,
                "excluded": excluded_here,
                "ignored": ignored,
                "drift": drifted,
            }
            counts = domain_counts.get(meta.domain)
            if counts is None:
                domain_counts[meta.domain] = [present, total]
            else:
                counts[0] += present
                counts[1] += total
        return done

    def _gap_item(self, cap: _Cap, host: str, gap: str, reason: str) -> dict[str, Any]:
        """An unportable or excluded entry; hosts without overrides share one (read-only, as
        recommendations are)."""
        meta = cap.meta()
        priority = meta.priority
        if host in self.special:
            override = self.policy_of[host].overrides.get(cap.cid)
            if override and override.priority:
                priority = override.priority
        key = (cap.cid, priority, gap, reason)
        found = self._gaps.get(key)
        if found is None:
            found = self._gaps[key] = {"id": cap.cid, "name": meta.name, "type": meta.type, "domain": meta.domain,
                                       "priority": priority, "gap": gap, "reason": reason}
        return found

    def _personalise(self, rec: dict[str, Any], host: str) -> None:
        policy = self.policy_of[host]
        override = policy.overrides.get(rec["id"])
        if override is not None:
            if override.priority:
                rec["priority"] = override.priority
            if override.risk:
                rec["risk"] = override.risk
        pin = policy.pinned.get(rec["id"])
        if pin is not None:
            rec["version"] = pin
            rec["pinned"] = True

    def _drift(self, cap: _Cap, out: list[dict[str, Any]]) -> bool:
        ranks = cap.ranks()
        versions = cap.versions
        known = {h: r for h, r in ranks.items() if r[0] > 0}
        if len(set(known.values())) <= 1:
            return False  # "2.0" and "2.0.0": different strings, same version
        top_rank = max(known.values())
        latest_hosts = [h for h, r in known.items() if r == top_rank]
        comparable = top_rank[0] == 2
        behind = [h for h, r in known.items() if r < top_rank and r[0] == top_rank[0]]
        unparseable = [h for h, r in known.items() if r[0] == 1]
        by_version: dict[str, list[str]] = {}
        for h, v in versions.items():
            if v is not None:
                by_version.setdefault(v, []).append(h)
        out.append({
            "id": cap.cid,
            "name": cap.meta().name,
            "domain": cap.meta().domain,
            "latest": versions[latest_hosts[0]],
            "latest_hosts": latest_hosts,
            "behind": behind,
            "unparseable": unparseable,
            "unknown": [h for h, r in ranks.items() if r[0] == 0],
            "versions": {v: by_version[v] for v in sorted(by_version)},
            "comparable": comparable and not unparseable,
        })
        return True

    def _upgrades(
        self,
        cap: _Cap,
        drifted: bool,
        recs: _Ranked,
        unportable: _Ranked,
        excluded: _Ranked,
    ) -> None:
        """Outdated and pinned recommendations for hosts that have the capability."""
        ranks = cap.ranks()
        holders, versions = cap.holders, cap.versions
        by_manager = cap.by_manager()
        manager_of = cap.managers()
        special = self.special
        hosts = holders if drifted else [h for h in holders if h in special]
        templates: dict[tuple[str, str, str, str, str], dict[str, Any] | str] = {}
        upgraded: dict[tuple[tuple[str, str, str, str, str], str | None], dict[str, Any]] = {}
        recs_here = recs.of_priority(cap.meta().priority)  # what a shared recommendation carries
        # Each manager's best rank: a host holding it (most hosts, the same tuple) has nothing newer.
        peer_rank = {m: ranks[p] for m, p in by_manager.items()}
        for h in hosts:
            pin = self.policy_of[h].pinned.get(cap.cid) if h in special else None
            manager = manager_of[h]
            if pin is None and ranks[h] is peer_rank[manager]:
                continue
            c = holders[h]
            current = versions[h]
            peer = by_manager[manager]
            if pin is not None:
                if current == pin:
                    continue
                order = _order(current, pin, manager)
                if order == 0:
                    continue
                reason = "outdated" if order is not None and order < 0 else "pinned"
                wanted = pin
            else:
                # Only a newer version through the same manager is an upgrade this host can take.
                if not drifted or not c.top_level or ranks[h][0] != 2 or ranks[peer] <= ranks[h]:
                    continue
                reason, wanted = "outdated", versions[peer] or ""
            if h in self.filtering:
                decision, why = self.decide(h, cap)
                if decision != "allowed":
                    if decision == "excluded":
                        excluded.add(h, self._gap_item(cap, h, reason, why))
                    continue
            key = (manager, peer, reason, wanted, c.source.package)
            tmpl = templates.get(key)
            if tmpl is None:
                tmpl = templates[key] = self._upgrade_template(cap, c, peer, manager, reason, wanted)
            if isinstance(tmpl, str):
                unportable.add(h, self._gap_item(cap, h, reason, tmpl))
                continue
            if h in special:
                rec = {**tmpl, "current_version": current, "pinned": pin is not None}
                self._personalise(rec, h)
                recs.add(h, rec)
            else:  # shared by the hosts at the same version, as templates are above
                shared = upgraded.get((key, current))
                if shared is None:
                    shared = upgraded[(key, current)] = {**tmpl, "current_version": current}
                recs_here[h].append(shared)

    def _upgrade_template(
        self, cap: _Cap, c: Any, peer: str, manager: str, reason: str, wanted: str
    ) -> dict[str, Any] | str:
        if manager not in UPGRADE_MANAGERS:
            return f"installed through {manager}, which Cyclotron cannot upgrade"
        peer_src = cap.holders[peer].source
        # The peer's package id installs the peer's version (Python.Python.3.12, not .3.11).
        package = peer_src.package if peer_src.manager == manager and peer_src.package else c.source.package
        details: dict[str, Any] = {}
        if manager == "mcp":
            package = cap.cid.partition(":")[2]
            details = dict(cap.holders[peer].details or {})
        else:
            bad = _checked(lambda: safety.check_package(manager, package))
            if bad:
                return bad
        meta = cap.meta()
        return {
            "id": cap.cid,
            "name": meta.name,
            "type": c.type,
            "domain": meta.domain,
            "priority": meta.priority,
            "risk": meta.risk,
            "reason": reason,
            "from_host": peer,
            "source_version": cap.versions[peer],
            "version": wanted,
            "current_version": None,
            "pinned": False,
            "manager": manager,
            "package": package,
            "details": details,
        }

    def _document(self, done: _Pass) -> dict[str, Any]:
        rows, universal, partial, unique, drift_list = done.rows, done.universal, done.partial, done.unique, done.drift
        recs, unportable, excluded = done.recs, done.unportable, done.excluded
        missing_count, ignored_count, domain_counts = done.missing_count, done.ignored_count, done.domain_counts
        hosts = self.hosts
        n_rows = len(rows)
        by_host = {}
        for h in hosts:
            total = n_rows - ignored_count[h]
            by_host[h] = _figure(total - missing_count[h], total)
        known_domains = list(self.catalog.domains)
        domains = known_domains + sorted(d for d in domain_counts if d not in self.catalog.domains)
        by_domain = {d: _figure(*domain_counts[d]) for d in domains if d in domain_counts}
        all_present = sum(c[0] for c in domain_counts.values())
        all_total = sum(c[1] for c in domain_counts.values())

        doc: dict[str, Any] = {
            "schema_version": MATRIX_SCHEMA_VERSION,
            "kind": "matrix",
            "comparison_timestamp": max(r.gathered_at for r in self.records),
            "hosts": hosts,
            "host_info": {
                r.host: {
                    "os": r.family,
                    "distribution": r.distribution,
                    "managers": list(r.managers),
                    "managers_inferred": r.managers_inferred,
                    "gathered_at": r.gathered_at,
                    "capabilities": len(r.caps),
                }
                for r in self.records
            },
            "domains": domains,
            "capabilities": rows,
            "universal_capabilities": universal,
        }
        for h in hosts:
            doc[f"unique_to_{h}"] = unique[h]
        doc["partial_capabilities"] = partial
        doc["version_drift"] = drift_list
        doc["recommended_distribution"] = {f"to_{h}": recs.joined(h) for h in hosts}
        doc["unportable"] = {f"to_{h}": unportable.joined(h) for h in hosts}
        doc["policy_excluded"] = {f"to_{h}": excluded.joined(h) for h in hosts}
        doc["coverage"] = {
            "overall": _figure(all_present, all_total),
            "by_host": by_host,
            "by_domain": by_domain,
        }
        doc["summary"] = {
            "hosts": len(hosts),
            "capabilities": n_rows,
            "universal": len(universal),
            "partial": len(partial),
            "unique": sum(len(v) for v in unique.values()),
            "drifted": len(drift_list),
            "recommendations": recs.count(),
            "unportable": unportable.count(),
            "excluded": excluded.count(),
        }
        return doc


class _Ranked:
    """Per host, a list of entries (recommendations, gaps) in priority order, stable: one list per
    priority rank, filled as the entries are made (in capability id order) and joined at the end,
    which is what sorting by rank gives, without a pass over every entry afterwards."""

    __slots__ = ("by_rank",)

    def __init__(self, hosts: Sequence[str]) -> None:
        self.by_rank: tuple[dict[str, list[dict[str, Any]]], ...] = tuple(
            {h: [] for h in hosts} for _ in range(len(PRIORITY_RANK))
        )

    def of_priority(self, priority: str) -> dict[str, list[dict[str, Any]]]:
        """Host -> its list for this priority (an unknown priority ranks as normal)."""
        return self.by_rank[PRIORITY_RANK.get(priority, _NORMAL)]

    def add(self, host: str, entry: dict[str, Any]) -> None:
        self.of_priority(entry["priority"])[host].append(entry)

    def joined(self, host: str) -> list[dict[str, Any]]:
        lists = [lists[host] for lists in self.by_rank if lists[host]]
        return lists[0] if len(lists) == 1 else [entry for entries in lists for entry in entries]

    def count(self) -> int:
        return sum(len(entries) for lists in self.by_rank for entries in lists.values())

    def extend(self, later: _Ranked) -> None:
        """Append ``later``'s entries (made for capabilities after these) host by host, rank by rank."""
        for lists, more in zip(self.by_rank, later.by_rank, strict=True):
            for host, entries in more.items():
                lists[host].extend(entries)


# Index entries (host x capability) from which a comparison is worth a second process.
PARALLEL_MIN_ENTRIES = 100_000


class _Pass:
    """What comparing some capabilities (in id order) found: the parts of the matrix document."""

    __slots__ = ("rows", "universal", "partial", "unique", "drift", "recs", "unportable", "excluded",
                 "missing_count", "ignored_count", "domain_counts")

    def __init__(self, hosts: Sequence[str]) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.universal: list[str] = []
        self.partial: dict[str, list[str]] = {}
        self.unique: dict[str, list[str]] = {h: [] for h in hosts}
        self.drift: list[dict[str, Any]] = []
        self.recs, self.unportable, self.excluded = _Ranked(hosts), _Ranked(hosts), _Ranked(hosts)
        self.missing_count = dict.fromkeys(hosts, 0)
        self.ignored_count = dict.fromkeys(hosts, 0)
        self.domain_counts: dict[str, list[int]] = {}

    def extend(self, later: _Pass) -> None:
        """Join the pass over the capabilities after these: the document of both in one pass."""
        self.rows.update(later.rows)
        self.universal += later.universal
        self.partial.update(later.partial)
        for host, ids in later.unique.items():
            self.unique[host] += ids
        self.drift += later.drift
        self.recs.extend(later.recs)
        self.unportable.extend(later.unportable)
        self.excluded.extend(later.excluded)
        for host, n in later.missing_count.items():
            self.missing_count[host] += n
        for host, n in later.ignored_count.items():
            self.ignored_count[host] += n
        for domain, (present, total) in later.domain_counts.items():
            counts = self.domain_counts.setdefault(domain, [0, 0])
            counts[0] += present
            counts[1] += total


_NORMAL = PRIORITY_RANK["normal"]


def _order(current: str | None, wanted: str, manager: str) -> int | None:
    if current is None:
        return None
    keys = comparable_keys([parse_version(current, manager), parse_version(wanted, manager)])
    if keys is None:
        return None
    return (keys[0] > keys[1]) - (keys[0] < keys[1])
