"""`cyclotron run`, approvals, status and history over two local-connection hosts, with a real
ansible-runner run, real SQLite store and real run dirs (no root, no sshd: hosts are sandboxes)."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cyclotron_py.cli import main
from cyclotron_py.store import Store

pytestmark = pytest.mark.integration

SECRET_IN_CONTROLLER_ENV = "sk-ant-controller-env-value-0123456789abcdef"
SECRET_IN_HOME = "sk-ant-home-dotenv-value-abcdef0123456789"


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    homes = {h: tmp_path / h for h in ("pca", "pcb")}
    for home in homes.values():
        home.mkdir()
    (homes["pca"] / ".env").write_text(f"ANTHROPIC_API_KEY={SECRET_IN_HOME}\n")
    hosts = {
        name: {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "cyclotron_home": str(home),
            "cyclotron_facts_sources": ["api_keys", "mcp"],
            "cyclotron_facts_read_environment": False,
        }
        for name, home in homes.items()
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    state = tmp_path / "state"
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(state))
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_IN_CONTROLLER_ENV)
    return {"inventory": inventory, "state": state, "out": tmp_path / "out", **homes}


def _run(fleet: dict[str, Path], *extra: str) -> int:
    out = fleet["out"]
    dirs = [f"cyclotron_{d}_dir={out / d}" for d in ("manifest", "plans", "generated", "reports")]
    return main(["run", "-i", str(fleet["inventory"]), *[a for d in dirs for a in ("-e", d)], *extra])


def test_manual_run_queues_approvals_and_records_everything(fleet: dict[str, Path], capsys) -> None:
    rc = _run(fleet, "--mode", "manual")
    printed = capsys.readouterr().out
    assert rc == 0, printed
    with Store.open(fleet["state"]) as store:
        (run,) = store.runs()
        assert (run["kind"], run["mode"], run["status"], run["rc"]) == ("sync", "manual", "successful", 0)
        hosts = {h["host"]: h for h in store.host_outcomes(run["id"])}
        assert {"pca", "pcb"} <= set(hosts) and hosts["pca"]["status"] == "complete"
        pending = store.approvals()
        assert [(a["host"], a["capability_id"]) for a in pending] == [("pcb", "api_key:ANTHROPIC_API_KEY")]
        assert pending[0]["plan_id"] == run["plan_id"] and pending[0]["plan_id"].startswith("plan-")
        assert {m["host"] for m in [*store.manifest_history("pca"), *store.manifest_history("pcb")]} == {"pca", "pcb"}
    assert "1 item(s) await approval" in printed

    # A second manual run does not ask again for the same item.
    assert _run(fleet, "--mode", "manual") == 0
    capsys.readouterr()
    with Store.open(fleet["state"]) as store:
        assert len(store.approvals()) == 1 and len(store.runs()) == 2

    # The queue from the CLI: list, reject with a reason.
    assert main(["approvals", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert main(["reject", str(listed["id"]), "--reason", "not on this PC"]) == 0
    assert main(["approvals"]) == 0 and "no pending approvals" in capsys.readouterr().out

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["last_run"]["status"] == "successful" and status["pending_approvals"] == []
    assert set(status["hosts"]) >= {"pca", "pcb"} and status["hosts"]["pca"]["last_gathered"]

    assert main(["history", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in history["runs"]] == ["sync", "sync"]


def test_no_secret_reaches_the_state_dir_and_run_dirs_are_private(fleet: dict[str, Path], capsys) -> None:
    assert _run(fleet, "--mode", "manual") == 0
    printed = capsys.readouterr()
    assert SECRET_IN_HOME not in printed.out + printed.err
    assert SECRET_IN_CONTROLLER_ENV not in printed.out + printed.err
    files = [p for p in fleet["state"].rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files), "runner wrote no artifacts"
    for path in files:
        data = path.read_bytes()
        assert SECRET_IN_HOME.encode() not in data, path
        assert SECRET_IN_CONTROLLER_ENV.encode() not in data, path
    command = json.loads(next(p for p in files if p.name == "command").read_text())
    assert "OPENAI_API_KEY" not in command.get("env", {})
    for run_dir in (fleet["state"] / "runs").iterdir():
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(fleet["state"].stat().st_mode) == 0o700
    assert os.environ["OPENAI_API_KEY"] == SECRET_IN_CONTROLLER_ENV  # the controller's environment is restored


def _vault(fleet: dict[str, Path], tmp_path: Path, values: dict[str, str]) -> Path:
    """group_vars/all/vault.yml with ``cyclotron_api_keys_values`` encrypted; returns the password file."""
    password = tmp_path / "vault-password"
    password.write_text(secrets.token_urlsafe(24) + "\n")
    password.chmod(0o600)
    lines = ["cyclotron_api_keys_values:"]
    for name, value in values.items():
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
             str(password), "--stdin-name", name],
            input=value, capture_output=True, text=True, check=True,
        )
        lines += ["  " + line for line in proc.stdout.splitlines()]
    group_vars = fleet["inventory"].parent / "group_vars" / "all"
    group_vars.mkdir(parents=True, exist_ok=True)
    (group_vars / "vault.yml").write_text("\n".join(lines) + "\n")
    return password


def test_api_key_sync_from_the_vault_leaves_no_value_in_the_store_run_dirs_or_output(
    fleet: dict[str, Path], tmp_path: Path, capfd
) -> None:
    """A full-auto run writes pcb's key from the vault; the value is in the two .env files only."""
    value = "sk-vault-" + secrets.token_hex(20)
    (fleet["pca"] / ".env").write_text(f"ANTHROPIC_API_KEY={value}\n")
    password = _vault(fleet, tmp_path, {"ANTHROPIC_API_KEY": value})
    rc = _run(fleet, "--mode", "full-auto", "--vault-password-file", str(password))
    printed = capfd.readouterr()
    assert rc == 0, printed.out + printed.err
    assert (fleet["pcb"] / ".env").read_text() == f"ANTHROPIC_API_KEY={value}\n"
    assert stat.S_IMODE((fleet["pcb"] / ".env").stat().st_mode) == 0o600
    with Store.open(fleet["state"]) as store:
        (run,) = store.runs()
        items = {i["capability_id"]: i for i in store.item_outcomes(run["id"])}
        assert items["api_key:ANTHROPIC_API_KEY"]["outcome"] == "installed"
        assert items["api_key:ANTHROPIC_API_KEY"]["host"] == "pcb"
    assert value not in printed.out + printed.err
    hits = [p for p in [*fleet["state"].rglob("*"), *fleet["out"].rglob("*")] if p.is_file() and value.encode()
            in p.read_bytes()]
    assert hits == []


