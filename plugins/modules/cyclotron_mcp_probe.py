#!/usr/bin/python
# Copyright: Cyclotron contributors
# Apache-2.0 (see pyproject.toml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cyclotron_mcp_probe
short_description: Check that an MCP server starts and lists the tools it should
description:
  - Starts an MCP server over stdio, sends C(initialize) (protocol version 2025-06-18),
    C(notifications/initialized) and C(tools/list) (following C(nextCursor)), then stops the
    server (SIGTERM, then SIGKILL, to its whole process group).
  - Fails with a clear message when the command cannot be found or started, the server exits,
    does not answer within O(timeout), answers with an error, or does not list one of
    O(expected_tools).
  - Lines on stdout that are not JSON-RPC messages are skipped; stderr is drained and returned
    (its tail) only on failure.
  - Self-contained JSON-RPC client (no C(mcp) SDK on the target).
options:
  command:
    description:
      - The server command, as written in the assistant's config (C(npx), C(node), an absolute path...).
      - Looked up in O(search_paths), then in the E(PATH) of the server's environment.
    type: str
    required: true
  args:
    description: Arguments of the command (argv, never a shell string).
    type: list
    elements: str
    default: []
  env:
    description:
      - Variables added to the server's environment (API keys...). Values are never returned.
    type: dict
    default: {}
  inherit_env:
    description: Start from the module's own environment (PATH, HOME...) before adding O(env).
    type: bool
    default: true
  cwd:
    description: Working directory of the server.
    type: path
  timeout:
    description: Seconds for the whole exchange (start, initialize, every tools/list page).
    type: float
    default: 30
  expected_tools:
    description: Tool names the server must list.
    type: list
    elements: str
    default: []
  npm_prefix:
    description:
      - When O(command) is C(npx) (or C(cmd /c npx) on Windows) and the package is installed
        globally under this npm prefix, run the package's own bin from the prefix instead, so
        the probe never downloads anything. Falls back to the configured command (with a
        warning) when the package is not found there.
    type: path
  search_paths:
    description: Directories searched for O(command) before E(PATH) (a venv's C(bin), an npm prefix's C(bin)).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    details:
      - The probe runs in check mode too, because it only reads (it starts the server, asks it
        for its tools and stops it). A server that writes state on start (a memory file, a cache)
        does so in check mode as well.
  diff_mode:
    support: none
notes:
  - POSIX targets. The whole process group of the server is stopped, so wrappers such as
    C(npx) or C(sh -c) leave no orphans.
author:
  - Cyclotron contributors
"""

EXAMPLES = r"""
- name: Probe the memory server installed under a user prefix
  cyclotron_mcp_probe:
    command: npx
    args: [-y, "@modelcontextprotocol/server-memory"]
    npm_prefix: "{{ ansible_env.HOME }}/.npm-global"
    env:
      MEMORY_FILE_PATH: /tmp/memory.json
    expected_tools: [create_entities, read_graph]
    timeout: 20
  no_log: true  # env may hold API keys

- name: Probe a Python server from a venv
  cyclotron_mcp_probe:
    command: mcp-server-fetch
    search_paths: [/opt/mcp/venv/bin]
"""

RETURN = r"""
server_info:
  description: The server's C(serverInfo) from the initialize result.
  returned: success
  type: dict
  sample: {"name": "memory-server", "version": "0.6.3"}
protocol_version:
  description: Protocol version the server agreed to.
  returned: success
  type: str
  sample: "2025-06-18"
capabilities:
  description: The server's C(capabilities) from the initialize result.
  returned: success
  type: dict
  sample: {"tools": {"listChanged": true}}
tools:
  description: Names of the tools the server lists, in its order.
  returned: success or when an expected tool is missing
  type: list
  elements: str
  sample: ["create_entities", "read_graph"]
missing_tools:
  description: Names from O(expected_tools) the server did not list.
  returned: always
  type: list
  elements: str
  sample: []
argv:
  description: The command line that was started (after npx resolution and path lookup).
  returned: always
  type: list
  elements: str
  sample: ["/home/u/.npm-global/bin/mcp-server-memory"]
resolved_npx:
  description: Whether an C(npx) command was replaced by the package's bin under O(npm_prefix).
  returned: always
  type: bool
  sample: true
stderr:
  description: Tail of the server's stderr.
  returned: failure
  type: str
  sample: "Knowledge Graph MCP Server running on stdio"
