#!/usr/bin/python
# Copyright: Cyclotron contributors
# Apache-2.0 (see pyproject.toml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cyclotron_mcp_config
short_description: Add, update or remove one MCP server entry in an assistant's config file
description:
  - Merges one server entry into the JSON config file of Claude Code, Claude Desktop, Cursor or
    VS Code (O(state=present)), or removes it (O(state=absent)). Every other key of the file
    is left as it was, in the same order.
  - The servers live under C(mcpServers) (Claude Code, Claude Desktop, Cursor) or C(servers)
    (VS Code). For Claude Code with O(project), under C(projects.<project>.mcpServers)
    (Claude Code's "local" scope).
  - A missing file is created (with its parent directories) with mode C(0600). An existing
    file is backed up first (timestamped copy next to it, mode C(0600), see RV(backup_file)) and
    replaced atomically; its owner is kept, and so is its mode unless the entry written carries
    literal C(env) or C(headers) values (secrets) and the file is readable by group or others: then
    those bits are removed (RV(mode_tightened)) and a warning says so. A symlinked file is edited
    through the link.
  - A file that is not valid JSON, or whose top level is not an object, makes the module fail
    with the file name and the JSON error; the file is not touched.
  - Values of C(env) and C(headers) are masked (C(********)) in everything the module returns,
    diffs included; C(${VAR}) and C(${input:id}) references are shown as written.
options:
  path:
    description: The config file, e.g. C(~/.claude.json) or C(~/.cursor/mcp.json).
    type: path
    required: true
  assistant:
    description: Which assistant's layout the file has.
    type: str
    required: true
    choices: [claude_code, claude_desktop, cursor, vscode]
  project:
    description:
      - Claude Code only. Absolute project path; the entry goes to
        C(projects.<project>.mcpServers) instead of the top-level C(mcpServers).
    type: str
  name:
    description: Name of the server entry (the key under C(mcpServers)/C(servers)).
    type: str
    required: true
  entry:
    description:
      - The server entry, required with O(state=present). Usual keys are C(type)
        (C(stdio), C(http) or C(sse)), C(command), C(args), C(env), C(url), C(headers);
        other keys are written as given.
      - The option is not C(no_log), so that the task output stays readable, but C(env) and
        C(headers) values are masked in all returned data. Ansible still logs module arguments
        to the target's syslog unless the task sets C(no_log), so set C(no_log=true) on
        tasks whose entry holds secrets.
    type: dict
  state:
    description: Whether the entry should be there.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description: Keep a timestamped copy of an existing file before changing it.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff covers the server map (C(mcpServers) or C(servers)) with secrets masked.
author:
  - Cyclotron contributors
"""

EXAMPLES = r"""
- name: Configure the memory server for Claude Code (user scope)
  cyclotron_mcp_config:
    path: "{{ ansible_env.HOME }}/.claude.json"
    assistant: claude_code
    name: memory
    entry:
      type: stdio
      command: npx
      args: [-y, "@modelcontextprotocol/server-memory"]
      env:
        MEMORY_FILE_PATH: "{{ ansible_env.HOME }}/.memory.json"
  no_log: true  # env values may be secrets

- name: Configure the same server for VS Code (key "servers")
  cyclotron_mcp_config:
    path: "{{ ansible_env.HOME }}/.config/Code/User/mcp.json"
    assistant: vscode
    name: memory
    entry: {type: stdio, command: npx, args: [-y, "@modelcontextprotocol/server-memory"]}

- name: Remove it from Cursor
  cyclotron_mcp_config:
    path: "{{ ansible_env.HOME }}/.cursor/mcp.json"
    assistant: cursor
    name: memory
    state: absent
"""

RETURN = r"""
path:
  description: The file that was (or would be) written.
  returned: always
  type: str
  sample: /home/u/.claude.json
key:
  description: Keys leading to the server map inside the file.
  returned: always
  type: list
  elements: str
  sample: ["mcpServers"]
created:
  description: Whether the file did not exist before (and was, or would be, created).
  returned: always
  type: bool
  sample: false
mode_tightened:
  description: The file's mode before and after, when group/other access was removed because the entry holds secrets.
  returned: when the mode was changed
  type: str
  sample: "0644 -> 0600"
backup_file:
  description: Copy of the file made before it was changed.
  returned: when an existing file changed and O(backup=true)
  type: str
  sample: /home/u/.claude.json.12345.2025-01-31@12:00:00~
entry:
  description: The entry now in the file, secrets masked (null after O(state=absent)).
  returned: always
  type: dict
  sample: {"type": "stdio", "command": "npx", "args": ["-y", "pkg"], "env": {"API_KEY": "********"}}
previous_entry:
  description: The entry that was in the file before, secrets masked (null when there was none).
  returned: always
  type: dict
  sample: null
"""

import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

MASK = "********"
_SECRET_MAPS = ("env", "headers")
_REFERENCE_RE = re.compile(r"^\$\{[^}]+\}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_.@:/ -]{0,127}$")
_SERVER_KEYS = {
    "claude_code": "mcpServers",
    "claude_desktop": "mcpServers",
    "cursor": "mcpServers",
    "vscode": "servers",
}
_INDENT_RE = re.compile(r"^\s*\{\s*?\n([ \t]+)\S")


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            assistant=dict(type="str", required=True, choices=sorted(_SERVER_KEYS)),
            project=dict(type="str"),
            name=dict(type="str", required=True),
            # Not no_log: the entry's secrets are only its env/headers values, masked below.
            entry=dict(type="dict", no_log=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            backup=dict(type="bool", default=True),
        ),
        required_if=[("state", "present", ["entry"])],
        supports_check_mode=True,
    )


class ConfigError(Exception):
    """A problem with the parameters or the file, reported through fail_json."""


def mask_entry(entry: Any) -> Any:
    """A copy of a server entry with env/headers values replaced by a mask."""
    if not isinstance(entry, dict):
        return entry
    masked = dict(entry)
    for key in _SECRET_MAPS:
        values = masked.get(key)
        if isinstance(values, dict):
            masked[key] = {k: v if isinstance(v, str) and _REFERENCE_RE.match(v) else MASK for k, v in values.items()}
    return masked


def mask_servers(servers: Any) -> Any:
    if not isinstance(servers, dict):
        return servers
    return {name: mask_entry(entry) for name, entry in servers.items()}


def normalise_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Check the entry's known keys and return it with None values dropped."""
    clean = {k: v for k, v in entry.items() if v is not None}
    kind = clean.get("type")
    if kind is not None and kind not in ("stdio", "http", "sse"):
        raise ConfigError(f"entry.type must be stdio, http or sse, not {kind!r}")
    for key in ("command", "url", "cwd", "envFile"):
        if key in clean and not isinstance(clean[key], str):
            raise ConfigError(f"entry.{key} must be a string")
    if "args" in clean and (not isinstance(clean["args"], list) or not all(isinstance(a, str) for a in clean["args"])):
        raise ConfigError("entry.args must be a list of strings")
    for key in _SECRET_MAPS:
        if key not in clean:
            continue
        values = clean[key]
        if not isinstance(values, dict):
            raise ConfigError(f"entry.{key} must be a mapping of names to strings")
        fixed: dict[str, str] = {}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ConfigError(f"entry.{key}.{name} must be a string")
            fixed[str(name)] = str(value)
        clean[key] = fixed
    if not clean.get("command") and not clean.get("url"):
        raise ConfigError("entry needs a command (stdio) or a url (http/sse)")
    if kind == "stdio" and not clean.get("command"):
        raise ConfigError("entry.type is stdio but entry.command is empty")
    if kind in ("http", "sse") and not clean.get("url"):
        raise ConfigError(f"entry.type is {kind} but entry.url is empty")
    return clean


def read_config(path: str) -> tuple[dict[str, Any], bool, str]:
    """(document, existed, raw text). Raises ConfigError, never touching the file."""
    if not os.path.lexists(path) or (os.path.islink(path) and not os.path.exists(path)):
        return {}, False, ""
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory, not a JSON config file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")  # PowerShell 5.1 writes a byte-order mark
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc}); the file was left untouched") from exc
    if not text.strip():
        return {}, True, text
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); fix or move the file and run again -- it was left untouched"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object; the file was left untouched")
    return data, True, text


