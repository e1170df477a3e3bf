"""sync.yml end to end over real SSH: three users, real installs from PyPI and npm into each
user's own venv and npm prefix. The original design's four scenarios, the dry run, the second
run at parity and the approval modes."""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from cyclotron_py import install_play

from .fleet import Fleet
from .sync_helpers import (
    HOSTS,
    MEMORY_SERVER,
    ONLY_PC1_PC2,
    RunDirs,
    cap_ids,
    caps_by_id,
    mcp_config,
    memory_server_entry,
    npm_install,
    npm_version,
    outcomes,
    pip_install,
    pip_version,
    read_manifest,
    reset_fleet,
    run_playbook,
    scan_for,
    task_output,
    vault_encrypt_values,
    write_inventory,
    write_user_file,
)

# Every test starts from users with nothing installed or configured (conftest's clean_fleet).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_fleet")]



# ---------------------------------------------------------------------- scenario 1
def test_single_gap_pc2_gets_the_tool_verified(ssh_fleet: Fleet, inventory: Path, dirs: RunDirs) -> None:
    pip_install(ssh_fleet, "pc1", "six")
    wanted = pip_version(ssh_fleet, "pc1", "six")

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, extra_args=ONLY_PC1_PC2)

    assert run.rc == 0, run.describe()
    assert pip_version(ssh_fleet, "pc2", "six") == wanted
    # Installed into pc2's own venv, by pc2's user.
    site = ssh_fleet.run(
        [str(ssh_fleet.hosts["pc2"].venv_python), "-c", "import six; print(six.__file__)"], "pc2"
    ).stdout
    assert site.startswith(str(ssh_fleet.hosts["pc2"].venv))
    # Verified by the catalog's probe, in the install stage.
    assert "ok: [pc2]" in task_output(run.stdout, "verify", "six"), run.describe()
    report = dirs.latest_report()
    got = outcomes(report, "pc2")["six"]
    assert (got["status"], got["version_before"], got["version_after"]) == ("installed", "", wanted)
    assert outcomes(report, "pc1") == {}
    assert report["coverage_after"] == 100.0 > report["coverage_before"]
    # The re-gather saw it.
    assert caps_by_id(read_manifest(dirs, "pc2"))["six"]["version"] == wanted
    assert (dirs.reports / f"sync-{report['plan_id']}.md").is_file()
    assert "pc2: six [pip] installed" in run.stdout


# ---------------------------------------------------------------------- dry run
def test_check_mode_reports_what_would_be_installed_and_changes_nothing(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs
) -> None:
    pip_install(ssh_fleet, "pc1", "six")
    npm_install(ssh_fleet, "pc2", "is-number")
    homes_before = {h: _tree(ssh_fleet.hosts[h].home) for h in HOSTS}

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, check=True, label="check")

    assert run.rc == 0, run.describe()
    # Exactly what would go where.
    plan_lines = task_output(run.stdout, "Show the plan")
    for line in ("pc1: npm:is-number (npm)", "pc2: six (pip)", "pc3: six (pip), npm:is-number (npm)"):
        assert line in plan_lines, plan_lines
    report = task_output(run.stdout, "Show the report")
    for line in ("pc1: npm:is-number [npm] would_install", "pc2: six [pip] would_install",
                 "pc3: six [pip] would_install", "pc3: npm:is-number [npm] would_install"):
        assert line in report, report
    assert "installed" not in report.replace("would_install", "")
    # Nothing changed: no package, no file in any home, no manifest, plan or report written.
    assert pip_version(ssh_fleet, "pc2", "six") is None and pip_version(ssh_fleet, "pc3", "six") is None
    assert npm_version(ssh_fleet, "pc1", "is-number") is None and npm_version(ssh_fleet, "pc3", "is-number") is None
    assert {h: _tree(ssh_fleet.hosts[h].home) for h in HOSTS} == homes_before
    assert dirs.files("manifests", "plans", "generated", "reports") == []


# ---------------------------------------------------------------------- scenario 2
def test_mcp_server_gap_pc2_gets_package_config_and_tools(ssh_fleet: Fleet, inventory: Path, dirs: RunDirs) -> None:
    npm_install(ssh_fleet, "pc1", MEMORY_SERVER)
    entry = memory_server_entry()
    write_user_file(ssh_fleet, "pc1", ".claude.json", mcp_config({"memory": entry}))
    write_user_file(ssh_fleet, "pc2", ".claude.json", json.dumps({"numStartups": 7, "theme": "dark"}))

    run = run_playbook(
        ssh_fleet, "sync.yml", dirs, inventory, extra_vars={"cyclotron_approve": "all"}, extra_args=ONLY_PC1_PC2
    )

    assert run.rc == 0, run.describe()
    pc2 = ssh_fleet.hosts["pc2"]
    assert npm_version(ssh_fleet, "pc2", MEMORY_SERVER) == npm_version(ssh_fleet, "pc1", MEMORY_SERVER)
    config = json.loads((pc2.home / ".claude.json").read_text())
    server = config["mcpServers"]["memory"]
    assert (server["command"], server["args"]) == (entry["command"], entry["args"])
    # The rest of pc2's config is kept.
    assert (config["numStartups"], config["theme"]) == (7, "dark")
    assert (pc2.home / ".claude.json").stat().st_uid == pc2.uid
    got = outcomes(dirs.latest_report(), "pc2")
    assert got["mcp:memory"]["status"] == "installed", got
    assert "mcp:memory" in cap_ids(read_manifest(dirs, "pc2"))

    # The server as configured on pc2 starts and lists its tools (an MCP handshake over SSH).
    tools = _probe_mcp(ssh_fleet, dirs, "pc2", server)
    assert "create_entities" in tools, tools