"""

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.cyclotron_mcp_client import McpProbeError, merged_env, probe  # noqa: E402

_STDERR_TAIL = 2000


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", required=True),
            args=dict(type="list", elements="str", default=[]),
            env=dict(type="dict", default={}, no_log=True),
            inherit_env=dict(type="bool", default=True),
            cwd=dict(type="path"),
            timeout=dict(type="float", default=30.0),
            expected_tools=dict(type="list", elements="str", default=[]),
            npm_prefix=dict(type="path"),
            search_paths=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )


def _npx_package(command: str, args: list[str]) -> tuple[str, list[str]] | None:
    """(package name, server args) for ``npx [-y] pkg[@ver] args...``; None if not that shape."""
    base = os.path.basename(command).lower()
    if base in ("cmd", "cmd.exe") and len(args) >= 2 and args[0].lower() == "/c":
        command, args = args[1], args[2:]
        base = os.path.basename(command).lower()
    if base not in ("npx", "npx.cmd"):
        return None
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        # --package/-p/--call name other packages or commands: too clever to resolve safely.
        if flag in ("-p", "--package", "-c", "--call") or flag.startswith(("--package=", "--call=")):
            return None
    if not rest:
        return None
    spec = rest[0]
    # "@scope/name@1.2" -> "@scope/name"; "name@latest" -> "name"
    name = "@" + spec[1:].split("@", 1)[0] if spec.startswith("@") else spec.split("@", 1)[0]
    if name in ("", "@"):
        return None
    return name, rest[1:]


def _npm_bin(prefix: str, package: str) -> list[str] | None:
    """argv that runs the package's bin from a global npm prefix, or None when not installed."""
    for pkg_dir in (
        os.path.join(prefix, "lib", "node_modules", package),
        os.path.join(prefix, "node_modules", package),  # Windows layout
    ):
        manifest = os.path.join(pkg_dir, "package.json")
        if not os.path.isfile(manifest):
            continue
        try:
            with open(manifest, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        bins = data.get("bin") if isinstance(data, dict) else None
        short = package.rsplit("/", 1)[-1]
        if isinstance(bins, str):
            bins = {short: bins}
        if not isinstance(bins, dict) or not bins:
            return None
        bin_name = short if short in bins else sorted(bins)[0]
        if len(bins) > 1 and short not in bins:
            return None
        linked = os.path.join(prefix, "bin", bin_name)
        if os.path.isfile(linked) and os.access(linked, os.X_OK):
            return [linked]
        script = os.path.join(pkg_dir, str(bins[bin_name]))
        node = shutil.which("node")
        if node and os.path.isfile(script):
            return [node, script]
        return None
    return None


def _find_command(command: str, search_paths: list[str], env: dict[str, str]) -> str | None:
    if os.path.isabs(command) or os.sep in command:
        return command if os.path.isfile(command) and os.access(command, os.X_OK) else None
    path = os.pathsep.join([p for p in search_paths if p] + [env.get("PATH", os.defpath)])
    return shutil.which(command, path=path)


def run_module(module: AnsibleModule) -> None:
    params = module.params
    command: str = params["command"]
    args: list[str] = params["args"] or []
    expected: list[str] = params["expected_tools"] or []
    result: dict = {"changed": False, "missing_tools": [], "resolved_npx": False, "argv": []}

    env = merged_env(params["env"], inherit=params["inherit_env"])
    search_paths = params["search_paths"] or []
    if search_paths:
        # The server's own lookups (a node shebang, a python -m) see the same directories first.
        env["PATH"] = os.pathsep.join(search_paths + [env.get("PATH", os.defpath)])

    argv: list[str] | None = None
    if params["npm_prefix"]:
        parsed = _npx_package(command, args)
        if parsed is not None:
            package, server_args = parsed
            bin_argv = _npm_bin(params["npm_prefix"], package)
            if bin_argv is not None:
                argv = bin_argv + server_args
                result["resolved_npx"] = True
            else:
                module.warn(
                    f"{package} is not installed under {params['npm_prefix']}; probing through "
                    f"{command} as configured (it may download the package)"
                )
    if argv is None:
        found = _find_command(command, search_paths, env)
        if found is None:
            module.fail_json(
                msg=f"MCP server command {command!r} was not found (searched {search_paths or []} "
                f"and PATH); install it or fix the entry's command",
                **result,
            )
        argv = [str(found)] + args
    result["argv"] = argv

    try:
        probed = probe(argv, env=env, cwd=params["cwd"], timeout=params["timeout"])
    except McpProbeError as exc:
        module.fail_json(
            msg=f"MCP server {command!r} did not complete the handshake: {exc.message}",
            rc=exc.returncode,
            stderr=exc.stderr[-_STDERR_TAIL:],
            stdout_lines_skipped=exc.ignored_lines,
            **result,
        )

    result.update(probed.as_dict())
    missing = [name for name in expected if name not in probed.tools]
    result["missing_tools"] = missing
    if missing:
        module.fail_json(
            msg=f"MCP server {command!r} does not list the expected tool(s) {', '.join(missing)}; "
            f"it lists {', '.join(probed.tools) or 'no tools'}",
            stderr=probed.stderr[-_STDERR_TAIL:],
            **result,
        )
    module.exit_json(**result)


def main() -> None:
    run_module(build_module())


if __name__ == "__main__":
    main()
