"""Run a standard-library module_utils file on a host as a plain script, for action plugins.

An Ansible module pays for the AnsiballZ wrapper and for importing ``ansible.module_utils.basic``
on the host (~0.14 s of CPU per call, more than reading a host's packages or checking a version).
Cyclotron's host code (``plugins/module_utils/cyclotron_gather.py``, ``cyclotron_install.py``)
needs only the standard library, so an action plugin can validate the options on the controller
with the module's own argument spec and pipe the file, followed by one call, to the host's Python,
the way Ansible pipelines a module. Hosts where that is not possible (unknown Python, a connection
or become method that cannot pipeline) go through the module instead.

The functions take the running action plugin (duck-typed); only script_params imports Ansible.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any


@cache
def host_code(path: Path) -> tuple[ModuleType, str]:
    """A module_utils file imported on the controller (for its argument spec), and its source."""
    source = path.read_text(encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"cyclotron_host_code_{path.stem}", path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for a broken install
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
