"""`cyclotron run` and `cyclotron tick` over the real sshd fleet: the approval flow, kill -9 mid-install
and abandoned-run recovery, two ticks at once, an unreachable host, failing items and the schedule.

Every step is the CLI in its own process (piped: plain progress lines) with real ansible-runner,
real pip installs into the users' venvs and a real SQLite store in this test's state dir.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from cyclotron_py.store import Store

from .fleet import Fleet, _free_port
from .sync_helpers import (
    TEST_CATALOG,
    RunDirs,
    pip_install,
    pip_version,
    pushed_manifest,
    wait_for_lock_holder,
    write_inventory,
)

# Every test starts from users with nothing installed or configured (conftest's clean_fleet).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_fleet")]

REPO = Path(__file__).resolve().parents[2]
CYCLOTRON = [sys.executable, "-m", "cyclotron_py.cli"]
PAIR = ["--limit", "pc1,pc2,localhost"]
# A name nobody publishes on PyPI.
MISSING_PACKAGE = "cyclotron-no-such-package-7f3a9c"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def cyclotron(fleet: Fleet, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CYCLOTRON, *args], cwd=REPO, env=_env(fleet, state), capture_output=True, text=True, timeout=1200,
        stdin=subprocess.DEVNULL, check=False,
    )


def cyclotron_on_a_tty(fleet: Fleet, state: Path, *args: str) -> tuple[int, str]:
    """The CLI with a terminal for stdout (rich progress); returns the exit code and the text shown."""
    master, slave = pty.openpty()
    env = {**_env(fleet, state), "COLUMNS": "220", "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen([*CYCLOTRON, *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = proc.wait(timeout=60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode(errors="replace"))  # colours
    return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", text)  # cursor moves: each redraw on a line


def _env(fleet: Fleet, state: Path) -> dict[str, str]:
    return fleet.env({"CYCLOTRON_STATE_DIR": str(state), "PYTHONPATH": str(REPO)})


def run_cmd(inventory: Path, dirs: RunDirs, *extra: str) -> list[str]:
    variables = [a for key, value in dirs.extra_vars().items() for a in ("-e", f"{key}={value}")]
    return ["run", "-i", str(inventory), *variables, *extra]


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"rc={proc.returncode}\n--- stdout\n{proc.stdout[-8000:]}\n--- stderr\n{proc.stderr[-4000:]}"


def pair_inventory(fleet: Fleet, dest: Path, **kwargs: Any) -> Path:
    """The fleet inventory with pc1 and pc2 only (tick has no --limit: its config names the inventory)."""
    path = write_inventory(fleet, dest, **kwargs)
    data = yaml.safe_load(path.read_text())
    del data["all"]["hosts"]["pc3"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def configure_tick(state: Path, inventory: Path, dirs: RunDirs, **settings: Any) -> None:
    state.mkdir(mode=0o700, exist_ok=True)
    config = {"schedule": {"every": "1h"}, "grace": "15m", "mode": "full-auto", "playbook": "sync",
              "inventory": str(inventory), "extra_vars": dirs.extra_vars(), **settings}
    (state / "config.yml").write_text(yaml.safe_dump(config))


def tick(fleet: Fleet, state: Path, now: str) -> subprocess.CompletedProcess[str]:
    return cyclotron(fleet, state, "tick", "--now", now)


def statuses(state: Path) -> list[str]:
    with Store.open(state) as store:
        return [r["status"] for r in reversed(store.runs(limit=100))]


def items(state: Path, run_id: int, host: str) -> dict[str, dict[str, Any]]:
    with Store.open(state) as store:
        return {i["capability_id"]: i for i in store.item_outcomes(run_id, host)}


# ---------------------------------------------------------------------- (a) the approval flow
def test_manual_run_approve_two_reject_one_next_run_installs_exactly_the_two(
    ssh_fleet: Fleet, inventory: Path, dirs: RunDirs, state: Path
) -> None:
    pip_install(ssh_fleet, "pc1", "six", "tomli", "colorama")
    wanted = {dist: pip_version(ssh_fleet, "pc1", dist) for dist in ("six", "tomli")}

    first = cyclotron(ssh_fleet, state, *run_cmd(inventory, dirs, "--mode", "manual", *PAIR))
    assert first.returncode == 0, describe(first)
    assert "3 item(s) await approval" in first.stdout, describe(first)
    assert pip_version(ssh_fleet, "pc2", "six") is None  # manual: nothing installed
    with Store.open(state) as store:
        pending = {a["capability_id"]: a for a in store.approvals()}
        (run,) = store.runs()
    assert sorted(pending) == ["pip:colorama", "pip:tomli", "six"], pending
    assert {a["host"] for a in pending.values()} == {"pc2"}
    assert all(a["plan_id"] == run["plan_id"] and a["wanted_version"] and a["risk"] for a in pending.values())
    assert pending["six"]["wanted_version"] == wanted["six"]

    listed = cyclotron(ssh_fleet, state, "approvals", "--json")
    assert sorted(a["capability_id"] for a in json.loads(listed.stdout)) == sorted(pending)
    approve = cyclotron(ssh_fleet, state, "approve", str(pending["six"]["id"]), str(pending["pip:tomli"]["id"]))
    reject = cyclotron(ssh_fleet, state, "reject", str(pending["pip:colorama"]["id"]), "--reason", "not on pc2")
    assert (approve.returncode, reject.returncode) == (0, 0), describe(approve) + describe(reject)

    second = cyclotron(ssh_fleet, state, *run_cmd(inventory, dirs, "--mode", "manual", *PAIR))
    assert second.returncode == 0, describe(second)
    assert "await approval" not in second.stdout, describe(second)
    assert {d: pip_version(ssh_fleet, "pc2", d) for d in ("six", "tomli")} == wanted
    assert pip_version(ssh_fleet, "pc2", "colorama") is None
    with Store.open(state) as store:
        latest = store.runs()[0]
        assert store.approvals() == []  # nothing new queued
        decided = {a["capability_id"]: a for a in store.approvals(states=("closed", "rejected", "approved"))}
    got = {cap: (i["outcome"], i["version_after"]) for cap, i in items(state, latest["id"], "pc2").items()}
    assert got == {"six": ("installed", wanted["six"]), "pip:tomli": ("installed", wanted["tomli"]),
                   "pip:colorama": ("rejected", "")}, got
    assert {cap: a["state"] for cap, a in decided.items()} == {
        "six": "closed", "pip:tomli": "closed", "pip:colorama": "rejected"}
    assert decided["six"]["consumed_run_id"] == latest["id"]
    assert (decided["pip:colorama"]["decision_reason"], decided["pip:colorama"]["decided_by"]) != ("", "")

    # status and history read the same store: per host the last gather and outcome, what changed.
    status = json.loads(cyclotron(ssh_fleet, state, "status", "--json").stdout)
    assert status["last_run"]["id"] == latest["id"] and status["pending_approvals"] == []
    assert status["hosts"]["pc2"]["last_gathered"] and status["hosts"]["pc2"]["last_outcome"]["run_id"] == latest["id"]
    history = json.loads(cyclotron(ssh_fleet, state, "history", "--host", "pc2", "--json").stdout)
    assert [r["id"] for r in history["runs"]] == [latest["id"], run["id"]]
    assert {"six", "pip:tomli"} <= set(history["changes"][0]["added"]), history["changes"]
    shown = cyclotron(ssh_fleet, state, "history", "--host", "pc2").stdout
    assert re.search(r"^pc2 \S+: \+2 -0 ~0  added pip:tomli, six$", shown, re.MULTILINE), shown
    text = cyclotron(ssh_fleet, state, "status").stdout
    assert "pending approvals: 0" in text and re.search(r"^  pc2: last gathered 20\S+; last outcome complete", text,
                                                        re.MULTILINE), text


# ---------------------------------------------------------------------- (b) kill -9 mid-install
def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    """kill -9 of the tick and everything it started (runner's ansible-playbook has its own session)."""
    for victim in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _lock_is_free(state: Path) -> bool:
    with (state / "lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _task_results(data_dir: Path) -> list[str]:
    """A run's text output (runner's artifacts/<ident>/stdout) as ``TASK [name] -> host`` lines, in order."""
    (stdout,) = data_dir.glob("artifacts/*/stdout")
    order, task = [], ""
    for line in stdout.read_text().splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):line.index("]")]
        elif match := re.match(r"^(?:ok|changed): \[([^\]]+)\]", line):
            order.append(f"{task} -> {match.group(1)}")
    return order


