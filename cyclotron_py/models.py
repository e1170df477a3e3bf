"""Pydantic models for the capability manifest, the file hosts exchange.

A manifest may come from another machine or a git remote, so every field is
validated strictly: unknown keys are rejected, names are bounded, and ids follow
one grammar (a catalog id like ``nodejs`` or a manager-qualified id like
``pip:requests``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import managers as _managers

SCHEMA_VERSION: Final = 1

# The seven default domains. A fleet may define its own in inventory
# (``cyclotron_domains``); the catalog must then use only those names.
DEFAULT_DOMAINS: dict[str, str] = {
    "infrastructure": "Runtimes, containers, shells, package managers, cloud and network tools.",
    "development": "Editors, compilers, build tools, linters, language packages and SDKs.",
    "ai": "AI assistants, MCP servers, model clients and their API keys.",
    "data": "Databases, data processing, notebooks and analytics tools.",
    "security": "Secrets, encryption, VPN, password managers and scanners.",
    "productivity": "Browsers, office, notes, communication and file utilities.",
    "media": "Audio, video, graphics, streaming and games.",
}

CapabilityType = Literal[
    "software",
    "python_package",
    "npm_package",
    "pipx_tool",
    "mcp_server",
    "api_key",
    "command",
    "git_repo",
]
CAPABILITY_TYPES: tuple[str, ...] = CapabilityType.__args__  # type: ignore[attr-defined]

Priority = Literal["high", "normal", "low"]
Risk = Literal["low", "medium", "high"]
OsFamily = Literal["windows", "linux", "darwin"]

# Managers Cyclotron knows how to read from or install through (one table: managers.py).
MANAGERS: tuple[str, ...] = _managers.MANAGERS

# A capability id: catalog ids are lowercase slugs; anything else is
# "<qualifier>:<name>" where the name keeps what the manager allows (scoped
# npm names, winget dotted ids, git host paths, environment variable names).
CAPABILITY_ID_RE = re.compile(
    r"^(?:[a-z0-9][a-z0-9._+-]{0,99}"
    r"|[a-z][a-z0-9_]{1,15}:[A-Za-z0-9@._+/~-][A-Za-z0-9@._+/:~ -]{0,299})$"
)
HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OsInfo(StrictModel):
    family: OsFamily
    distribution: str = Field(default="", max_length=200)
    version: str = Field(default="", max_length=100)
    arch: str = Field(default="", max_length=50)


class CapabilitySource(StrictModel):
    manager: str = Field(description="Where the capability was found: one of MANAGERS.")
    package: str = Field(default="", max_length=300, description="Package id in that manager.")
    path: str = Field(default="", max_length=1000, description="Config file, prefix or repo path.")

    @field_validator("manager")
    @classmethod
    def _known_manager(cls, value: str) -> str:
        if value not in MANAGERS:
            raise ValueError(f"unknown manager {value!r}; use one of {', '.join(MANAGERS)}")
        return value


class Capability(StrictModel):
    id: str = Field(max_length=320, description="Catalog id (nodejs) or qualified id (pip:requests).")
    type: CapabilityType
    name: str = Field(min_length=1, max_length=300)
    version: str | None = Field(default=None, max_length=100)
    domain: str = Field(min_length=1, max_length=50)
    priority: Priority = "normal"
    risk: Risk = "low"
    source: CapabilitySource
    # False for packages installed only as a dependency of another one; such
    # entries appear only with the audit switch and are never distributed.
    top_level: bool = True
    # Type-specific data: MCP transport/command/args/env names, git remote and
    # branch, probe output. Never secret values.
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_grammar(cls, value: str) -> str:
        if not CAPABILITY_ID_RE.match(value):
            raise ValueError(
                "must be a lowercase catalog id like 'nodejs' or a qualified id like 'pip:requests'"
            )
        return value


class SourceError(StrictModel):
    source: str = Field(max_length=200, description="Manager, command or file that failed.")
    message: str = Field(max_length=2000)


class Manifest(StrictModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    host: str = Field(description="Inventory hostname; must match the file name <host>.json.")
    gathered_at: datetime
    os: OsInfo
    managers: list[str] = Field(
        default_factory=list, description="Package managers available on the host."
    )
    capabilities: list[Capability] = Field(default_factory=list)
    errors: list[SourceError] = Field(default_factory=list)

    @field_validator("host")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if not HOST_RE.match(value):
            raise ValueError("must be an inventory hostname: letters, digits, '.', '_' or '-'")
        return value

    def by_id(self) -> dict[str, Capability]:
        return {cap.id: cap for cap in self.capabilities}


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema checked in as ``schema/manifest.schema.json``."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cyclotron.dev/schema/manifest-v1.json"
    return schema