# ---------------------------------------------------------------------- scenario 3 + parity
def test_three_way_every_host_gets_all_and_a_second_run_changes_nothing(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs
) -> None:
    pip_install(ssh_fleet, "pc1", "six")
    pip_install(ssh_fleet, "pc2", "idna")
    npm_install(ssh_fleet, "pc3", "is-number")
    versions = {
        "six": pip_version(ssh_fleet, "pc1", "six"),
        "idna": pip_version(ssh_fleet, "pc2", "idna"),
        "is-number": npm_version(ssh_fleet, "pc3", "is-number"),
    }

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, label="sync")

    assert run.rc == 0, run.describe()
    for host in HOSTS:
        assert pip_version(ssh_fleet, host, "six") == versions["six"], host
        assert pip_version(ssh_fleet, host, "idna") == versions["idna"], host
        assert npm_version(ssh_fleet, host, "is-number") == versions["is-number"], host
        assert {"six", "pip:idna", "npm:is-number"} <= cap_ids(read_manifest(dirs, host)), host
    report = dirs.latest_report()
    assert report["counts"] == {"installed": 6}, report
    assert report["coverage_after"] == 100.0

    again = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, label="sync-again")

    assert again.rc == 0, again.describe()
    assert again.changed() == {"pc1": 0, "pc2": 0, "pc3": 0}, again.describe()
    assert "nothing to install: the fleet is at parity" in task_output(again.stdout, "Show the plan")
    assert "Outcomes: nothing to do" in task_output(again.stdout, "Show the report")


# ---------------------------------------------------------------------- scenario 4
def test_api_key_from_the_vault_reaches_pc2_in_a_0600_file_and_nowhere_else(
    ssh_fleet: Fleet, dirs: RunDirs, tmp_path: Path
) -> None:
    name = "CYCLOTRON_E2E_API_KEY"
    value = "sk-e2e-" + secrets.token_hex(20)
    write_user_file(ssh_fleet, "pc1", ".env", f"# pc1's keys\n{name}={value}\n")
    password = tmp_path / "vault-password"
    password.write_text(secrets.token_urlsafe(24) + "\n")
    password.chmod(0o600)
    vault = vault_encrypt_values(ssh_fleet, "cyclotron_api_keys_values", {name: value}, password)
    assert value not in vault
    inventory = write_inventory(ssh_fleet, tmp_path / "inventory", vault_text=vault)

    run = run_playbook(
        ssh_fleet,
        "sync.yml",
        dirs,
        inventory,
        extra_vars={"cyclotron_approve": "all"},
        extra_args=[*ONLY_PC1_PC2, "--vault-password-file", str(password), "-v"],
        label="sync-keys",
    )

    assert run.rc == 0, run.describe()
    pc2 = ssh_fleet.hosts["pc2"]
    env_file = pc2.home / ".env"
    assert env_file.read_text() == f"{name}={value}\n"
    st = env_file.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == pc2.uid
    got = outcomes(dirs.latest_report(), "pc2")[f"api_key:{name}"]
    assert got["status"] == "installed", got
    assert f"api_key:{name}" in cap_ids(read_manifest(dirs, "pc2"))

    # The value is in the two .env files and nowhere else: not in ansible's output or log file,
    # manifests, plans, generated playbooks, reports, the fact cache, ANSIBLE_HOME, the sshd logs,
    # the inventory (vaulted), or anything else in the users' homes (no backups left behind).
    places = [dirs.base, inventory.parent, ssh_fleet.workdir, *(ssh_fleet.hosts[h].home for h in HOSTS)]
    expected = [ssh_fleet.hosts["pc1"].home / ".env", env_file]
    assert scan_for(value, places, skip=expected) == []
    assert value not in run.stdout and value not in run.stderr
    assert dirs.files("manifests") and dirs.files("plans") and dirs.files("generated") and dirs.files("reports")
    assert dirs.files("logs")


