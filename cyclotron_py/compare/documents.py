"""The comparison's output documents (pydantic models, the JSON Schema's source) and their constants."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

MATRIX_SCHEMA_VERSION = 1

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
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}  # high first; plan and the engine order by it

Reason = Literal["missing", "outdated", "pinned"]


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
    managers_inferred: bool = Field(
        default=False, description="The manifest listed no managers; they were read off its capabilities' sources."
    )
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
