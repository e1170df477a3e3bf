"""cyclotron_py.hostscript: what the controller sends to a host and how it reads the answer."""

from __future__ import annotations

import ast
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


MODULE_UTILS = INSTALL_CODE.parent
GATHER_CODE = MODULE_UTILS / "cyclotron_gather.py"


def _parts(source: str) -> list[str]:
    return [line[len("# ---- ") :] for line in source.splitlines() if line.startswith("# ---- ")]


def test_host_source_joins_dependencies_first() -> None:
    """Each file comes once, after every file it imports: what AnsiballZ would ship, as one script."""
    parts = _parts(hostscript.host_source(GATHER_CODE))
    assert parts[0] == "cyclotron_gather_common.py" and parts[-1] == "cyclotron_gather.py"
    assert len(parts) == len(set(parts))
    for name in parts:
        tree = ast.parse((MODULE_UTILS / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ansible.module_utils."):
                assert parts.index((node.module or "").rsplit(".", 1)[1] + ".py") < parts.index(name), name
    assert _parts(hostscript.host_source(INSTALL_CODE)) == ["cyclotron_versions.py", "cyclotron_install.py"]


@pytest.mark.parametrize("path", sorted(MODULE_UTILS.glob("cyclotron_*.py")), ids=lambda p: p.name)
def test_host_code_is_standard_library_only(path: Path) -> None:
    """Host files import the standard library and each other, nothing else, and define no name that
    another joined file defines too (the joined script has one namespace)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            assert top in sys.stdlib_module_names or module.startswith("ansible.module_utils.cyclotron_"), module
    seen: dict[str, str] = {}
    for name in _parts(hostscript.host_source(path)):
        for node in ast.parse((MODULE_UTILS / name).read_text(encoding="utf-8")).body:
            targets = [node] if isinstance(node, ast.FunctionDef | ast.ClassDef) else []
            for target in targets:
                assert seen.setdefault(target.name, name) == name, f"{target.name} in {name} and {seen[target.name]}"


def test_gather_payload_runs_as_a_plain_script(tmp_path: Path) -> None:
    params = {"sources": ["api_keys"], "home": str(tmp_path), "env_files": [], "check_mode": True}
    proc = subprocess.run(
        [sys.executable, "-I"], input=hostscript.payload(GATHER_CODE, params), capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ansible_facts"]["cyclotron_raw"]["format"] == 1


def test_host_source_names_a_missing_module_utils_file(tmp_path: Path) -> None:
    code = tmp_path / "cyclotron_broken.py"
    code.write_text("from ansible.module_utils.cyclotron_absent import x\n", encoding="utf-8")
    with pytest.raises(ImportError, match="cyclotron_absent, which is not a file in"):
        hostscript.host_source(code)
