"""The run store, on real SQLite files: schema, runs, outcomes, approvals, snapshots, faults."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cyclotron_py import store as store_mod
from cyclotron_py.store import ItemOutcome, Store, StoreError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "state") as opened:
        yield opened


def test_state_dir_is_private_and_follows_the_environment(tmp_path: Path) -> None:
    path = store_mod.state_dir({"CYCLOTRON_STATE_DIR": str(tmp_path / "s")})
    assert path == tmp_path / "s" and stat.S_IMODE(path.stat().st_mode) == 0o700
    xdg = store_mod.state_dir({"XDG_STATE_HOME": str(tmp_path / "x")})
    assert xdg == tmp_path / "x" / "cyclotron"


def test_schema_wal_foreign_keys_and_a_private_file(db: Store) -> None:
    assert db.schema_version == len(store_mod.MIGRATIONS)
    assert db.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600
    tables = {r[0] for r in db.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "host_outcomes", "item_outcomes", "manifests", "approvals", "heartbeats"} <= tables


def test_reopening_does_not_migrate_twice(tmp_path: Path) -> None:
    with Store.open(tmp_path) as first:
        run = first.start_run("sync", "manual")
    with Store.open(tmp_path) as again:
        assert again.run(run)["status"] == "running"


def test_a_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "cyclotron.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 99").connection.close()
    with pytest.raises(StoreError, match=r"schema version 99.*upgrade cyclotron"):
        Store.open(path)


def test_a_corrupt_file_names_the_file_and_the_recovery(tmp_path: Path) -> None:
    path = tmp_path / "cyclotron.db"
    path.write_bytes(b"this is not a database, it is a text file that someone wrote here" * 100)
    with pytest.raises(StoreError) as err:
        Store.open(path)
    assert str(path) in str(err.value) and "mv " in str(err.value) and ".corrupt" in str(err.value)


def test_a_locked_store_is_a_clear_error(tmp_path: Path) -> None:
    with Store.open(tmp_path) as first:
        other = sqlite3.connect(first.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError, match="locked by another process"):
                Store.open(tmp_path, timeout=0.1).start_run("sync", "manual")
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_a_run_with_hosts_and_items(db: Store) -> None:
    run = db.start_run("sync", "semi-auto", inventory="inventory/demo/hosts.yml", now=NOW)
    db.record_hosts(run, {"pc1": {"status": "running", "items_total": 2, "current_task": "Install six"}})
    db.record_hosts(
        run,
        {
            "pc1": {"status": "complete", "ok": 5, "changed": 1, "items_total": 2, "items_done": 2},
            "pc2": {"status": "failed", "ok": 3, "failed": 1, "error": "pip:nope: No matching distribution"},
            "pc3": {"status": "unreachable", "unreachable": 1, "error": "ssh: connect to host refused"},
        },
    )
    db.record_items(
        run,
        [
            ItemOutcome("pc1", "pip:six", "installed", "pip", "six", "", "1.16.0"),
            ItemOutcome("pc1", "pip:idna", "already_present", "pip", "idna", "3.6", "3.6"),
            ItemOutcome("pc2", "pip:nope", "failed_rolled_back", "pip", "nope", reason="No matching distribution"),
            ItemOutcome("pc2", "docker", "awaiting-approval", "apt", "docker.io", reason="risk high"),
        ],
    )
    db.finish_run(run, "failed", 2, now=NOW + timedelta(minutes=3))
    row = db.run(run)
    assert row["status"] == "failed" and row["rc"] == 2 and row["finished"] == "2026-12-01T12:03:00Z"
    assert (row["hosts_ok"], row["hosts_failed"], row["hosts_unreachable"]) == (1, 1, 1)
    assert (row["items_done"], row["items_failed"]) == (3, 1)
    assert [h["host"] for h in db.host_outcomes(run)] == ["pc1", "pc2", "pc3"]
    outcomes = {i["capability_id"]: i["outcome"] for i in db.item_outcomes(run)}
    assert outcomes == {
        "pip:six": "installed",
        "pip:idna": "already-present",
        "pip:nope": "failed-rolled-back",
        "docker": "awaiting-approval",
    }
    assert [r["id"] for r in db.runs(host="pc3")] == [run] and db.runs(host="pc9") == []


def test_an_unknown_outcome_is_refused_and_nothing_is_written(db: Store) -> None:
    run = db.start_run("sync", "full-auto")
    with pytest.raises(StoreError, match="pc1: x: outcome 'exploded'"):
        db.record_items(run, [ItemOutcome("pc1", "pip:six", "installed"), ItemOutcome("pc1", "x", "exploded")])
    assert db.item_outcomes(run) == []


def test_ten_thousand_item_outcomes_in_one_transaction(db: Store) -> None:
    run = db.start_run("sync", "full-auto")
    items = [
        ItemOutcome(f"pc{i % 100}", f"pip:pkg{i}", "installed", "pip", f"pkg{i}", "", "1.0") for i in range(10_000)
    ]
    assert db.record_items(run, items) == 10_000
    assert db.db.execute("SELECT COUNT(*) FROM item_outcomes").fetchone()[0] == 10_000


def test_a_dead_process_run_becomes_abandoned(db: Store) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(proc.stdout)
    gone = db.start_run("sync", "full-auto", pid=dead_pid)
    mine = db.start_run("gather", "full-auto")
    db.record_hosts(gone, {"pc1": {"status": "running"}, "pc2": {"status": "in progress"}, "pc3": {"status": "failed"}})
    assert db.abandon_dead_runs() == [gone]
    assert db.run(gone)["status"] == "abandoned" and db.run(mine)["status"] == "running"
    # the runner's progress states: a host that was being worked on is abandoned, a settled one stays
    assert [h["status"] for h in db.host_outcomes(gone)] == ["abandoned", "abandoned", "failed"]
    assert db.current_run()["id"] == mine


def test_heartbeat(db: Store) -> None:
    assert db.heartbeat() is None
    run = db.start_run("sync", "manual")
    db.beat(run, now=NOW)
    assert db.heartbeat()["at"] == "2026-12-01T12:00:00Z" and db.run(run)["heartbeat_at"] == "2026-12-01T12:00:00Z"


def _pending(host: str, cap: str, version: str = "") -> dict[str, str]:
    return {
        "host": host,
        "capability_id": cap,
        "manager": "apt",
        "package": cap,
        "wanted_version": version,
        "risk": "high",
        "reason": "risk high needs approval",
    }


def test_approval_flow_and_no_second_ask_after_a_rejection(db: Store) -> None:
    ids = db.queue_approvals(
        [_pending("pc1", "docker"), _pending("pc1", "jq"), _pending("pc2", "docker")],
        plan_id="plan-1",
        requested_by="tick",
    )
    assert len(ids) == 3
    assert db.queue_approvals([_pending("pc1", "docker")], plan_id="plan-2") == []  # already pending
    assert db.decide([ids[0], ids[1]], "approved", by="alice") == [ids[0], ids[1]]
    assert db.decide([ids[2]], "rejected", by="alice", reason="not on the laptop") == [ids[2]]
    assert db.decide([ids[2]], "approved", by="bob") == []  # decided already
    rejected = db.approvals(states=("rejected",))[0]
    assert (rejected["decided_by"], rejected["decision_reason"], rejected["requested_by"]) == (
        "alice",
        "not on the laptop",
        "tick",
    )
    # Rejected: not asked again for the same wanted version, asked again when a new one is wanted.
    assert db.queue_approvals([_pending("pc2", "docker")], plan_id="plan-3") == []
    assert len(db.queue_approvals([_pending("pc2", "docker", "27.0")], plan_id="plan-3")) == 1
    answers = db.decisions()
    assert answers["pc1"]["docker"]["state"] == "approved" and answers["pc2"]["docker"]["state"] == "rejected"
    assert answers["pc2"]["docker"]["reason"] == "not on the laptop"
    db.consume_approved(run_id=db.start_run("sync", "manual"), ids=[ids[0]])
    assert [a["capability_id"] for a in db.approvals(states=("approved",))] == ["jq"]


def test_approvals_close_when_the_gap_closed_and_expire(db: Store) -> None:
    ids = db.queue_approvals(
        [_pending("pc1", "docker"), _pending("pc1", "jq"), _pending("pc2", "jq")],
        plan_id="p",
        expires_in=timedelta(hours=1),
        now=NOW,
    )
    assert db.close_resolved({"pc1": ["jq"]}) == [ids[0]]  # pc2 not compared this time: left alone
    assert db.expire_approvals(now=NOW + timedelta(hours=2)) == [ids[1], ids[2]]
    assert {a["state"] for a in db.approvals(states=("expired",))} == {"expired"}


def test_manifest_snapshots_and_what_changed_on_a_host(db: Store) -> None:
    def manifest(when: str, caps: dict[str, str]) -> dict[str, object]:
        return {
            "host": "pc1",
            "gathered_at": when,
            "capabilities": [{"id": k, "version": v} for k, v in sorted(caps.items())],
        }

    assert db.snapshot_manifest(manifest("2026-12-01T10:00:00Z", {"pip:six": "1.15.0", "jq": "1.6"}))
    assert not db.snapshot_manifest(manifest("2026-12-01T11:00:00Z", {"pip:six": "1.15.0", "jq": "1.6"}))
    assert db.snapshot_manifest(manifest("2026-12-01T12:00:00Z", {"pip:six": "1.16.0", "git": "2.39"}))
    (change,) = db.host_changes("pc1")
    assert change == {
        "gathered_at": "2026-12-01T12:00:00Z",
        "added": ["git"],
        "removed": ["jq"],
        "changed": [{"id": "pip:six", "from": "1.15.0", "to": "1.16.0", "direction": "upgraded"}],
    }
    assert db.last_gathered() == {"pc1": "2026-12-01T12:00:00Z"}
    # Back to the first content: a new snapshot (history shows the revert), and an unchanged
    # gather still counts as the host's last gather.
    assert db.snapshot_manifest(manifest("2026-12-01T13:00:00Z", {"pip:six": "1.15.0", "jq": "1.6"}))
    assert not db.snapshot_manifest(manifest("2026-12-01T14:00:00Z", {"pip:six": "1.15.0", "jq": "1.6"}))
    latest = db.host_changes("pc1")[0]
    assert (latest["added"], latest["removed"]) == (["jq"], ["git"])
    assert db.last_gathered() == {"pc1": "2026-12-01T14:00:00Z"}
    assert [m["last_seen_at"] for m in db.manifest_history("pc1")] == [
        "2026-12-01T14:00:00Z", "2026-12-01T12:00:00Z", "2026-12-01T11:00:00Z"]


def test_a_version_1_store_migrates_and_keeps_its_snapshots(tmp_path: Path) -> None:
    import sqlite3

    from cyclotron_py.store import MIGRATIONS, _statements

    path = tmp_path / "cyclotron.db"
    old = sqlite3.connect(path)
    for statement in _statements(MIGRATIONS[0]):
        old.execute(statement)
    old.execute("INSERT INTO manifests (host, gathered_at, sha256, capabilities, body) VALUES"
                " ('pc1', '2026-12-01T10:00:00Z', 'abc', 0, '{}')")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with Store.open(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.last_gathered() == {"pc1": "2026-12-01T10:00:00Z"}
        assert store.manifest_history("pc1")[0]["last_seen_at"] == "2026-12-01T10:00:00Z"


def test_prune_keeps_the_newest_and_running_runs(db: Store) -> None:
    old = [db.start_run("sync", "manual", now=NOW - timedelta(days=40 - i)) for i in range(5)]
    for run in old:
        db.record_items(run, [ItemOutcome("pc1", "pip:six", "installed")])
        db.finish_run(run, "successful", 0)
    running = db.start_run("sync", "manual", now=NOW - timedelta(days=60))
    assert db.prune(keep_runs=2) == 4
    assert [r["id"] for r in db.runs()] == [running, old[4]]
    assert db.prune(keep_days=1, now=NOW) == 1 and [r["id"] for r in db.runs()] == [running]
    assert db.db.execute("SELECT COUNT(*) FROM item_outcomes WHERE run_id = ?", (old[0],)).fetchone()[0] == 0


def test_missed_runs_are_recorded(db: Store) -> None:
    run = db.record_missed("sync", "semi-auto", due=NOW, message="due 12:00, machine was off; past the grace")
    assert db.run(run)["status"] == "missed" and db.last_started() == NOW
