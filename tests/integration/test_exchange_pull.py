"""`cyclotron pull` on two sandboxed PCs that never see each other: each has its own home, venv,
inventory and state dir, no SSH between them; the only thing they share is a bare git repository.
pip installs are real and offline (wheels built here, --no-index --find-links). Also: `tick` with
`exchange: git` runs pull, and git over the test fleet's real sshd (an ssh:// remote)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from cyclotron_py.cli import main
from cyclotron_py.store import Store
from tests.unit.plugins.test_cyclotron_install import _wheel

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    for name in ("cycalpha", "cycbeta"):
        _wheel(directory, name, "1.0.0")
    return directory


def _sandbox(root: Path, name: str, wheels: Path, package: str) -> dict[str, Path]:
    """One PC: home, venv with one package, its own one-host inventory and state dir."""
    home, env = root / name / "home", root / name / "venv"
    home.mkdir(parents=True)
    venv.create(env, with_pip=True)
    subprocess.run([str(env / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
                    str(wheels), package], check=True)
    inventory = root / name / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {name: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "cyclotron_home": str(home), "cyclotron_facts_sources": ["python"],
        "cyclotron_facts_python_environments": [str(env)], "cyclotron_facts_read_environment": False,
        "cyclotron_pip_virtualenv": str(env), "cyclotron_pip_extra_args": f"--no-index --find-links {wheels}",
    }}}}))
    state = root / name / "state"
    state.mkdir(mode=0o700)
    return {"home": home, "venv": env, "inventory": inventory, "state": state}


def _packages(env: Path) -> set[str]:
    out = subprocess.run([str(env / "bin/python"), "-m", "pip", "list", "--format=json"], check=True,
                         capture_output=True, text=True).stdout
    return {p["name"] for p in json.loads(out)}


@pytest.fixture
def pcs(tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Path]]:
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    remote = tmp_path / "exchange.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    machines = {name: _sandbox(tmp_path, name, wheels, package)
                for name, package in (("pca", "cycalpha"), ("pcb", "cycbeta"))}
    for machine in machines.values():
        machine["remote"] = remote
    return machines


def _pull(monkeypatch: pytest.MonkeyPatch, pc: dict[str, Path], name: str, *extra: str) -> int:
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(pc["state"]))
    return main(["pull", "--repo", str(pc["remote"]), "--host", name, "--mode", "full-auto",
                 "-i", str(pc["inventory"]), *extra])


def test_two_pcs_reach_parity_through_the_repository_alone(
    pcs: dict[str, dict[str, Path]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pca, pcb = pcs["pca"], pcs["pcb"]
    assert _pull(monkeypatch, pca, "pca") == 0  # alone in the exchange: publishes, installs nothing
    assert _pull(monkeypatch, pcb, "pcb") == 0  # sees pca's manifest: gets cycalpha
    assert "cycalpha" in _packages(pcb["venv"])
    assert _pull(monkeypatch, pca, "pca") == 0  # sees pcb's: gets cycbeta
    assert _pull(monkeypatch, pcb, "pcb") == 0  # nothing left to do
    out = capsys.readouterr().out
    assert {"cycalpha", "cycbeta"} <= _packages(pca["venv"]) & _packages(pcb["venv"])

    remote = pca["remote"]
    assert git("rev-list", "--merges", "main", cwd=remote) == ""
    for name in ("pca", "pcb"):
        status = json.loads(git("show", f"main:hosts/{name}/status.json", cwd=remote))
        assert status["gaps"] == [] and status["state"] == "ACTIVE", status
        assert status["last_run"]["status"] == "successful"
    cluster = git("show", "main:CLUSTER_STATUS.md", cwd=remote)
    assert "| pca | ACTIVE | 100.0% |" in cluster and "| pcb | ACTIVE | 100.0% |" in cluster, cluster
    assert "none: every host has what the others have" in cluster
    assert "published pcb" in out

    with Store.open(pcb["state"]) as store:
        runs = store.runs(limit=10)
        kinds = [r["kind"] for r in reversed(runs)]
        # The first pull had something to install (gather, then sync.yml); the second was at
        # parity: it gathered, planned nothing, and started no second playbook.
        assert kinds == ["pull", "gather", "sync", "pull", "gather"]
        first_sync = next(r for r in reversed(runs) if r["kind"] == "sync")
        outcomes = store.item_outcomes(first_sync["id"], "pcb")
        assert [(o["capability_id"], o["outcome"]) for o in outcomes] == [("pip:cycalpha", "installed")]
        pull_run = next(r for r in reversed(runs) if r["kind"] == "pull")
        actions = {(e["action"], e["outcome"]) for e in store.exchange_events(pull_run["id"])}
        assert ("push", "ok") in actions and ("publish", "pushed") in actions
    # pcb's first pull had something to install: it published its gathered manifest (WORKING) first.
    subjects = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert any(s.startswith("pcb:") and "WORKING" in s for s in subjects), subjects


def test_a_malicious_manifest_in_the_repository_stops_before_any_task(
    pcs: dict[str, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pca, pcb = pcs["pca"], pcs["pcb"]
    assert _pull(monkeypatch, pca, "pca") == 0
    # Someone pushes an "evil" host whose pip package would run a command.
    work = tmp_path / "vandal"
    git("clone", "--quiet", str(pca["remote"]), str(work))
    evil = json.loads((work / "hosts/pca/manifest.json").read_text())
    evil["host"] = "evil"
    evil["capabilities"].append({**evil["capabilities"][0], "id": "pip:pwn", "name": "pwn",
                                 "source": {"manager": "pip", "package": "pwn; touch /tmp/pwned-by-exchange",
                                            "path": ""}})
    (work / "hosts/evil").mkdir()
    (work / "hosts/evil/manifest.json").write_text(json.dumps(evil))
    git("add", "-A", cwd=work)
    git("-c", "user.name=v", "-c", "user.email=v@x", "commit", "--quiet", "-m", "evil", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)

    assert _pull(monkeypatch, pcb, "pcb") == 0
    out = capsys.readouterr().out
    assert "refused 1" in out and "hosts/evil/manifest.json" in out
    assert not Path("/tmp/pwned-by-exchange").exists()
    assert "cycalpha" in _packages(pcb["venv"])  # the good host's capabilities still arrive
    assert not (pcb["state"] / "pull/manifests/evil.json").exists()


def test_tick_with_exchange_git_runs_pull(pcs: dict[str, dict[str, Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    pca = pcs["pca"]
    (pca["state"] / "config.yml").write_text(yaml.safe_dump({
        "schedule": {"every": "1h"}, "mode": "full-auto", "exchange": "git",
        "exchange_git": {"repo": str(pca["remote"]), "host": "pca", "inventory": str(pca["inventory"])},
    }))
    env = dict(os.environ, CYCLOTRON_STATE_DIR=str(pca["state"]), PYTHONPATH=str(REPO_ROOT))
    tick = subprocess.run([sys.executable, "-m", "cyclotron_py.cli", "tick", "--now", "2026-12-01T10:00:00Z"],
                          cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert tick.returncode == 0, tick.stdout + tick.stderr
    assert "published pca" in tick.stdout
    with Store.open(pca["state"]) as store:
        kinds = [r["kind"] for r in reversed(store.runs())]
        assert kinds == ["pull", "gather"]  # alone in the exchange: nothing to install
        assert store.runs()[-1]["due_at"] == "2026-12-01T10:00:00Z"
    assert "hosts/pca/status.json" in git("ls-tree", "-r", "--name-only", "main", cwd=pca["remote"])
    # Not due again within the hour: the next tick waits.
    again = subprocess.run([sys.executable, "-m", "cyclotron_py.cli", "tick", "--now", "2026-12-01T10:20:00Z"],
                           cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "wait" in again.stdout


def test_publish_and_fetch_over_the_fleets_real_sshd(
    ssh_fleet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exchange repository lives in pc1's home; two other machines reach it with ssh:// only."""
    import shlex

    from tests.unit.test_exchange import manifest_for

    owner = ssh_fleet.hosts["pc1"]
    bare = owner.home / "exchange.git"
    ssh_fleet.run(["rm", "-rf", str(bare)], "pc1", via="runuser")
    ssh_fleet.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], "pc1", via="runuser")
    url = f"ssh://{owner.user}@127.0.0.1:{owner.port}{bare}"
    ssh = ssh_fleet._ssh_base(owner.port)  # ssh -i KEY -p PORT -o ...: the port comes from the URL
    monkeypatch.setenv("GIT_SSH_COMMAND", shlex.join([*ssh[:3], *ssh[5:]]))
    for host, base in (("laptop", "pc1"), ("desktop", "pc2")):
        monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(tmp_path / host))
        path = manifest_for(host, tmp_path / "m", base)
        assert main(["exchange", "publish", "--repo", url, "--host", host, "--manifest", str(path)]) == 0
    assert capsys.readouterr().out.count(": pushed") == 2
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(tmp_path / "reader"))
    assert main(["exchange", "fetch", "--repo", url, "--into", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["desktop.json", "laptop.json"]
    log = ssh_fleet.run(["git", "-C", str(bare), "log", "--format=%s", "main"], "pc1", via="runuser").stdout
    assert log.splitlines() == ["desktop: manifest and status (ACTIVE)", "laptop: manifest and status (ACTIVE)"]


def test_manual_mode_queues_approvals_locally_and_publishes_them(
    pcs: dict[str, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pca, pcb = pcs["pca"], pcs["pcb"]
    assert _pull(monkeypatch, pca, "pca") == 0
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(pcb["state"]))
    assert main(["pull", "--repo", str(pcb["remote"]), "--host", "pcb", "--mode", "manual",
                 "-i", str(pcb["inventory"])]) == 0
    assert "cycalpha" not in _packages(pcb["venv"])
    with Store.open(pcb["state"]) as store:
        assert [a["capability_id"] for a in store.approvals(host="pcb")] == ["pip:cycalpha"]
    status = json.loads(git("show", "main:hosts/pcb/status.json", cwd=pcb["remote"]))
    assert [a["capability_id"] for a in status["pending_approvals"]] == ["pip:cycalpha"]
    assert [g["id"] for g in status["gaps"]] == ["pip:cycalpha"]
    markdown = git("show", "main:hosts/pcb/STATUS.md", cwd=pcb["remote"])
    assert "## Pending approvals" in markdown and "pip:cycalpha" in markdown
    cluster = git("show", "main:CLUSTER_STATUS.md", cwd=pcb["remote"])
    assert "- pcb: `pip:cycalpha`" in cluster
    # Queued by a pull at parity: no sync run started (nothing could be installed without a person).
    with Store.open(pcb["state"]) as store:
        assert [r["kind"] for r in reversed(store.runs())] == ["pull", "gather"]

    # A person approves it: the next pull, still manual, acts on the approval through sync.yml.
    assert main(["approve", "--all", "--host", "pcb"]) == 0
    assert main(["pull", "--repo", str(pcb["remote"]), "--host", "pcb", "--mode", "manual",
                 "-i", str(pcb["inventory"])]) == 0
    assert "cycalpha" in _packages(pcb["venv"])
    with Store.open(pcb["state"]) as store:
        assert [r["kind"] for r in reversed(store.runs())] == ["pull", "gather", "pull", "gather", "sync"]
        assert store.approvals(host="pcb") == []  # consumed by the install
    status = json.loads(git("show", "main:hosts/pcb/status.json", cwd=pcb["remote"]))
    assert status["gaps"] == [] and status["pending_approvals"] == []
