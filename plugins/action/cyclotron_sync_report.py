"""Action plugin: compare again after installing and write the sync report (adapter over cyclotron_py.sync)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from cyclotron_py.action_args import task_options
from cyclotron_py.catalog import load_catalog
from cyclotron_py.errors import CyclotronError
from cyclotron_py.plan import Plan
from cyclotron_py.sync import collect_manifests, gathered_manifests, host_policies, sync_report, write_report


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = task_options(__file__, self._task.args)
        hosts = [str(h) for h in args["hosts"]]
        hostvars = task_vars.get("hostvars", {})
        try:
            plan = Plan.model_validate(args["plan"])
            catalog = load_catalog(args["catalog"] or None, args["domains"] or None)
            # A dry run skips the second gather (and writes no manifest): nothing changed, so no "after".
            after = (
                None
                if self._task.check_mode
                else collect_manifests(
                    gathered_manifests(hostvars, hosts), args["manifest_dir"], domains=catalog.domains
                )
            )
            outcomes = {
                h.host: list(hostvars[h.host].get("cyclotron_outcomes") or [])
                for h in plan.hosts
                if h.host in hostvars
            }
            report = sync_report(
                plan,
                args["coverage_before"] or {},
                after,
                outcomes,
                reached=hosts,
                catalog=catalog,
                policies=host_policies(hostvars, [m.host for m in after or []]),
                status=args["host_status"],
            )
        except (CyclotronError, ValueError) as exc:
            raise AnsibleActionFail(f"cyclotron_sync_report: {exc}") from None
        paths: dict[str, str] = {}
        if not self._task.check_mode and args["reports_dir"]:
            md, js = write_report(report, args["reports_dir"])
            paths = {"report_path": str(md), "report_json_path": str(js)}
        result.update(changed=bool(paths), lines=report.lines(), report=report.as_dict(), **paths)
        failed = report.failed
        if failed and args["fail_on_failed_items"]:
            result.update(
                failed=True,
                msg=f"{len(failed)} item(s) failed (rolled back where something had changed): "
                + ", ".join(f"{h}:{o.get('id')} ({o.get('status')})" for h, o in failed),
            )
        return result
