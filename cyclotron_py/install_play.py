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
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import yaml

from . import managers
from .compare.layout import EncodedOnce
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
        role_vars = {var: ItemList(given[var]) for var in _items_vars(role) if given.get(var)}
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


class ItemList(list[Mapping[str, Any]]):
    """A role's items written into a playbook: data from manifests, so untrusted. ``dump`` writes
    each item as one JSON mapping on its own line tagged ``!unsafe``, which Ansible never
    templates: a capability named ``{{ lookup('pipe', ...) }}`` stays that text. One line per item
    also keeps a large plan's playbook quick to write and to review as a diff."""


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml when built with it
    """Writes a value shared by two tasks out in full each time: no ``&id001`` anchors and
    ``*id001`` aliases in a playbook a person reviews. (libyaml's emitter writes the same text as
    PyYAML's for these documents, test_install_play holds the tasks file to it.)"""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_ENCODE = msgspec.json.Encoder()  # keys in the order role_vars() gives them
_AS_LINES = msgspec.json.Decoder(list[msgspec.Raw])
_PLACEHOLDER = "@cyclotron-items-{}"  # a plain YAML scalar cannot start with "@": always quoted
_PLACED = re.compile(r"^( *)(\S[^\n]*?): '@cyclotron-items-(\d+)'$", re.MULTILINE)
# Characters YAML 1.1 readers refuse in a stream, or read as line breaks inside a quoted string
# (NEL, LS, PS): written as JSON escapes, which a YAML double-quoted string reads the same.
_NOT_FOR_YAML = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def dump(data: Any) -> str:
    """YAML of ``data`` (plays or tasks); every ItemList in it as one ``!unsafe`` JSON line per item."""
    lists: list[ItemList] = []
    text = yaml.dump(_placed(data, lists), Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True)
    if not lists:
        return text
    # An item several hosts share is one object (plan.render_playbook): its line is made once.
    lines_of = EncodedOnce(_item_lines)

    def items(match: re.Match[str]) -> str:
        indent, key, n = match.group(1), match.group(2), int(match.group(3))
        prefix = "\n" + indent
        return f"{indent}{key}:{prefix}" + prefix.join(lines_of(lists[n]))

    return _PLACED.sub(items, text)


def _item_lines(items: list[Mapping[str, Any]]) -> list[str]:
    """Each item as its playbook line: a JSON mapping tagged ``!unsafe``."""
    lines = []
    for raw in _AS_LINES.decode(msgspec.json.format(_ENCODE.encode(items), indent=0)):
        line = bytes(raw).decode()
        if not line.isascii():
            line = _NOT_FOR_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", line)
        lines.append(f"  - !unsafe {line}")
    return lines


class _Loader(yaml.SafeLoader):
    """Reads ``!unsafe`` values as plain data (Ansible's own loader marks them never to template)."""


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("!unsafe", _unsafe)


def load(text: str) -> Any:
    """A playbook ``dump`` wrote, read back as data (tests, tools): the inverse of ``dump``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader with one more tag


def _placed(value: Any, lists: list[ItemList]) -> Any:
    """``value`` with each ItemList replaced by a placeholder that ``dump`` finds again."""
    if isinstance(value, ItemList):
        lists.append(value)
        return _PLACEHOLDER.format(len(lists) - 1)
    if isinstance(value, dict):
        return {k: _placed(v, lists) for k, v in value.items()}
    if isinstance(value, list):
        return [_placed(v, lists) for v in value]
    return value


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
