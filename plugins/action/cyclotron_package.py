"""Action plugin: install one pip or npm package (read before, install, read back), or restore it.

The work is ``module_utils/cyclotron_install.py``. Where the host's Python is known and the
connection pipelines, the options are validated here with the module's argument spec and that
file is piped to the host's Python as a plain script (see ``cyclotron_py.hostscript``): one
remote command per item instead of three modules. Otherwise the ``cyclotron_package`` module runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from cyclotron_py import hostscript

INSTALL_CODE = Path(__file__).resolve().parents[1] / "module_utils" / "cyclotron_install.py"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        interpreter = hostscript.known_python(self, task_vars)
        if not interpreter:
            result.update(self._execute_module(module_args=dict(self._task.args), task_vars=task_vars))
            return result
        params, errors = hostscript.script_params(INSTALL_CODE, dict(self._task.args), bool(self._task.check_mode))
        if errors:
            result.update(failed=True, attempted=False, msg="cyclotron_package: " + "; ".join(errors))
            return result
        utils, _source = hostscript.host_code(INSTALL_CODE)
        problems = utils.option_errors(params)
        if problems:  # found here, before anything is sent to the host
            result.update(failed=True, changed=False, attempted=False, msg="; ".join(problems))
            return result
        result.update(hostscript.run(self, interpreter, INSTALL_CODE, params))
        return result
