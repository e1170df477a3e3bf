"""`cyclotron tick` and `cyclotron schedule` for real: processes, the lock, the store, kill -9.

The job is gather.yml over two local-connection hosts (a sandbox each), so no root is needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cyclotron_py.cli import main
from cyclotron_py.store import Store

from .sync_helpers import wait_for_lock_holder

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CYCLOTRON = [sys.executable, "-m", "cyclotron_py.cli"]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hosts = {}
    for name in ("pca", "pcb"):
        (tmp_path / name).mkdir()
        hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "cyclotron_home": str(tmp_path / name), "cyclotron_facts_sources": ["api_keys", "mcp"],
                       "cyclotron_facts_read_environment": False}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "config.yml").write_text(yaml.safe_dump({
        "schedule": {"every": "1h"}, "grace": "15m", "mode": "full-auto", "playbook": "gather",
        "inventory": str(inventory),
        # gather.yml's play vars outrank inventory vars: the test's own manifests dir goes as -e.
        "extra_vars": {"cyclotron_manifest_dir": str(tmp_path / "manifests")},
    }))
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(state))
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    return state


def tick(now: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CYCLOTRON, "tick", "--now", now], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)


def statuses(state: Path) -> list[str]:
    with Store.open(state) as store:
        return [r["status"] for r in reversed(store.runs(limit=100))]


def test_schedule_before_at_after_due_and_after_a_long_gap(state: Path) -> None:
    first = tick("2026-12-01T10:00:00Z")
    assert first.returncode == 0 and "first scheduled run" in first.stdout, first.stdout + first.stderr
    assert statuses(state) == ["successful"]
    before = tick("2026-12-01T10:30:00Z")
    assert "wait: not due until 2026-12-01T11:00:00Z" in before.stdout and statuses(state) == ["successful"]
    at = tick("2026-12-01T11:05:00Z")
    assert "run: due 2026-12-01T11:00:00Z" in at.stdout and statuses(state) == ["successful"] * 2
    again = tick("2026-12-01T11:06:00Z")  # idempotent: the same slot never runs twice
    assert "wait" in again.stdout and statuses(state) == ["successful"] * 2
    gap = tick("2026-12-04T09:40:00Z")  # off for three days, 40 min past the latest slot: one missed record
    assert "missed" in gap.stdout and statuses(state) == ["successful", "successful", "missed"]
    resumed = tick("2026-12-04T10:02:00Z")  # the next slot runs, once
    assert "run: due 2026-12-04T10:00:00Z" in resumed.stdout
    assert statuses(state) == ["successful", "successful", "missed", "successful"]
    with Store.open(state) as store:
        assert store.heartbeat()["at"] == "2026-12-04T10:02:00Z"


def test_two_ticks_at_once_exactly_one_runs(state: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen([*CYCLOTRON, "tick", "--now", "2026-12-01T10:00:00Z"], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        if len(procs) == 1:  # the second starts while the first holds the lock, however loaded the machine
            wait_for_lock_holder(state, procs[0].pid)
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    already = [out for out, _err in outputs if "already running (pid" in out]
    assert len(already) == 1, outputs
    assert statuses(state) == ["successful"]


def test_kill_9_mid_run_then_the_next_tick_marks_it_abandoned(state: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([*CYCLOTRON, "tick", "--now", "2026-12-01T10:00:00Z"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until a host is being worked on
        with Store.open(state) as store:
            current = store.current_run()
            if current and store.host_outcomes(current["id"]):
                break
        time.sleep(0.2)
    else:
        pytest.fail("the run never started")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert statuses(state) == ["running"]
    after = tick("2026-12-01T10:05:00Z")
    assert "marked abandoned" in after.stdout, after.stdout + after.stderr
    assert statuses(state) == ["abandoned"]
    # The lock was free and the abandoned run counts as the slot's start: the next due slot runs.
    resumed = tick("2026-12-01T11:01:00Z")
    assert resumed.returncode == 0 and statuses(state) == ["abandoned", "successful"], resumed.stdout


def test_schedule_install_show_remove_writes_only_its_own_files(state: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    other = tmp_path / "xdg" / "systemd" / "user" / "someone-else.timer"
    other.parent.mkdir(parents=True)
    other.write_text("[Timer]\n")
    assert main(["schedule", "install", "--every", "2h", "--target", "systemd"]) == 0
    out = capsys.readouterr().out
    timer = tmp_path / "xdg" / "systemd" / "user" / "cyclotron.timer"
    service = timer.with_suffix(".service")
    assert f"wrote {timer}" in out and f"wrote {service}" in out
    assert "Persistent=true" in timer.read_text() and "RandomizedDelaySec=" in timer.read_text()
    assert f"CYCLOTRON_STATE_DIR={state}" in service.read_text() and "tick" in service.read_text()
    assert yaml.safe_load((state / "config.yml").read_text())["schedule"] == {"every": "2h"}
    assert main(["schedule", "show", "--target", "systemd"]) == 0
    assert "schedule: every 2h" in capsys.readouterr().out
    assert main(["schedule", "remove", "--target", "systemd"]) == 0
    assert f"removed {timer}" in capsys.readouterr().out
    assert not timer.exists() and not service.exists() and other.exists()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["heartbeat"] is None
