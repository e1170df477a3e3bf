"""Run a standard-library module_utils file on a host as a plain script, for action plugins.

An Ansible module pays for the AnsiballZ wrapper and for importing ``ansible.module_utils.basic``
on the host (~0.14 s of CPU per call, more than reading a host's packages or checking a version).
Cyclotron's host code (``plugins/module_utils/cyclotron_gather.py``, ``cyclotron_install.py``)
needs only the standard library, so an action plugin can validate the options on the controller
with the module's own argument spec and pipe the code, followed by one call, to the host's Python,
the way Ansible pipelines a module. The code is one script (``host_source``): the module_utils
files a file imports as ``ansible.module_utils.<name>`` come first, in dependency order, as
AnsiballZ would ship them beside the module. Hosts where that is not possible (unknown Python, a connection
or become method that cannot pipeline) go through the module instead.

The functions take the running action plugin (duck-typed); only script_params imports Ansible.
"""

from __future__ import annotations

import ast
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

_MODULE_UTILS = "ansible.module_utils."


def _host_parts(path: Path, parts: list[str], seen: set[Path]) -> None:
    """Append the files ``path`` imports from module_utils (depth first), then ``path`` itself with
    those imports and ``from __future__`` replaced by ``pass`` (which keeps any block valid)."""
    if path in seen:
        return
    seen.add(path)
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    imports = [node for node in ast.walk(ast.parse(source, str(path))) if isinstance(node, ast.ImportFrom)]
    for node in sorted(imports, key=lambda n: n.lineno):
        module = node.module or ""
        if module.startswith(_MODULE_UTILS):
            dependency = path.parent / (module[len(_MODULE_UTILS) :] + ".py")
            if not dependency.is_file():
                raise ImportError(f"{path.name} imports {module}, which is not a file in {path.parent}")
            _host_parts(dependency, parts, seen)
        elif module != "__future__":
            continue
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        lines[first : last + 1] = [indent + "pass\n"] + ["\n"] * (last - first)
    parts.append(f"# ---- {path.name}\n" + "".join(lines))


@cache
def host_source(path: Path) -> str:
    """The host code at ``path`` as one standard-library script: the module_utils files it imports
    (and theirs), each once and before its first user, then the file itself."""
    parts: list[str] = []
    _host_parts(path, parts, set())
    return "from __future__ import annotations\n\n" + "\n\n".join(parts)


@cache
def host_code(path: Path) -> tuple[ModuleType, str]:
    """The host code at ``path`` imported on the controller (for its argument spec; tests call its
    functions) from the very script that ``payload`` sends, and that script."""
    source = host_source(path)
    module = ModuleType(f"cyclotron_host_code_{path.stem}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickling look their module up
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - our own plugin code
    return module, source


def controller_spec(argument_spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with path options as plain strings: "~" and $VARS must expand on the host."""
    return {name: {**opt, "type": "str"} if opt.get("type") == "path" else opt for name, opt in argument_spec.items()}


def script_params(path: Path, args: dict[str, Any], check_mode: bool) -> tuple[dict[str, Any], list[str]]:
    """Options validated and defaulted with the host code's ARGUMENT_SPEC, as AnsibleModule would
    (path options stay as written), plus ``check_mode``; and the error messages, if any."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # only action plugins call this

    module, _source = host_code(path)
    validated = ArgumentSpecValidator(controller_spec(module.ARGUMENT_SPEC)).validate(args)
    return {**validated.validated_parameters, "check_mode": check_mode}, list(validated.error_messages)


def payload(path: Path, params: dict[str, Any]) -> bytes:
    """The host code's source followed by ``run_as_script(params)``."""
    _module, source = host_code(path)
    return f"{source}\n\nrun_as_script(json.loads({json.dumps(params)!r}))\n".encode()


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The JSON object a host script printed, skipping what a login shell may print around it."""
    decoder = json.JSONDecoder()
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.lstrip().startswith("{"):
            try:
                data, _end = decoder.raw_decode(stdout, offset + len(line) - len(line.lstrip()))
            except ValueError:
                data = None
            if isinstance(data, dict):
                return data
        offset += len(line)
    return None


def known_python(action: Any, task_vars: dict[str, Any]) -> str | None:
    """The host's Python when it is set or already discovered and the connection can pipeline."""
    try:
        if not action._connection.is_pipelining_enabled(wrap_async=False):
            return None
    except (AttributeError, TypeError):
        return None
    if getattr(action._connection._shell, "SHELL_FAMILY", "") == "powershell":
        return None
    interpreter = task_vars.get("ansible_python_interpreter")
    if interpreter is None:
        interpreter = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
    if not interpreter:
        return None
    text = str(action._templar.template(interpreter)).strip()
    return text or None


def run(action: Any, interpreter: str, path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Pipe the host code at ``path`` to ``interpreter`` with the task's environment and become.

    Returns the script's JSON result, or a failed result that shows the host's output.
    """
    command = action._connection._shell.build_module_command(
        action._compute_environment_string(), "#!" + interpreter, ""
    )
    res = action._low_level_execute_command(command, sudoable=True, in_data=payload(path, params))
    stdout = str(res.get("stdout") or "")
    data = parse_result(stdout)
    if data is not None:
        return data
    stderr = str(res.get("stderr") or "").strip()
    return {
        "failed": True,
        "rc": res.get("rc"),
        "msg": f"{interpreter} on the host returned no result (exit {res.get('rc')}): "
        + (stderr[-2000:] or stdout[-2000:] or "no output")
        + ". Check ansible_python_interpreter for this host.",
    }
