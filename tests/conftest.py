"""Session-wide test settings.

Ansible and npm write to $HOME by default (~/.ansible, ~/.npm). Tests point them at a
project-local scratch directory instead, so runs never touch the developer's own
caches and never see each other's: ANSIBLE_HOME, the fact cache and npm_config_cache
live under .cache/pytest-<pid>/ (git-ignored) and are removed at the end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_SCRATCH = REPO_ROOT / ".cache" / f"pytest-{os.getpid()}"


def pytest_configure(config: pytest.Config) -> None:
    # Runs before collection, so before any test module imports ansible (which reads
    # its configuration from the environment once, at import).
    _SCRATCH.mkdir(parents=True, exist_ok=True)
    os.environ["ANSIBLE_HOME"] = str(_SCRATCH / "ansible-home")
    os.environ["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
    os.environ["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(_SCRATCH / "facts")
    os.environ["ANSIBLE_NOCOLOR"] = "1"
    os.environ.pop("ANSIBLE_FORCE_COLOR", None)
    # npm documents its settings as lower-case npm_config_* variables; the update check,
    # funding and audit notes are network calls and noise.
    os.environ.update(
        {
            "npm_config_cache": str(_SCRATCH / "npm-cache"),
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where ansible.cfg and pyproject.toml are)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def scratch_dir() -> Path:
    """This session's project-local scratch directory (ANSIBLE_HOME etc. live inside)."""
    return _SCRATCH
