"""One outcome contract for every installer role (docs/INSTALLER_CONTRACT.md).

Every role records outcomes only through cyclotron_installer/tasks/outcome.yml, which gives each
record the same keys and the same empty values; no role carries its own version ordering.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = REPO_ROOT / "roles"
SHARED = ROLES / "cyclotron_installer" / "tasks" / "outcome.yml"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
OUTCOME_KEYS = {"id", "manager", "package", "status", "version_before", "version_after", "reason"}
INSTALLER_ROLES = sorted(p.name for p in ROLES.glob("cyclotron_*") if p.name != "cyclotron_installer")


def _tasks(node: Any) -> list[dict[str, Any]]:
    """Every task in a task file, blocks and rescues included."""
    found: list[dict[str, Any]] = []
    for task in node or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found.extend(_tasks(task.get(key)))
    return found


def _task_files() -> list[Path]:
    return sorted(p for p in ROLES.glob("*/tasks/*.yml") if p != SHARED)


@pytest.mark.parametrize("path", _task_files(), ids=lambda p: str(p.relative_to(ROLES)))
def test_roles_record_outcomes_only_through_the_shared_file(path: Path) -> None:
    for task in _tasks(yaml.safe_load(path.read_text(encoding="utf-8"))):
        set_fact = task.get("ansible.builtin.set_fact") or task.get("set_fact") or {}
        assert "cyclotron_outcomes" not in set_fact, (
            f"{path.relative_to(REPO_ROOT)}: task {task.get('name')!r} appends to cyclotron_outcomes itself; "
            "include_role cyclotron_installer tasks_from outcome instead"
        )


@pytest.mark.parametrize("role", INSTALLER_ROLES)
def test_every_installer_role_uses_the_shared_outcome(role: str) -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in (ROLES / role / "tasks").glob("*.yml"))
    if role in ("cyclotron_pip", "cyclotron_npm"):
        assert "tasks_from: package_item" in text  # whose body records through outcome.yml
    else:
        assert "tasks_from: outcome" in text


OS_ROLES = ["cyclotron_apt", "cyclotron_dnf", "cyclotron_brew", "cyclotron_winget", "cyclotron_choco"]


@pytest.mark.parametrize("role", OS_ROLES)
def test_os_roles_order_versions_with_the_controller_filter(role: str) -> None:
    text = (ROLES / role / "tasks" / "item.yml").read_text(encoding="utf-8")
    assert "regex_findall" not in text
    assert "cyclotron_version_older(" in text


def _record(tmp_path: Path, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the shared task file for each outcome (as the roles include it) and return the fact."""
    tasks = [
        {
            "name": f"Record {i}",
            "ansible.builtin.include_role": {"name": "cyclotron_installer", "tasks_from": "outcome"},
            "vars": {"cyclotron_installer_outcome": outcome},
        }
        for i, outcome in enumerate(outcomes)
    ]
    out = tmp_path / "outcomes.json"
    tasks.append({
        "name": "Write the outcomes",
        "ansible.builtin.copy": {"content": "{{ cyclotron_outcomes | to_json }}", "dest": str(out), "mode": "0600"},
    })
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]), encoding="utf-8")
    proc = subprocess.run(
        [str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(play),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return result


def test_outcomes_have_the_same_keys_and_empty_values(tmp_path: Path) -> None:
    got = _record(tmp_path, [
        # The shapes the roles pass: OS roles may pass null versions, pip/npm pass "".
        {"id": "apt:jq", "manager": "apt", "package": "jq", "status": "installed",
         "version_before": None, "version_after": "1.7.1"},
        {"id": "pip:x", "manager": "pip", "package": "x", "status": "already_present",
         "version_before": "1.0", "version_after": "1.0", "reason": ""},
        # Failed, nothing changed: failed (an MCP config left untouched because it was invalid JSON).
        {"id": "mcp:m", "manager": "mcp", "failed": True, "changed": False, "reason": "not valid JSON"},
        # Failed after a change that was undone: failed_rolled_back.
        {"id": "npm:y", "manager": "npm", "package": "y", "failed": True, "changed": True,
         "version_before": "", "version_after": "", "reason": "probe failed"},
        # Failed, and the rollback failed too: failed, the reason says both.
        {"id": "brew:z", "manager": "brew", "package": "z", "failed": True, "changed": True,
         "rollback_error": "cannot reinstall 1.0", "version_before": "1.0", "version_after": "2.0",
         "reason": "verify failed"},
    ])
    assert all(set(o) == OUTCOME_KEYS for o in got), got
    assert all(isinstance(o[k], str) for o in got for k in OUTCOME_KEYS), got
    assert [o["status"] for o in got] == ["installed", "already_present", "failed", "failed_rolled_back", "failed"]
    assert (got[0]["version_before"], got[2]["package"], got[2]["version_after"]) == ("", "", "")
    assert got[4]["reason"] == "verify failed; rollback failed: cannot reinstall 1.0"
