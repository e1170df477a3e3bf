"""N-way comparison of capability manifests: gaps, version drift and what each host should receive.

``capability_matrix(manifests)`` is the engine; ``capability_gaps(a, b)`` is its two-host
view in the shape of the original design (Task 2.1); ``distribution_plan(matrix)`` gives the
recommendations per host for ``cyclotron_py.plan``. All results are plain JSON-ready data,
a pure function of the input: hosts, ids and lists are sorted, and the timestamp is that of
the newest manifest compared, so the CLI and the Ansible filter produce identical output.

How a capability travels (only ids that are top-level on some host are distributed):

- a catalog id goes to a host when the catalog names a package for one of the host's
  managers that runs on its OS (winget/choco: Windows; apt/rpm: Linux; brew: macOS/Linux),
  preferring the source's own manager for pip/pipx/npm, else the OS order below;
- ``pip:``/``npm:``/``winget:``... ids go only to hosts with that manager;
- ``mcp:`` servers go where their launcher's package can be installed (npx: npm; uvx/pipx:
  pip or pipx); remote (http/sse) servers go anywhere; the source's config details travel along;
- ``api_key:`` names always travel (values come from the vault at install time);
- ``git:`` repos go to hosts with git;
- ``command:`` and ``registry:`` entries have no package and are reported as unportable.

Versions: a host is *outdated* when a host with the same manager has a newer version and
both parse; the engine never recommends a downgrade unless the host's policy pins it.
The hot path works on plain attributes and dicts, never on pydantic validation.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

from . import managers, safety
from .catalog import Catalog, CatalogEntry, load_catalog
from .errors import ManifestError, PlanError
from .models import Manifest
from .policy import Policy, PolicyMatcher, parse_policy
from .versions import comparable_keys, natural_key, parse_version

MATRIX_SCHEMA_VERSION = 1

# Where each install manager runs; pip/pipx/npm/git/env/mcp run anywhere.
# Which manager installs a catalog capability on each OS, first match wins (cyclotron_py.managers).
MANAGER_PREFERENCE: dict[str, tuple[str, ...]] = {f: managers.preference(f) for f in ("windows", "linux", "darwin")}
# Managers a recommendation can name (installer roles exist for these).
UPGRADE_MANAGERS: frozenset[str] = frozenset(managers.INSTALL_MANAGERS) | {"mcp"}

# Two-way report categories (Task 2.1 keys: <category>_missing_from_<host>).
GAP_CATEGORIES: dict[str, str] = {
    "software": "software",
    "mcp_server": "mcp_tools",
    "api_key": "api_keys",
    "python_package": "python_packages",
    "npm_package": "npm_packages",
    "pipx_tool": "pipx_tools",
    "command": "commands",
    "git_repo": "git_repos",
}
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
_PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}

Reason = Literal["missing", "outdated", "pinned"]


# --------------------------------------------------------------------------- compact input


@dataclass(slots=True)
class CapRow:
    """A capability without pydantic overhead; duck-types ``models.Capability`` for the engine."""

    id: str
    type: str
    name: str
    version: str | None
    domain: str
    priority: str
    risk: str
    manager: str
    package: str
    path: str
    top_level: bool
    details: dict[str, Any]

    @property
    def source(self) -> CapRow:  # cap.source.manager works for both shapes
        return self


@dataclass(slots=True)
class HostRecord:
    """One host as the engine sees it: ``caps`` maps capability id to a Capability or CapRow.

    ``managers_inferred``: the manifest has no ``managers`` key, so they were inferred from
    its capabilities' sources (``managers.infer_managers``).
    """

    host: str
    family: str
    distribution: str
    managers: tuple[str, ...]
    gathered_at: str
    caps: dict[str, Any] = field(default_factory=dict)
    managers_inferred: bool = False


_EMPTY: dict[str, Any] = {}


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def host_record(
    manifest: Manifest, *, compact: bool = False, strings: dict[str, str] | None = None
) -> HostRecord:
    """The engine's view of a validated manifest.

    ``compact=True`` copies every capability into a CapRow with shared (interned) strings,
    so the manifest can be dropped: about a tenth of the memory, for large fleets.
    """
    caps: dict[str, Any] = {}
    if compact:
        pool = strings if strings is not None else {}
        s = pool.setdefault
        for c in manifest.capabilities:
            src = c.source
            row = CapRow(
                s(c.id, c.id),
                s(c.type, c.type),
                s(c.name, c.name),
                None if c.version is None else s(c.version, c.version),
                s(c.domain, c.domain),
                s(c.priority, c.priority),
                s(c.risk, c.risk),
                s(src.manager, src.manager),
                s(src.package, src.package),
                src.path,
                c.top_level,
                c.details or _EMPTY,
            )
            _keep(caps, row)
    else:
        for c in manifest.capabilities:
            _keep(caps, c)
    # An absent key (hand-written or other tools' manifests) is not `managers: []`, which means none.
    inferred = "managers" not in manifest.model_fields_set
    listed = managers.infer_managers(c.source.manager for c in manifest.capabilities) if inferred else manifest.managers
    return HostRecord(
        host=manifest.host,
        family=manifest.os.family,
        distribution=manifest.os.distribution,
        managers=tuple(sorted(set(listed))),
        gathered_at=_iso(manifest.gathered_at),
        caps=caps,
        managers_inferred=inferred,
    )


def _keep(caps: dict[str, Any], cap: Any) -> None:
    # A validated manifest has unique ids; if not, the top-level entry describes the capability.
    old = caps.get(cap.id)
    if old is None or (cap.top_level and not old.top_level):
        caps[cap.id] = cap


# --------------------------------------------------------------------------- output models


class Recommendation(BaseModel):
    """What one host should receive; ``cyclotron_py.plan`` turns these into plan items."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    type: str
    domain: str
    priority: Literal["high", "normal", "low"]
    risk: Literal["low", "medium", "high"]
    reason: Reason = Field(description="missing: not on the host; outdated: older than a peer's; "
                           "pinned: differs from the version the host's policy pins.")
    from_host: str = Field(description="Host the capability is taken from (highest version, then name).")
    source_version: str | None = Field(description="Version on from_host.")
    version: str | None = Field(description="Version to install; null = the manager's latest. Set only "
                                "when it means something to the target's manager (same manager, or pinned).")
    current_version: str | None = Field(description="Version on the target now (outdated/pinned).")
    pinned: bool = Field(description="Install exactly `version`, downgrade allowed.")
    manager: str = Field(description="Installer on the target: winget, choco, apt, rpm, brew, pip, "
                         "pipx, npm, git, env (API key) or mcp.")
    package: str = Field(description="Package id for that manager (MCP: server name; env: variable name; "
                         "git: remote URL).")
    details: dict[str, Any] = Field(description="MCP server config / git remote from from_host; else {}.")


