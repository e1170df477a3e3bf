"""The same mistake gives the same exit status from every command (see cyclotron_py.cli)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclotron_py.cli import main

VALID = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "valid"
CORRUPT = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "corrupt"


def _argv(command: str, path: str, tmp: Path) -> list[str]:
    if command == "diff":
        return ["diff", path, str(VALID / "pc1.json")]
    if command == "plan":
        return ["plan", path, "--check"]
    return [command, path]


COMMANDS = ["validate", "matrix", "report", "plan", "diff"]


@pytest.mark.parametrize("command", COMMANDS)
def test_empty_directory_exits_1(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_argv(command, str(empty), tmp_path)) == 1
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_path_exits_1(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_argv(command, str(tmp_path / "nope.json"), tmp_path)) == 1
    assert "no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_invalid_manifest_exits_1(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_argv(command, str(CORRUPT / "truncated.json"), tmp_path)) == 1
    captured = capsys.readouterr()
    assert "truncated" in captured.out + captured.err


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_exits_2(tmp_path: Path, command: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*_argv(command, str(VALID), tmp_path), "--no-such-option"])
    assert exc.value.code == 2
