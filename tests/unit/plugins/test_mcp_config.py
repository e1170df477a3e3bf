"""cyclotron_mcp_config: merging one MCP server entry into real config files.

Each test runs the module in-process on files in a temporary directory: check run, real run,
idempotent run, and the bytes of files it must not touch.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.common.parameters import PASS_VARS
from ansible.module_utils.testing import patch_module_args

from tests.unit.plugins import load_as

REPO_ROOT = Path(__file__).resolve().parents[3]
SECRET = "sk-cyclotron-config-secret-1234"
ENTRY = {
    "type": "stdio",
    "command": "npx",
    "args": ["-y", "@modelcontextprotocol/server-memory"],
    "env": {"API_KEY": SECRET, "HOME_REF": "${HOME}"},
}


mcp_config = load_as("cyclotron_mcp_config_under_test", REPO_ROOT / "plugins" / "modules" / "cyclotron_mcp_config.py")


def run(
    capsys: pytest.CaptureFixture[str],
    path: Path,
    *,
    check: bool = False,
    diff: bool = False,
    **params: Any,
) -> dict[str, Any]:
    args: dict[str, Any] = {"path": str(path), "assistant": "claude_code", "name": "memory", **params}
    if params.get("state", "present") == "present":
        args.setdefault("entry", ENTRY)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    # ansible-core 2.21+ drops a module's `invocation` unless the controller asks for it
    # (INJECT_INVOCATION); 2.19 always keeps it and rejects the unknown key.
    if "inject_invocation" in PASS_VARS:
        args["_ansible_inject_invocation"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        mcp_config.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_absent_file_is_created_private_with_parents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "home" / ".cursor" / "mcp.json"
    checked = run(capsys, path, check=True, assistant="cursor")
    assert checked["changed"] is True and checked["created"] is True
    assert not path.exists()

    result = run(capsys, path, assistant="cursor")
    assert result["changed"] is True and result["created"] is True
    assert "backup_file" not in result
    assert _json(path) == {"mcpServers": {"memory": ENTRY}}
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700

    again = run(capsys, path, assistant="cursor")
    assert again["changed"] is False and again["created"] is False


def test_empty_file_is_taken_as_an_empty_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mcp.json"
    path.write_text("  \n")
    result = run(capsys, path, assistant="cursor")
    assert result["changed"] is True
    assert _json(path) == {"mcpServers": {"memory": ENTRY}}


def test_other_keys_are_untouched_and_keep_their_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ".claude.json"
    original = {
        "numStartups": 12,
        "mcpServers": {"first": {"command": "a"}, "memory": {"command": "old"}, "last": {"command": "z"}},
        "projects": {"/work/x": {"allowedTools": ["Bash"]}},
        "zeta": [1, 2.5, None, True],
    }
    path.write_text(json.dumps(original, indent=4))
    path.chmod(0o644)

    result = run(capsys, path)
    assert result["changed"] is True
    data = _json(path)
    assert list(data) == ["numStartups", "mcpServers", "projects", "zeta"]
    assert list(data["mcpServers"]) == ["first", "memory", "last"]
    assert data["mcpServers"]["memory"] == ENTRY
    assert {k: v for k, v in data.items() if k != "mcpServers"} == {
        k: v for k, v in original.items() if k != "mcpServers"
    }
    assert data["mcpServers"]["first"] == {"command": "a"}
    # The existing file keeps its indentation; group/other lose access now that it holds a secret.
    assert _mode(path) == 0o600
    assert result["mode_tightened"] == "0644 -> 0600"
    # (module.warn's text is not checked here: once other tests have imported Ansible's controller
    # code in this process, warnings go to its display instead of the module result.)
    assert path.read_text().startswith('{\n    "numStartups"')
    assert result["previous_entry"] == {"command": "old"}


def test_mode_is_kept_without_literal_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ".cursor.json"
    path.write_text('{"mcpServers": {}}')
    path.chmod(0o644)
    result = run(capsys, path, assistant="cursor", entry={"command": "npx", "env": {"TOKEN": "${TOKEN}"}})
    assert result["changed"] is True and "mode_tightened" not in result
    assert _mode(path) == 0o644


def test_backup_holds_the_old_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ".claude.json"
    path.write_text('{"mcpServers": {}}')
    before = path.read_bytes()
    result = run(capsys, path)
    backup = Path(result["backup_file"])
    assert backup.parent == tmp_path
    assert backup.name.startswith(".claude.json.")
    assert backup.read_bytes() == before
    assert _mode(backup) == 0o600

    no_backup = run(capsys, path, entry=dict(ENTRY, args=["changed"]), backup=False)
    assert no_backup["changed"] is True
    assert "backup_file" not in no_backup


def test_invalid_json_is_refused_and_left_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_bytes(b'{"mcpServers": {"x": {"command": "y",}}}')
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    result = run(capsys, path, assistant="claude_desktop")
    assert result["failed"] is True
    assert str(path) in result["msg"]
    assert "is not valid JSON" in result["msg"]
    assert "line 1 column" in result["msg"]
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("content", "problem"), [("[1, 2]", "holds a JSON list"), ('{"mcpServers": [1]}', "mcpServers is a JSON list")]
)
def test_unexpected_shapes_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, problem: str
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(content)
    result = run(capsys, path, assistant="cursor")
    assert result["failed"] is True
    assert problem in result["msg"]
    assert path.read_text() == content


def test_vscode_uses_servers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Code" / "User" / "mcp.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"inputs": [{"type": "promptString", "id": "key", "password": True}]}))
    entry = {"type": "stdio", "command": "npx", "args": ["-y", "pkg"], "env": {"K": "${input:key}"}}
    result = run(capsys, path, assistant="vscode", entry=entry)
    assert result["key"] == ["servers"]
    data = _json(path)
    assert data["servers"] == {"memory": entry}
    assert "mcpServers" not in data
    assert data["inputs"][0]["id"] == "key"
    # An ${input:...} reference is not a secret: shown as written.
    assert result["entry"]["env"] == {"K": "${input:key}"}


def test_claude_code_project_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ".claude.json"
    path.write_text(json.dumps({"mcpServers": {"user": {"command": "u"}}, "projects": {"/p": {"history": [1]}}}))
    result = run(capsys, path, project="/p")
    assert result["key"] == ["projects", "/p", "mcpServers"]
    data = _json(path)
    assert data["projects"]["/p"] == {"history": [1], "mcpServers": {"memory": ENTRY}}
    assert data["mcpServers"] == {"user": {"command": "u"}}

    other = run(capsys, path, project="/new/project")
    assert other["changed"] is True
    assert _json(path)["projects"]["/new/project"] == {"mcpServers": {"memory": ENTRY}}


def test_project_needs_claude_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, tmp_path / "mcp.json", assistant="cursor", project="/p")
    assert result["failed"] is True
    assert "only meaningful with assistant=claude_code" in result["msg"]
    assert not (tmp_path / "mcp.json").exists()


def test_check_mode_and_diff_mask_env_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ".claude.json"
    other_secret = "sk-other-server-secret-5678"
    path.write_text(json.dumps({"mcpServers": {"other": {"command": "o", "env": {"TOKEN": other_secret}}}}))
    before = path.read_bytes()

    result = run(capsys, path, check=True, diff=True)
    assert result["changed"] is True
    assert path.read_bytes() == before
    assert "backup_file" not in result
    diff = result["diff"]
    after = json.loads(diff["after"])
    assert after["memory"]["env"] == {"API_KEY": mcp_config.MASK, "HOME_REF": "${HOME}"}
    assert json.loads(diff["before"])["other"]["env"] == {"TOKEN": mcp_config.MASK}
    assert diff["before_header"].endswith(":mcpServers")

    real = run(capsys, path, diff=True)
    everything = json.dumps(result) + json.dumps(real)
    assert SECRET not in everything
    assert other_secret not in everything
    assert real["invocation"]["module_args"]["entry"]["env"]["API_KEY"] == mcp_config.MASK
    # The file itself holds the real value: the assistant needs it.
    assert _json(path)["mcpServers"]["memory"]["env"]["API_KEY"] == SECRET


def test_headers_are_masked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = {"type": "http", "url": "https://mcp.example.invalid/mcp", "headers": {"Authorization": f"Bearer {SECRET}"}}
    result = run(capsys, tmp_path / ".claude.json", entry=entry, diff=True)
    assert result["changed"] is True
    assert SECRET not in json.dumps(result)


def test_state_absent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mcp.json"
    assert run(capsys, path, assistant="cursor", state="absent")["changed"] is False
    assert not path.exists()

    path.write_text(json.dumps({"mcpServers": {"memory": ENTRY, "keep": {"command": "k"}}, "x": 1}))
    checked = run(capsys, path, assistant="cursor", state="absent", check=True)
    assert checked["changed"] is True
    assert "memory" in _json(path)["mcpServers"]

    removed = run(capsys, path, assistant="cursor", state="absent")
    assert removed["changed"] is True
    assert removed["previous_entry"]["env"]["API_KEY"] == mcp_config.MASK
    assert _json(path) == {"mcpServers": {"keep": {"command": "k"}}, "x": 1}
    assert run(capsys, path, assistant="cursor", state="absent")["changed"] is False


def test_symlinked_config_is_edited_through_the_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "dotfiles" / "claude.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / ".claude.json"
    link.symlink_to(target)
    run(capsys, link)
    assert link.is_symlink()
    assert _json(target) == {"mcpServers": {"memory": ENTRY}}


def test_byte_order_mark_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"mcpServers": {}}).encode())
    result = run(capsys, path, assistant="claude_desktop", entry={"command": "npx", "args": ["-y", "pkg"]})
    assert result["changed"] is True
    assert _json(path) == {"mcpServers": {"memory": {"command": "npx", "args": ["-y", "pkg"]}}}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"type": "ftp", "command": "x"}, "entry.type must be stdio, http or sse"),
        ({"command": "x", "args": "-y pkg"}, "entry.args must be a list of strings"),
        ({"command": "x", "env": {"A": ["list"]}}, "entry.env.A must be a string"),
        ({"args": ["x"]}, "entry needs a command"),
        ({"type": "http", "command": "x"}, "entry.url is empty"),
    ],
)
def test_bad_entries_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: dict[str, Any], problem: str
) -> None:
    result = run(capsys, tmp_path / "mcp.json", assistant="cursor", entry=entry)
    assert result["failed"] is True
    assert problem in result["msg"]
    assert not (tmp_path / "mcp.json").exists()


def test_bad_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, tmp_path / "mcp.json", assistant="cursor", name="bad\nname")
    assert result["failed"] is True
    assert "not a valid server name" in result["msg"]


def test_no_temporary_file_is_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mcp.json"
    run(capsys, path, assistant="cursor")
    run(capsys, path, assistant="cursor", entry=dict(ENTRY, args=["other"]))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "mcp.json"
    assert all(n == "mcp.json" or (n.startswith("mcp.json.") and n.endswith("~")) for n in names)
    assert not any(n.endswith(".tmp") for n in os.listdir(tmp_path))
