"""Schedule, missed-run policy, config errors and the lock (real files, real flock, real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cyclotron_py.daemon import Config, ConfigError, Schedule, decide, load_config
from cyclotron_py.lock import AlreadyRunning, run_lock

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def hourly(**extra: object) -> Config:
    return Config.model_validate({"schedule": {"every": "1h"}, "grace": "15m", **extra})


@pytest.mark.parametrize(
    ("now", "action", "due"),
    [
        (T0 + timedelta(minutes=30), "wait", None),  # before the due time
        (T0 + timedelta(hours=1), "run", T0 + timedelta(hours=1)),  # at it
        (T0 + timedelta(hours=1, minutes=10), "run", T0 + timedelta(hours=1)),  # after it, within the grace
        (T0 + timedelta(hours=1, minutes=20), "missed", T0 + timedelta(hours=1)),  # past the grace
        (T0 + timedelta(days=3, minutes=5), "run", T0 + timedelta(days=3)),  # long gap: once, the latest slot
        (T0 + timedelta(days=3, minutes=40), "missed", T0 + timedelta(days=3)),  # long gap past the grace
    ],
)
def test_interval_schedule(now: datetime, action: str, due: datetime | None) -> None:
    decision = decide(hourly(), T0, now)
    assert (decision.action, decision.due) == (action, due)
    assert decision.next_due is not None and decision.next_due > now


def test_cron_schedule_and_first_run() -> None:
    config = Config.model_validate({"schedule": {"cron": "0 */6 * * *"}, "grace": "30m"})
    assert decide(config, None, T0).action == "run"
    assert decide(config, T0, T0 + timedelta(hours=1)).action == "wait"
    assert decide(config, T0, T0 + timedelta(hours=5)).action == "missed"  # 12:00 passed 3 h ago
    at_noon = decide(config, T0, T0 + timedelta(hours=2, minutes=10))
    assert (at_noon.action, at_noon.due) == ("run", datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert config.schedule is not None and config.schedule.interval(T0) == timedelta(hours=6)


def test_a_missed_record_means_the_next_tick_waits() -> None:
    missed = decide(hourly(), T0, T0 + timedelta(hours=5, minutes=30))
    assert missed.action == "missed" and missed.due == T0 + timedelta(hours=5)
    # The missed row starts at its due time: the tick after it waits for the next slot.
    assert decide(hourly(), missed.due, T0 + timedelta(hours=5, minutes=31)).action == "wait"


def test_no_schedule() -> None:
    assert decide(Config(), T0, T0).action == "unscheduled"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedule: {every: 1 hour}", "schedule.every"),
        ("schedule: {cron: 'not a cron'}", "schedule.cron"),
        ("schedule: {every: 1h, cron: '0 * * * *'}", "exactly one of every"),
        ("mode: yolo", "mode"),
        ("shedule: {every: 1h}", "shedule"),
        ("[1, 2]", "expected a mapping"),
        ("schedule: [", "cannot read it as YAML"),
        ("extra_vars: {openai_api_key: sk-1}", "names a secret"),
        ("extra_vars: {'not a name': x}", "not an Ansible variable name"),
    ],
)
def test_bad_config_names_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.yml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert str(tmp_path / "config.yml") in str(err.value) and message in str(err.value)


def test_extra_vars_are_plain_playbook_settings(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("extra_vars: {cyclotron_manifest_dir: /srv/manifests}\n")
    assert load_config(tmp_path).extra_args() == ["-e", "cyclotron_manifest_dir=/srv/manifests"]


def test_schedule_must_be_one_minute_or_more() -> None:
    with pytest.raises(ValueError, match="at least 1m"):
        Schedule(every="30s")


def test_the_lock_is_exclusive_names_the_holder_and_dies_with_it(tmp_path: Path) -> None:
    with run_lock(tmp_path), pytest.raises(AlreadyRunning, match=r"already running \(pid \d+\)"), run_lock(tmp_path):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
            from pathlib import Path
            from cyclotron_py.lock import run_lock
            with run_lock(Path({str(tmp_path)!r})):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning) as err, run_lock(tmp_path):
            pass
        assert err.value.pid == holder.pid
    finally:
        holder.kill()  # kill -9: the kernel releases the lock
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with run_lock(tmp_path):
        pass


def test_a_second_process_names_the_new_holder_not_a_stale_pid(tmp_path: Path) -> None:
    """The race: the holder has the flock but has not written its pid yet; the file still names a
    dead previous holder (and is longer than the new pid). The loser waits for the real pid."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lock").write_text(f"{dead.pid}\n{'9' * 20}\n", encoding="utf-8")  # dead, and long
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, time
            fd = os.open({str(tmp_path / "lock")!r}, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("flocked", flush=True)
            time.sleep(0.3)  # the window between taking the lock and writing the pid
            line = f"{{os.getpid()}}\\n".encode()
            os.pwrite(fd, line, 0)
            os.ftruncate(fd, len(line))
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "flocked"
        with pytest.raises(AlreadyRunning, match=rf"already running \(pid {holder.pid}\)"), run_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # The next holder writes its pid over the old, longer content and cuts the rest.
    with run_lock(tmp_path):
        assert (tmp_path / "lock").read_text(encoding="utf-8") == f"{os.getpid()}\n"