def test_kill_9_mid_install_next_tick_marks_it_abandoned_and_regathers_before_planning(
    ssh_fleet: Fleet, dirs: RunDirs, state: Path, tmp_path: Path
) -> None:
    inventory = pair_inventory(ssh_fleet, tmp_path / "inventory")
    pip_install(ssh_fleet, "pc1", "six", "tomli", "colorama")
    configure_tick(state, inventory, dirs)
    proc = subprocess.Popen(
        [*CYCLOTRON, "tick", "--now", "2026-12-01T10:00:00Z"], cwd=REPO, env=_env(ssh_fleet, state),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    installing = ""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not installing:
        if (state / "cyclotron.db").exists():
            with Store.open(state) as store:
                current = store.current_run()
                hosts = {h["host"]: h for h in store.host_outcomes(current["id"])} if current else {}
            task = hosts.get("pc2", {}).get("current_task", "")
            installing = task if task.startswith("Package | read, install") else ""
        time.sleep(0.1)
    _kill_tree(proc.pid)
    proc.wait(timeout=30)
    assert installing, "the run never reached an install on pc2"
    assert statuses(state) == ["running"]
    assert _lock_is_free(state)  # the kernel let go of the dead holder's lock

    after = tick(ssh_fleet, state, "2026-12-01T11:01:00Z")
    assert after.returncode == 0, describe(after)
    assert "run 1 was left running by a process that is gone: marked abandoned" in after.stdout, describe(after)
    assert "run: due 2026-12-01T11:00:00Z" in after.stdout, describe(after)
    assert statuses(state) == ["abandoned", "successful"]
    with Store.open(state) as store:
        abandoned, resumed = store.run(1), store.run(2)
        assert abandoned is not None and resumed is not None
        assert abandoned["finished"] and "gone" in abandoned["message"]
        assert {h["host"]: h["status"] for h in store.host_outcomes(1)}["pc2"] == "abandoned"
    # The next run gathered pc2 afresh before it planned, and ended with pc2 like pc1.
    order = _task_results(Path(resumed["data_dir"]))
    gathered_pc2 = order.index("Gather capabilities and write the manifest on the controller -> pc2")
    planned = order.index("Compare manifests and write the plan and its generated playbook -> localhost")
    assert gathered_pc2 < planned, order
    for dist in ("six", "tomli", "colorama"):
        assert pip_version(ssh_fleet, "pc2", dist) == pip_version(ssh_fleet, "pc1", dist), dist
    outcomes = items(state, 2, "pc2")
    assert {i["outcome"] for i in outcomes.values()} <= {"installed", "upgraded", "already-present"}, outcomes


# ---------------------------------------------------------------------- (c) two ticks at once
def test_two_ticks_at_once_exactly_one_runs(ssh_fleet: Fleet, dirs: RunDirs, state: Path, tmp_path: Path) -> None:
    inventory = pair_inventory(ssh_fleet, tmp_path / "inventory")
    configure_tick(state, inventory, dirs, playbook="gather")
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen([*CYCLOTRON, "tick", "--now", "2026-12-01T10:00:00Z"], cwd=REPO,
                                      env=_env(ssh_fleet, state), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, text=True))
        if len(procs) == 1:  # the second starts while the first holds the lock, however loaded the machine
            wait_for_lock_holder(state, procs[0].pid)
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    waited = [i for i, out in enumerate(outputs) if "already running (pid" in out]
    assert len(waited) == 1, outputs
    holder = procs[1 - waited[0]]
    assert f"already running (pid {holder.pid})" in outputs[waited[0]], outputs
    assert statuses(state) == ["successful"]
    with Store.open(state) as store:
        (run,) = store.runs()
        assert run["pid"] == holder.pid
        hosts = {h["host"]: h["status"] for h in store.host_outcomes(run["id"])}
        assert (hosts["pc1"], hosts["pc2"]) == ("complete", "complete"), hosts


