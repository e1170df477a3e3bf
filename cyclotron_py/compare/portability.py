"""Portability: whether a capability can be installed on a host profile, through what, or why not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import managers, safety
from ..catalog import Catalog
from ..errors import PlanError
from .capability import _Cap

# Which manager installs a catalog capability on each OS, first match wins (cyclotron_py.managers).
MANAGER_PREFERENCE: dict[str, tuple[str, ...]] = {f: managers.preference(f) for f in ("windows", "linux", "darwin")}
# Managers a recommendation can name (installer roles exist for these).
UPGRADE_MANAGERS: frozenset[str] = frozenset(managers.INSTALL_MANAGERS) | {"mcp"}


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


class _Portability:
    """Engine methods that answer "can this capability travel to hosts of this profile?"."""

    catalog: Catalog
    _options: dict[tuple[str, _Profile], tuple[dict[str, Any] | None, str]]

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


def _checked(check: Any) -> str:
    """"" when ``check()`` passes, else the PlanError message (why the name cannot travel)."""
    try:
        check()
    except PlanError as exc:
        return str(exc)
    return ""


def _mcp_package(details: Mapping[str, Any]) -> dict[str, str] | None:
    """The package a stdio server's launcher runs (npx/uvx/pipx), as normalize records it."""
    from ..normalize import mcp_package
    from ..raw import RawMcpServer

    command = details.get("command")
    args = details.get("args") or []
    if not isinstance(command, str) or not isinstance(args, list):
        return None
    server = RawMcpServer(name="x", assistant="", path="", command=command, args=[str(a) for a in args])
    return mcp_package(server)
