"""Lint gates, run as part of the test suite (so CI's `make test` enforces them):
ruff and mypy on the Python code, yamllint and ansible-lint (production profile) on the
YAML and Ansible content. `make lint` runs just this file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    beside = BIN / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def _run(argv: list[str]) -> None:
    env = dict(os.environ, NO_COLOR="1", PY_COLORS="0", TERM="dumb")
    proc = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"


def _mypy_targets() -> list[list[str]]:
    # Plugin directories are checked one at a time: they are not packages, and files in
    # different directories may share a name (a filter and a module both called cyclotron.py).
    targets = [["cyclotron_py"]]
    plugins = REPO_ROOT / "plugins"
    if plugins.is_dir():
        for sub in sorted(p for p in plugins.iterdir() if p.is_dir()):
            if any(sub.glob("*.py")):
                targets.append([str(sub.relative_to(REPO_ROOT))])
    return targets


def test_ruff() -> None:
    _run([_tool("ruff"), "check", "."])


@pytest.mark.parametrize("target", _mypy_targets(), ids=lambda t: t[0])
def test_mypy(target: list[str]) -> None:
    # Imported project code is checked under its own target; report each error once.
    follow = [] if target == ["cyclotron_py"] else ["--follow-imports=silent"]
    _run([_tool("mypy"), "--no-error-summary", "--cache-dir", str(REPO_ROOT / ".mypy_cache"), *follow, *target])


def test_yamllint() -> None:
    _run([_tool("yamllint"), "--format", "parsable", "."])


@pytest.mark.slow
def test_ansible_lint() -> None:
    _run([_tool("ansible-lint"), "--nocolor", "--offline"])