# ---------------------------------------------------------------------- (d) an unreachable host
def test_unreachable_host_is_recorded_while_the_others_complete(
    ssh_fleet: Fleet, dirs: RunDirs, state: Path, tmp_path: Path
) -> None:
    dead = write_inventory(ssh_fleet, tmp_path / "inventory", ports={"pc3": _free_port()})
    pip_install(ssh_fleet, "pc1", "six")
    wanted = pip_version(ssh_fleet, "pc1", "six")

    proc = cyclotron(ssh_fleet, state, *run_cmd(dead, dirs, "--mode", "full-auto"))

    assert proc.returncode == 4, describe(proc)
    assert re.search(r"^pc3: unreachable ", proc.stdout, re.MULTILINE), describe(proc)  # a plain progress line
    assert pip_version(ssh_fleet, "pc2", "six") == wanted
    with Store.open(state) as store:
        (run,) = store.runs()
        hosts = {h["host"]: h for h in store.host_outcomes(run["id"])}
    assert (run["status"], run["hosts_unreachable"]) == ("failed", 1)
    assert hosts["pc3"]["status"] == "unreachable" and hosts["pc3"]["unreachable"] >= 1 and hosts["pc3"]["error"]
    assert (hosts["pc1"]["status"], hosts["pc2"]["status"]) == ("complete", "complete"), hosts
    assert items(state, run["id"], "pc2")["six"]["outcome"] == "installed"
    assert items(state, run["id"], "pc3") == {}


