"""The shipped SSH settings over a real sshd: a host that goes silent while Ansible holds a cached
(ControlPersist) connection to it is reported unreachable, instead of the cached connection
keeping it "reachable" and the next task hanging on it."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from .fleet import Fleet, _user_pids
from .sync_helpers import HostSshd, write_inventory

pytestmark = pytest.mark.integration


def test_a_cached_connection_to_a_silent_host_ends_and_the_host_is_unreachable(
    ssh_fleet: Fleet, tmp_path: Path
) -> None:
    # pc3 behind an sshd of its own, so freezing it silences pc3 alone.
    sshd = HostSshd(ssh_fleet, "pc3", tmp_path / "pc3-sshd")
    sshd.start()
    frozen: list[int] = []
    try:
        inventory = write_inventory(ssh_fleet, tmp_path / "inventory", ports={"pc3": sshd.port})
        first = ssh_fleet.ansible("pc3", "ansible.builtin.ping", inventory=inventory)
        assert first.returncode == 0, first.stdout + first.stderr
        session = _user_pids(ssh_fleet.hosts["pc3"].uid)
        assert session, "no cached SSH session on the host after the first task"
        assert sshd.proc is not None
        # The host stops answering, as a hung or suspended PC does: TCP stays up, nothing replies,
        # on the cached connection or on a new one.
        frozen = [sshd.proc.pid, *session]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        # Without keepalives this hangs on the cached connection until the timeout below.
        second = ssh_fleet.ansible("pc3", "ansible.builtin.ping", inventory=inventory, timeout=300)
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        sshd.stop()
        ssh_fleet.close_connections()
    assert second.returncode != 0, second.stdout + second.stderr
    assert "UNREACHABLE" in second.stdout, second.stdout + second.stderr
