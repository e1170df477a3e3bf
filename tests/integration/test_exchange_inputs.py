"""``policy/`` and ``catalog/`` in the exchange repository, with real git: read by ``exchange fetch``
and ``pull`` as untrusted input (a bad file is reported by path and skipped, the rest used), and
applied by a pull's plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cyclotron_py.cli import main
from cyclotron_py.store import Store
from tests.integration.test_exchange_pull import _packages, _pull, git, pcs, wheels  # noqa: F401 (fixtures)
from tests.unit.test_exchange import manifest_for

pytestmark = pytest.mark.integration


def _commit_files(remote: Path, work: Path, files: dict[str, str], links: dict[str, str] | None = None) -> None:
    """A person's commit to the exchange repository (files, and symlinks: path -> target)."""
    if not work.exists():
        git("clone", "--quiet", str(remote), str(work))
    git("fetch", "--quiet", "origin", cwd=work)
    git("reset", "--quiet", "--hard", "origin/main", cwd=work)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    for rel, target in (links or {}).items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, work / rel)
    git("add", "-A", cwd=work)
    git("-c", "user.name=admin", "-c", "user.email=admin@x", "commit", "--quiet", "-m", "policy", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)


GOOD_POLICY = yaml.safe_dump({"all": {"exclude": ["tag:games"]}, "laptop": {"ignore": ["command:*"]}})
GOOD_CATALOG = yaml.safe_dump({"cyclotron_catalog": {"capabilities": {"cyctool": {
    "name": "Cyc tool", "domain": "development", "packages": {"pip": "cyctool"}}}}})
BAD = {
    "policy/typo.yml": yaml.safe_dump({"laptop": {"exlude": ["x"]}}),
    "policy/bomb.yaml": "a: &a [x, x]\nb: *a\n",
    "policy/nested/deep.yml": GOOD_POLICY,
    "policy/notes.txt": "hello",
    "catalog/jinja.yml": yaml.safe_dump({"capabilities": {"evil": {
        "name": "{{ lookup('pipe', 'touch /tmp/pwned-by-exchange-catalog') }}", "domain": "development",
        "packages": {"pip": "evil"}}}}),
    "catalog/broken.json": "{not json",
    "catalog/wrongdomain.yml": yaml.safe_dump({"capabilities": {"x1": {"name": "X", "domain": "nowhere"}}}),
}


def test_fetch_uses_the_good_policy_and_catalog_files_and_reports_each_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "exchange.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(tmp_path / "state-laptop"))
    assert main(["exchange", "publish", "--repo", str(remote), "--host", "laptop",
                 "--manifest", str(manifest_for("laptop", tmp_path / "m"))]) == 0
    files = {"policy/fleet.yml": GOOD_POLICY, "catalog/tools.yml": GOOD_CATALOG, **BAD,
             "policy/zz-again.yml": yaml.safe_dump({"laptop": {"exclude": ["winget:*"]}})}
    _commit_files(remote, tmp_path / "admin", files, links={"policy/link.yml": "/etc/passwd",
                                                            "catalog/link.yml": "../hosts/laptop/status.json"})
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(tmp_path / "state-reader"))
    capsys.readouterr()
    out_dir = tmp_path / "out"
    assert main(["exchange", "fetch", "--repo", str(remote), "--into", str(out_dir)]) == 0
    out = capsys.readouterr().out
    for path, why in [("policy/typo.yml", "unknown key 'exlude'"), ("policy/bomb.yaml", "anchors and aliases"),
                      ("policy/nested/deep.yml", "only files directly in policy/"),
                      ("policy/notes.txt", "not a .yml, .yaml, .json file"), ("policy/link.yml", "is a symlink"),
                      ("catalog/link.yml", "is a symlink"), ("catalog/jinja.yml", "template markup"),
                      ("catalog/broken.json", "not valid JSON"), ("catalog/wrongdomain.yml", "nowhere"),
                      ("policy/zz-again.yml", "the policy for laptop is already given by an earlier file")]:
        line = next((line for line in out.splitlines() if path in line), "")
        assert why in line, (path, out)
    assert "1 manifest(s)" in out
    assert yaml.safe_load((out_dir / "policy.yml").read_text()) == {
        "all": {"exclude": ["tag:games"]}, "laptop": {"ignore": ["command:*"]}}
    catalog = yaml.safe_load((out_dir / "catalog.yml").read_text())
    assert list(catalog["cyclotron_catalog"]["capabilities"]) == ["cyctool"]
    assert not Path("/tmp/pwned-by-exchange-catalog").exists()
    # What fetch wrote is what the rest of Cyclotron reads.
    assert main(["matrix", str(out_dir), "--policy", str(out_dir / "policy.yml"),
                 "--catalog", str(out_dir / "catalog.yml")]) == 0


