"""The apt and brew roles on paths that need neither root nor Homebrew.

The full apt cycle (install, idempotence, verify, rollback) is the role's molecule scenario
(root only); the brew one needs Homebrew. Here: argument specs reject a malformed item before
any task runs, a bad package name is refused and recorded without touching apt, and the brew
role records a clear failure on a host without brew. Each run is a real ansible-playbook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _play(tmp_path: Path, role: str, items: list[dict[str, Any]], extra: dict[str, Any] | None = None):
    out = tmp_path / "outcomes.json"
    play = [
        {
            "name": f"Run cyclotron_{role}",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {f"cyclotron_{role}_items": items, f"cyclotron_{role}_retries": 0, **(extra or {})},
            "tasks": [
                {"name": "Run the role", "ansible.builtin.include_role": {"name": f"cyclotron_{role}"}},
                {
                    "name": "Save the outcomes",
                    "ansible.builtin.copy": {
                        "dest": str(out),
                        "content": "{{ cyclotron_outcomes | default([]) | to_json }}",
                        "mode": "0600",
                    },
                },
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO_ROOT / "roles")),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    outcomes = json.loads(out.read_text()) if out.exists() else None
    return proc, outcomes


def test_argument_spec_rejects_an_item_without_package(tmp_path: Path) -> None:
    proc, outcomes = _play(tmp_path, "apt", [{"id": "jq", "name": "jq"}], {"cyclotron_apt_become": False})
    assert proc.returncode != 0
    assert "missing required arguments: package" in proc.stdout
    assert outcomes is None


def test_apt_refuses_option_injection_in_a_package_name(tmp_path: Path) -> None:
    items = [{"id": "apt:evil", "package": "jq -o APT::Get::Assume-Yes=true"}, {"id": "apt:nl", "package": "jq\n"}]
    proc, outcomes = _play(tmp_path, "apt", items, {"cyclotron_apt_become": False})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert [(o["id"], o["status"]) for o in outcomes or []] == [("apt:evil", "failed"), ("apt:nl", "failed")]
    assert all("is not a valid Debian name" in o["reason"] for o in outcomes or [])
    # Refused before any dpkg or apt task ran.
    assert "Read the installed version before" not in proc.stdout
    assert "Install with apt" not in proc.stdout


def test_brew_records_a_host_without_brew(tmp_path: Path) -> None:
    nowhere = str(tmp_path / "no-brew-here")
    items = [{"id": "jq", "name": "jq", "package": "jq", "cask": False}]
    proc, outcomes = _play(tmp_path, "brew", items, {"cyclotron_brew_search_paths": [nowhere]})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert outcomes == [
        {
            "id": "jq",
            "manager": "brew",
            "package": "jq",
            "status": "failed",
            "version_before": "",
            "version_after": "",
            "reason": outcomes[0]["reason"] if outcomes else "",
        }
    ]
    assert f"brew was not found in {nowhere}" in outcomes[0]["reason"]
