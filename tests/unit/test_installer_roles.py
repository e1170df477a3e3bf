"""Consistency of the OS package installer roles and the win_winget module.

Each role documents its variables twice (defaults/main.yml and meta/argument_specs.yml),
repeats the per-manager name patterns of cyclotron_py/safety.py as a defence in depth, and
win_winget is documented in Python but implemented in PowerShell. These tests keep the
copies in step; ansible-doc checks that ansible-core itself loads every spec.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cyclotron_py import managers, safety

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = ("apt", "dnf", "brew", "choco", "winget")
ITEM_OPTIONS = {"id", "name", "package", "version", "pinned", "risk", "verify"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _spec(role: str) -> dict[str, Any]:
    data = _load(REPO_ROOT / "roles" / f"cyclotron_{role}" / "meta" / "argument_specs.yml")
    options: dict[str, Any] = data["argument_specs"]["main"]["options"]
    return options


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role: str) -> None:
    defaults = _load(REPO_ROOT / "roles" / f"cyclotron_{role}" / "defaults" / "main.yml")
    spec = _spec(role)
    assert set(defaults) == set(spec)
    assert all(name.startswith(f"cyclotron_{role}_") for name in spec)
    for name, option in spec.items():
        assert option.get("description"), f"{name} has no description"
        if isinstance(defaults[name], str) and "{{" in defaults[name]:
            continue  # templated defaults (the shared environment) are documented, not compared
        assert option.get("default") == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_items_follow_the_contract(role: str) -> None:
    items = _spec(role)[f"cyclotron_{role}_items"]
    assert (items["type"], items["elements"]) == ("list", "dict")
    expected = ITEM_OPTIONS | ({"cask"} if role == "brew" else set())
    assert set(items["options"]) == expected
    assert items["options"]["id"]["required"] and items["options"]["package"]["required"]
    assert set(items["options"]["verify"]["options"]) == {"command", "regex"}


@pytest.mark.parametrize("role", ROLES)
def test_role_name_checks_match_safety(role: str) -> None:
    """The role's assert uses the same package and version patterns as the plan."""
    text = (REPO_ROOT / "roles" / f"cyclotron_{role}" / "tasks" / "item.yml").read_text(encoding="utf-8")
    found = re.findall(r"is regex\('(.+?)', match_type='fullmatch'\)", text.replace("\n", " "))
    found = [re.sub(r"\s+", "", pattern) for pattern in found]
    package = managers.package_pattern(managers.ROLES[role].managers[0]).pattern  # type: ignore[union-attr]
    version = safety._VERSION.pattern
    assert f"^{found[0]}$" == package
    assert f"^{found[1].removeprefix('(').removesuffix(')?')}$" == version


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_loads_the_role_spec(role: str) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "role", "-r", "roles", f"cyclotron_{role}", "-j"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    options = json.loads(proc.stdout)[f"cyclotron_{role}"]["entry_points"]["main"]["options"]
    assert set(options) == set(_spec(role))


def _win_winget_doc() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile((REPO_ROOT / "plugins/modules/win_winget.py").read_text(), "win_winget.py", "exec"), namespace)
    for key in ("EXAMPLES", "RETURN"):
        assert yaml.safe_load(namespace[key]), key
    doc: dict[str, Any] = yaml.safe_load(namespace["DOCUMENTATION"])
    return doc


def _win_winget_ps_spec() -> dict[str, dict[str, str]]:
    source = (REPO_ROOT / "plugins/modules/win_winget.ps1").read_text()
    block = source[source.index("options = @{") : source.index("supports_check_mode")]
    options: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r"^\s+(\w+) = @\{(.*)\}$", block, re.M):
        options[name] = dict(re.findall(r"(\w+) = (\"[^\"]*\"(?:, \"[^\"]*\")*|\$\w+)", body))
    return options


def test_win_winget_doc_matches_the_powershell_spec() -> None:
    doc = _win_winget_doc()["options"]
    ps = _win_winget_ps_spec()
    assert set(doc) == set(ps)
    for name, option in doc.items():
        assert f'"{option["type"]}"' == ps[name]["type"], name
        if "choices" in option:
            assert ps[name]["choices"] == ", ".join(f'"{c}"' for c in option["choices"]), name
        if "default" in option:
            expected = {True: "$true", False: "$false"}.get(option["default"], f'"{option["default"]}"')
            assert ps[name]["default"] == expected, name
        assert bool(option.get("required")) == (ps[name].get("required") == "$true"), name


def test_win_winget_patterns_match_safety() -> None:
    source = (REPO_ROOT / "plugins/modules/win_winget.ps1").read_text()
    id_re, version_re = re.findall(r"-notmatch '(\^[^']+)\\z'", source)[:2]
    assert f"{id_re}$" == managers.package_pattern("winget").pattern  # type: ignore[union-attr]
    assert f"{version_re}$" == safety._VERSION.pattern
    documented = _win_winget_doc()["options"]
    assert f"C({id_re}$)" in " ".join(documented["id"]["description"])
    assert f"C({version_re}$)" in " ".join(documented["version"]["description"])


def test_win_winget_runs_winget_only_as_argv() -> None:
    """One place starts processes, from an argv array escaped by Argv-ToString."""
    source = (REPO_ROOT / "plugins/modules/win_winget.ps1").read_text()
    assert source.count("Run-Command") == 1
    assert "Argv-ToString -arguments (@($winget) + $Arguments)" in source
    for forbidden in ("Invoke-Expression", "iex ", "Start-Process", "cmd.exe", "cmd /c", "& $winget"):
        assert forbidden not in source, forbidden
    assert "IsSystem" in source and "issue 256" in source and "runas" in source