# ---------------------------------------------------------------------- approval
def test_default_approval_installs_low_risk_and_lists_the_rest_as_awaiting(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs
) -> None:
    pip_install(ssh_fleet, "pc1", "six")
    write_user_file(ssh_fleet, "pc1", ".claude.json", mcp_config({"memory": memory_server_entry()}))
    write_user_file(ssh_fleet, "pc1", ".env", "CYCLOTRON_WAITING_API_KEY=sk-not-synced-in-this-test\n")

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, extra_args=ONLY_PC1_PC2)

    assert run.rc == 0, run.describe()
    plan = dirs.latest_plan()
    assert plan["approve"] == "low-risk"
    pc2_plan = next(h for h in plan["hosts"] if h["host"] == "pc2")
    assert [i["id"] for i in pc2_plan["items"]] == ["six"]
    waiting = {i["id"]: i for i in pc2_plan["awaiting_approval"]}
    assert set(waiting) == {"mcp:memory", "api_key:CYCLOTRON_WAITING_API_KEY"}
    assert waiting["mcp:memory"]["risk"] == "medium" and waiting["api_key:CYCLOTRON_WAITING_API_KEY"]["risk"] == "high"
    assert all("cyclotron_approve=all" in i["approval"] for i in waiting.values())
    shown = task_output(run.stdout, "Show the plan")
    assert "pc2: awaiting approval: mcp:memory" in shown
    assert "pc2: awaiting approval: api_key:CYCLOTRON_WAITING_API_KEY" in shown
    # The generated playbook installs only what was approved and says what waits.
    generated = (dirs.generated / f"{plan['plan_id']}.yml").read_text()
    assert "# awaiting approval on pc2: mcp:memory" in generated
    plays = install_play.load(generated)
    assert _generated_items(plays, "pc2") == ["six"]
    # Only the low-risk item was installed.
    assert pip_version(ssh_fleet, "pc2", "six")
    pc2 = ssh_fleet.hosts["pc2"]
    assert not (pc2.home / ".claude.json").exists() and not (pc2.home / ".env").exists()
    assert npm_version(ssh_fleet, "pc2", MEMORY_SERVER) is None
    assert set(outcomes(dirs.latest_report(), "pc2")) == {"six"}

    # approve=none plans the same and installs nothing.
    reset_fleet(ssh_fleet, ["pc2"])
    none = run_playbook(
        ssh_fleet, "sync.yml", dirs, inventory, extra_vars={"cyclotron_approve": "none"}, extra_args=ONLY_PC1_PC2,
        label="approve-none",
    )
    assert none.rc == 0, none.describe()
    plan = dirs.latest_plan()
    pc2_plan = next(h for h in plan["hosts"] if h["host"] == "pc2")
    assert pc2_plan["items"] == []
    assert {i["id"] for i in pc2_plan["awaiting_approval"]} == {
        "six", "mcp:memory", "api_key:CYCLOTRON_WAITING_API_KEY"
    }
    assert pip_version(ssh_fleet, "pc2", "six") is None


# ---------------------------------------------------------------------- helpers
def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under a home with its size and mtime.

    Left out: Ansible's and SSH's own bookkeeping, caches, and ~/.terraform.d, where the terraform
    CLI writes a checkpoint file the first time it runs at all (the gather's version probe runs
    it, in check mode too, as every read-only probe; CHECKPOINT_DISABLE=1 would stop that).
    """
    out: dict[str, tuple[int, int]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if rel.startswith((".ssh/", ".ansible/", ".cache/", ".terraform.d/")):
                continue
            st = path.lstat()
            out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def _generated_items(plays: list[dict[str, Any]], host: str) -> list[str]:
    ids: list[str] = []
    for play in plays:
        if play.get("hosts") != host:
            continue
        for task in play["tasks"]:
            for items in (task.get("vars") or {}).values():
                ids.extend(i["id"] for i in items)
    return ids


def _probe_mcp(fleet: Fleet, dirs: RunDirs, host: str, server: dict[str, Any]) -> list[str]:
    """Start ``server`` on ``host`` as the assistant would and return the tools it lists."""
    out = dirs.base / f"probe-{host}.json"
    playbook = dirs.base / "probe.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Probe an MCP server as configured",
                    "hosts": host,
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Initialize and list tools",
                            "cyclotron_mcp_probe": {
                                "command": server["command"],
                                "args": server.get("args", []),
                                "npm_prefix": "{{ cyclotron_npm_prefix }}",
                                "expected_tools": ["create_entities"],
                                "timeout": 60,
                            },
                            "environment": "{{ cyclotron_install_environment }}",
                            "register": "probe",
                        },
                        {
                            "name": "Keep the answer",
                            "ansible.builtin.copy": {
                                "content": "{{ probe | to_json }}", "dest": str(out), "mode": "0600"
                            },
                            "delegate_to": "localhost",
                        },
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    inventory = dirs.base.parent / "probe-inventory"
    proc = fleet.ansible_playbook(playbook, inventory=write_inventory(fleet, inventory))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result.get("resolved_npx") is True, result  # ran pc2's installed package, no download
    tools: list[str] = result["tools"]
    return tools