class GapItem(BaseModel):
    """A capability a host lacks and will not receive (unportable or excluded by policy)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    type: str
    domain: str
    priority: Literal["high", "normal", "low"]
    gap: Literal["missing", "outdated", "pinned"]
    reason: str


class CapabilityRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    type: str
    domain: str
    priority: Literal["high", "normal", "low"]
    risk: Literal["low", "medium", "high"]
    status: Literal["universal", "partial", "unique"]
    coverage: float = Field(description="Percent of compared hosts that have it (0-100, 1 decimal).")
    versions: dict[str, str | None] = Field(description="Host -> version for every host that has it.")
    missing: list[str] = Field(description="Compared hosts that lack it (including excluded ones).")
    excluded: list[str] = Field(description="Hosts that lack it and whose policy keeps it away.")
    ignored: list[str] = Field(description="Hosts whose policy leaves it out of the comparison.")
    drift: bool = Field(description="True when the hosts that have it run different versions.")


class DriftEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    domain: str
    latest: str = Field(description="Highest version in the fleet.")
    latest_hosts: list[str]
    behind: list[str] = Field(description="Hosts with a lower version (parseable versions only, "
                              "or by string order when comparable is false).")
    unparseable: list[str] = Field(description="Hosts whose version does not parse as a version.")
    unknown: list[str] = Field(description="Hosts that have it with no version recorded.")
    versions: dict[str, list[str]] = Field(description="Version -> hosts.")
    comparable: bool = Field(description="False when some version was compared as a plain string.")


class CoverageFigure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    present: int
    total: int
    percent: float


class Coverage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overall: CoverageFigure
    by_host: dict[str, CoverageFigure]
    by_domain: dict[str, CoverageFigure]


class HostInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    os: Literal["windows", "linux", "darwin"]
    distribution: str
    managers: list[str]
    gathered_at: str
    capabilities: int


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hosts: int
    capabilities: int
    universal: int
    partial: int
    unique: int
    drifted: int
    recommendations: int
    unportable: int
    excluded: int


_ToHost = Annotated[str, StringConstraints(pattern=r"^to_.+$")]
_Timestamp = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]


class MatrixDocument(BaseModel):
    """``cyclotron matrix --json``: the N-way matrix (Task 2.2 generalised).

    Besides the fields below, one ``unique_to_<host>`` key per host lists the capability ids
    only that host has.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "patternProperties": {"^unique_to_.+$": {"type": "array", "items": {"type": "string"}}},
            "additionalProperties": False,
        },
    )
    __pydantic_extra__: dict[str, list[str]] = Field(init=False)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _only_unique_extras(self) -> MatrixDocument:
        for key in self.__pydantic_extra__ or {}:
            if not key.startswith("unique_to_"):
                raise ValueError(f"unknown key {key!r}")
        return self

    schema_version: Literal[1]
    kind: Literal["matrix"]
    comparison_timestamp: _Timestamp = Field(description="gathered_at of the newest manifest compared.")
    hosts: list[str]
    host_info: dict[str, HostInfo]
    domains: list[str] = Field(description="Domains in report order.")
    capabilities: dict[str, CapabilityRow]
    universal_capabilities: list[str]
    partial_capabilities: dict[str, list[str]] = Field(description="Id -> hosts that have it.")
    version_drift: list[DriftEntry]
    recommended_distribution: dict[_ToHost, list[Recommendation]]
    unportable: dict[_ToHost, list[GapItem]]
    policy_excluded: dict[_ToHost, list[GapItem]]
    coverage: Coverage
    summary: Summary


class GapEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    domain: str
    priority: Literal["high", "normal", "low"]
    version: str | None = Field(description="Version on the host that has it.")


_GapKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^(software|mcp_tools|api_keys|python_packages|npm_packages|pipx_tools|commands|git_repos)"
        r"_missing_from_.+$"
    ),
]


class GapsDocument(BaseModel):
    """``cyclotron diff A B``: two hosts, the shape of the original design (Task 2.1)."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1]
    kind: Literal["gaps"]
    comparison_timestamp: _Timestamp
    pc_a: str
    pc_b: str
    gaps: dict[_GapKey, list[GapEntry]]
    version_drift: list[DriftEntry]
    priority_distribution: dict[Literal["high", "normal", "low"], list[str]]


class ComparisonDocument(RootModel[Annotated[MatrixDocument | GapsDocument, Field(discriminator="kind")]]):
    """Any JSON document the comparison writes."""


def comparison_json_schema() -> dict[str, Any]:
    """The JSON Schema checked in as ``schema/comparison.schema.json``."""
    schema = ComparisonDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cyclotron.dev/schema/comparison-v1.json"
    schema["title"] = "Cyclotron comparison output (matrix or two-way gaps)"
    return schema


# --------------------------------------------------------------------------- engine


class _Profile:
    """What a host can install with. One object per distinct profile: identity hash, fast keys."""

    __slots__ = ("family", "managers", "has_git")

    def __init__(self, family: str, managers: frozenset[str], has_git: bool) -> None:
        self.family = family
        self.managers = managers
        self.has_git = has_git

    def usable(self, manager: str) -> bool:
        return manager in self.managers and managers.runs_on(manager, self.family)


# (manager, package, details, source host or None for "the best holder for that manager")
_Option = tuple[str, str, dict[str, Any], str | None]


@dataclass(slots=True)
class _Meta:
    name: str
    type: str
    domain: str
    priority: str
    risk: str
    tags: tuple[str, ...]


class _Cap:
    """Per-capability facts the engine computes lazily (most capabilities need few of them)."""

    __slots__ = (
        "cid", "holders", "versions", "entry", "flat", "_ranks", "_best", "_by_manager", "_meta", "_managers"
    )

    def __init__(self, cid: str, holders: dict[str, Any], versions: dict[str, str | None],
                 entry: CatalogEntry | None) -> None:
        self.cid = cid
        self.holders = holders  # host -> Capability/CapRow, hosts sorted
        self.versions = versions
        self.entry = entry
        distinct = set(versions.values())
        distinct.discard(None)
        # One version (or none) among the holders: no parsing, ranks are "has a version or not".
        self.flat = len(distinct) <= 1
        self._ranks: dict[str, tuple[Any, ...]] | None = None
        self._best: str | None = None
        self._by_manager: dict[str, str] | None = None
        self._meta: _Meta | None = None
        self._managers: dict[str, str] | None = None

    def managers(self) -> dict[str, str]:
        """Host -> the manager its copy came through."""
        if self._managers is None:
            self._managers = {h: c.source.manager for h, c in self.holders.items()}
        return self._managers

    def ranks(self) -> dict[str, tuple[Any, ...]]:
        """(2, key) parseable > (1, natural order) unparseable > (0,) no version."""
        if self._ranks is None:
            if self.flat:
                self._ranks = {h: (0,) if v is None else (2,) for h, v in self.versions.items()}
            else:
                self._ranks = self._parse_ranks()
        return self._ranks

    def _parse_ranks(self) -> dict[str, tuple[Any, ...]]:
        manager_of = self.managers()
        pairs = {h: (v, manager_of[h]) for h, v in self.versions.items() if v is not None}
        parsed = {k: parse_version(*k) for k in set(pairs.values())}
        good = [k for k, p in parsed.items() if p.parseable]
        keys = comparable_keys([parsed[k] for k in good]) or []
        rank_of: dict[tuple[str, str], tuple[Any, ...]] = {
            k: (2, key) for k, key in zip(good, keys, strict=True)
        }
        for k, p in parsed.items():
            if not p.parseable:
                rank_of[k] = (1, natural_key(k[0]))
        none = (0,)
        return {h: rank_of[pairs[h]] if h in pairs else none for h in self.versions}

    def best(self) -> str:
        """The source host: highest version, then top-level, then the first host name."""
        if self._best is None:
            if self.flat:
                self._best = self._pick(self.holders)
            else:  # the best of each manager's best (computed anyway for drift)
                self._best = self._pick(sorted(self.by_manager().values()))
        return self._best

    def _pick(self, hosts: Iterable[str]) -> str:
        best, best_key = "", None
        if self.flat:
            # Every version is equal: the first top-level host with a version wins.
            versions, holders = self.versions, self.holders
            for h in hosts:
                key = (versions[h] is not None, holders[h].top_level)
                if key == (True, True):
                    return h
                if best_key is None or key > best_key:
                    best, best_key = h, key
            return best
        ranks = self.ranks()
        best_rank: tuple[Any, ...] | None = None
        for h in hosts:
            key2 = (ranks[h], self.holders[h].top_level)
            if best_rank is None or key2 > best_rank:
                best, best_rank = h, key2
        return best

    def best_for(self, manager: str) -> str:
        """The best holder whose own manager is ``manager`` (its version means something there)."""
        return self.by_manager().get(manager) or self.best()

    def by_manager(self) -> dict[str, str]:
        if self._by_manager is None:
            groups: dict[str, list[str]] = {}
            for h, manager in self.managers().items():
                groups.setdefault(manager, []).append(h)
            self._by_manager = {m: self._pick(hs) for m, hs in groups.items()}
        return self._by_manager

    def holder_managers(self) -> list[str]:
        """Managers the holders used, the source host's first."""
        first = self.managers()[self.best()]
        return sorted(self.by_manager(), key=lambda m: (m != first, m))

    def meta(self) -> _Meta:
        if self._meta is None:
            rep = self.holders[self.best()]
            e = self.entry
            if e is not None:
                self._meta = _Meta(e.name, rep.type, e.domain, e.priority, e.risk, tuple(e.tags))
            else:
                self._meta = _Meta(rep.name, rep.type, rep.domain, rep.priority, rep.risk, ())
        return self._meta