# ---------------------------------------------------------------------- (e) failing items
def test_failing_items_are_recorded_with_their_reason(
    ssh_fleet: Fleet, dirs: RunDirs, state: Path, tmp_path: Path
) -> None:
    # colorama installs but its probe never matches: rolled back. A package nobody publishes,
    # pushed by pc9's manifest, fails before anything changed.
    catalog = copy.deepcopy(TEST_CATALOG)
    catalog["capabilities"]["colorama"] = {
        "name": "colorama", "domain": "development", "risk": "low", "packages": {"pip": "colorama"},
        "verify": {"command": ["python3", "-c", "import colorama; print('colorama', colorama.__version__)"],
                   "regex": r"^colorama-never (\d+)$"},
    }
    inventory = write_inventory(ssh_fleet, tmp_path / "inventory", catalog=catalog)
    pip_install(ssh_fleet, "pc1", "colorama")
    (dirs.manifests / "pc9.json").write_text(json.dumps(pushed_manifest("pc9", [("pip", MISSING_PACKAGE)])))

    rc, shown = cyclotron_on_a_tty(ssh_fleet, state, *run_cmd(inventory, dirs, "--mode", "full-auto", *PAIR))

    assert rc == 2, shown[-8000:]
    # On a terminal: rich bars, one per host, with items done/total, the status and the counts.
    bars = {line.split()[0]: line for line in shown.splitlines() if re.match(r"^pc[12] +.*\d+/\d+", line)}
    assert re.search(r"2/2 +failed +ok \d+ · changed \d+ · failed [1-9]", bars["pc2"]), shown[-8000:]
    assert "━" in bars["pc2"] and "unreachable 0" in bars["pc2"], shown[-8000:]
    assert pip_version(ssh_fleet, "pc2", "colorama") is None
    with Store.open(state) as store:
        (run,) = store.runs()
    got = items(state, run["id"], "pc2")
    rolled_back = got["colorama"]
    assert rolled_back["outcome"] == "failed-rolled-back", rolled_back
    assert "verify" in rolled_back["reason"] and "colorama-never" in rolled_back["reason"], rolled_back
    missing = got[f"pip:{MISSING_PACKAGE}"]
    assert missing["outcome"] in ("failed", "failed-rolled-back"), missing
    assert MISSING_PACKAGE in missing["reason"] or "No matching distribution" in missing["reason"], missing
    assert run["status"] == "failed" and run["items_failed"] >= 3, run  # pc1 lacks the missing one too
    assert "pc2:colorama (failed_rolled_back)" in shown, shown[-8000:]


