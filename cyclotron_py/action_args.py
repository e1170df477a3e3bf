"""The options of Cyclotron's controller-side action plugins, validated with their module's documented spec.

Each action plugin (``plugins/action/<name>.py``) has a documentation stub of the same name under
``plugins/modules/`` whose DOCUMENTATION lists its options. That text is the one home of the
options: it is read here (without importing the stub) into an AnsibleModule-style argument spec,
and the task's arguments are checked against it as AnsibleModule would check a module's, so a
missing or wrongly typed option fails naming it instead of surfacing later as a KeyError.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

# DOCUMENTATION keys that are also argument-spec keys; "suboptions" becomes "options".
_SPEC_KEYS = ("type", "required", "default", "choices", "elements", "aliases", "no_log")


def module_doc_file(plugin_file: str | Path) -> Path:
    """``plugins/modules/<name>.py`` for ``plugins/action/<name>.py``."""
    path = Path(plugin_file).resolve()
    return path.parents[1] / "modules" / path.name


def _option_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = {key: doc[key] for key in _SPEC_KEYS if key in doc}
    if isinstance(doc.get("suboptions"), Mapping):
        spec["options"] = {name: _option_spec(sub) for name, sub in doc["suboptions"].items()}
    return spec


@cache
def documented_spec(module_file: Path) -> dict[str, Any]:
    """The argument spec of the options documented in ``module_file``'s DOCUMENTATION string."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            doc = yaml.safe_load(node.value.value) or {}
            return {name: _option_spec(opt) for name, opt in (doc.get("options") or {}).items()}
    raise ValueError(f"{module_file}: no DOCUMENTATION string")


def validate_options(spec: Mapping[str, Any], args: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``args`` checked, converted and defaulted against ``spec``; and the problems, one per option."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # only action plugins call this
    from ansible.module_utils.errors import UnsupportedError

    result = ArgumentSpecValidator(dict(spec)).validate(dict(args))
    problems = [
        f"unsupported option {error.msg}" if isinstance(error, UnsupportedError) else str(error.msg)
        for error in result.errors
    ]
    return dict(result.validated_parameters), problems


def task_options(plugin_file: str | Path, args: Mapping[str, Any]) -> dict[str, Any]:
    """The task's options for the action plugin at ``plugin_file``; fails naming each bad option."""
    from ansible.errors import AnsibleActionFail

    params, problems = validate_options(documented_spec(module_doc_file(plugin_file)), args)
    if problems:
        raise AnsibleActionFail(f"{Path(plugin_file).stem}: " + "; ".join(problems))
    return params