def _percent(present: int, total: int) -> float:
    return round(100.0 * present / total, 1) if total else 100.0


def _figure(present: int, total: int) -> dict[str, Any]:
    return {"present": present, "total": total, "percent": _percent(present, total)}


class _Engine:
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

    # ----------------------------------------------------------------- policy

    def decide(self, host: str, cap: _Cap) -> tuple[str, str]:
        matcher = self.matcher_of[host]
        key = (id(matcher), cap.cid)
        found = self._decisions.get(key)
        if found is None:
            meta = cap.meta()
            found = self._decisions[key] = matcher.decide(cap.cid, meta.domain, meta.tags)
        return found

    # ----------------------------------------------------------------- portability

    def template(self, cap: _Cap, profile: _Profile) -> tuple[dict[str, Any] | None, str]:
        """(recommendation template for hosts of this profile, "") or (None, unportable reason)."""
        key = (cap.cid, profile)
        found = self._options.get(key)
        if found is None:
            found = self._options[key] = self._template(cap, profile)
        return found

    def _template(self, cap: _Cap, profile: _Profile) -> tuple[dict[str, Any] | None, str]:
        option = self._install_option(cap, profile)
        if isinstance(option, str):
            return None, option
        manager, package, details, chosen = option
        source = chosen or cap.best_for(manager)
        src_cap = cap.holders[source]
        src_version = cap.versions[source]
        meta = cap.meta()
        same = src_cap.source.manager == manager
        return {
            "id": cap.cid,
            "name": meta.name,
            "type": src_cap.type,
            "domain": meta.domain,
            "priority": meta.priority,
            "risk": meta.risk,
            "reason": "missing",
            "from_host": source,
            "source_version": src_version,
            "version": src_version if same else None,
            "current_version": None,
            "pinned": False,
            "manager": manager,
            "package": package,
            "details": details,
        }, ""

    def _install_option(self, cap: _Cap, profile: _Profile) -> _Option | str:
        cid = cap.cid
        best = cap.holders[cap.best()]
        qualifier, _, rest = cid.partition(":") if ":" in cid and cap.entry is None else ("", "", cid)
        kind = best.type
        if kind == "api_key" or qualifier == "api_key":
            name = best.source.package or rest
            return _checked(lambda: safety.check_env_name(name)) or ("env", name, {}, None)
        if kind == "mcp_server" or qualifier == "mcp":
            return self._mcp_option(cap, profile, rest)
        if kind == "git_repo" or qualifier == "git":
            return self._git_option(cap, profile)
        if cap.entry is not None:
            return self._catalog_option(cap, profile)
        if qualifier in managers.INSTALL_MANAGERS:
            if not profile.usable(qualifier):
                if not managers.runs_on(qualifier, profile.family):
                    return f"{qualifier}-only; {qualifier} does not run on {profile.family}"
                return f"{qualifier}-only; the host has no {qualifier}"
            src = cap.holders[cap.best_for(qualifier)].source
            package = src.package if src.manager == qualifier and src.package else rest
            bad = _checked(lambda: safety.check_package(qualifier, package))
            return bad or (qualifier, package, {}, None)
        if qualifier == "command":
            return f"no package known for command {rest}"
        if qualifier == "registry":
            return "found in the Windows registry only; no package known (give it a catalog entry)"
        return f"no installer for {qualifier or kind} capabilities"

    def _catalog_option(self, cap: _Cap, profile: _Profile) -> _Option | str:
        entry = cap.entry
        assert entry is not None
        order: list[str] = [m for m in cap.holder_managers() if m in managers.LANGUAGE_MANAGERS]
        order += [m for m in managers.preference(profile.family) if m not in order]
        for manager in order:
            package = entry.package_for(manager)
            if package and profile.usable(manager):
                bad = _checked(lambda m=manager, p=package: safety.check_package(m, p))
                return bad or (manager, package, {}, None)
        known = sorted(entry.packages, key=managers.rank)
        if not known:
            return "the catalog lists no package for it"
        have = [m for m in managers.preference(profile.family) if profile.usable(m)]
        system = [m for m in have if m in managers.SYSTEM_MANAGERS]
        shown = system or have
        if not shown:
            return f"{'/'.join(known)}-only; the host has no package manager Cyclotron installs with"
        return f"{'/'.join(known)}-only; no {'/'.join(shown)} package known"

    def _candidates(self, cap: _Cap) -> list[str]:
        """Holders to take a config from: the best first, then the others by name."""
        best = cap.best()
        return [best, *(h for h in cap.holders if h != best)]

    def _git_option(self, cap: _Cap, profile: _Profile) -> _Option | str:
        if not profile.has_git:
            return "git is not installed on the host"
        why = "no git remote recorded on any host that has it"
        for host in self._candidates(cap):
            details = cap.holders[host].details or {}
            remote = str(details.get("remote") or "")
            bad = _checked(lambda r=remote: safety.check_git_remote(r)) if remote else why
            if bad:
                why = bad
                continue
            return "git", remote, {k: details[k] for k in ("remote", "branch") if k in details}, host
        return why

    def _mcp_option(self, cap: _Cap, profile: _Profile, name: str) -> _Option | str:
        """The first holder (best first) whose server config can be reproduced on this host."""
        reasons: list[str] = []
        for host in self._candidates(cap):
            found = self._mcp_config(cap.holders[host], profile, name)
            if isinstance(found, str):
                reasons.append(found)
                continue
            return (*found, host)
        # Say what this host lacks when some config could travel, else why none can.
        return next((r for r in reasons if "the host has no" in r), reasons[0])

    def _mcp_config(self, src: Any, profile: _Profile, name: str) -> tuple[str, str, dict[str, Any]] | str:
        details = dict(src.details or {})
        server = src.id.partition(":")[2] or name
        bad = _checked(lambda: safety.check_mcp_name(server))
        if bad:
            return bad
        transport = str(details.get("transport") or "stdio")
        if transport != "stdio":
            if not details.get("url"):
                return f"{transport} MCP server with no url recorded"
            return "mcp", server, details
        package = details.get("package") or _mcp_package(details)
        if not package:
            command = str(details.get("command") or "")
            return f"stdio MCP server runs {command!r}, which no package Cyclotron installs provides"
        details["package"] = package
        manager, pkg_name = str(package.get("manager", "")), str(package.get("name", ""))
        bad = _checked(lambda: safety.check_package(manager, pkg_name))
        if bad:
            return bad
        if manager == "npm" and not profile.usable("npm"):
            return f"MCP server runs {pkg_name} through npx; the host has no npm"
        if manager in ("pip", "pipx") and not (profile.usable("pip") or profile.usable("pipx")):
            return f"MCP server runs {pkg_name} through uvx/pipx; the host has no pip or pipx"
        return "mcp", server, details

    # ----------------------------------------------------------------- main pass

    def run(self) -> dict[str, Any]:
        hosts = self.hosts
        index: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        top: set[str] = set()
        for r in self.records:
            h = r.host
            for cid, c in r.caps.items():
                index[cid][h] = c
            top.update([cid for cid, c in r.caps.items() if c.top_level])

        entries = self.catalog.entries
        filtering, special = self.filtering, self.special
        rows: dict[str, dict[str, Any]] = {}
        universal: list[str] = []
        partial: dict[str, list[str]] = {}
        unique: dict[str, list[str]] = {h: [] for h in hosts}
        drift_list: list[dict[str, Any]] = []
        recs: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
        unportable: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
        excluded: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
        missing_count = dict.fromkeys(hosts, 0)
        ignored_count = dict.fromkeys(hosts, 0)
        domain_counts: dict[str, list[int]] = {}

        for cid in sorted(top):
            d = index[cid]
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
            for h in missing:
                missing_count[h] += 1
                if h in filtering:
                    decision, why = self.decide(h, cap)
                    if decision == "excluded":
                        excluded_here.append(h)
                        excluded[h].append(self._gap_item(cap, h, "missing", why))
                        continue
                tmpl, why = self.template(cap, self.profile_of[h])
                if tmpl is None:
                    unportable[h].append(self._gap_item(cap, h, "missing", why))
                    continue
                rec = dict(tmpl)
                if h in special:
                    self._personalise(rec, h)
                recs[h].append(rec)
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

        return self._document(rows, universal, partial, unique, drift_list, recs, unportable, excluded,
                              missing_count, ignored_count, domain_counts)

    def _gap_item(self, cap: _Cap, host: str, gap: str, reason: str) -> dict[str, Any]:
        meta = cap.meta()
        priority = meta.priority
        if host in self.special:
            override = self.policy_of[host].overrides.get(cap.cid)
            if override and override.priority:
                priority = override.priority
        return {"id": cap.cid, "name": meta.name, "type": meta.type, "domain": meta.domain,
                "priority": priority, "gap": gap, "reason": reason}

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
        recs: dict[str, list[dict[str, Any]]],
        unportable: dict[str, list[dict[str, Any]]],
        excluded: dict[str, list[dict[str, Any]]],
    ) -> None:
        """Outdated and pinned recommendations for hosts that have the capability."""
        ranks = cap.ranks()
        holders, versions = cap.holders, cap.versions
        by_manager = cap.by_manager()
        manager_of = cap.managers()
        special = self.special
        hosts = holders if drifted else [h for h in holders if h in special]
        templates: dict[tuple[str, str, str, str, str], dict[str, Any] | str] = {}
        for h in hosts:
            c = holders[h]
            pin = self.policy_of[h].pinned.get(cap.cid) if h in special else None
            current = versions[h]
            manager = manager_of[h]
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
                        excluded[h].append(self._gap_item(cap, h, reason, why))
                    continue
            key = (manager, peer, reason, wanted, c.source.package)
            tmpl = templates.get(key)
            if tmpl is None:
                tmpl = templates[key] = self._upgrade_template(cap, c, peer, manager, reason, wanted)
            if isinstance(tmpl, str):
                unportable[h].append(self._gap_item(cap, h, reason, tmpl))
                continue
            rec = dict(tmpl)
            rec["current_version"] = current
            rec["pinned"] = pin is not None
            if h in special:
                self._personalise(rec, h)
            recs[h].append(rec)

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

    def _document(
        self,
        rows: dict[str, dict[str, Any]],
        universal: list[str],
        partial: dict[str, list[str]],
        unique: dict[str, list[str]],
        drift_list: list[dict[str, Any]],
        recs: dict[str, list[dict[str, Any]]],
        unportable: dict[str, list[dict[str, Any]]],
        excluded: dict[str, list[dict[str, Any]]],
        missing_count: dict[str, int],
        ignored_count: dict[str, int],
        domain_counts: dict[str, list[int]],
    ) -> dict[str, Any]:
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

        def by_priority(item: dict[str, Any]) -> int:
            # Lists are built in id order; a stable sort by priority keeps that within a priority.
            return _PRIORITY_RANK.get(item["priority"], 1)

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
        doc["recommended_distribution"] = {f"to_{h}": sorted(recs[h], key=by_priority) for h in hosts}
        doc["unportable"] = {f"to_{h}": sorted(unportable[h], key=by_priority) for h in hosts}
        doc["policy_excluded"] = {f"to_{h}": sorted(excluded[h], key=by_priority) for h in hosts}
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
            "recommendations": sum(len(v) for v in recs.values()),
            "unportable": sum(len(v) for v in unportable.values()),
            "excluded": sum(len(v) for v in excluded.values()),
        }
        return doc


