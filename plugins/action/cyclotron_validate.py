"""Action plugin: validate manifest files on the controller (thin adapter over cyclotron_py.validate)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from cyclotron_py.action_args import task_options
from cyclotron_py.errors import CyclotronError
from cyclotron_py.validate import format_report, report_data, validate_paths


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = task_options(__file__, self._task.args)
        if not args["paths"]:
            raise AnsibleActionFail("cyclotron_validate: 'paths' (manifest files or directories) is empty")
        try:
            results = validate_paths([str(p) for p in args["paths"]], domains=args["domains"] or None)
        except CyclotronError as exc:
            raise AnsibleActionFail(f"cyclotron_validate: {exc}") from None
        data = report_data(results)
        report = format_report(results, color=False)
        result.update(changed=False, valid=data["valid"], summary=data["summary"], report=report.splitlines())
        if not data["valid"]:
            result.update(failed=True, msg="Invalid manifests:\n" + report)
        return result