def test_a_pull_plans_with_the_exchanges_policy(
    pcs: dict[str, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    pca, pcb = pcs["pca"], pcs["pcb"]
    assert _pull(monkeypatch, pca, "pca") == 0
    # The fleet's keeper: pcb never receives cycalpha. A broken file beside it changes nothing.
    _commit_files(pca["remote"], tmp_path / "admin", {
        "policy/fleet.yml": yaml.safe_dump({"pcb": {"exclude": ["pip:cycalpha"]}}),
        "policy/broken.yml": "pcb: [unclosed",
    })
    capsys.readouterr()
    assert _pull(monkeypatch, pcb, "pcb") == 0
    out = capsys.readouterr().out
    assert "using policy/fleet.yml from the exchange" in out
    assert "policy/broken.yml: not valid YAML" in out
    assert "cycalpha" not in _packages(pcb["venv"])
    with Store.open(pcb["state"]) as store:
        # The gather began with the inputs the last pull used (none): with the fetched policy it
        # ran again; then nothing to install, so no sync run.
        assert [r["kind"] for r in reversed(store.runs())] == ["pull", "gather", "gather"]
    assert "policy/ or catalog/ changed: gathering again" in out
    status = json.loads(git("show", "main:hosts/pcb/status.json", cwd=pca["remote"]))
    assert status["state"] == "ACTIVE"

    # The keeper lifts the exclusion: the next pull installs it (the policy it used has changed).
    _commit_files(pca["remote"], tmp_path / "admin", {"policy/fleet.yml": yaml.safe_dump({"pcb": {}})})
    assert _pull(monkeypatch, pcb, "pcb") == 0
    assert "cycalpha" in _packages(pcb["venv"])


def test_the_inventorys_own_policy_reaches_a_pull_at_parity(
    pcs: dict[str, dict[str, Path]], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The plan is made after gather.yml alone, from what the gather reported: the inventory's
    cyclotron_policy (a template, here) must reach it as it reaches sync.yml's plan step."""
    pca, pcb = pcs["pca"], pcs["pcb"]
    assert _pull(monkeypatch, pca, "pca") == 0
    inventory = yaml.safe_load(pcb["inventory"].read_text())
    host_vars = inventory["all"]["hosts"]["pcb"]
    host_vars.update(cyclotron_never="pip:cycalpha", cyclotron_policy={"exclude": ["{{ cyclotron_never }}"]})
    pcb["inventory"].write_text(yaml.safe_dump(inventory))
    capsys.readouterr()
    assert _pull(monkeypatch, pcb, "pcb") == 0
    assert "cycalpha" not in _packages(pcb["venv"])
    with Store.open(pcb["state"]) as store:
        assert [r["kind"] for r in reversed(store.runs())] == ["pull", "gather"]


def test_the_inventorys_own_policy_wins_over_the_exchanges(
    pcs: dict[str, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """The exchange is a remote, untrusted: a fleet-wide file applies to a PC only where the PC's
    own inventory gives no cyclotron_policy (here pcb's allows everything; the exchange excludes)."""
    pca, pcb = pcs["pca"], pcs["pcb"]
    assert _pull(monkeypatch, pca, "pca") == 0
    fleet_policy = yaml.safe_dump({"all": {"exclude": ["pip:*"]}})
    _commit_files(pca["remote"], tmp_path / "admin", {"policy/fleet.yml": fleet_policy})
    inventory = yaml.safe_load(pcb["inventory"].read_text())
    inventory["all"]["hosts"]["pcb"]["cyclotron_policy"] = {"include": ["*"]}
    pcb["inventory"].write_text(yaml.safe_dump(inventory))
    assert _pull(monkeypatch, pcb, "pcb") == 0
    assert "cycalpha" in _packages(pcb["venv"])