def _checked(check: Any) -> str:
    """"" when ``check()`` passes, else the PlanError message (why the name cannot travel)."""
    try:
        check()
    except PlanError as exc:
        return str(exc)
    return ""


def _order(current: str | None, wanted: str, manager: str) -> int | None:
    if current is None:
        return None
    keys = comparable_keys([parse_version(current, manager), parse_version(wanted, manager)])
    if keys is None:
        return None
    return (keys[0] > keys[1]) - (keys[0] < keys[1])


def _mcp_package(details: Mapping[str, Any]) -> dict[str, str] | None:
    """The package a stdio server's launcher runs (npx/uvx/pipx), as normalize records it."""
    from .normalize import mcp_package
    from .raw import RawMcpServer

    command = details.get("command")
    args = details.get("args") or []
    if not isinstance(command, str) or not isinstance(args, list):
        return None
    server = RawMcpServer(name="x", assistant="", path="", command=command, args=[str(a) for a in args])
    return mcp_package(server)


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
) -> dict[str, Any]:
    """The N-way matrix (see MatrixDocument) for any number of hosts.

    Raises ManifestError for duplicate host names or no manifests, PolicyError for a bad policy.
    """
    catalog = catalog or load_catalog(None, dict(domains) if domains else None)
    resolved = resolve_policies(policies, catalog)
    engine = _Engine(_records(manifests), catalog, resolved)
    # The engine allocates hundreds of thousands of dicts and lists and creates no reference
    # cycles: pausing the cyclic collector saves a third of the time on a large fleet.
    paused = gc.isenabled()
    gc.disable()
    try:
        return engine.run()
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
        out.append(HostRecord(r.host, r.family, r.distribution, r.managers, r.gathered_at, caps))
    return out


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def dumps(doc: Mapping[str, Any]) -> str:
    """The stable JSON text of a comparison document.

    Keys sorted; the top level and its mappings are laid out one entry per line, as are lists
    of objects below them (recommendations, drift entries), everything deeper on that line.
    A change to one capability changes one line of a diff, and each line goes through the C
    encoder (json's indent= falls back to the pure-Python one: ten times slower).
    """
    out: list[str] = []
    _layout(doc, 0, out, "")
    return "".join(out) + "\n"