# ---------------------------------------------------------------------- (f) the schedule
def test_schedule_before_at_after_the_due_time_and_after_a_long_gap(
    ssh_fleet: Fleet, dirs: RunDirs, state: Path, tmp_path: Path
) -> None:
    inventory = pair_inventory(ssh_fleet, tmp_path / "inventory")
    pip_install(ssh_fleet, "pc1", "six")
    configure_tick(state, inventory, dirs, keep_runs=2)

    def step(now: str, expect: str, runs: list[str]) -> subprocess.CompletedProcess[str]:
        proc = tick(ssh_fleet, state, now)
        assert proc.returncode == 0 and expect in proc.stdout, describe(proc)
        assert statuses(state) == runs, describe(proc)
        return proc

    step("2026-12-01T10:00:00Z", "run: first scheduled run", ["successful"])
    assert pip_version(ssh_fleet, "pc2", "six") == pip_version(ssh_fleet, "pc1", "six")  # full-auto installed it
    step("2026-12-01T10:30:00Z", "wait: not due until 2026-12-01T11:00:00Z", ["successful"])  # before
    step("2026-12-01T11:00:00Z", "run: due 2026-12-01T11:00:00Z", ["successful"] * 2)  # at
    step("2026-12-01T11:20:00Z", "wait: not due until 2026-12-01T12:00:00Z", ["successful"] * 2)  # this slot ran
    step("2026-12-01T12:10:00Z", "run: due 2026-12-01T12:00:00Z", ["successful"] * 3)  # after, within the grace
    # Off for three days, 40 min past the latest slot: one missed record, no burst of catch-up runs.
    gap = step("2026-12-04T09:40:00Z", "missed", ["successful"] * 3 + ["missed"])
    assert "due 2026-12-04T09:00:00Z, 40 min late (grace 15m)" in gap.stdout, describe(gap)
    step("2026-12-04T09:50:00Z", "wait: not due until 2026-12-04T10:00:00Z", ["successful"] * 3 + ["missed"])
    step("2026-12-04T10:02:00Z", "run: due 2026-12-04T10:00:00Z", ["successful"] * 3 + ["missed", "successful"])

    status = json.loads(cyclotron(ssh_fleet, state, "status", "--json").stdout)
    assert status["heartbeat"]["at"] == "2026-12-04T10:02:00Z"
    assert status["next_due"] == "2026-12-04T11:00:00Z"
    hosts = status["hosts"]
    assert (hosts["pc1"]["last_outcome"]["status"], hosts["pc2"]["last_outcome"]["status"]) == ("complete", "complete")
    # Run dirs (artifacts) are rotated to keep_runs; the rows stay until pruned.
    assert sorted(p.name for p in (state / "runs").iterdir()) == ["3", "5"]
    pruned = cyclotron(ssh_fleet, state, "history", "prune", "--keep", "2")
    assert pruned.returncode == 0 and "pruned 3 run(s)" in pruned.stdout, describe(pruned)
    listed = cyclotron(ssh_fleet, state, "history")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["5", "4"], describe(listed)
    assert "successful" in listed.stdout and "missed" in listed.stdout
