"""gather.yml over real SSH: three users with different pip/npm packages, MCP configs, API key
names and git repos give three valid, different manifests; a second gather changes nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fleet import Fleet
from .sync_helpers import (
    HOSTS,
    PlaybookRun,
    RunDirs,
    caps_by_id,
    git_repo,
    mcp_config,
    memory_server_entry,
    npm_install,
    pip_install,
    read_manifest,
    reset_fleet,
    run_playbook,
    scan_for,
    task_output,
    write_inventory,
    write_user_file,
)

pytestmark = pytest.mark.integration

# Values that sit in the users' .env files: names reach the manifests, values never.
PC1_KEY_VALUE = "sk-gather-pc1-4f1c2a9be07d"
PC2_KEY_VALUE = "sk-ant-gather-pc2-93bd01e5aa"


@dataclass
class Gathered:
    fleet: Fleet
    dirs: RunDirs
    inventory: Path
    run: PlaybookRun


def _set_up_users(fleet: Fleet) -> None:
    """pc1: six + is-number, Claude Code memory server, OPENAI key, a repo.
    pc2: idna + tomli, Cursor fetch server (uvx), ANTHROPIC key.
    pc3: colorama, VS Code everything server; no keys, no repos."""
    pip_install(fleet, "pc1", "six")
    npm_install(fleet, "pc1", "is-number")
    write_user_file(fleet, "pc1", ".claude.json", mcp_config({"memory": memory_server_entry()}))
    write_user_file(fleet, "pc1", ".env", f"OPENAI_API_KEY={PC1_KEY_VALUE}\nEDITOR=vim\n")
    git_repo(fleet, "pc1", "src/proj", "https://git.example.invalid/team/proj.git")

    pip_install(fleet, "pc2", "idna", "tomli")
    write_user_file(
        fleet,
        "pc2",
        ".cursor/mcp.json",
        json.dumps({"mcpServers": {"fetch": {"command": "uvx", "args": ["mcp-server-fetch"]}}}),
    )
    write_user_file(fleet, "pc2", ".env", f"export ANTHROPIC_API_KEY='{PC2_KEY_VALUE}'\n")

    pip_install(fleet, "pc3", "colorama")
    write_user_file(
        fleet,
        "pc3",
        ".config/Code/User/mcp.json",
        json.dumps({"servers": {"everything": {"type": "stdio", "command": "npx",
                                               "args": ["-y", "@modelcontextprotocol/server-everything"]}}}),
    )


@pytest.fixture(scope="module")
def gathered(ssh_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gathered]:
    base = tmp_path_factory.mktemp("gather")
    reset_fleet(ssh_fleet)
    _set_up_users(ssh_fleet)
    dirs = RunDirs.make(base / "run")
    # Every source, dpkg included: what a real first gather of these machines does.
    inventory = write_inventory(ssh_fleet, base / "inventory", catalog=None, sources=None)
    run = run_playbook(ssh_fleet, "gather.yml", dirs, inventory, label="gather")
    try:
        yield Gathered(ssh_fleet, dirs, inventory, run)
    finally:
        reset_fleet(ssh_fleet)


def test_gather_writes_three_valid_manifests(gathered: Gathered) -> None:
    run = gathered.run
    assert run.rc == 0, run.describe()
    assert sorted(p.name for p in gathered.dirs.manifests.glob("*.json")) == ["pc1.json", "pc2.json", "pc3.json"]
    # The project's own validator, as a person would run it.
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "cyclotron"), "validate", str(gathered.dirs.manifests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in HOSTS:
        manifest = read_manifest(gathered.dirs, host)
        assert manifest["host"] == host
        assert manifest["os"]["family"] == "linux"
        assert {"pip", "npm"} <= set(manifest["managers"])
        # A version probe may time out on a loaded machine; any other source error is a bug.
        assert [e for e in manifest["errors"] if "timed out" not in e["message"]] == [], manifest["errors"]
        # The shared machine's dpkg packages are gathered over SSH too.
        assert any(c["source"]["manager"] == "apt" for c in manifest["capabilities"])


def test_manifests_differ_as_the_users_do(gathered: Gathered) -> None:
    fleet = gathered.fleet
    m = {h: caps_by_id(read_manifest(gathered.dirs, h)) for h in HOSTS}
    own = {
        "pc1": {
            "pip:six", "npm:is-number", "mcp:memory", "api_key:OPENAI_API_KEY", "git:git.example.invalid/team/proj"
        },
        "pc2": {"pip:idna", "pip:tomli", "mcp:fetch", "api_key:ANTHROPIC_API_KEY"},
        "pc3": {"pip:colorama", "mcp:everything"},
    }
    for host, ids in own.items():
        assert ids <= set(m[host]), f"{host} lacks {sorted(ids - set(m[host]))}"
        for other in HOSTS:
            if other != host:
                assert not ids & set(m[other]), f"{other} shows {host}'s {sorted(ids & set(m[other]))}"

    # Packages are read from the user's own venv / npm prefix.
    assert m["pc1"]["pip:six"]["source"]["path"] == str(fleet.hosts["pc1"].venv)
    assert m["pc1"]["npm:is-number"]["source"]["path"] == str(fleet.hosts["pc1"].npm_prefix)
    assert m["pc1"]["pip:six"]["version"]

    memory = m["pc1"]["mcp:memory"]["details"]
    assert memory["package"] == {"manager": "npm", "name": "@modelcontextprotocol/server-memory", "version": ""}
    assert [c["assistant"] for c in memory["configured_in"]] == ["claude_code"]
    assert m["pc2"]["mcp:fetch"]["details"]["package"]["manager"] == "pip"
    assert [c["assistant"] for c in m["pc2"]["mcp:fetch"]["details"]["configured_in"]] == ["cursor"]
    assert [c["assistant"] for c in m["pc3"]["mcp:everything"]["details"]["configured_in"]] == ["vscode"]
    assert m["pc1"]["git:git.example.invalid/team/proj"]["details"]["branch"] == "main"
    # A .env line that is no key is not reported.
    assert "api_key:EDITOR" not in m["pc1"]


def test_key_values_stay_on_the_hosts(gathered: Gathered) -> None:
    for value in (PC1_KEY_VALUE, PC2_KEY_VALUE):
        assert scan_for(value, [gathered.dirs.base, gathered.fleet.workdir]) == []


def test_second_gather_changes_nothing(gathered: Gathered) -> None:
    fleet, dirs = gathered.fleet, gathered.dirs
    # dpkg is the shared machine's, and other work may change it between two runs: the
    # idempotence check gathers what belongs to the users (all sources but os_packages).
    inventory = write_inventory(fleet, dirs.base / "inventory-user-sources", catalog=None)
    first = run_playbook(fleet, "gather.yml", dirs, inventory, label="gather-user-sources")
    assert first.rc == 0, first.describe()
    stamps = {h: read_manifest(dirs, h)["gathered_at"] for h in HOSTS}
    texts = {h: (dirs.manifests / f"{h}.json").read_bytes() for h in HOSTS}

    second = run_playbook(fleet, "gather.yml", dirs, inventory, label="gather-again")
    assert second.rc == 0, second.describe()
    assert second.changed() == {"pc1": 0, "pc2": 0, "pc3": 0}, second.describe()
    task = task_output(second.stdout, "manifest")
    assert "changed:" not in task and task.count("ok: [pc") == 3, task
    # An unchanged manifest is not rewritten: same bytes, same timestamp.
    assert {h: (dirs.manifests / f"{h}.json").read_bytes() for h in HOSTS} == texts
    assert {h: read_manifest(dirs, h)["gathered_at"] for h in HOSTS} == stamps



@pytest.mark.parametrize(("method", "gatherer"), [("sudo", "script"), ("su", "cyclotron_facts")])
def test_gather_with_become(gathered: Gathered, tmp_path: Path, method: str, gatherer: str) -> None:
    """sudo pipelines, so the piped gatherer runs as the become user; su cannot pipeline, so the
    module runs instead. Either way the manifest is the user's."""
    if method == "sudo" and shutil.which("sudo") is None:
        pytest.skip("sudo is not installed (make deps installs it)")
    fleet = gathered.fleet
    pc2 = fleet.hosts["pc2"]
    args = {"dest": str(tmp_path), "host": "pc2", "facts": {"home": str(pc2.home), "sources": ["api_keys", "mcp"]}}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-m", "cyclotron_gather", "-a", json.dumps(args),
         "-e", f"ansible_python_interpreter={fleet.python_interpreter}",
         "--become", "--become-method", method, "--become-user", pc2.user, "-vvv"],
        capture_output=True, text=True, cwd=fleet.repo_root, env=fleet.env(), timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(rf"EXEC .*\b{method}\b.*{pc2.user}", proc.stdout), proc.stdout[-3000:]
    assert re.findall(r'gatherer": "([a-z_]+)"', proc.stdout) == [gatherer]
    manifest = json.loads((tmp_path / "pc2.json").read_text())
    assert {"api_key:ANTHROPIC_API_KEY", "mcp:fetch"} <= {c["id"] for c in manifest["capabilities"]}
    assert PC2_KEY_VALUE not in proc.stdout + proc.stderr
