"""The stdio JSON-RPC client (module_utils) and the cyclotron_mcp_probe module.

Against the real @modelcontextprotocol/server-memory, installed with npm into a temporary
prefix once per session, and against small Python servers that misbehave on purpose
(log lines on stdout, a ping from the server, pagination, errors, silence).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.unit.plugins import load_as

REPO_ROOT = Path(__file__).resolve().parents[3]
MEMORY_PACKAGE = "@modelcontextprotocol/server-memory"
MEMORY_TOOLS = {"create_entities", "read_graph", "search_nodes"}


# The module imports its client as ansible.module_utils.cyclotron_mcp_client, as on a target.
client = load_as(
    "ansible.module_utils.cyclotron_mcp_client", REPO_ROOT / "plugins" / "module_utils" / "cyclotron_mcp_client.py"
)
probe_module = load_as("cyclotron_mcp_probe_under_test", REPO_ROOT / "plugins" / "modules" / "cyclotron_mcp_probe.py")


@pytest.fixture(scope="session")
def memory_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An npm prefix with the real memory server installed globally in it."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the real MCP memory server cannot be installed")
    base = tmp_path_factory.mktemp("npm")
    prefix = base / "prefix"
    env = dict(os.environ, npm_config_cache=str(base / "cache"), npm_config_update_notifier="false")
    proc = subprocess.run(
        [npm, "install", "--global", "--prefix", str(prefix), "--no-fund", "--no-audit", MEMORY_PACKAGE],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.skip(f"npm could not install {MEMORY_PACKAGE} (registry unreachable?): {proc.stderr[-500:]}")
    return prefix


@pytest.fixture
def memory_env(tmp_path: Path) -> dict[str, str]:
    return client.merged_env({"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")})


FAKE_SERVER = textwrap.dedent(
    r"""
    import json, sys
    mode = sys.argv[1]
    print("fake server starting (a log line, not JSON-RPC)", flush=True)
    print(json.dumps({"not": "json-rpc"}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        method = msg.get("method")
        if method == "initialize":
            if mode == "init-error":
                out = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32602, "message": "bad protocol"}}
            else:
                print(json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {}}), flush=True)
                print(json.dumps({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"}), flush=True)
                out = {"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "protocolVersion": msg["params"]["protocolVersion"],
                    "serverInfo": {"name": "fake", "version": "9.9"},
                    "capabilities": {"tools": {}}}}
        elif method == "tools/list":
            cursor = (msg.get("params") or {}).get("cursor")
            if mode == "loop":
                result = {"tools": [{"name": "again"}], "nextCursor": "same"}
            elif cursor is None:
                result = {"tools": [{"name": "alpha"}, {"name": "beta"}], "nextCursor": "page-2"}
            else:
                result = {"tools": [{"name": "gamma"}]}
            out = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
        elif method is None and msg.get("id") == "srv-1":
            sys.stderr.write("pong %s\n" % json.dumps(msg.get("result")))
            sys.stderr.flush()
            continue
        else:
            continue
        print(json.dumps(out), flush=True)
    """
)


@pytest.fixture
def fake_server(tmp_path: Path) -> Path:
    path = tmp_path / "fake_server.py"
    path.write_text(FAKE_SERVER)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc tells.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


# -- the client against the real server ------------------------------------------------------


def test_memory_server_lists_its_tools(memory_prefix: Path, memory_env: dict[str, str]) -> None:
    result = client.probe([str(memory_prefix / "bin" / "mcp-server-memory")], env=memory_env, timeout=60)
    assert "create_entities" in result.tools
    assert set(result.tools) >= MEMORY_TOOLS
    assert result.server_info.get("name")
    assert result.protocol_version


# -- the client against servers that misbehave ------------------------------------------------


def test_skips_log_lines_answers_ping_and_follows_pagination(fake_server: Path) -> None:
    result = client.probe([sys.executable, str(fake_server), "ok"], timeout=30)
    assert result.tools == ["alpha", "beta", "gamma"]
    assert result.server_info == {"name": "fake", "version": "9.9"}
    assert result.protocol_version == client.PROTOCOL_VERSION
    assert "pong {}" in result.stderr


def test_error_answer_is_reported(fake_server: Path) -> None:
    with pytest.raises(client.McpProbeError, match=r"'initialize' with an error: bad protocol \(code -32602\)"):
        client.probe([sys.executable, str(fake_server), "init-error"], timeout=30)


def test_repeated_cursor_stops_the_pagination(fake_server: Path) -> None:
    with pytest.raises(client.McpProbeError, match="repeated or invalid cursor 'same'"):
        client.probe([sys.executable, str(fake_server), "loop"], timeout=30)


def test_silent_command_times_out_and_is_killed() -> None:
    rpc = client.StdioJsonRpcClient(["sleep", "60"], timeout=1)
    with pytest.raises(client.McpTimeoutError, match=r"no answer to 'initialize' within 1 s"), rpc:
        rpc.request("initialize", {})
    assert rpc.proc is not None
    assert rpc.proc.poll() is not None
    assert not _pid_alive(rpc.proc.pid)


def test_wrapper_children_are_killed_too(tmp_path: Path) -> None:
    # Like npx: a shell that starts the real server as a child and waits.
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    rpc = client.StdioJsonRpcClient(["sh", "-c", script], timeout=1)
    with pytest.raises(client.McpTimeoutError), rpc:
        rpc.request("initialize", {})
    child = int(pid_file.read_text())
    assert not _pid_alive(child)


def test_command_that_exits_at_once() -> None:
    with pytest.raises(client.McpProbeError, match=r"rc=0") as info:
        client.probe(["true"], timeout=10)
    assert not isinstance(info.value, client.McpTimeoutError)


def test_command_that_exits_with_an_error_keeps_its_stderr() -> None:
    with pytest.raises(client.McpProbeError) as info:
        client.probe(["sh", "-c", "echo 'cannot find module x' >&2; exit 3"], timeout=10)
    assert "cannot find module x" in info.value.stderr


def test_non_json_talker_times_out_with_a_hint() -> None:
    argv = ["sh", "-c", "echo hello; echo '{\"a\": 1}'; echo not json either; sleep 60"]
    with pytest.raises(client.McpTimeoutError, match=r"3 non-JSON-RPC line\(s\) on stdout were skipped") as info:
        client.probe(argv, timeout=1)
    assert info.value.ignored_lines[0] == "hello"


def test_missing_command() -> None:
    with pytest.raises(client.McpProbeError, match="cannot start 'cyclotron-no-such-server'"):
        client.probe(["cyclotron-no-such-server"], timeout=5)


def test_merged_env_adds_to_ours() -> None:
    env = client.merged_env({"A_KEY": "v", "N": 3})  # type: ignore[dict-item]
    assert env["A_KEY"] == "v" and env["N"] == "3"
    assert env["PATH"] == os.environ["PATH"]
    assert client.merged_env({"A": "1"}, inherit=False) == {"A": "1"}


# -- the module --------------------------------------------------------------------------------


def _run_probe(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        probe_module.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_module_resolves_npx_to_the_installed_bin(
    memory_prefix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run_probe(
        {
            "command": "npx",
            "args": ["-y", MEMORY_PACKAGE],
            "npm_prefix": str(memory_prefix),
            "env": {"MEMORY_FILE_PATH": str(tmp_path / "m.jsonl")},
            "expected_tools": ["create_entities", "read_graph"],
            "timeout": 60,
        },
        capsys,
    )
    assert result.get("failed") is not True, result
    assert result["resolved_npx"] is True
    assert result["argv"] == [str(memory_prefix / "bin" / "mcp-server-memory")]
    assert "create_entities" in result["tools"]
    assert result["missing_tools"] == []
    assert result["changed"] is False


def test_module_fails_on_a_missing_tool(memory_prefix: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_probe(
        {
            "command": str(memory_prefix / "bin" / "mcp-server-memory"),
            "expected_tools": ["create_entities", "no_such_tool"],
            "timeout": 60,
        },
        capsys,
    )
    assert result["failed"] is True
    assert result["missing_tools"] == ["no_such_tool"]
    assert "does not list the expected tool(s) no_such_tool" in result["msg"]


def test_module_masks_env_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A server that prints its secret to stderr and dies: the value must not come back.
    secret = "sk-cyclotron-test-secret-7777"
    result = _run_probe(
        {
            "command": "sh",
            "args": ["-c", 'echo "token is $API_TOKEN" >&2; exit 1'],
            "env": {"API_TOKEN": secret},
            "timeout": 10,
        },
        capsys,
    )
    assert result["failed"] is True
    assert "did not complete the handshake" in result["msg"]
    assert "token is" in result["stderr"]
    assert secret not in json.dumps(result)


def test_module_reports_a_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_probe({"command": "cyclotron-no-such-server", "search_paths": ["/nonexistent"]}, capsys)
    assert result["failed"] is True
    assert "'cyclotron-no-such-server' was not found" in result["msg"]


def test_module_search_paths_come_first(fake_server: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "fake-mcp"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake_server} ok\n")
    wrapper.chmod(0o755)
    result = _run_probe({"command": "fake-mcp", "search_paths": [str(bin_dir)], "expected_tools": ["gamma"]}, capsys)
    assert result.get("failed") is not True, result
    assert result["argv"] == [str(wrapper)]
    assert result["tools"] == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("npx", ["-y", "@scope/pkg@1.2.3", "--flag"], ("@scope/pkg", ["--flag"])),
        ("npx", ["pkg@latest"], ("pkg", [])),
        ("/usr/bin/npx", ["--yes", "pkg", "/data"], ("pkg", ["/data"])),
        ("cmd", ["/c", "npx", "-y", "pkg"], ("pkg", [])),
        ("npx", ["-p", "pkg", "other-bin"], None),
        ("npx", ["-y"], None),
        ("node", ["server.js"], None),
    ],
)
def test_npx_parsing(command: str, args: list[str], expected: tuple[str, list[str]] | None) -> None:
    assert probe_module._npx_package(command, args) == expected
