"""The install play's tasks: one ``include_role`` per installer role, in the managers' order.

One renderer serves both places that install: a plan's generated playbook
(``generated/<id>.yml``, the items written in as data) and ``playbooks/sync.yml``, which imports
the checked-in ``playbooks/tasks/install_items.yml`` (the same tasks, reading the items of the
running plan). Roles, their order and the variable each manager's items go in come from
``cyclotron_py.managers``: pipx items reach the pip role in ``cyclotron_pip_pipx_items``.

Items arrive grouped as ``HostPlan.items_by_role()`` gives them: role -> items variable -> items.
After a change to the manager table, rewrite the tasks file:

    python -m cyclotron_py.install_play --write
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import managers
from .manifest_io import atomic_write_text

# role -> the role variable of a manager -> that manager's items (docs/INSTALLER_CONTRACT.md)
RoleItems = Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]

TASKS_FILE = Path(__file__).resolve().parents[1] / "playbooks" / "tasks" / "install_items.yml"
REGENERATE = "python -m cyclotron_py.install_play --write"
# What sync.yml's install play calls the host's entry of the plan's items_by_host.
SYNC_ITEMS = "cyclotron_role_items"


def _start() -> dict[str, Any]:
    # Each role appends to this fact; the report reads one run's outcomes only.
    return {"name": "Start this run's outcome list", "ansible.builtin.set_fact": {"cyclotron_outcomes": []}}


def _include(role: str, role_vars: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {"name": name, "ansible.builtin.include_role": {"name": f"cyclotron_{role}"}, "vars": dict(role_vars)}


def _items_vars(role: str) -> list[str]:
    return list(dict.fromkeys(managers.ROLES[role].items_vars.values()))


def literal_tasks(role_items: RoleItems) -> list[dict[str, Any]]:
    """Tasks that install ``role_items`` written in as data (a generated playbook).
    Only roles with items get a task; empty when there is nothing to install."""
    tasks: list[dict[str, Any]] = []
    for role in managers.ROLES:
        given = role_items.get(role) or {}
        role_vars = {var: [dict(item) for item in given[var]] for var in _items_vars(role) if given.get(var)}
        unknown = set(given) - set(_items_vars(role))
        if unknown:
            raise ValueError(f"cyclotron_{role} takes no items variable {sorted(unknown)}")
        if role_vars:
            count = sum(len(items) for items in role_vars.values())
            tasks.append(_include(role, role_vars, f"Install {count} item(s) through cyclotron_{role}"))
    return [_start(), *tasks] if tasks else []


def templated_tasks(source: str = SYNC_ITEMS) -> list[dict[str, Any]]:
    """Tasks for every role, reading the items from the variable ``source`` at run time."""
    tasks = [_start()]
    for role, entry in managers.ROLES.items():
        role_vars = {var: f"{{{{ {source}.{role}.{var} | default([]) }}}}" for var in _items_vars(role)}
        task = _include(role, role_vars, f"Install {', '.join(entry.managers)} items through cyclotron_{role}")
        task["when"] = f"{source}.{role} is defined"
        tasks.append(task)
    return tasks


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two tasks (hosts share planned items) out in full each time: no
    ``&id001`` anchors and ``*id001`` aliases in a playbook a person reviews."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True)


def render_tasks_file() -> str:
    """The text of playbooks/tasks/install_items.yml."""
    header = (
        "---\n"
        "# Generated from cyclotron_py/managers.py by cyclotron_py/install_play.py; do not edit.\n"
        f"# Regenerate: {REGENERATE}\n"
        f"# Imported by playbooks/sync.yml, where {SYNC_ITEMS} is this host's entry of the plan's\n"
        "# items_by_host (role -> items variable -> items). generated/<id>.yml has the same tasks.\n"
    )
    return header + dump(templated_tasks())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclotron_py.install_play", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {TASKS_FILE.relative_to(TASKS_FILE.parents[2])}")
    args = parser.parse_args(argv)
    text = render_tasks_file()
    if args.write:
        atomic_write_text(TASKS_FILE, text)
        print(f"wrote {TASKS_FILE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
