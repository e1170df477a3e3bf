"""A host this run did not gather is never counted at parity: plan summary, sync report lines,
Markdown and JSON name it as unreachable with the age of its last manifest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cyclotron_py.catalog import load_catalog
from cyclotron_py.reports import describe_age
from cyclotron_py.sync import fleet_status, plan_fleet, plan_summary, sync_report, write_report
from tests.unit.test_compare import cap, manifest

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CATALOG = load_catalog()


def _fleet() -> list:
    # pc1 and pc2 agree; pc3's manifest on disk is three hours old and has a package they lack.
    return [
        manifest("pc1", [cap("pip:six", "1.16.0")], gathered="2026-01-01T11:59:00Z"),
        manifest("pc2", [cap("pip:six", "1.16.0")], gathered="2026-01-01T11:59:00Z"),
        manifest("pc3", [cap("pip:six", "1.16.0")], gathered="2026-01-01T09:00:00Z"),
    ]


def test_fleet_status_marks_hosts_not_gathered_with_their_last_manifest() -> None:
    status = fleet_status(["pc1", "pc2", "pc3", "pc4"], ["pc1", "pc2"], _fleet(), now=NOW)
    assert status["pc1"] == {"status": "gathered", "last_gathered_at": "2026-01-01T11:59:00Z", "age_seconds": 60}
    assert status["pc3"] == {"status": "unreachable", "last_gathered_at": "2026-01-01T09:00:00Z",
                             "age_seconds": 3 * 3600}
    # No manifest on disk at all: never gathered.
    assert status["pc4"] == {"status": "unreachable", "last_gathered_at": None, "age_seconds": None}


def test_fleet_status_leaves_out_hosts_known_only_from_a_file() -> None:
    # pc3 pushed its manifest (pull mode): it is not one of the hosts this run meant to reach.
    assert set(fleet_status(["pc1", "pc2"], ["pc1", "pc2"], _fleet(), now=NOW)) == {"pc1", "pc2"}


def test_plan_summary_never_claims_parity_while_a_host_is_unreachable() -> None:
    manifests = _fleet()
    plan, _matrix = plan_fleet(manifests, targets=["pc1", "pc2"], catalog=CATALOG)
    status = fleet_status(["pc1", "pc2", "pc3"], ["pc1", "pc2"], manifests, now=NOW)
    lines = plan_summary(plan, status)
    assert not any("the fleet is at parity" in line for line in lines), lines
    assert "  2 of 3 hosts at parity; pc3 unreachable, last gathered 3 h ago" in lines
    assert any(line.startswith("  pc3: UNREACHABLE - not gathered in this run") for line in lines), lines
    # Every host gathered: parity is claimed as before.
    everyone = fleet_status(["pc1", "pc2", "pc3"], ["pc1", "pc2", "pc3"], manifests, now=NOW)
    assert "  nothing to install: the fleet is at parity" in plan_summary(plan, everyone)


def test_plan_summary_without_any_gathered_host_plans_nothing_and_says_so() -> None:
    plan, _matrix = plan_fleet(_fleet(), targets=[], catalog=CATALOG)
    assert plan_summary(plan)[-1] == "  nothing planned: no host was gathered in this run"


def test_sync_report_names_the_unreachable_host_in_every_format(tmp_path: Path) -> None:
    manifests = _fleet()
    plan, matrix = plan_fleet(manifests, targets=["pc1", "pc2"], catalog=CATALOG)
    status = fleet_status(["pc1", "pc2", "pc3"], ["pc1", "pc2"], manifests, now=NOW)
    report = sync_report(plan, matrix["coverage"], manifests, {}, reached=["pc1", "pc2"], catalog=CATALOG,
                         status=status)
    lines = report.lines()
    assert lines[1] == (
        "Fleet: 2 of 3 hosts reached, the fleet is not known to be at parity; pc3 unreachable, last gathered 3 h ago"
    )
    assert "  pc3: UNREACHABLE - not gathered in this run, so not compared as it is now; last gathered 3 h ago" \
        in lines
    md_path, json_path = write_report(report, tmp_path)
    markdown = md_path.read_text()
    assert "pc3 unreachable, last gathered 3 h ago" in markdown
    assert "| pc3 | - | - | unreachable |" in markdown
    data = json.loads(json_path.read_text())
    assert data["unreachable"] == ["pc3"]
    assert data["hosts"]["pc3"] == {"status": "unreachable", "stage": "gather",
                                    "last_gathered_at": "2026-01-01T09:00:00Z", "age_seconds": 10800}


def test_sync_report_keeps_planned_hosts_not_reached_after_installing() -> None:
    manifests = [*_fleet()[:2], manifest("pc3", [], gathered="2026-01-01T11:59:00Z")]
    plan, matrix = plan_fleet(manifests, targets=["pc1", "pc2", "pc3"], catalog=CATALOG)
    assert [h.host for h in plan.hosts if h.items] == ["pc3"]
    status = fleet_status(["pc1", "pc2", "pc3"], ["pc1", "pc2", "pc3"], manifests, now=NOW)
    report = sync_report(plan, matrix["coverage"], manifests[:2], {}, reached=["pc1", "pc2"], catalog=CATALOG,
                         status=status)
    assert report.unreachable == ["pc3"]
    assert report.hosts["pc3"]["stage"] == "install"
    assert any(line.startswith("  pc3: UNREACHABLE - not reached after planning") for line in report.lines())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (89, "89 s"), (90, "2 min"), (3 * 3600, "3 h"), (47 * 3600, "47 h"), (3 * 86400, "3 d")],
)
def test_describe_age(seconds: int, text: str) -> None:
    assert describe_age(seconds) == text
