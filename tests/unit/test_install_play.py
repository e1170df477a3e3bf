"""One renderer for the install play: sync.yml's tasks file and generated/<id>.yml agree with
the manager table, and every items variable they pass is one its role's argument spec takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from cyclotron_py import install_play, managers
from cyclotron_py.catalog import load_catalog
from cyclotron_py.plan import build_plan, render_playbook

REPO_ROOT = Path(__file__).resolve().parents[2]


def _role_spec(role: str) -> dict[str, Any]:
    path = REPO_ROOT / "roles" / f"cyclotron_{role}" / "meta" / "argument_specs.yml"
    options: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"]["main"]["options"]
    return options


def _check_against_role(task: dict[str, Any]) -> None:
    """Validate an include_role task's vars the way the role's argument spec check does."""
    role = task["ansible.builtin.include_role"]["name"]
    spec = _role_spec(role.removeprefix("cyclotron_"))
    result = ArgumentSpecValidator(spec).validate(task["vars"])
    assert not result.error_messages, f"{role}: {result.error_messages}"


def test_the_checked_in_tasks_file_is_the_renderers_output() -> None:
    checked_in = install_play.TASKS_FILE.read_text(encoding="utf-8")
    assert checked_in == install_play.render_tasks_file(), (
        f"{install_play.TASKS_FILE.relative_to(REPO_ROOT)} is out of date with cyclotron_py/managers.py; "
        f"regenerate it: {install_play.REGENERATE}"
    )


def test_sync_imports_the_tasks_file() -> None:
    plays = yaml.safe_load((REPO_ROOT / "playbooks" / "sync.yml").read_text(encoding="utf-8"))
    install = next(p for p in plays if p.get("name") == "Install with verify and rollback")
    assert install["tasks"] == [
        {"name": "Install each role's items", "ansible.builtin.import_tasks": "tasks/install_items.yml"}
    ]
    assert install_play.SYNC_ITEMS in install["vars"]


@pytest.mark.parametrize("role", list(managers.ROLES))
def test_every_role_exists_and_takes_its_items_variables(role: str) -> None:
    spec = _role_spec(role)
    for var in managers.ROLES[role].items_vars.values():
        assert spec[var]["type"] == "list", var


def test_templated_tasks_cover_every_role_in_order() -> None:
    tasks = install_play.templated_tasks()
    roles = [t["ansible.builtin.include_role"]["name"] for t in tasks[1:]]
    assert roles == [f"cyclotron_{r}" for r in managers.ROLE_ORDER]
    pip = tasks[1 + managers.ROLE_ORDER.index("pip")]
    assert pip["vars"] == {
        "cyclotron_pip_pipx_items": "{{ cyclotron_role_items.pip.cyclotron_pip_pipx_items | default([]) }}",
        "cyclotron_pip_items": "{{ cyclotron_role_items.pip.cyclotron_pip_items | default([]) }}",
    }
    assert pip["when"] == "cyclotron_role_items.pip is defined"


def _rec(cap_id: str, manager: str, package: str, type_: str) -> dict[str, Any]:
    return {
        "id": cap_id, "name": package, "type": type_, "domain": "development", "priority": "normal",
        "risk": "low", "manager": manager, "package": package, "version": "", "reason": "missing",
        "from_host": "pc1", "pinned": False, "details": {},
    }


def test_generated_playbook_passes_pipx_items_in_their_own_variable() -> None:
    plan = build_plan(
        {"fedora1": [
            _rec("httpie", "pipx", "httpie", "pipx_tool"),
            _rec("pip:six", "pip", "six", "python_package"),
            _rec("jq", "rpm", "jq", "software"),
        ]},
        {"fedora1": "linux"}, load_catalog(), approve="all",
    )
    by_role = plan.hosts[0].items_by_role()
    assert {role: {var: [i["package"] for i in items] for var, items in v.items()} for role, v in by_role.items()} == {
        "dnf": {"cyclotron_dnf_items": ["jq"]},
        "pip": {"cyclotron_pip_pipx_items": ["httpie"], "cyclotron_pip_items": ["six"]},
    }
    tasks = install_play.load(render_playbook(plan))[0]["tasks"]
    assert tasks == [*install_play.literal_tasks(by_role), {
        "name": "Show the outcome of every item", "ansible.builtin.debug": {"var": "cyclotron_outcomes"}
    }]
    includes = [t for t in tasks if "ansible.builtin.include_role" in t]
    assert [t["ansible.builtin.include_role"]["name"] for t in includes] == ["cyclotron_dnf", "cyclotron_pip"]
    for task in includes:
        _check_against_role(task)


def test_literal_tasks_refuse_a_variable_the_role_does_not_take() -> None:
    with pytest.raises(ValueError, match="cyclotron_pip takes no items variable"):
        install_play.literal_tasks({"pip": {"cyclotron_pip_extra": [{"id": "x"}]}})
    assert install_play.literal_tasks({}) == []


def test_the_module_prints_or_writes_the_tasks_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert install_play.main([]) == 0
    assert capsys.readouterr().out == install_play.render_tasks_file()
