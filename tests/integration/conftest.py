"""Fixtures for integration tests: a real SSH fleet on this machine.

``ssh_fleet`` (session scope) yields a :class:`tests.integration.fleet.Fleet`: three
simulated PCs ``pc1``..``pc3``, each its own Unix user behind a private sshd on
127.0.0.1, with an inventory at ``fleet.inventory_path``. See fleet.py for the API.
It needs root (to add users and run sshd); elsewhere the tests using it skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .fleet import Fleet, build_fleet, skip_reason
from .sync_helpers import RunDirs, reset_fleet, write_inventory


@pytest.fixture(scope="session")
def ssh_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    fleet = build_fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield fleet
    finally:
        fleet.teardown()


@pytest.fixture
def fleet_inventory(ssh_fleet: Fleet) -> str:
    """Path of the fleet inventory, as a string for command lines."""
    return str(ssh_fleet.inventory_path)


@pytest.fixture(scope="module")
def inventory(ssh_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet inventory with the installer roles' per-host vars, once per test module."""
    return write_inventory(ssh_fleet, tmp_path_factory.mktemp("sync-inventory"))


@pytest.fixture
def clean_fleet(ssh_fleet: Fleet) -> Iterator[None]:
    """Users with nothing installed or configured (modules opt in with usefixtures)."""
    reset_fleet(ssh_fleet)
    yield


@pytest.fixture
def dirs(tmp_path: Path) -> RunDirs:
    """This test's own manifests/plans/generated/reports/logs directories."""
    return RunDirs.make(tmp_path / "run")
