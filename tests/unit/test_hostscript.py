"""cyclotron_py.hostscript: what the controller sends to a host and how it reads the answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cyclotron_py import hostscript

INSTALL_CODE = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "cyclotron_install.py"


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('{"changed": false}', {"changed": False}),
        ('Welcome to pc2!\n{"changed": true, "msg": "a {brace}"}\n', {"changed": True, "msg": "a {brace}"}),
        ('{"failed": true}\nlogout\n', {"failed": True}),
        ("{not json\n", None),
        ("", None),
        ("[1, 2]", None),
    ],
)
def test_parse_result_skips_shell_noise(stdout: str, expected: dict[str, object] | None) -> None:
    assert hostscript.parse_result(stdout) == expected


def test_payload_runs_as_a_plain_script(tmp_path: Path) -> None:
    """The payload is the module_utils file plus one call: any Python runs it from stdin."""
    params = {"manager": "npm", "package": "is-number", "npm_prefix": str(tmp_path), "check_mode": True}
    proc = subprocess.run(
        [sys.executable, "-I"], input=hostscript.payload(INSTALL_CODE, params), capture_output=True, check=False
    )
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert (result["decision"], result["changed"], result["attempted"]) == ("install", True, False)


def test_controller_spec_keeps_paths_as_written() -> None:
    spec = {"home": {"type": "path"}, "n": {"type": "int", "default": 3}}
    assert hostscript.controller_spec(spec) == {"home": {"type": "str"}, "n": {"type": "int", "default": 3}}