def server_keys(assistant: str, project: str | None) -> list[str]:
    if project:
        if assistant != "claude_code":
            raise ConfigError("project is only meaningful with assistant=claude_code")
        return ["projects", project, "mcpServers"]
    return [_SERVER_KEYS[assistant]]


def find_servers(data: dict[str, Any], keys: list[str], path: str, create: bool) -> dict[str, Any] | None:
    """The server map inside ``data`` (created on the way when ``create``), or None."""
    node: Any = data
    for depth, key in enumerate(keys):
        child = node.get(key)
        if child is None:
            if not create:
                return None
            child = {}
            node[key] = child
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise ConfigError(f"{path}: {where} is a JSON {type(child).__name__}, expected an object")
        node = child
    return node


def render(data: dict[str, Any], old_text: str) -> str:
    match = _INDENT_RE.match(old_text)
    indent: str | int = match.group(1) if match else 2
    text = json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    # Never write something we could not read back identically.
    if json.loads(text) != data:
        raise ConfigError("the merged config does not survive a JSON round trip; nothing was written")
    return text


def holds_literal_secrets(entry: Any) -> bool:
    """Whether an entry writes env/headers values that are not ${VAR} references."""
    return isinstance(entry, dict) and mask_entry(entry) != entry


def tighten_mode(path: str) -> str | None:
    """Remove group/other access from a file that now holds secrets; returns "old -> new" or None."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if not mode & 0o077:
        return None
    private = mode & 0o700
    os.chmod(path, private)
    return f"{mode:04o} -> {private:04o}"


def write_atomic(module: AnsibleModule, path: str, text: str, existed: bool) -> None:
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # atomic_move keeps an existing file's mode, owner and SELinux context; a new file gets
        # the umask default, so it is made private again once in place.
        module.atomic_move(tmp, path)
        if not existed:
            os.chmod(path, 0o600)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_module(module: AnsibleModule) -> None:
    p = module.params
    given_path: str = p["path"]
    # Edit the target of a symlink (dotfiles repos), not the link itself.
    path = os.path.realpath(given_path) if os.path.islink(given_path) else given_path
    safe_params = dict(p, entry=mask_entry(p["entry"]))
    result: dict[str, Any] = {
        "changed": False,
        "path": given_path,
        "created": False,
        "entry": None,
        "previous_entry": None,
        "key": [],
        "invocation": {"module_args": safe_params},
    }
    try:
        if not _NAME_RE.match(p["name"] or ""):
            raise ConfigError(
                f"name {p['name']!r} is not a valid server name (letters, digits, _ . @ : / - and spaces)"
            )
        keys = server_keys(p["assistant"], p["project"])
        result["key"] = keys
        entry = normalise_entry(p["entry"]) if p["state"] == "present" else None
        data, existed, old_text = read_config(path)
        result["created"] = not existed and p["state"] == "present"
        new = copy.deepcopy(data)
        old_servers = find_servers(data, keys, path, create=False)
        previous = None if old_servers is None else old_servers.get(p["name"])
        result["previous_entry"] = mask_entry(previous)
        if p["state"] == "present":
            servers = find_servers(new, keys, path, create=True)
            assert servers is not None
            servers[p["name"]] = entry  # an existing key keeps its position
            changed = previous != entry or not existed
            result["entry"] = mask_entry(entry)
        else:
            servers = find_servers(new, keys, path, create=False)
            changed = servers is not None and p["name"] in servers
            if changed and servers is not None:
                del servers[p["name"]]
        text = render(new, old_text) if changed else ""
    except ConfigError as exc:
        module.fail_json(msg=str(exc), **result)

    result["changed"] = changed
    if changed and module._diff:
        label = f"{given_path}:{'.'.join(keys)}"
        result["diff"] = {
            "before_header": label if existed else f"{label} (absent)",
            "after_header": label,
            "before": json.dumps(mask_servers(old_servers or {}), indent=2) + "\n",
            "after": json.dumps(mask_servers(servers or {}), indent=2) + "\n",
        }
    if changed and not module.check_mode:
        try:
            if existed and p["backup"]:
                # The old content may hold secrets too: the copy is for the owner only.
                result["backup_file"] = module.backup_local(path)
                os.chmod(result["backup_file"], 0o600)
            write_atomic(module, path, text, existed)
            if existed and p["state"] == "present" and holds_literal_secrets(entry):
                tightened = tighten_mode(path)
                if tightened:
                    result["mode_tightened"] = tightened
                    module.warn(f"{given_path} now holds secret values: its mode changed {tightened}")
        except OSError as exc:
            module.fail_json(msg=f"cannot write {path}: {exc.strerror or exc}", **result)
    module.exit_json(**result)


def main() -> None:
    run_module(build_module())


if __name__ == "__main__":
    main()
