"""cyclotron_verify: version probes run for real (small scripts in a temporary directory)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.unit.plugins import load_as

REPO_ROOT = Path(__file__).resolve().parents[3]


load_as("ansible.module_utils.cyclotron_versions", REPO_ROOT / "plugins" / "module_utils" / "cyclotron_versions.py")
verify = load_as("cyclotron_verify_under_test", REPO_ROOT / "plugins" / "modules" / "cyclotron_verify.py")


def run(capsys: pytest.CaptureFixture[str], **params: Any) -> dict[str, Any]:
    with patch_module_args({"_ansible_check_mode": params.pop("check", False), **params}), pytest.raises(SystemExit):
        verify.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


@pytest.fixture
def tool_dir(tmp_path: Path) -> Path:
    """A directory with a fake `cyclotron-fake-tool` printing a version (and its locale)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "cyclotron-fake-tool"
    tool.write_text('#!/bin/sh\necho "fake-tool version 2.10.1 (LANG=$LANG LC_ALL=$LC_ALL)"\n')
    tool.chmod(0o755)
    return bin_dir


def test_version_from_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, command=[sys.executable, "-c", "print('Python-ish 3.11.7')"], regex=r"(\d+\.\d+\.\d+)")
    assert result.get("failed") is not True, result
    assert result["version"] == "3.11.7"
    assert result["changed"] is False
    assert result["executable"] == sys.executable


def test_version_from_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = "import sys; sys.stderr.write('java version \"17.0.2\"\\n')"
    result = run(capsys, command=[sys.executable, "-c", code], regex=r'version "([\d.]+)"')
    assert result["version"] == "17.0.2"


def test_whole_match_when_the_regex_has_no_group(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, command=[sys.executable, "-c", "print('v1.2')"], regex=r"\d+\.\d+")
    assert result["version"] == "1.2"


def test_search_paths_come_first_and_locale_is_c(tool_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(
        capsys, command=["cyclotron-fake-tool", "--version"], regex=r"version (\S+)", search_paths=[str(tool_dir)]
    )
    assert result["version"] == "2.10.1"
    assert result["executable"] == str(tool_dir / "cyclotron-fake-tool")
    assert "LANG=C LC_ALL=C" in result["stdout"]


def test_check_mode_runs_the_probe(tool_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(
        capsys, check=True, command=["cyclotron-fake-tool"], regex=r"version (\S+)", search_paths=[str(tool_dir)]
    )
    assert result["version"] == "2.10.1"


def test_missing_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = run(capsys, command=["cyclotron-no-such-tool", "--version"], regex="(.*)")
    assert result["failed"] is True
    assert result["msg"] == "cyclotron-no-such-tool is not installed: command not found on PATH"

    absolute = run(capsys, command=[str(tmp_path / "nothing")], regex="(.*)")
    assert absolute["failed"] is True
    assert "is not installed" in absolute["msg"]


def test_regex_that_does_not_match(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, command=[sys.executable, "-c", "print('no digits here')"], regex=r"(\d+\.\d+)")
    assert result["failed"] is True
    assert "does not match" in result["msg"]
    assert "no digits here" in result["msg"]
    assert result["stdout"].strip() == "no digits here"


def test_invalid_regex(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, command=["true"], regex="(unclosed")
    assert result["failed"] is True
    assert "not a valid regular expression" in result["msg"]


def test_non_zero_exit(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, command=[sys.executable, "-c", "print('1.0.0'); raise SystemExit(4)"], regex=r"([\d.]+)")
    assert result["failed"] is True
    assert "exited with rc=4" in result["msg"]
    assert result["rc"] == 4


def test_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, command=["sleep", "30"], regex="(.*)", timeout=0.5)
    assert result["failed"] is True
    assert "did not finish within 0.5 s" in result["msg"]


@pytest.mark.parametrize(("minimum", "ok"), [("2.9", True), ("2.10.1", True), ("2.10.2", False), ("10", False)])
def test_min_version(tool_dir: Path, capsys: pytest.CaptureFixture[str], minimum: str, ok: bool) -> None:
    result = run(
        capsys,
        command=["cyclotron-fake-tool"],
        regex=r"version (\S+)",
        min_version=minimum,
        search_paths=[str(tool_dir)],
    )
    assert (result.get("failed") is not True) is ok
    if not ok:
        assert f"reports version 2.10.1, lower than the required {minimum}" in result["msg"]


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1.2.3", "1.2.3", 0),
        ("1.2", "1.2.0", 0),
        ("1.10.0", "1.9.9", 1),
        ("2.0.0", "10.0", -1),
        ("1.2.3rc1", "1.2.3", -1),
        ("1.2.3", "1.2.3rc1", 1),
        ("1.2.3b2", "1.2.3b10", -1),
        ("v20.11.1", "20.11.0", 1),
        ("2024.8.31", "2025.1.1", -1),
    ],
)
def test_compare_versions(left: str, right: str, expected: int) -> None:
    assert verify.compare_versions(left, right) == expected
