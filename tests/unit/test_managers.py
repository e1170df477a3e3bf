"""The manager table is the one home of what a package manager is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cyclotron_py import managers, safety
from cyclotron_py.errors import PlanError

REPO_ROOT = Path(__file__).resolve().parents[2]
# Controller-side code that must derive manager facts from cyclotron_py/managers.py.
CONTROLLER_CODE = sorted(
    p
    for pattern in ("cyclotron_py/**/*.py", "plugins/filter/*.py", "plugins/action/*.py", "plugins/callback/*.py")
    for p in REPO_ROOT.glob(pattern)
    if p.name != "managers.py"
)
NAMES = frozenset(managers.MANAGERS)


def _literal_tables(tree: ast.AST) -> list[tuple[int, list[str]]]:
    """Dict, tuple, list and set literals naming three or more managers: a manager table."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            elements = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = list(node.elts)
        else:
            continue
        named = [e.value for e in elements if isinstance(e, ast.Constant) and e.value in NAMES]
        if len(set(named)) >= 3:
            found.append((node.lineno, named))
    return found


@pytest.mark.parametrize("path", CONTROLLER_CODE, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_other_module_keeps_a_manager_table(path: Path) -> None:
    tables = _literal_tables(ast.parse(path.read_text(encoding="utf-8")))
    where = path.relative_to(REPO_ROOT)
    assert not tables, f"{where} lists managers itself (line, names): {tables}; derive them from cyclotron_py.managers"


def test_the_scan_finds_a_table() -> None:
    assert _literal_tables(ast.parse('X = {"apt": 1, "rpm": 2, "brew": 3}'))


def test_preference_per_os() -> None:
    assert managers.preference("windows") == ("winget", "choco", "pipx", "pip", "npm")
    assert managers.preference("linux") == ("apt", "rpm", "brew", "pipx", "pip", "npm")
    assert managers.preference("darwin") == ("brew", "pipx", "pip", "npm")


def test_every_install_manager_has_a_role_pattern_scheme_and_example() -> None:
    for name in managers.INSTALL_MANAGERS:
        entry = managers.MANAGERS_BY_NAME[name]
        assert entry.role in managers.ROLES, name
        assert entry.package_pattern is not None and entry.version_scheme and entry.example, name
        assert entry.package_pattern.fullmatch(entry.example), name
        assert safety.check_package(name, entry.example) == entry.example


def test_roles_and_their_item_variables() -> None:
    assert managers.role_for("rpm") == "dnf"
    assert managers.items_var("pipx") == "cyclotron_pip_pipx_items"
    assert managers.items_var("pip") == "cyclotron_pip_items"
    assert managers.items_var("env") == "cyclotron_api_keys_items"
    assert managers.ROLE_ORDER.index("dnf") < managers.ROLE_ORDER.index("pip") < managers.ROLE_ORDER.index("mcp")


def test_unknown_manager_is_refused_by_safety() -> None:
    with pytest.raises(PlanError, match="no installer for manager 'scoop'"):
        safety.check_package("scoop", "git")


@pytest.mark.parametrize(
    ("manager", "package", "version", "upgrade", "argv"),
    [
        ("winget", "Git.Git", "2.4", False, ["winget", "install", "--id", "Git.Git", "--exact", "--version", "2.4"]),
        ("apt", "git", "1:2.39.5-0", False, ["sudo", "apt-get", "install", "-y", "git=1:2.39.5-0"]),
        ("rpm", "git", "2.43.0-1.fc39", False, ["sudo", "dnf", "install", "-y", "git-2.43.0-1.fc39"]),
        ("brew", "git", "", True, ["brew", "upgrade", "git"]),
        ("pipx", "httpie", "3.2.2", True, ["pipx", "install", "--force", "httpie==3.2.2"]),
        ("npm", "typescript", "", False, ["npm", "install", "-g", "typescript"]),
    ],
)
def test_install_hint(manager: str, package: str, version: str, upgrade: bool, argv: list[str]) -> None:
    assert managers.install_hint(manager, package, version, upgrade=upgrade) == argv


def test_package_keys() -> None:
    assert managers.package_key("pip", "Foo_Bar.baz") == "foo-bar-baz"
    assert managers.package_key("winget", "Git.Git") == "git.git"
    assert managers.package_key("registry", "Foo (64-bit)") == "foo-64-bit"
    assert managers.package_key("npm", "@Scope/X") == "@Scope/X"


def test_infer_managers() -> None:
    assert managers.infer_managers(["pip", "winget", "pip", "bogus"]) == ("pip", "winget")
