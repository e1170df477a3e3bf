# Copyright: Cyclotron contributors
# Apache-2.0
"""MCP servers configured for Claude Code, Claude Desktop, Cursor and VS Code, with secrets redacted.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ansible.module_utils.cyclotron_gather_common import _add_error, _file_error, expand_path, load_json_file
from ansible.module_utils.cyclotron_redact import redact_args, redact_value, strip_url

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors


# --------------------------------------------------------------------------- MCP


def _transport(entry: Mapping[str, Any], url: str) -> str:
    kind = str(entry.get("type") or entry.get("transport") or "").lower().replace("_", "-")
    if kind == "sse":
        return "sse"
    if kind in ("http", "streamable-http", "streamablehttp"):
        return "http"
    if kind == "stdio":
        return "stdio"
    return "http" if url else "stdio"


def mcp_entry(
    name: str, entry: Any, assistant: str, scope: str, path: str, project: str = ""
) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        return None
    url = entry.get("url") or entry.get("serverUrl") or ""
    url = strip_url(str(url)) if url else ""
    env = entry.get("env")
    args = entry.get("args")
    server = {
        "name": str(name),
        "assistant": assistant,
        "scope": scope,
        "path": path,
        "transport": _transport(entry, url),
        "command": redact_value(str(entry.get("command") or "")),
        "args": redact_args(args) if isinstance(args, list) else [],
        "url": url,
        "env_names": sorted(str(k) for k in env) if isinstance(env, dict) else [],
    }
    if project:
        server["project"] = project  # extra key: RawFacts ignores it, a later format may use it
    return server


def _servers_from(
    data: Any,
    key: str,
    assistant: str,
    scope: str,
    path: str,
    errors: Errors,
    project: str = "",
    where: str = "",
) -> list[dict[str, Any]]:
    block = data.get(key) if isinstance(data, dict) else None
    if block is None:
        return []
    if not isinstance(block, dict):
        _add_error(errors, path, f"{where}{key} is not an object of servers: fix the file")
        return []
    servers = []
    for name, entry in block.items():
        server = mcp_entry(name, entry, assistant, scope, path, project)
        if server is None:
            _add_error(errors, path, f"{where}{key}.{name} is not an object: fix or remove that entry")
        else:
            servers.append(server)
    return servers


def _load_config(path: str, errors: Errors, jsonc: bool = True) -> Any:
    try:
        return load_json_file(path, jsonc=jsonc)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        _file_error(
            errors,
            path,
            exc,
            "fix the JSON (the assistant will not load it either); other MCP configs were still read",
        )
        return None


def claude_json_path(home: str) -> str:
    return os.path.join(home, ".claude.json")


def claude_projects(data: Any) -> list[str]:
    projects = data.get("projects") if isinstance(data, dict) else None
    return (
        [p for p in projects if isinstance(p, str) and os.path.isabs(p)] if isinstance(projects, dict) else []
    )


def gather_mcp(
    home: str, project_dirs: Sequence[str] | None, git_repos: Callable[[], list[str]], errors: Errors
) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    claude = claude_json_path(home)
    data = _load_config(claude, errors, jsonc=False)
    if data is not None:
        servers += _servers_from(data, "mcpServers", "claude_code", "user", claude, errors)
        projects = data.get("projects") if isinstance(data, dict) else None
        if isinstance(projects, dict):
            for proj, pdata in projects.items():
                servers += _servers_from(
                    pdata,
                    "mcpServers",
                    "claude_code",
                    "local",
                    claude,
                    errors,
                    project=str(proj),
                    where=f"projects[{proj}].",
                )
    user_configs = [
        (
            os.path.join(home, ".config", "Claude", "claude_desktop_config.json"),
            "claude_desktop",
            "user",
            "mcpServers",
        ),
        (
            os.path.join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json"),
            "claude_desktop",
            "user",
            "mcpServers",
        ),
        (os.path.join(home, ".cursor", "mcp.json"), "cursor", "global", "mcpServers"),
        (os.path.join(home, ".config", "Code", "User", "mcp.json"), "vscode", "user", "servers"),
        (
            os.path.join(home, "Library", "Application Support", "Code", "User", "mcp.json"),
            "vscode",
            "user",
            "servers",
        ),
    ]
    read = set()
    for path, assistant, scope, key in user_configs:
        read.add(path)
        servers += _servers_from(_load_config(path, errors), key, assistant, scope, path, errors)
    dirs = claude_projects(data) + git_repos() if project_dirs is None else [expand_path(p, home) for p in project_dirs]
    seen = set()
    for proj in dirs:
        proj = os.path.normpath(proj)
        if proj in seen:
            continue
        seen.add(proj)
        for rel, assistant, key in (
            (".mcp.json", "claude_code", "mcpServers"),
            (os.path.join(".cursor", "mcp.json"), "cursor", "mcpServers"),
            (os.path.join(".vscode", "mcp.json"), "vscode", "servers"),
        ):
            path = os.path.join(proj, rel)
            if path in read:
                continue  # the home dir as a project: ~/.cursor/mcp.json is the global file
            read.add(path)
            servers += _servers_from(
                _load_config(path, errors), key, assistant, "project", path, errors, project=proj
            )
    return servers
