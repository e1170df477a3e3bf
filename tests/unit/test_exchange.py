"""The git exchange with real git: a bare repository and clones under per-host state dirs,
real processes publishing at once, an unreachable remote, hostile repository content and the
secret leak guard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cyclotron_py.cli import main
from cyclotron_py.exchange.status import host_state
from cyclotron_py.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "valid"
REPO_ROOT = Path(__file__).resolve().parents[2]
LEAK = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def manifest_for(host: str, directory: Path, base: str = "pc1", **changes: Any) -> Path:
    data = json.loads((FIXTURES / f"{base}.json").read_text())
    data.update(host=host, **changes)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{host}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "exchange.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
    return path


def host_state_dir(tmp_path: Path, host: str, retry: dict[str, float] | None = None) -> Path:
    state = tmp_path / "state" / host
    state.mkdir(parents=True, exist_ok=True)
    if retry:
        (state / "config.yml").write_text(yaml.safe_dump({"exchange_git": {"retry": retry}}))
    return state


def publish(monkeypatch: pytest.MonkeyPatch, state: Path, *args: str) -> int:
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(state))
    return main(["exchange", "publish", *args])


def test_publish_commits_only_on_change_and_fetch_reads_every_host(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for host, base in (("pc1", "pc1"), ("pc2", "pc2")):
        path = manifest_for(host, tmp_path / "m", base)
        assert publish(monkeypatch, host_state_dir(tmp_path, host), "--repo", str(remote), "--host", host,
                       "--manifest", str(path)) == 0
    assert "pushed" in capsys.readouterr().out
    tree = git("ls-tree", "-r", "--name-only", "main", cwd=remote).splitlines()
    assert {"CLUSTER_STATUS.md", "hosts/pc1/manifest.json", "hosts/pc1/status.json", "hosts/pc1/STATUS.md",
            "hosts/pc2/manifest.json", "hosts/pc2/status.json", "hosts/pc2/STATUS.md"} == set(tree)
    commits = git("rev-list", "--count", "main", cwd=remote)

    # The same manifest again (a new gathered_at only): nothing to commit.
    path = manifest_for("pc2", tmp_path / "m", "pc2", gathered_at="2026-01-01T00:00:00Z")
    assert publish(monkeypatch, host_state_dir(tmp_path, "pc2"), "--repo", str(remote), "--host", "pc2",
                   "--manifest", str(path)) == 0
    assert "up to date" in capsys.readouterr().out
    assert git("rev-list", "--count", "main", cwd=remote) == commits

    cluster = git("show", "main:CLUSTER_STATUS.md", cwd=remote)
    assert "| pc1 | ACTIVE |" in cluster and "| pc2 | ACTIVE |" in cluster and "## Open gaps" in cluster
    status = json.loads(git("show", "main:hosts/pc2/status.json", cwd=remote))
    assert status["host"] == "pc2" and status["state"] == "ACTIVE" and status["last_gather"]["capabilities"] > 0
    assert any(g["id"] == "nodejs" for g in status["gaps"])  # pc1 has it, pc2 does not
    assert "## Gaps left" in git("show", "main:hosts/pc2/STATUS.md", cwd=remote)

    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(host_state_dir(tmp_path, "reader")))
    assert main(["exchange", "fetch", "--repo", str(remote), "--into", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pc1.json", "pc2.json"]
    assert main(["validate", str(tmp_path / "out")]) == 0

    with Store.open(host_state_dir(tmp_path, "pc2")) as store:
        runs = store.runs()
        assert [r["kind"] for r in runs] == ["publish", "publish"]
        actions = [(e["action"], e["outcome"]) for e in store.exchange_events(runs[-1]["id"])]
        assert ("commit", "ok") in actions and ("push", "ok") in actions


def test_ten_hosts_publishing_at_the_same_moment_all_land_without_a_merge(tmp_path: Path, remote: Path) -> None:
    hosts = [f"host{n:02d}" for n in range(10)]
    procs = []
    for host in hosts:
        state = host_state_dir(tmp_path, host, retry={"base": 0.05, "max": 0.4, "jitter": 0.2, "total": 60})
        path = manifest_for(host, tmp_path / "m")
        env = dict(os.environ, CYCLOTRON_STATE_DIR=str(state))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "cyclotron_py.cli", "exchange", "publish", "--repo", str(remote), "--host", host,
             "--manifest", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=REPO_ROOT))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert all("pushed" in out for out in outputs), outputs
    listing = git("ls-tree", "-r", "--name-only", "main", "hosts", cwd=remote)
    landed = {line.split("/")[1] for line in listing.splitlines()}
    assert landed == set(hosts)
    assert git("rev-list", "--merges", "main", cwd=remote) == ""
    assert int(git("rev-list", "--count", "main", cwd=remote)) == 10
    for host in hosts:
        assert json.loads(git("show", f"main:hosts/{host}/manifest.json", cwd=remote))["host"] == host
    retries = 0
    for host in hosts:
        with Store.open(tmp_path / "state" / host) as store:
            events = store.exchange_events()
            retries += sum(1 for e in events if e["outcome"] == "rejected")
            assert store.runs()[0]["status"] == "successful"
    cluster = git("show", "main:CLUSTER_STATUS.md", cwd=remote)
    # Whoever pushed last rebuilt the cluster file after rebasing: it lists every host.
    assert all(f"| {host} |" in cluster for host in hosts), cluster
    print(f"retries in all: {retries}")


def test_unreachable_remote_keeps_the_commit_and_the_next_publish_pushes_it(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = host_state_dir(tmp_path, "laptop")
    path = manifest_for("laptop", tmp_path / "m")
    assert publish(monkeypatch, state, "--repo", str(remote), "--host", "laptop", "--manifest", str(path)) == 0
    capsys.readouterr()
    away = remote.with_name("unplugged.git")
    remote.rename(away)  # the USB disk / NAS is gone
    changed = manifest_for("laptop", tmp_path / "m", base="pc2")
    assert publish(monkeypatch, state, "--repo", str(remote), "--host", "laptop", "--manifest", str(changed)) == 0
    out = capsys.readouterr().out
    assert "1 unpushed since" in out and "remote unreachable" in out
    with Store.open(state) as store:
        offline_run = store.runs()[0]
        assert offline_run["status"] == "failed" and "unpushed" in offline_run["message"]
        assert any(e["outcome"] == "unreachable" for e in store.exchange_events(offline_run["id"]))

    away.rename(remote)
    # Same manifest again: nothing new to commit, but the kept commit is pushed.
    assert publish(monkeypatch, state, "--repo", str(remote), "--host", "laptop", "--manifest", str(changed)) == 0
    assert "pushed" in capsys.readouterr().out
    log = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert len(log) == 2 and all(s.startswith("laptop: manifest and status") for s in log)
    published = json.loads(git("show", "main:hosts/laptop/manifest.json", cwd=remote))
    assert published["os"] == json.loads(changed.read_text())["os"]


def _hostile_repo(tmp_path: Path, remote: Path) -> None:
    """A repository where someone committed a corrupt, a malicious, a misnamed and a linked manifest."""
    work = tmp_path / "vandal"
    git("clone", "--quiet", str(remote), str(work))
    for host, base in (("pc1", "pc1"), ("pc2", "pc2")):
        (work / "hosts" / host).mkdir(parents=True)
        shutil.copy(manifest_for(host, tmp_path / "m", base), work / "hosts" / host / "manifest.json")
    (work / "hosts/pc3").mkdir()
    (work / "hosts/pc3/manifest.json").write_text('{"schema_version": 1, "host": "pc3", "capabil')
    evil = json.loads((work / "hosts/pc2/manifest.json").read_text())
    evil["host"] = "pc4"
    pip = next(c for c in evil["capabilities"] if c["source"]["manager"] == "pip")
    pip["source"]["package"] = "requests; touch /tmp/pwned"
    (work / "hosts/pc4").mkdir()
    (work / "hosts/pc4/manifest.json").write_text(json.dumps(evil))
    (work / "hosts/pc5").mkdir()
    os.symlink("/etc/passwd", work / "hosts/pc5/manifest.json")
    (work / "hosts/pc6").mkdir()
    shutil.copy(work / "hosts/pc1/manifest.json", work / "hosts/pc6/manifest.json")  # says host pc1
    (work / "elsewhere").mkdir()
    shutil.copy(work / "hosts/pc1/manifest.json", work / "elsewhere/manifest.json")
    git("add", "-A", cwd=work)
    git("-c", "user.name=v", "-c", "user.email=v@x", "commit", "--quiet", "-m", "vandalism", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)


def test_fetch_reports_each_bad_manifest_and_uses_the_rest(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hostile_repo(tmp_path, remote)
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(host_state_dir(tmp_path, "reader")))
    out_dir = tmp_path / "out"
    assert main(["exchange", "fetch", "--repo", str(remote), "--into", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in out_dir.iterdir()) == ["pc1.json", "pc2.json"]
    assert "hosts/pc3/manifest.json" in out and "truncated" in out
    assert "hosts/pc4/manifest.json" in out and "touch /tmp/pwned" in out
    assert "hosts/pc5/manifest.json: is a symlink: refused" in out
    assert "hosts/pc6/manifest.json" in out and "does not match its directory" in out
    assert "elsewhere/manifest.json: not under hosts/<host>/: refused" in out
    assert "2 manifest(s)" in out and "5 refused" in out

    # A host publishing into that repository is not stopped by the others' bad files.
    state = host_state_dir(tmp_path, "pc7")
    path = manifest_for("pc7", tmp_path / "m")
    assert publish(monkeypatch, state, "--repo", str(remote), "--host", "pc7", "--manifest", str(path)) == 0
    cluster = git("show", "main:CLUSTER_STATUS.md", cwd=remote)
    assert "| pc7 |" in cluster and "## Unreadable host files" in cluster and "hosts/pc5/manifest.json" in cluster


def test_the_guard_refuses_to_commit_a_secret_and_names_the_file_and_key(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = host_state_dir(tmp_path, "pc1")
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"host": "pc1", "phase": "idle", "notes": {"GITHUB_TOKEN": LEAK}}))
    assert publish(monkeypatch, state, "--repo", str(remote), "--host", "pc1", "--status", str(status)) == 1
    err = capsys.readouterr().err
    assert "hosts/pc1/status.json" in err and "'GITHUB_TOKEN'" in err and LEAK not in err
    assert git("for-each-ref", cwd=remote) == ""  # nothing reached the remote
    for path in state.rglob("*"):
        if path.is_file():
            assert LEAK.encode() not in path.read_bytes(), path

    # A manifest holding a key value is refused by the validator before anything is written.
    bad = manifest_for("pc1", tmp_path / "m")
    data = json.loads(bad.read_text())
    data["errors"] = [{"source": "mcp", "message": f"server failed with token {LEAK}"}]
    bad.write_text(json.dumps(data))
    assert publish(monkeypatch, state, "--repo", str(remote), "--host", "pc1", "--manifest", str(bad)) == 1
    assert "secret value" in capsys.readouterr().err


def test_hooks_in_any_config_never_run(tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    for name in ("pre-commit", "commit-msg", "post-commit", "pre-push", "post-checkout", "post-rewrite"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / name).chmod(0o755)
    global_config = tmp_path / "gitconfig"
    global_config.write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    path = manifest_for("pc1", tmp_path / "m")
    assert publish(monkeypatch, host_state_dir(tmp_path, "pc1"), "--repo", str(remote), "--host", "pc1",
                   "--manifest", str(path)) == 0
    assert not marker.exists()


def test_a_link_planted_at_this_hosts_directory_is_refused(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "vandal"
    git("clone", "--quiet", str(remote), str(work))
    (work / "hosts").mkdir()
    target = tmp_path / "outside"
    target.mkdir()
    os.symlink(str(target), work / "hosts" / "pc1")
    git("add", "-A", cwd=work)
    git("-c", "user.name=v", "-c", "user.email=v@x", "commit", "--quiet", "-m", "trap", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    path = manifest_for("pc1", tmp_path / "m")
    assert publish(monkeypatch, host_state_dir(tmp_path, "pc1"), "--repo", str(remote), "--host", "pc1",
                   "--manifest", str(path)) == 1
    assert "is a link" in capsys.readouterr().err
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    ("age_minutes", "phase", "every", "state"),
    [(1, "idle", None, "ACTIVE"), (30, "idle", None, "IDLE"), (1, "working", None, "WORKING"),
     (2, "syncing", None, "SYNCING"), (121, "idle", None, "OFFLINE"), (121, "working", None, "OFFLINE"),
     (20, "idle", 300, "OFFLINE")],
)
def test_state_by_heartbeat_age(age_minutes: int, phase: str, every: float | None, state: str) -> None:
    from datetime import timedelta

    from cyclotron_py.store import iso, utc_now

    now = utc_now()
    status = {"heartbeat_at": iso(now - timedelta(minutes=age_minutes)), "phase": phase, "expected_every": every}
    assert host_state(status, now) == state


def test_the_exchange_migration_keeps_existing_runs_and_allows_pull_and_publish(tmp_path: Path) -> None:
    import sqlite3

    from cyclotron_py.store import MIGRATIONS, _statements

    path = tmp_path / "cyclotron.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    for statement in _statements(MIGRATIONS[0]):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (kind, mode, started, status) VALUES ('sync', 'manual', '2026-01-01T00:00:00Z',"
               " 'successful')")
    db.execute("INSERT INTO host_outcomes (run_id, host, status) VALUES (1, 'pc1', 'complete')")
    db.close()
    with Store.open(path) as store:
        assert store.schema_version >= 2
        assert store.run(1)["kind"] == "sync" and store.host_outcomes(1)[0]["host"] == "pc1"
        run_id = store.start_run("pull", "semi-auto")
        store.record_exchange_events(run_id, [{"host": "pc1", "repo": "r", "action": "push", "outcome": "ok"}])
        assert store.exchange_events(run_id)[0]["action"] == "push"
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("INSERT INTO runs (kind, mode, started, status)"
                             " VALUES ('bogus', 'manual', 'x', 'running')")


@pytest.mark.parametrize("url", ["https://me:hunter2hunter2@git.example.com/x.git",
                                 "https://ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@github.com/me/x.git"])
def test_a_url_with_a_password_is_refused_without_showing_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish(monkeypatch, host_state_dir(tmp_path, "pc1"), "--repo", url, "--host", "pc1") == 1
    err = capsys.readouterr().err
    assert "credential helper" in err and "hunter2" not in err and "ghp_" not in err
    assert not (tmp_path / "state/pc1/exchange").exists()


def test_fetch_offline_uses_the_copy_fetched_last(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = manifest_for("pc1", tmp_path / "m")
    assert publish(monkeypatch, host_state_dir(tmp_path, "pc1"), "--repo", str(remote), "--host", "pc1",
                   "--manifest", str(path)) == 0
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(host_state_dir(tmp_path, "reader")))
    assert main(["exchange", "fetch", "--repo", str(remote), "--into", str(tmp_path / "a")]) == 0
    remote.rename(remote.with_name("gone.git"))
    capsys.readouterr()
    assert main(["exchange", "fetch", "--repo", str(remote), "--into", str(tmp_path / "b")]) == 0
    assert "unreachable; using the copy fetched last" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["pc1.json"]


def test_markdown_status_files_pass_the_guard_and_a_leak_in_markdown_is_caught() -> None:
    from cyclotron_py.exchange.guard import SecretLeak, check_files
    from cyclotron_py.exchange.status import build_status, cluster_markdown, status_markdown

    status = build_status("pc1", manifest=json.loads((FIXTURES / "pc1.json").read_text()), store=None,
                          gaps=[{"id": "nodejs", "reason": "missing", "version": "20.1.0", "from_host": "pc2"}])
    check_files({"hosts/pc1/STATUS.md": status_markdown(status), "CLUSTER_STATUS.md": cluster_markdown([status]),
                 "hosts/pc1/status.json": json.dumps(status)})
    with pytest.raises(SecretLeak, match=r"STATUS\.md: key 'OPENAI_API_KEY' \(line 2\)") as caught:
        check_files({"hosts/pc1/STATUS.md": "# pc1\nOPENAI_API_KEY=abcdefgh12345678\n"})
    assert "abcdefgh12345678" not in str(caught.value)


def test_the_runner_keeps_the_plan_inputs_a_gather_reports() -> None:
    """pull plans from the gather alone: it needs the host's policy, catalog and approval setting."""
    from cyclotron_py.runner import RunState, ingest

    state = RunState()
    inputs = {"policy": {"exclude": ["tag:games"]}, "catalog": None, "domains": None, "approve": "all"}
    ingest(state, {"event": "runner_on_ok", "event_data": {
        "host": "pc1", "task_action": "cyclotron_gather",
        "res": {"manifest": {"host": "pc1"}, "plan_inputs": inputs}}})
    assert state.plan_inputs == {"pc1": inputs} and state.manifests == [{"host": "pc1"}]