def _layout(value: Any, depth: int, out: list[str], lead: str) -> None:
    pad = "  " * depth
    expand = bool(value) and (
        (isinstance(value, Mapping) and depth < 2)
        or (isinstance(value, list) and (depth < 2 or isinstance(value[0], Mapping)) and depth < 3)
    )
    if not expand:
        out.append(f"{pad}{lead}{_ENCODER.encode(value)}")
        return
    if isinstance(value, Mapping):
        out.append(f"{pad}{lead}{{\n")
        items = sorted(value.items())
        for i, (key, item) in enumerate(items):
            _layout(item, depth + 1, out, f"{_ENCODER.encode(str(key))}: ")
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(f"{pad}}}")
    else:
        out.append(f"{pad}{lead}[\n")
        for i, item in enumerate(value):
            _layout(item, depth + 1, out, "")
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append(f"{pad}]")


__all__ = [
    "GAP_CATEGORIES",
    "MANAGER_PREFERENCE",
    "CapRow",
    "CapabilityRow",
    "ComparisonDocument",
    "DriftEntry",
    "GapItem",
    "GapsDocument",
    "HostRecord",
    "MatrixDocument",
    "Recommendation",
    "apply_recommendations",
    "capability_gaps",
    "capability_matrix",
    "comparison_json_schema",
    "distribution_plan",
    "dumps",
    "gaps_from_matrix",
    "host_record",
    "recommendations_for",
    "resolve_policies",
    "unportable_by_host",
]
