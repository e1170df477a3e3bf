"""`cyclotron schedule install|remove|show`: a systemd user timer (or a crontab line) that calls tick.

The timer fires every few minutes and ``cyclotron tick`` decides from config.yml whether the job is
due, so an interval or a cron expression behaves the same under systemd and cron, and a machine
that was off gets one run (or a ``missed`` record), never a burst. Only Cyclotron's own unit files
or its own marked crontab line are written or removed; nothing else is edited.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..daemon import Config, Schedule, load_config, save_config
from ..errors import CyclotronError
from ..manifest_io import atomic_write_text
from ..store import state_dir

UNIT = "cyclotron"
CRON_MARK = "# cyclotron tick (managed by cyclotron schedule)"
TICK_EVERY_MINUTES = 5


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("schedule", help="install, remove or show the timer that runs cyclotron tick")
    parser.add_argument("action", choices=("install", "remove", "show"))
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", help="an interval: 30m, 1h, 1d")
    when.add_argument("--cron", help="a cron expression, e.g. '0 */2 * * *'")
    parser.add_argument("--mode", choices=("manual", "semi-auto", "full-auto"), default=None)
    parser.add_argument("-i", "--inventory", default=None, help="the inventory tick uses (saved in config.yml)")
    parser.add_argument("--target", choices=("auto", "systemd", "cron"), default="auto",
                        help="systemd user timer, or crontab (auto: systemd when it runs here)")
    parser.set_defaults(func=run)


def _systemd_available() -> bool:
    return shutil.which("systemctl") is not None and Path("/run/systemd/system").is_dir()


def _unit_dir() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user"


def _tick_command() -> list[str]:
    """`cyclotron tick` from this installation when it has the script, else from PATH."""
    beside = Path(sys.executable).parent / "cyclotron"
    return [str(beside) if beside.exists() else "cyclotron", "tick"]


def _units(state: Path, config: Config) -> dict[str, str]:
    command = shlex.join(_tick_command())
    return {
        f"{UNIT}.service": (
            "[Unit]\nDescription=Cyclotron: close capability gaps across the fleet (one tick)\n\n"
            "[Service]\nType=oneshot\n"
            f"Environment=CYCLOTRON_STATE_DIR={state}\n"
            f"ExecStart={command}\n"
        ),
        f"{UNIT}.timer": (
            "[Unit]\nDescription=Cyclotron tick timer (the schedule itself is in config.yml)\n\n"
            f"[Timer]\nOnCalendar=*:0/{TICK_EVERY_MINUTES}\nPersistent=true\nRandomizedDelaySec=60\n\n"
            "[Install]\nWantedBy=timers.target\n"
        ),
    }


def _cron_line(state: Path) -> str:
    command = shlex.join(_tick_command())
    return f"*/{TICK_EVERY_MINUTES} * * * * CYCLOTRON_STATE_DIR={shlex.quote(str(state))} {command} {CRON_MARK}"


def _crontab_lines() -> list[str]:
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines() if proc.returncode == 0 else []


def run(args: argparse.Namespace) -> int:
    state = state_dir()
    config = load_config(state)
    target = args.target
    if target == "auto":
        target = "systemd" if _systemd_available() else "cron"
    if args.action == "show":
        return _show(state, config)
    if args.action == "remove":
        return _remove(target)
    if args.every or args.cron:
        config.schedule = Schedule(every=args.every, cron=args.cron)
    if config.schedule is None:
        raise CyclotronError("give the schedule: cyclotron schedule install --every 1h (or --cron '0 * * * *')")
    if args.mode:
        config.mode = args.mode
    if args.inventory is not None:
        config.inventory = str(Path(args.inventory).resolve())
    print(f"wrote {save_config(state, config)} (schedule: {config.schedule.every or config.schedule.cron}, "
          f"mode {config.mode})")
    if target == "systemd":
        unit_dir = _unit_dir()
        for name, text in _units(state, config).items():
            atomic_write_text(unit_dir / name, text)
            print(f"wrote {unit_dir / name}")
        if _systemd_available():
            for argv in (["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now",
                                                                     f"{UNIT}.timer"]):
                proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                print(f"ran {shlex.join(argv)}: exit {proc.returncode} {proc.stderr.strip()}")
        else:
            print(f"systemd is not running here: enable it later with systemctl --user enable --now {UNIT}.timer")
        return 0
    line = _cron_line(state)
    if shutil.which("crontab") is None:
        print(f"no crontab command here; add this line to your crontab yourself:\n{line}")
        return 0
    lines = [entry for entry in _crontab_lines() if CRON_MARK not in entry] + [line]
    subprocess.run(["crontab", "-"], input="\n".join(lines) + "\n", text=True, check=True)
    print(f"added to your crontab:\n{line}")
    return 0


def _remove(target: str) -> int:
    if target == "systemd":
        if _systemd_available():
            subprocess.run(["systemctl", "--user", "disable", "--now", f"{UNIT}.timer"], capture_output=True,
                           check=False)
        for name in (f"{UNIT}.timer", f"{UNIT}.service"):
            path = _unit_dir() / name
            if path.exists():
                path.unlink()
                print(f"removed {path}")
        return 0
    if shutil.which("crontab") is None:
        print("no crontab command here; nothing to remove")
        return 0
    lines = _crontab_lines()
    kept = [entry for entry in lines if CRON_MARK not in entry]
    if kept != lines:
        subprocess.run(["crontab", "-"], input="\n".join(kept) + "\n", text=True, check=True)
        print("removed the cyclotron line from your crontab")
    return 0


def _show(state: Path, config: Config) -> int:
    from ..daemon import next_due
    from ..store import Store, iso

    schedule = config.schedule
    print(f"config: {state / 'config.yml'}")
    if schedule is None:
        print("schedule: none (cyclotron schedule install --every 1h)")
    else:
        print(f"schedule: {'every ' + schedule.every if schedule.every else 'cron ' + str(schedule.cron)}")
    print(f"mode: {config.mode}; grace: {config.grace}; inventory: {config.inventory or '(demo)'}")
    with Store.open(state) as store:
        due = next_due(store, config)
    print(f"next due: {iso(due) if due else '-'}")
    for name in (f"{UNIT}.timer", f"{UNIT}.service"):
        path = _unit_dir() / name
        print(f"{path}: {'present' if path.exists() else 'absent'}")
    return 0
