"""The read side (cyclotron_py.fleet_view) over a real SQLite store and the three-PC fixture fleet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cyclotron_py.fleet_view import (
    FleetView,
    MatrixQuery,
    counts_text,
    host_counts,
    host_detail,
    raw_output,
    run_detail,
    runs_page,
)
from cyclotron_py.store import ItemOutcome, Store
from tests.dashboard_support import copy_fleet, manifest


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def view(store: Store, tmp_path: Path) -> FleetView:
    fleet = FleetView(store, manifests_dir=copy_fleet(tmp_path / "manifests"))
    fleet.rescan_seconds = 0  # these tests write through the view's own connection and at once
    return fleet


def _cell(page: dict, cid: str, host: str) -> dict:
    (row,) = [r for r in page["rows"] if r["id"] == cid]
    return row["cells"][host]


def test_grid_from_the_manifests_dir_has_a_state_and_label_per_cell(view: FleetView) -> None:
    page = view.matrix_page(MatrixQuery(gaps_only=False, per_page=500))
    assert page["hosts"] == ["pc1", "pc2", "pc3"] and page["source"].startswith("manifest files in ")
    assert _cell(page, "git", "pc1") == {"state": "present", "label": "present 2.47.1", "version": "2.47.1"}
    drift = _cell(page, "git", "pc2")
    assert drift["state"] == "drift" and "2.43.0" in drift["label"] and "2.47.1" in drift["label"]
    assert _cell(page, "powershell", "pc2") == {"state": "missing", "label": "missing"}
    unportable = _cell(page, "htop", "pc1")
    assert unportable["state"] == "unportable" and unportable["label"].startswith("unportable: ")
    # every row's coverage, every host's and every domain's come from the compare engine
    assert {r["id"]: r["coverage"] for r in page["rows"]}["git"] == 100.0
    assert set(page["coverage"]["by_host"]) == {"pc1", "pc2", "pc3"}
    assert "infrastructure" in page["coverage"]["by_domain"]


def test_filters_and_gaps_only_narrow_the_rows_and_pages_split_them(view: FleetView) -> None:
    everything = view.matrix_page(MatrixQuery(gaps_only=False, per_page=500))
    gaps = view.matrix_page(MatrixQuery(per_page=500))
    assert 0 < gaps["total_rows"] < everything["total_rows"]
    assert all(any(c["state"] != "present" for c in r["cells"].values()) for r in gaps["rows"])
    ai = view.matrix_page(MatrixQuery(domain="ai", gaps_only=False, per_page=500))
    assert ai["rows"] and {r["domain"] for r in ai["rows"]} == {"ai"}
    keys = view.matrix_page(MatrixQuery(type="api_key", gaps_only=False, per_page=500))
    assert keys["rows"] and {r["type"] for r in keys["rows"]} == {"api_key"}
    text = view.matrix_page(MatrixQuery(q="NODE", gaps_only=False, per_page=500))
    assert [r["id"] for r in text["rows"]] == ["nodejs"]
    one_host = view.matrix_page(MatrixQuery(host="pc3", per_page=500))
    assert one_host["hosts"] == ["pc3"]
    assert all(set(r["cells"]) == {"pc3"} and r["cells"]["pc3"]["state"] != "present" for r in one_host["rows"])
    first = view.matrix_page(MatrixQuery(gaps_only=False, per_page=5))
    second = view.matrix_page(MatrixQuery(gaps_only=False, per_page=5, page=2))
    assert first["pages"] == -(-everything["total_rows"] // 5) and len(first["rows"]) == 5
    assert not {r["id"] for r in first["rows"]} & {r["id"] for r in second["rows"]}


def test_the_comparison_is_computed_once_per_change_of_its_inputs(view: FleetView, tmp_path: Path) -> None:
    first = view.grid()
    assert view.grid() is first
    path = tmp_path / "manifests" / "pc2.json"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10_000_000))
    assert view.grid() is not first


def test_store_snapshots_win_over_the_directory(view: FleetView, store: Store) -> None:
    assert view.grid().source.startswith("manifest files in ")
    for host in ("pc1", "pc3"):
        store.snapshot_manifest(manifest(host))
    grid = view.grid()
    assert grid.source == "store" and grid.matrix["hosts"] == ["pc1", "pc3"]
    newer = manifest("pc3")
    newer["gathered_at"] = "2030-01-01T00:00:00Z"
    newer["capabilities"] = [c for c in newer["capabilities"] if c["id"] != "htop"]
    store.snapshot_manifest(newer)
    assert "htop" not in view.grid().matrix["capabilities"] or view.grid().matrix["capabilities"]["htop"][
        "versions"].get("pc3") is None
    detail = host_detail(store, "pc3", view.host_body("pc3"))
    assert detail["changes"][0]["removed"] == ["htop"] and detail["os"]["family"] == "linux"


def test_pending_approvals_and_last_run_failures_show_in_their_cells(view: FleetView, store: Store) -> None:
    store.queue_approvals([{"host": "pc2", "capability_id": "powershell", "risk": "medium", "reason": "risk medium"}],
                          plan_id="plan-1")
    run_id = store.start_run("sync", "semi-auto")
    store.record_hosts(run_id, {"pc3": {"status": "failed", "error": "gh: apt failed"}})
    store.record_items(run_id, [ItemOutcome("pc3", "gh", "failed-rolled-back", reason="E: Unable to locate package")])
    store.finish_run(run_id, "failed", 2)
    page = view.matrix_page(MatrixQuery(per_page=500))
    awaiting = _cell(page, "powershell", "pc2")
    assert awaiting["state"] == "awaiting" and "medium" in awaiting["label"]
    failed = _cell(page, "gh", "pc3")
    assert failed == {"state": "failed", "label": "failed: E: Unable to locate package"}


def test_policy_exclusions_are_their_own_state(store: Store, tmp_path: Path) -> None:
    policy = {"pc1": {"exclude": ["obs-studio"]}}
    view = FleetView(store, manifests_dir=copy_fleet(tmp_path / "m"), policies=policy)
    page = view.matrix_page(MatrixQuery(q="obs", per_page=500))
    cell = _cell(page, "obs-studio", "pc1")
    assert cell["state"] == "excluded" and cell["label"].startswith("excluded by policy")


def test_run_views_count_hosts_by_outcome(store: Store) -> None:
    run_id = store.start_run("sync", "manual")
    store.record_hosts(run_id, {
        "a": {"status": "complete"}, "b": {"status": "complete"}, "c": {"status": "failed"},
        "d": {"status": "unreachable"},
    })
    store.finish_run(run_id, "failed", 4)
    counts = host_counts(store.host_outcomes(run_id))
    assert counts_text(counts) == "2 ok · 1 failed · 1 unreachable"
    page = runs_page(store, per_page=10)
    assert page["total"] == 1 and page["runs"][0]["host_counts_text"] == "2 ok · 1 failed · 1 unreachable"
    assert run_detail(store, run_id + 1) is None
    assert run_detail(store, run_id)["raw_output"] == ""


def test_raw_output_withholds_lines_that_look_like_a_secret(tmp_path: Path) -> None:
    stdout = tmp_path / "artifacts" / "abc" / "stdout"
    stdout.parent.mkdir(parents=True)
    token = "sk-ant-" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"
    stdout.write_text(f"\x1b[0;32mok: [pc1]\x1b[0m\nleaked {token}\nPLAY RECAP\n")
    text = raw_output(str(tmp_path))
    assert "ok: [pc1]" in text and "PLAY RECAP" in text and "\x1b" not in text
    assert token not in text and "line withheld" in text


def test_invalid_snapshot_is_named_not_fatal(store: Store, view: FleetView) -> None:
    store.snapshot_manifest(manifest("pc1"))
    broken = {"host": "pc2", "gathered_at": "2024-01-01T00:00:00Z", "capabilities": "nope"}
    store.snapshot_manifest(broken)
    grid = view.grid()
    assert grid.matrix["hosts"] == ["pc1"] and any("pc2" in f for f in grid.invalid)
    assert json.dumps(view.fleet_summary({"hosts": {}}))


def test_no_manifest_anywhere_is_an_empty_grid_not_an_error(store: Store, tmp_path: Path) -> None:
    view = FleetView(store, manifests_dir=tmp_path / "nowhere")
    page = view.matrix_page(MatrixQuery())
    assert (page["hosts"], page["rows"], page["total_rows"], page["source"]) == ([], [], 0, "none")
    summary = view.fleet_summary({"hosts": {}})
    assert summary["hosts"] == {} and summary["gaps"] == 0 and summary["last_run"] is None
