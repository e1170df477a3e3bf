"""The capability catalog: cross-OS identity of capabilities.

One capability id (``nodejs``) maps to its package id per manager, a verify probe,
a domain, a priority and a risk. The shipped catalog (``data/catalog.yml``) can be
extended or overridden from inventory (``cyclotron_catalog``, same shape).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import managers
from .errors import CatalogError
from .models import (
    CAPABILITY_TYPES,
    DEFAULT_DOMAINS,
    Capability,
    CapabilitySource,
    Priority,
    Risk,
)

# Package managers a catalog entry may name a package for, and the type of what each reports.
INSTALL_MANAGERS: tuple[str, ...] = managers.INSTALL_MANAGERS
TYPE_BY_MANAGER: dict[str, str] = managers.TYPE_BY_MANAGER

# Qualifier used in ids of capabilities the catalog does not know.
QUALIFIER_BY_TYPE: dict[str, str] = {
    "mcp_server": "mcp",
    "api_key": "api_key",
    "command": "command",
    "git_repo": "git",
}


class VerifyProbe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str] = Field(min_length=1)
    regex: str = r"(\d+(?:\.\d+)+)"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from exc
        return value


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str
    priority: Priority = "normal"
    risk: Risk = "low"


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = ""
    name: str
    domain: str
    priority: Priority = "normal"
    risk: Risk = "low"
    tags: list[str] = Field(default_factory=list)
    # manager -> package ids; the first is installed, the rest are aliases.
    packages: dict[str, list[str]] = Field(default_factory=dict)
    verify: VerifyProbe | None = None
    # Capability ids that must be present first (a runtime before its packages).
    requires: list[str] = Field(default_factory=list)

    @field_validator("packages", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("packages")
    @classmethod
    def _known_managers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for manager, ids in value.items():
            if manager not in INSTALL_MANAGERS:
                raise ValueError(
                    f"unknown manager {manager!r}; use one of {', '.join(INSTALL_MANAGERS)}"
                )
            if not ids:
                raise ValueError(f"manager {manager!r} lists no package id")
        return value

    def package_for(self, manager: str) -> str | None:
        ids = self.packages.get(manager)
        return ids[0] if ids else None


class Catalog:
    """Lookup tables over catalog entries. Build with ``load_catalog``."""

    def __init__(
        self,
        entries: dict[str, CatalogEntry],
        defaults: dict[str, Defaults],
        domains: dict[str, str],
    ) -> None:
        self.entries = entries
        self.defaults = defaults
        self.domains = domains
        self._by_package: dict[tuple[str, str], str] = {}
        for cap_id, entry in entries.items():
            for manager, ids in entry.packages.items():
                for package in ids:
                    self._by_package.setdefault((manager, managers.package_key(manager, package)), cap_id)

    def __contains__(self, cap_id: object) -> bool:
        return cap_id in self.entries

    def get(self, cap_id: str) -> CatalogEntry | None:
        return self.entries.get(cap_id)

    def lookup(self, manager: str, package: str) -> CatalogEntry | None:
        """The entry whose package id (or alias) for ``manager`` is ``package``."""
        cap_id = self._by_package.get((manager, managers.package_key(manager, package)))
        return self.entries[cap_id] if cap_id else None

    def identify(
        self,
        manager: str,
        package: str,
        *,
        cap_type: str | None = None,
        version: str | None = None,
        name: str | None = None,
        path: str = "",
        top_level: bool = True,
        details: dict[str, Any] | None = None,
    ) -> Capability:
        """Build a Capability for something found through ``manager``.

        Catalog entries give id, name, domain, priority and risk; anything else
        gets a manager-qualified id and the per-type defaults.
        """
        cap_type = cap_type or TYPE_BY_MANAGER[manager]
        entry = self.lookup(manager, package) if manager in INSTALL_MANAGERS else None
        if entry is not None:
            return Capability(
                id=entry.id,
                type=cap_type,  # type: ignore[arg-type]
                name=entry.name,
                version=version or None,
                domain=entry.domain,
                priority=entry.priority,
                risk=entry.risk,
                source=CapabilitySource(manager=manager, package=package, path=path),
                top_level=top_level,
                details=details or {},
            )
        qualifier = QUALIFIER_BY_TYPE.get(cap_type, manager)
        key = managers.package_key(manager, package)
        defaults = self.defaults[cap_type]
        return Capability(
            id=f"{qualifier}:{key}",
            type=cap_type,  # type: ignore[arg-type]
            name=name or package,
            version=version or None,
            domain=defaults.domain,
            priority=defaults.priority,
            risk=defaults.risk,
            source=CapabilitySource(manager=manager, package=package, path=path),
            top_level=top_level,
            details=details or {},
        )

    def entry_for_command(self, command: str) -> CatalogEntry | None:
        """The entry whose verify probe runs ``command`` (e.g. ``rg`` -> ripgrep)."""
        for entry in self.entries.values():
            if entry.verify and entry.verify.command[0] == command:
                return entry
        return None


def _parse(data: Any, origin: str, domains: dict[str, str]) -> tuple[dict[str, CatalogEntry], dict[str, Defaults]]:
    if not isinstance(data, dict):
        raise CatalogError(f"{origin}: the catalog must be a mapping with a 'capabilities' key")
    entries: dict[str, CatalogEntry] = {}
    raw_entries = data.get("capabilities") or {}
    if not isinstance(raw_entries, dict):
        raise CatalogError(f"{origin}: 'capabilities' must map capability ids to entries")
    for cap_id, raw in raw_entries.items():
        if not isinstance(raw, dict):
            raise CatalogError(f"{origin}: capabilities.{cap_id} must be a mapping")
        try:
            entry = CatalogEntry.model_validate({**raw, "id": str(cap_id)})
        except ValidationError as exc:
            raise CatalogError(f"{origin}: capabilities.{cap_id}: {_first_error(exc)}") from None
        if entry.domain not in domains:
            raise CatalogError(
                f"{origin}: capabilities.{cap_id}.domain {entry.domain!r} is not a known domain; "
                f"use one of {', '.join(domains)} or add it to cyclotron_domains"
            )
        entries[entry.id] = entry
    defaults: dict[str, Defaults] = {}
    for cap_type, raw in (data.get("defaults") or {}).items():
        if cap_type not in CAPABILITY_TYPES:
            raise CatalogError(f"{origin}: defaults.{cap_type} is not a capability type")
        try:
            defaults[cap_type] = Defaults.model_validate(raw)
        except ValidationError as exc:
            raise CatalogError(f"{origin}: defaults.{cap_type}: {_first_error(exc)}") from None
        if defaults[cap_type].domain not in domains:
            raise CatalogError(f"{origin}: defaults.{cap_type}.domain is not a known domain")
    return entries, defaults


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    text = resources.files("cyclotron_py").joinpath("data/catalog.yml").read_text(encoding="utf-8")
    # libyaml's safe loader when PyYAML has it: the same document, ten times quicker (0.05 s -> 0.005 s).
    data: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return data


def load_catalog(
    overrides: dict[str, Any] | None = None,
    domains: dict[str, str] | None = None,
) -> Catalog:
    """The shipped catalog merged with inventory ``overrides`` (entries there win)."""
    if not overrides and not domains:
        return _default_catalog()
    return _build_catalog(overrides, domains)


@lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    # Built once per process (and before Ansible forks, see plugins/callback/cyclotron_preload.py).
    return _build_catalog(None, None)


def _build_catalog(overrides: dict[str, Any] | None, domains: dict[str, str] | None) -> Catalog:
    domains = dict(domains or DEFAULT_DOMAINS)
    entries, defaults = _parse(_shipped(), "shipped catalog", domains)
    if overrides:
        extra_entries, extra_defaults = _parse(overrides, "cyclotron_catalog", domains)
        entries.update(extra_entries)
        defaults.update(extra_defaults)
    missing = [t for t in CAPABILITY_TYPES if t not in defaults]
    if missing:
        raise CatalogError(f"catalog defaults missing for types: {', '.join(missing)}")
    return Catalog(entries, defaults, domains)