def test_approval_flow_manual_run_approve_two_reject_one_next_run_installs_exactly_two(
    fleet: dict[str, Path], tmp_path: Path, capsys
) -> None:
    keys = {f"FLOW{n}_API_KEY": "sk-flow-" + secrets.token_hex(16) for n in (1, 2, 3)}
    (fleet["pca"] / ".env").write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    password = _vault(fleet, tmp_path, keys)
    vault = ["--vault-password-file", str(password)]

    assert _run(fleet, "--mode", "manual", *vault) == 0
    capsys.readouterr()
    assert not (fleet["pcb"] / ".env").exists()  # manual: nothing installed
    with Store.open(fleet["state"]) as store:
        pending = {a["capability_id"]: a["id"] for a in store.approvals()}
    assert sorted(pending) == [f"api_key:FLOW{n}_API_KEY" for n in (1, 2, 3)]

    assert main(["approve", str(pending["api_key:FLOW1_API_KEY"]), str(pending["api_key:FLOW2_API_KEY"])]) == 0
    assert main(["reject", str(pending["api_key:FLOW3_API_KEY"]), "--reason", "pcb must not have it"]) == 0
    capsys.readouterr()

    assert _run(fleet, "--mode", "manual", *vault) == 0
    printed = capsys.readouterr().out
    written = (fleet["pcb"] / ".env").read_text()
    assert "FLOW1_API_KEY=" in written and "FLOW2_API_KEY=" in written and "FLOW3_API_KEY" not in written
    with Store.open(fleet["state"]) as store:
        second = store.runs()[0]
        outcomes = {i["capability_id"]: i["outcome"] for i in store.item_outcomes(second["id"]) if i["host"] == "pcb"}
        assert outcomes == {"api_key:FLOW1_API_KEY": "installed", "api_key:FLOW2_API_KEY": "installed",
                            "api_key:FLOW3_API_KEY": "rejected"}
        assert store.approvals() == []  # nothing new queued
        states = {a["capability_id"]: a["state"] for a in store.approvals(states=("closed", "rejected", "approved"))}
        assert states == {"api_key:FLOW1_API_KEY": "closed", "api_key:FLOW2_API_KEY": "closed",
                          "api_key:FLOW3_API_KEY": "rejected"}
    assert "awaiting approval" not in printed
