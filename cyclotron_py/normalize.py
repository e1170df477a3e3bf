"""Raw host facts -> Manifest, through the catalog.

Runs on the controller for every host, POSIX or Windows, so identity rules
(which package is which capability) live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from . import managers
from .catalog import Catalog
from .models import MANAGERS, Capability, CapabilitySource, Manifest, OsInfo, SourceError
from .raw import RawFacts, RawGitRepo, RawMcpServer

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")
_NPX_LAUNCHERS = ("npx", "npx.cmd", "bunx", "pnpx")
_PY_LAUNCHERS = ("uvx", "uvx.exe", "pipx")
# Every virtualenv is seeded with these; they are not a person's choice.
_VENV_SEED_PACKAGES = frozenset(("pip", "setuptools", "wheel", "distribute"))


def git_identity(remote: str) -> str:
    """``https://user@github.com/a/b.git`` and ``git@github.com:a/b`` -> ``github.com/a/b``."""
    url = remote.strip()
    if url.lower().startswith("file://"):
        # file:///srv/x.git and /srv/x.git name the same repository
        url = "/" + url[len("file://") :].lstrip("/")
    match = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/]+)(/.*)?$", url, re.IGNORECASE)
    if match:
        host, path = match.group(1), match.group(2) or ""
    else:
        scp = _SCP_LIKE.match(url)
        if not scp:
            return url.rstrip("/").removesuffix(".git")
        host, path = scp.group(1), "/" + scp.group(2)
    host = host.split(":")[0].lower()  # drop a port
    path = path.rstrip("/").removesuffix(".git")
    return f"{host}{path}"


