"""A plan's generated playbook, run alone over real SSH: a pipx tool reaches the host through
the pip role's pipx path (cyclotron_pip_pipx_items), not as a pip package.

The plan comes from `cyclotron plan` over manifests on disk (pc1 has the tool, pc2 does not);
the run is plain `ansible-playbook -i <inventory> generated/<id>.yml`, as the header says.
pipx itself is installed into pc2's venv first, as a developer's machine would have it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py import install_play
from cyclotron_py.cli import main

from .fleet import Fleet
from .sync_helpers import RunDirs, pip_install, pip_version

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_fleet")]

TOOL = "pycowsay"


def _manifest(host: str, capabilities: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "host": host,
        "gathered_at": "2025-01-06T09:13:11Z",
        "os": {"family": "linux", "distribution": "Debian", "version": "12", "arch": "x86_64"},
        "managers": ["pip", "pipx", "path"],
        "errors": [],
        "capabilities": capabilities,
    }


def _pipx_tool(package: str) -> dict[str, Any]:
    return {
        "id": f"pipx:{package}", "type": "pipx_tool", "name": package, "version": None,
        "domain": "development", "priority": "normal", "risk": "low",
        "source": {"manager": "pipx", "package": package, "path": ""}, "top_level": True, "details": {},
    }


def test_generated_playbook_installs_a_pipx_tool_through_pipx(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs, capsys: pytest.CaptureFixture[str]
) -> None:
    pc2 = ssh_fleet.hosts["pc2"]
    pip_install(ssh_fleet, "pc2", "pipx")
    for host, caps in (("pc1", [_pipx_tool(TOOL)]), ("pc2", [])):
        (dirs.manifests / f"{host}.json").write_text(json.dumps(_manifest(host, caps)))

    argv = ["plan", str(dirs.manifests), "--hosts", "pc2", "--approve", "all", "--out", str(dirs.base), "--json"]
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    playbook = dirs.generated / f"{plan['plan_id']}.yml"
    (play,) = install_play.load(playbook.read_text())
    assert play["hosts"] == "pc2"
    pip_task = next(t for t in play["tasks"] if t.get("ansible.builtin.include_role") == {"name": "cyclotron_pip"})
    assert [i["package"] for i in pip_task["vars"]["cyclotron_pip_pipx_items"]] == [TOOL]
    assert "cyclotron_pip_items" not in pip_task["vars"]

    # pipx's home and bin dir inside pc2's home, so the test removes exactly what it made.
    pipx_root = pc2.home / "pipx-generated-test"
    environment = {
        **ssh_fleet.install_environment,
        "PIPX_HOME": str(pipx_root / "home"),
        "PIPX_BIN_DIR": str(pipx_root / "bin"),
        "PIPX_MAN_DIR": str(pipx_root / "man"),
    }
    try:
        proc = ssh_fleet.ansible_playbook(
            playbook,
            {"cyclotron_pip_pipx_executable": str(pc2.venv / "bin" / "pipx"), "cyclotron_pip_environment": environment},
            inventory=inventory,
        )
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert "Pipx | pipx install pycowsay" in proc.stdout
        listing = ssh_fleet.run(
            [str(pc2.venv / "bin" / "pipx"), "list", "--json"], "pc2", env={"PIPX_HOME": environment["PIPX_HOME"]}
        ).stdout
        assert TOOL in json.loads(listing)["venvs"]
        said = ssh_fleet.run([str(pipx_root / "bin" / TOOL), "moo"], "pc2").stdout
        assert "moo" in said
        # Through pipx, not pip: pc2's own venv did not get the package.
        assert pip_version(ssh_fleet, "pc2", TOOL) is None
    finally:
        shutil.rmtree(pipx_root, ignore_errors=True)
