"""The winget, Chocolatey and dnf roles' logic, run on this machine over stand-in modules.

The real win_winget.ps1 and Chocolatey modules need Windows (each role's molecule/windows
scenario), and this machine has no dnf. Here the same roles run against localhost with the
stand-ins in windows_fakes/ (same options and results, over a JSON package database), so every
branch of the roles' before / install / verify / rollback / outcome logic runs: fresh install,
idempotent rerun, upgrade, pin with downgrade, never downgrading unpinned, rollback by removal
and by reinstalling the previous version, an unavailable package, a bad id, and check mode.
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
FAKES = Path(__file__).resolve().parent / "windows_fakes"

OK_PROBE = {"command": [sys.executable, "-c", "print('tool 2.0')"], "regex": r"tool (\S+)"}
BAD_PROBE = {"command": [sys.executable, "-c", "print('tool 2.0')"], "regex": r"^never-(\d+)$"}


def _item(pkg: str, version: str = "", pinned: bool = False, verify: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": pkg.lower(), "name": pkg, "package": pkg, "version": version, "pinned": pinned}
    if verify:
        item["verify"] = verify
    return item


def _run_role(
    tmp_path: Path,
    role: str,
    db: dict[str, Any],
    runs: list[tuple[list[dict[str, Any]], bool]],
    role_vars: dict[str, Any] | None = None,
) -> tuple:
    """Run ``role`` once per (items, check_mode); return (outcomes, final db)."""
    state = tmp_path / "db.json"
    state.write_text(json.dumps(db))
    out = tmp_path / "outcomes.json"
    prefix = f"cyclotron_{role}"
    tasks: list[dict[str, Any]] = []
    for items, check in runs:
        task: dict[str, Any] = {
            "name": f"Run {prefix}",
            "ansible.builtin.include_role": {"name": prefix},
            "vars": {f"{prefix}_items": items},
        }
        if check:
            task["ansible.builtin.include_role"]["apply"] = {"check_mode": True}
        tasks.append(task)
    tasks.append(
        {
            "name": "Save the outcomes",
            "ansible.builtin.copy": {"dest": str(out), "content": "{{ cyclotron_outcomes | to_json }}", "mode": "0600"},
        }
    )
    play = [
        {
            "name": "Roles over stand-in modules",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                f"{prefix}_retries": 0,
                f"{prefix}_environment": {"CYCLOTRON_FAKE_STATE": str(state), "CYCLOTRON_FAKE_DIR": str(FAKES)},
                **(role_vars or {}),
            },
            "tasks": tasks,
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=f"{FAKES / 'library'}:{REPO_ROOT / 'plugins' / 'modules'}",
        ANSIBLE_COLLECTIONS_PATH=str(FAKES / "collections"),
        ANSIBLE_ROLES_PATH=str(REPO_ROOT / "roles"),
        PATH=f"{FAKES / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
    )
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
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), json.loads(state.read_text())


def _by_id(outcomes: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str | None]]:
    return [(o["id"], o["status"], o["version_before"], o["version_after"]) for o in outcomes]


@pytest.mark.parametrize(
    ("role", "ids"),
    [
        ("winget", {"a": "Acme.A", "b": "Acme.B", "c": "Acme.C", "d": "Acme.D", "e": "Acme.E", "f": "Acme.F"}),
        ("choco", {"a": "acme-a", "b": "acme-b", "c": "acme-c", "d": "acme-d", "e": "acme-e", "f": "acme-f"}),
    ],
)
def test_install_verify_rollback(tmp_path: Path, role: str, ids: dict[str, str]) -> None:
    a, b, c, d, e, f = (ids[k] for k in "abcdef")
    db: dict[str, Any] = {
        "installed": {b: "1.0", d: "1.0", f: "5.0"},
        "available": {a: ["1.0", "2.0"], b: ["1.0", "2.0"], c: ["3.1"], d: ["1.0", "2.0"], f: ["4.0", "5.0"]},
    }
    items = [
        _item(a, verify=OK_PROBE),  # fresh install of the latest version
        _item(a),  # idempotent
        _item(b, version="2.0"),  # older installed: upgraded
        _item(a, version="1.0", pinned=True),  # pinned: moved down to exactly 1.0
        _item(c, verify=BAD_PROBE),  # probe fails: removed again
        _item(d, version="2.0", verify=BAD_PROBE),  # upgraded, probe fails: 1.0 reinstalled
        _item(e),  # not available anywhere: fails, nothing to undo
        _item("Bad Id; rm -rf x"),  # refused before any package manager runs
        _item(f, version="4.0"),  # newer installed and not pinned: left alone
    ]
    check_items = [_item("Acme.G" if role == "winget" else "acme-g"), _item(b, version="3.0")]
    db["available"][check_items[0]["package"]] = ["1.0"]

    outcomes, final = _run_role(tmp_path, role, db, [(items, False), (check_items, True)])

    assert _by_id(outcomes) == [
        (a.lower(), "installed", "", "2.0"),
        (a.lower(), "already_present", "2.0", "2.0"),
        (b.lower(), "upgraded", "1.0", "2.0"),
        (a.lower(), "upgraded", "2.0", "1.0"),
        (c.lower(), "failed_rolled_back", "", ""),
        (d.lower(), "failed_rolled_back", "1.0", "1.0"),
        (e.lower(), "failed", "", ""),
        ("bad id; rm -rf x", "failed", "", ""),
        (f.lower(), "already_present", "5.0", "5.0"),
        (check_items[0]["id"], "would_install", "", ""),
        # winget cannot tell in check mode whether an upgrade exists; choco --noop can.
        (b.lower(), "would_install" if role == "winget" else "already_present", "2.0", "2.0"),
    ]
    assert all(o["manager"] == role for o in outcomes)
    reasons = {o["id"]: o["reason"] for o in outcomes if o["status"].startswith("failed")}
    assert "removed" in reasons[c.lower()]
    assert "reinstalled 1.0" in reasons[d.lower()]
    assert "nothing to roll back" in reasons[e.lower()]
    assert "not valid" in reasons["bad id; rm -rf x"]
    assert final["installed"] == {a: "1.0", b: "2.0", d: "1.0", f: "5.0"}
    # Nothing ran for the bad id, and check mode changed nothing.
    assert not any("Bad" in str(entry) for entry in final["log"])
    assert not any(check_items[0]["package"] in str(entry) for entry in final["log"])


# dnf: the backend is named (no ansible_facts.pkg_mgr here), nothing escalates, and the fake
# rpm in windows_fakes/bin answers the role's `rpm -q` queries.
DNF_VARS = {"cyclotron_dnf_backend": "dnf4", "cyclotron_dnf_become": False}


def test_dnf_install_verify_rollback(tmp_path: Path) -> None:
    db: dict[str, Any] = {
        "installed": {"acme-b": "1.0-1", "acme-d": "1.0-1", "acme-f": "5.0-1"},
        "available": {
            "acme-a": ["1.0-1", "2.0-1"], "acme-b": ["1.0-1", "2.0-1"], "acme-c": ["3.1-2"],
            "acme-d": ["1.0-1", "2.0-1"], "acme-f": ["4.0-1", "5.0-1"], "acme-g": ["1.0-1"],
        },
    }
    items = [
        _item("acme-a", verify=OK_PROBE),  # fresh install of the newest version
        _item("acme-a"),  # idempotent
        _item("acme-b", version="2.0-1"),  # older installed: upgraded
        _item("acme-a", version="1.0-1", pinned=True),  # pinned: moved down to exactly 1.0-1
        _item("acme-c", verify=BAD_PROBE),  # probe fails: removed again
        _item("acme-d", version="2.0-1", verify=BAD_PROBE),  # upgraded, probe fails: 1.0-1 reinstalled
        _item("acme-e"),  # not available anywhere: fails, nothing to undo
        _item("acme-c", version="9.9-1", pinned=True),  # pinned to a version no repo has
        _item("--setopt=x acme"),  # refused before dnf or rpm runs
        _item("acme-f", version="4.0-1"),  # newer installed and not pinned: left alone
    ]
    check_items = [_item("acme-g"), _item("acme-b", version="3.0-1")]

    outcomes, final = _run_role(tmp_path, "dnf", db, [(items, False), (check_items, True)], DNF_VARS)

    assert _by_id(outcomes) == [
        ("acme-a", "installed", "", "2.0-1"),
        ("acme-a", "already_present", "2.0-1", "2.0-1"),
        ("acme-b", "upgraded", "1.0-1", "2.0-1"),
        ("acme-a", "upgraded", "2.0-1", "1.0-1"),
        ("acme-c", "failed_rolled_back", "", ""),
        ("acme-d", "failed_rolled_back", "1.0-1", "1.0-1"),
        ("acme-e", "failed", "", ""),
        ("acme-c", "failed", "", ""),
        ("--setopt=x acme", "failed", "", ""),
        ("acme-f", "already_present", "5.0-1", "5.0-1"),
        ("acme-g", "would_install", "", ""),
        ("acme-b", "already_present", "2.0-1", "2.0-1"),  # no newer version to upgrade to
    ]
    assert all(o["manager"] == "rpm" for o in outcomes)
    reasons = [o["reason"] for o in outcomes]
    assert "removed" in reasons[4]
    assert "reinstalled 1.0-1" in reasons[5]
    assert "nothing to roll back" in reasons[6] and "nothing to roll back" in reasons[7]
    assert "not a valid rpm name" in reasons[8]
    assert final["installed"] == {"acme-a": "1.0-1", "acme-b": "2.0-1", "acme-d": "1.0-1", "acme-f": "5.0-1"}
    assert not any("setopt" in str(entry) for entry in final["log"])
    assert not any("acme-g" in str(entry) for entry in final["log"])


def test_dnf_second_run_changes_nothing(tmp_path: Path) -> None:
    db: dict[str, Any] = {"available": {"acme-a": ["1.0-1", "2.0-1"]}}
    items = [_item("acme-a"), _item("acme-a", version="1.0-1", pinned=True)]
    outcomes, final = _run_role(tmp_path, "dnf", db, [(items, False), (items, False)], DNF_VARS)
    assert [o["status"] for o in outcomes] == ["installed", "upgraded", "already_present", "already_present"]
    # One install and one pinned move; the second run asked dnf for nothing it had to do.
    assert [entry[0] for entry in final["log"]] == ["present", "present"]