def mcp_package(server: RawMcpServer) -> dict[str, str] | None:
    """The package a stdio MCP server runs, when its launcher makes that clear."""
    argv = [server.command, *server.args]
    # Windows wraps npx in `cmd /c npx ...`.
    if argv and argv[0].lower() in ("cmd", "cmd.exe") and len(argv) > 2 and argv[1].lower() == "/c":
        argv = argv[2:]
    if not argv:
        return None
    launcher = argv[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
    manager = "npm" if launcher in _NPX_LAUNCHERS else "pip" if launcher in _PY_LAUNCHERS else None
    if manager is None:
        return None
    rest = argv[1:]
    if launcher == "pipx" and rest[:1] == ["run"]:
        rest = rest[1:]
    for arg in rest:
        if arg.startswith("-"):
            continue
        name, version = _split_spec(arg, manager)
        return {"manager": manager, "name": name, "version": version}
    return None


def _split_spec(spec: str, manager: str) -> tuple[str, str]:
    if manager == "npm":
        at = spec.rfind("@")
        if at > 0:
            return spec[:at], spec[at + 1 :]
        return spec, ""
    if "==" in spec:
        name, _, version = spec.partition("==")
        return name, version
    return spec, ""


def build_manifest(
    host: str,
    raw: RawFacts | dict[str, Any],
    catalog: Catalog,
    *,
    gathered_at: datetime | None = None,
) -> Manifest:
    """Normalise one host's raw facts into a validated Manifest."""
    facts = raw if isinstance(raw, RawFacts) else RawFacts.model_validate(raw)
    errors = [SourceError(source=e.source[:200], message=e.message[:2000]) for e in facts.errors]
    caps: dict[str, Capability] = {}

    def add(cap: Capability) -> None:
        current = caps.get(cap.id)
        if current is None or _better(cap, current):
            caps[cap.id] = cap

    def guarded(source: str, build: Any) -> None:
        try:
            cap = build()
        except (ValidationError, ValueError) as exc:
            errors.append(SourceError(source=source[:200], message=f"skipped: {_short(exc)}"))
            return
        if cap is not None:
            add(cap)

    for pkg in facts.packages:
        if pkg.manager == "pip" and pkg.name.lower() in _VENV_SEED_PACKAGES:
            continue
        if pkg.manager == "apt" and ":" in pkg.name:
            # dpkg names foreign-architecture packages "name:arch"; apt installs by name.
            pkg = pkg.model_copy(update={"name": pkg.name.split(":", 1)[0]})
        if pkg.manager not in MANAGERS:
            errors.append(SourceError(source=pkg.manager[:200], message=f"unknown manager for {pkg.name!r}"))
            continue
        guarded(
            f"{pkg.manager}:{pkg.name}",
            lambda pkg=pkg: catalog.identify(
                pkg.manager, pkg.name, version=pkg.version, path=pkg.path, top_level=pkg.top_level
            ),
        )
    for server in _merge_mcp(facts.mcp_servers):
        guarded(f"mcp:{server[0].name}", lambda server=server: _mcp_capability(catalog, server))
    for key in facts.api_keys:
        guarded(
            f"api_key:{key.name}",
            lambda key=key: catalog.identify(
                "env", key.name, cap_type="api_key", path="" if key.origin == "env" else key.origin
            ),
        )
    for command in facts.commands:
        _add_command(catalog, caps, command.name, command.version, command.path, errors)
    for repo in facts.git_repos:
        guarded(f"git:{repo.path}", lambda repo=repo: _git_capability(catalog, repo))

    return Manifest(
        host=host,
        gathered_at=gathered_at or datetime.now(UTC).replace(microsecond=0),
        os=OsInfo(**facts.os.model_dump()),
        managers=sorted({m for m in facts.managers if m in MANAGERS}),
        capabilities=sorted(caps.values(), key=lambda c: c.id),
        errors=errors,
    )


def _better(new: Capability, old: Capability) -> bool:
    """Which of two reports of one capability id describes it (top-level, then manager rank)."""
    if new.top_level != old.top_level:
        return new.top_level
    # When two managers report the same capability, the better-ranked one describes it.
    return managers.rank(new.source.manager) < managers.rank(old.source.manager)


def _merge_mcp(servers: Iterable[RawMcpServer]) -> list[list[RawMcpServer]]:
    """Group entries of one server name configured in several assistants."""
    groups: dict[str, list[RawMcpServer]] = {}
    for server in servers:
        groups.setdefault(server.name, []).append(server)
    return [groups[name] for name in sorted(groups)]


def _mcp_capability(catalog: Catalog, group: list[RawMcpServer]) -> Capability:
    first = group[0]
    package = mcp_package(first)
    details: dict[str, Any] = {
        "transport": first.transport,
        "command": first.command,
        "args": list(first.args),
        "url": first.url,
        "env_names": sorted({n for s in group for n in s.env_names}),
        "configured_in": sorted(
            ({"assistant": s.assistant, "scope": s.scope, "path": s.path} for s in group),
            key=lambda d: (d["assistant"], d["scope"], d["path"]),
        ),
    }
    if package:
        details["package"] = package
    return catalog.identify(
        "mcp",
        first.name,
        cap_type="mcp_server",
        version=(package or {}).get("version") or None,
        path=first.path,
        details=details,
    )


def _git_capability(catalog: Catalog, repo: RawGitRepo) -> Capability | None:
    if not repo.remote:
        return None  # a repo with no remote has nothing to clone elsewhere
    identity = git_identity(repo.remote)
    return catalog.identify(
        "git",
        identity,
        cap_type="git_repo",
        name=identity.rsplit("/", 1)[-1],
        path=repo.path,
        details={"remote": repo.remote, "branch": repo.branch, "head": repo.head},
    )


def _add_command(
    catalog: Catalog,
    caps: dict[str, Capability],
    name: str,
    version: str | None,
    path: str,
    errors: list[SourceError],
) -> None:
    """A command on PATH: enrich the package that provides it, or record it alone."""
    entry = catalog.entry_for_command(name)
    if entry is not None and entry.id in caps:
        existing = caps[entry.id]
        if not existing.version and version:
            caps[entry.id] = existing.model_copy(update={"version": version})
        return
    try:
        if entry is not None:
            cap = Capability(
                id=entry.id,
                type="command",
                name=entry.name,
                version=version or None,
                domain=entry.domain,
                priority=entry.priority,
                risk=entry.risk,
                source=CapabilitySource(manager="path", package=name, path=path),
            )
        else:
            cap = catalog.identify("path", name, cap_type="command", version=version, path=path)
    except ValidationError as exc:
        errors.append(SourceError(source=f"command:{name}"[:200], message=f"skipped: {_short(exc)}"))
        return
    caps[cap.id] = cap


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}"[:500]
    return str(exc)[:500]

