"""sync.yml when things go wrong, over real SSH with real registries: a verify probe that fails,
a package that does not exist, a host whose sshd stops mid-run, an MCP config that is not JSON,
and a pushed manifest carrying shell metacharacters or an option as a package name."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from .fleet import Fleet, _free_port
from .sync_helpers import (
    HOSTS,
    MEMORY_SERVER,
    ONLY_PC1_PC2,
    TEST_CATALOG,
    HostSshd,
    RunDirs,
    cap_ids,
    comparable,
    mcp_config,
    memory_server_entry,
    npm_version,
    outcomes,
    pip_install,
    pip_version,
    pushed_manifest,
    read_manifest,
    run_playbook,
    run_playbook_until,
    venv_packages,
    write_inventory,
    write_user_file,
)

# Every test starts from users with nothing installed or configured (conftest's clean_fleet).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_fleet")]

# A name nobody publishes on PyPI.
MISSING_PACKAGE = "cyclotron-no-such-package-7f3a9c"


def test_failed_verify_is_rolled_back_and_the_manifest_is_as_before(
    ssh_fleet: Fleet, dirs: RunDirs, tmp_path: Path
) -> None:
    # colorama's catalog probe expects output colorama never prints: the install works, verify fails.
    catalog = copy.deepcopy(TEST_CATALOG)
    catalog["capabilities"]["colorama"] = {
        "name": "colorama",
        "domain": "development",
        "risk": "low",
        "packages": {"pip": "colorama"},
        "verify": {
            "command": ["python3", "-c", "import colorama; print('colorama', colorama.__version__)"],
            "regex": r"^colorama-never (\d+)$",
        },
    }
    inventory = write_inventory(ssh_fleet, tmp_path / "inventory", catalog=catalog)
    pip_install(ssh_fleet, "pc1", "colorama")
    baseline = run_playbook(ssh_fleet, "gather.yml", dirs, inventory, extra_args=ONLY_PC1_PC2, label="gather")
    assert baseline.rc == 0, baseline.describe()
    before = comparable(read_manifest(dirs, "pc2"))
    packages_before = venv_packages(ssh_fleet, "pc2")

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, extra_args=ONLY_PC1_PC2)

    # The report stage fails the run on a failed item, after every other stage has run.
    assert run.rc != 0, run.describe()
    assert "1 item(s) failed (rolled back where something had changed): pc2:colorama (failed_rolled_back)" in (
        run.stdout
    ), run.describe()
    got = outcomes(run_report(dirs), "pc2")["colorama"]
    assert got["status"] == "failed_rolled_back", got
    assert "verify" in got["reason"] and "colorama-never" in got["reason"], got
    assert got["version_after"] == ""
    # Rolled back: colorama was really installed, then removed again.
    assert "changed: [pc2]" in run.stdout
    assert pip_version(ssh_fleet, "pc2", "colorama") is None
    assert venv_packages(ssh_fleet, "pc2") == packages_before
    # The re-gather found pc2 exactly as before.
    assert comparable(read_manifest(dirs, "pc2")) == before


def test_missing_package_fails_clearly_and_everything_else_completes(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs
) -> None:
    pip_install(ssh_fleet, "pc1", "tomli")
    wanted = pip_version(ssh_fleet, "pc1", "tomli")
    # pc9 is not in this run: its manifest was pushed by another machine (pull mode).
    (dirs.manifests / "pc9.json").write_text(json.dumps(pushed_manifest("pc9", [("pip", MISSING_PACKAGE)])))

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory)

    assert run.rc != 0, run.describe()
    report = run_report(dirs)
    for host in HOSTS:
        got = outcomes(report, host)[f"pip:{MISSING_PACKAGE}"]
        assert got["status"] in ("failed", "failed_rolled_back"), got
        # pip's own words reach the report: the package is not on the index.
        assert MISSING_PACKAGE in got["reason"] or "No matching distribution" in got["reason"], got
        assert pip_version(ssh_fleet, host, MISSING_PACKAGE) is None
    for host in ("pc2", "pc3"):
        got = outcomes(report, host)["pip:tomli"]
        assert (got["status"], got["version_after"]) == ("installed", wanted), got
        assert pip_version(ssh_fleet, host, "tomli") == wanted
        assert "pip:tomli" in cap_ids(read_manifest(dirs, host))
    assert f"pc2:pip:{MISSING_PACKAGE}" in run.stdout
    # Every stage ran to the end: the report was written, hosts were gathered again.
    assert (dirs.reports / f"sync-{report['plan_id']}.md").is_file()
    assert report["unreachable"] == []


def test_host_whose_sshd_stops_mid_run_is_reported_unreachable(
    ssh_fleet: Fleet, dirs: RunDirs, tmp_path: Path
) -> None:
    # pc3 gets an sshd of its own, so stopping it takes down pc3 alone.
    sshd = HostSshd(ssh_fleet, "pc3", tmp_path / "pc3-sshd")
    sshd.start()
    try:
        inventory = write_inventory(ssh_fleet, tmp_path / "inventory", ports={"pc3": sshd.port})
        pip_install(ssh_fleet, "pc1", "six")
        plays = 0

        def third_play(line: str) -> bool:
            # gather, validate, then compare/plan: pc3 was gathered and planned, then it goes away.
            nonlocal plays
            plays += line.startswith("PLAY [")
            return plays == 3

        run = run_playbook_until(ssh_fleet, "sync.yml", dirs, inventory, at_line=third_play, action=sshd.stop)
    finally:
        sshd.stop()

    # 4: some host was unreachable; nothing failed.
    assert run.rc == 4, run.describe()
    assert run.recap["pc3"]["unreachable"] >= 1, run.describe()
    assert (run.recap["pc1"]["failed"], run.recap["pc2"]["failed"]) == (0, 0), run.describe()
    plan = run_plan(dirs)
    assert [i["id"] for i in next(h for h in plan["hosts"] if h["host"] == "pc3")["items"]] == ["six"]
    report = run_report(dirs)
    assert report["unreachable"] == ["pc3"], report
    assert outcomes(report, "pc2")["six"]["status"] == "installed"
    assert pip_version(ssh_fleet, "pc2", "six")
    assert "pc3: UNREACHABLE" in run.stdout, run.describe()
    assert pip_version(ssh_fleet, "pc3", "six") is None


def test_host_unreachable_at_gather_is_never_counted_at_parity(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs, tmp_path: Path
) -> None:
    # A real fleet's false "at parity": pc3 was gathered once, then is down for this run.
    first = run_playbook(ssh_fleet, "gather.yml", dirs, inventory, label="gather")
    assert first.rc == 0, first.describe()
    last_known = read_manifest(dirs, "pc3")["gathered_at"]
    dead = write_inventory(ssh_fleet, tmp_path / "inventory", ports={"pc3": _free_port()})

    run = run_playbook(ssh_fleet, "sync.yml", dirs, dead)

    assert run.rc == 4, run.describe()  # unreachable, nothing failed
    assert run.recap["pc3"]["unreachable"] >= 1, run.describe()
    assert "the fleet is at parity" not in run.stdout, run.describe()
    assert "2 of 3 hosts at parity; pc3 unreachable, last gathered" in run.stdout, run.describe()
    assert "pc3: UNREACHABLE - not gathered in this run" in run.stdout, run.describe()
    report = run_report(dirs)
    assert report["unreachable"] == ["pc3"], report
    assert report["hosts"]["pc3"]["stage"] == "gather", report
    assert report["hosts"]["pc3"]["last_gathered_at"] == last_known, report
    assert report["hosts"]["pc1"]["status"] == "gathered", report
    markdown = (dirs.reports / f"sync-{report['plan_id']}.md").read_text()
    assert "| pc3 | - | - | unreachable |" in markdown and "pc3 unreachable, last gathered" in markdown
    # Its manifest on disk is the old one: an unreachable host's file is never rewritten.
    assert read_manifest(dirs, "pc3")["gathered_at"] == last_known

    # plan.yml's reports say so too, at their top.
    planned = run_playbook(ssh_fleet, "plan.yml", dirs, dead, label="plan")
    assert planned.rc == 4, planned.describe()
    inventory_report = (dirs.reports / "inventory.txt").read_text()
    assert inventory_report.startswith("NOT GATHERED IN THIS RUN (2 of 3 hosts gathered"), inventory_report
    assert "  - pc3 unreachable, last gathered" in inventory_report and last_known in inventory_report
    assert "## Not gathered in this run" in (dirs.reports / "report.md").read_text()
    hosts = json.loads((dirs.reports / "hosts.json").read_text())
    assert (hosts["pc3"]["status"], hosts["pc3"]["last_gathered_at"]) == ("unreachable", last_known), hosts


def test_invalid_json_mcp_config_is_not_overwritten(ssh_fleet: Fleet, inventory: Path, dirs: RunDirs) -> None:
    write_user_file(ssh_fleet, "pc1", ".claude.json", mcp_config({"memory": memory_server_entry()}))
    broken = '{"numStartups": 4, "mcpServers": {"other": {"command": "x"},,}\n'
    config = write_user_file(ssh_fleet, "pc2", ".claude.json", broken)
    stat_before = config.stat()

    run = run_playbook(
        ssh_fleet, "sync.yml", dirs, inventory, extra_vars={"cyclotron_approve": "all"}, extra_args=ONLY_PC1_PC2
    )

    assert run.rc != 0, run.describe()
    # Not touched: same bytes, same inode, same mode, and no stray copy of ours next to it.
    assert config.read_text() == broken
    stat_after = config.stat()
    assert (stat_after.st_ino, stat_after.st_mode, stat_after.st_mtime_ns) == (
        stat_before.st_ino, stat_before.st_mode, stat_before.st_mtime_ns
    )
    got = outcomes(run_report(dirs), "pc2")["mcp:memory"]
    assert got["status"] in ("failed", "failed_rolled_back"), got
    assert ".claude.json" in got["reason"] and "JSON" in got["reason"], got
    # Its package was rolled back with it (it was not there before).
    assert npm_version(ssh_fleet, "pc2", MEMORY_SERVER) is None
    # The gather said so too: the file is named among the host's source errors.
    errors = read_manifest(dirs, "pc2")["errors"]
    assert any(".claude.json" in e["source"] + e["message"] for e in errors), errors


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("foo; touch {marker}", "shell metacharacters"),
        ("--index-url=https://evil.invalid/simple", "option"),
    ],
    ids=["shell-metacharacters", "option-injection"],
)
def test_untrusted_package_name_is_rejected_before_any_install(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs, tmp_path: Path, bad: str, why: str
) -> None:
    # Short: messages quote at most ~60 characters of a bad name.
    marker = Path("/tmp") / f"cyc-pwned-{uuid.uuid4().hex[:12]}"
    name = bad.format(marker=marker)
    pip_install(ssh_fleet, "pc1", "six")
    pushed = pushed_manifest("pc9", [("pip", "idna")])
    evil: dict[str, Any] = copy.deepcopy(pushed["capabilities"][0])
    evil.update(id="pip:innocent-looking", name="innocent-looking")
    evil["source"]["package"] = name
    pushed["capabilities"].append(evil)
    (dirs.manifests / "pc9.json").write_text(json.dumps(pushed))
    packages_before = {h: venv_packages(ssh_fleet, h) for h in HOSTS}

    run = run_playbook(ssh_fleet, "sync.yml", dirs, inventory)

    assert run.rc != 0, run.describe()
    # A clear message: the file, the field and the package.
    assert "pc9.json" in run.stdout and name in run.stdout and why in run.stdout, run.describe()
    # Stopped before anything was installed anywhere: no installer role ran, nothing planned.
    assert "cyclotron_pip" not in run.stdout and "Install with verify" not in run.stdout, run.describe()
    assert dirs.files("plans", "generated", "reports") == []
    assert {h: venv_packages(ssh_fleet, h) for h in HOSTS} == packages_before
    assert not marker.exists()
    for host in HOSTS:
        assert ssh_fleet.run(["test", "-e", str(marker)], host, check=False).returncode != 0

    # The plan stage refuses it on its own too (a run started at --tags plan skips validation).
    planned = run_playbook(ssh_fleet, "sync.yml", dirs, inventory, tags="plan,install", label="plan-only")
    assert planned.rc != 0, planned.describe()
    assert "nothing was planned" in planned.stdout and name in planned.stdout, planned.describe()
    assert dirs.files("plans", "generated") == []
    assert not marker.exists()


def run_report(dirs: RunDirs) -> dict[str, Any]:
    return dirs.latest_report()


def run_plan(dirs: RunDirs) -> dict[str, Any]:
    return dirs.latest_plan()
