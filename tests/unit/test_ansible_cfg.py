"""The shipped SSH settings: a cached connection to a host that went silent must not keep it
looking reachable for long (keepalives drop it), and an idle one ends soon after the run."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _ssh_options() -> dict[str, str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO_ROOT / "ansible.cfg")
    return dict(re.findall(r"-o\s+(\w+)=(\S+)", config["ssh_connection"]["ssh_args"]))


def test_a_silent_host_is_dropped_within_fifteen_seconds() -> None:
    options = _ssh_options()
    assert int(options["ServerAliveInterval"]) * int(options["ServerAliveCountMax"]) <= 15, options


def test_idle_connections_do_not_outlive_the_run_by_more_than_thirty_seconds() -> None:
    persist = _ssh_options()["ControlPersist"]
    assert re.fullmatch(r"\d+s", persist) and int(persist[:-1]) <= 30, persist


def test_the_readme_states_the_shipped_values() -> None:
    options = _ssh_options()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("ControlPersist", "ServerAliveInterval", "ServerAliveCountMax"):
        assert f"{name}={options[name]}" in readme, name
