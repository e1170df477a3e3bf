"""What a package manager is: the one table every other module derives from.

A manager is a place a capability is found (``source.manager`` in a manifest) and, for most,
a way to install one. Each entry says which OS families it runs on, the installer role that
installs through it, how its versions order, what its package names look like, which
capability type its packages are, how its package ids compare, and how it ranks against the
other managers of the same OS when several could install a capability.

Adding a manager (scoop, pacman, ...) means one entry here and one ``roles/cyclotron_<role>``.
``tests/unit/test_managers.py`` proves no other module keeps its own manager table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

Kind = Literal["system", "language", "config"]
# How two spellings of one package id compare: PEP 503, case-insensitive, slug, or exact.
PackageKey = Literal["pep503", "lower", "slug", "exact"]


@dataclass(frozen=True, slots=True)
class Manager:
    name: str
    kind: Kind
    # Capability type of what this manager reports (apt -> software, pip -> python_package).
    capability_type: str
    # OS families it runs on; None: anywhere its program is present.
    os_families: frozenset[str] | None = None
    # Installer role, without the ``cyclotron_`` prefix; None: nothing installs through it.
    role: str | None = None
    # The role variable that receives this manager's items (pipx shares the pip role).
    items_var: str = ""
    # Version scheme (cyclotron_py.versions); "" = detected from the text.
    version_scheme: str = ""
    # Names the manager accepts: anything else never reaches an installer.
    package_pattern: re.Pattern[str] | None = None
    package_key: PackageKey = "exact"
    # Lower ranks first: which manager describes a capability two of them report, and which a
    # host prefers to install with among those its OS runs.
    rank: int = 99
    # Capability id the host needs before this manager can install (npm needs nodejs).
    runtime: str = ""
    # A package id for error messages ("write the id as apt lists it, e.g. python3-venv").
    example: str = ""
    # The install command shown to people in reports (never executed): argv with {package},
    # and how a wanted version is spelled ({package}=={version}).
    install_hint: tuple[str, ...] = ()
    pinned_spec: str = "{package}"
    upgrade_hint: tuple[str, ...] = ()

    @property
    def installs_packages(self) -> bool:
        """A catalog entry may name a package for it and a plan item may install through it."""
        return self.role is not None and self.package_pattern is not None

    def runs_on(self, family: str) -> bool:
        return self.os_families is None or family in self.os_families


_PEP508 = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_WINDOWS = frozenset({"windows"})
_LINUX = frozenset({"linux"})

_TABLE: tuple[Manager, ...] = (
    Manager(
        "winget", "system", "software", _WINDOWS, role="winget", version_scheme="winget",
        package_pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}$"), package_key="lower", rank=0,
        example="Git.Git", install_hint=("winget", "install", "--id", "{package}", "--exact", "{version_args}"),
    ),
    Manager(
        "choco", "system", "software", _WINDOWS, role="choco", version_scheme="winget",
        package_pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"), package_key="lower", rank=1,
        example="nodejs-lts", install_hint=("choco", "install", "{package}", "-y", "{version_args}"),
    ),
    Manager(
        # Debian policy: lowercase, digits, + - . ; at least two characters
        "apt", "system", "software", _LINUX, role="apt", version_scheme="debian",
        package_pattern=re.compile(r"^[a-z0-9][a-z0-9+.-]{1,99}$"), package_key="lower", rank=2,
        example="python3-venv", install_hint=("sudo", "apt-get", "install", "-y", "{spec}"),
        pinned_spec="{package}={version}",
    ),
    Manager(
        # Read from the rpm database, installed through dnf (Fedora, RHEL and their kin).
        "rpm", "system", "software", _LINUX, role="dnf", version_scheme="debian",
        package_pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]{0,99}$"), package_key="lower", rank=3,
        example="python3-devel", install_hint=("sudo", "dnf", "install", "-y", "{spec}"),
        pinned_spec="{package}-{version}",
    ),
    Manager(
        # formulae and casks, optionally tap-qualified (user/tap/name)
        "brew", "system", "software", frozenset({"darwin", "linux"}), role="brew", version_scheme="loose",
        package_pattern=re.compile(r"^(?:[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*/)?[a-z0-9][a-z0-9@+._-]{0,99}$"),
        package_key="lower", rank=4, example="python@3.12", install_hint=("brew", "install", "{package}"),
        upgrade_hint=("brew", "upgrade", "{package}"),
    ),
    Manager(
        "pipx", "language", "pipx_tool", role="pip", items_var="cyclotron_pip_pipx_items", version_scheme="pep440",
        package_pattern=_PEP508, package_key="pep503", rank=5, runtime="pipx", example="httpie",
        install_hint=("pipx", "install", "{spec}"), upgrade_hint=("pipx", "install", "--force", "{spec}"),
        pinned_spec="{package}=={version}",
    ),
    Manager(
        "pip", "language", "python_package", role="pip", version_scheme="pep440", package_pattern=_PEP508,
        package_key="pep503", rank=6, runtime="python", example="requests",
        install_hint=("pip", "install", "{spec}"), pinned_spec="{package}=={version}",
    ),
    Manager(
        # optional @scope/, URL-safe lowercase-ish names (legacy names may have capitals)
        "npm", "language", "npm_package", role="npm", version_scheme="semver",
        package_pattern=re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]{0,100}/)?[A-Za-z0-9][A-Za-z0-9._~-]{0,213}$"),
        rank=7, runtime="nodejs", example="@anthropic-ai/claude-code",
        install_hint=("npm", "install", "-g", "{spec}"), pinned_spec="{package}@{version}",
    ),
    Manager("mcp", "config", "mcp_server", role="mcp", rank=20),
    Manager("env", "config", "api_key", role="api_keys", rank=21),
    Manager("path", "config", "command", rank=22),
    Manager("git", "config", "git_repo", role="git", rank=23),
    # Windows uninstall entries: what is installed, not how; display names become slugs.
    Manager("registry", "config", "software", _WINDOWS, version_scheme="winget", package_key="slug", rank=24),
)

MANAGERS_BY_NAME: dict[str, Manager] = {m.name: m for m in _TABLE}
# Every manager a manifest may name, in rank order.
MANAGERS: tuple[str, ...] = tuple(m.name for m in sorted(_TABLE, key=lambda m: m.rank))
# Managers a catalog entry may name a package for and a plan may install through.
INSTALL_MANAGERS: tuple[str, ...] = tuple(m for m in MANAGERS if MANAGERS_BY_NAME[m].installs_packages)
SYSTEM_MANAGERS: tuple[str, ...] = tuple(m for m in MANAGERS if MANAGERS_BY_NAME[m].kind == "system")
LANGUAGE_MANAGERS: frozenset[str] = frozenset(m for m in MANAGERS if MANAGERS_BY_NAME[m].kind == "language")
TYPE_BY_MANAGER: dict[str, str] = {m.name: m.capability_type for m in _TABLE}
SCHEME_BY_MANAGER: dict[str, str] = {m.name: m.version_scheme for m in _TABLE if m.version_scheme}


@dataclass(frozen=True, slots=True)
class Role:
    """An installer role and the variable its items go in."""

    name: str
    managers: tuple[str, ...]
    items_vars: dict[str, str] = field(default_factory=dict)  # manager -> role variable


# Roles run in this order: OS packages and runtimes first, then language packages, repos,
# API keys (MCP servers may read them) and MCP servers last.
ROLE_ORDER: tuple[str, ...] = ("apt", "dnf", "brew", "winget", "choco", "pip", "npm", "git", "api_keys", "mcp")


def _roles() -> dict[str, Role]:
    found: dict[str, list[Manager]] = {}
    for m in sorted(_TABLE, key=lambda m: m.rank):
        if m.role:
            found.setdefault(m.role, []).append(m)
    missing = set(found) ^ set(ROLE_ORDER)
    if missing:  # pragma: no cover - a table edit that forgot ROLE_ORDER
        raise RuntimeError(f"ROLE_ORDER and the manager table disagree on {sorted(missing)}")
    return {
        role: Role(
            role,
            tuple(m.name for m in found[role]),
            {m.name: m.items_var or f"cyclotron_{role}_items" for m in found[role]},
        )
        for role in ROLE_ORDER
    }


ROLES: dict[str, Role] = _roles()


def get(name: str) -> Manager | None:
    return MANAGERS_BY_NAME.get(name)


def role_for(manager: str) -> str | None:
    entry = MANAGERS_BY_NAME.get(manager)
    return entry.role if entry else None


def items_var(manager: str) -> str:
    """The role variable a plan item of ``manager`` is passed in."""
    role = role_for(manager)
    if role is None:
        raise KeyError(manager)
    return ROLES[role].items_vars[manager]


def runtime(manager: str) -> str:
    """The capability id a host needs before ``manager`` can install there ("" = none)."""
    entry = MANAGERS_BY_NAME.get(manager)
    return entry.runtime if entry else ""


def rank(manager: str) -> int:
    entry = MANAGERS_BY_NAME.get(manager)
    return entry.rank if entry else 99


def runs_on(manager: str, family: str) -> bool:
    """False only when the manager is known and does not run on ``family``."""
    entry = MANAGERS_BY_NAME.get(manager)
    return entry is None or entry.runs_on(family)


def os_families(manager: str) -> frozenset[str] | None:
    entry = MANAGERS_BY_NAME.get(manager)
    return entry.os_families if entry else None


@cache
def preference(family: str) -> tuple[str, ...]:
    """Managers a host of ``family`` installs packages with, most preferred first."""
    return tuple(m for m in MANAGERS if MANAGERS_BY_NAME[m].installs_packages and MANAGERS_BY_NAME[m].runs_on(family))


def package_pattern(manager: str) -> re.Pattern[str] | None:
    entry = MANAGERS_BY_NAME.get(manager)
    return entry.package_pattern if entry else None


def package_key(manager: str, package: str) -> str:
    """A package id normalised the way its manager compares ids."""
    entry = MANAGERS_BY_NAME.get(manager)
    how = entry.package_key if entry else "exact"
    if how == "pep503":
        return re.sub(r"[-_.]+", "-", package).lower()
    if how == "lower":
        return package.lower()
    if how == "slug":
        # Display names ("Foo (64-bit)") become slugs that fit the id grammar.
        return re.sub(r"[^a-z0-9@._+~-]+", "-", package.lower()).strip("-") or "unnamed"
    return package


def infer_managers(source_managers: Iterable[str]) -> tuple[str, ...]:
    """The managers a host has, for a manifest that does not list them: a manager that reported
    a package is present. Sorted, known managers only."""
    return tuple(sorted({m for m in source_managers if m in MANAGERS_BY_NAME}))


def install_hint(manager: str, package: str, version: str = "", *, upgrade: bool = False) -> list[str] | None:
    """The install command shown to a person for one package (reports only; never executed)."""
    entry = MANAGERS_BY_NAME.get(manager)
    if entry is None or not entry.install_hint:
        return None
    template = entry.upgrade_hint if upgrade and entry.upgrade_hint else entry.install_hint
    spec = entry.pinned_spec.format(package=package, version=version) if version else package
    argv: list[str] = []
    for part in template:
        if part == "{version_args}":
            argv += ["--version", version] if version else []
        else:
            argv.append(part.format(package=package, spec=spec))
    return argv


def describe(managers: Mapping[str, Manager] | None = None) -> list[dict[str, object]]:
    """The table as plain data (docs and ``cyclotron managers``-style listings)."""
    table = managers or MANAGERS_BY_NAME
    return [
        {
            "name": m.name,
            "kind": m.kind,
            "os": sorted(m.os_families) if m.os_families else ["any"],
            "role": f"cyclotron_{m.role}" if m.role else "",
            "capability_type": m.capability_type,
            "version_scheme": m.version_scheme,
        }
        for m in sorted(table.values(), key=lambda m: m.rank)
    ]
