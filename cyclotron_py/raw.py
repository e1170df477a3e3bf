"""Raw facts: what a host reports before the controller normalises it.

``cyclotron_facts`` (POSIX) returns this shape directly as the fact
``cyclotron_raw``; ``win_cyclotron_facts`` returns native Windows output that
``cyclotron_py.windows.to_raw`` turns into it. ``cyclotron_py.normalize`` then
maps it through the catalog into a Manifest. Values of secrets never appear:
API keys and MCP ``env`` blocks carry variable names only.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

RAW_FORMAT: Final = 1


class _Raw(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RawOs(_Raw):
    family: Literal["windows", "linux", "darwin"]
    distribution: str = ""
    version: str = ""
    arch: str = ""


class RawPackage(_Raw):
    # apt, rpm, brew, pip, pipx, npm, winget, choco, registry
    manager: str
    name: str
    version: str | None = None
    # False when installed only as a dependency (apt auto, brew non-leaf,
    # a Python package another installed package requires).
    top_level: bool = True
    # Interpreter/venv, npm prefix or similar, so installs target the same place.
    path: str = ""


class RawMcpServer(_Raw):
    name: str
    # claude_code, claude_desktop, cursor, vscode
    assistant: str
    # user, local (claude_code per-project), project (.mcp.json), global
    scope: str = "user"
    path: str = Field(description="Config file the entry was read from.")
    transport: str = "stdio"  # stdio, http, sse
    command: str = ""
    args: list[str] = Field(default_factory=list)
    url: str = ""
    env_names: list[str] = Field(default_factory=list)


class RawApiKey(_Raw):
    name: str
    # "env" for the process/user environment, else the .env file path.
    origin: str = "env"


class RawCommand(_Raw):
    name: str
    path: str = ""
    version: str | None = None


class RawGitRepo(_Raw):
    path: str
    remote: str = ""
    branch: str = ""
    head: str = ""


class RawError(_Raw):
    source: str
    message: str


class RawFacts(_Raw):
    format: Literal[1] = RAW_FORMAT
    os: RawOs
    managers: list[str] = Field(default_factory=list)
    packages: list[RawPackage] = Field(default_factory=list)
    mcp_servers: list[RawMcpServer] = Field(default_factory=list)
    api_keys: list[RawApiKey] = Field(default_factory=list)
    commands: list[RawCommand] = Field(default_factory=list)
    git_repos: list[RawGitRepo] = Field(default_factory=list)
    errors: list[RawError] = Field(default_factory=list)
