"""Action plugin: compare the fleet and write the distribution plan (adapter over cyclotron_py.sync)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from cyclotron_py.action_args import task_options
from cyclotron_py.catalog import load_catalog
from cyclotron_py.errors import CyclotronError
from cyclotron_py.plan import write_plan
from cyclotron_py.sync import (
    collect_manifests,
    fleet_status,
    gathered_manifests,
    host_policies,
    load_decisions,
    plan_fleet,
    plan_summary,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = task_options(__file__, self._task.args)
        hosts = [str(h) for h in args["hosts"]]
        hostvars = task_vars.get("hostvars", {})
        try:
            catalog = load_catalog(args["catalog"] or None, args["domains"] or None)
            manifests = collect_manifests(
                gathered_manifests(hostvars, hosts), args["manifest_dir"], domains=catalog.domains
            )
            everyone = [m.host for m in manifests]
            plan, matrix = plan_fleet(
                manifests,
                targets=hosts,
                catalog=catalog,
                policies=host_policies(hostvars, everyone),
                approve=args["approve"],
                decisions=load_decisions(args["decisions_file"]),
            )
        except CyclotronError as exc:
            raise AnsibleActionFail(f"cyclotron_plan: {exc}") from None
        status = fleet_status(args["inventory_hosts"], hosts, manifests)
        paths: dict[str, str] = {}
        if not self._task.check_mode:
            plan_path, playbook_path = write_plan(plan, args["plans_dir"], args["generated_dir"])
            paths = {"plan_path": str(plan_path), "playbook_path": str(playbook_path)}
        result.update(
            changed=bool(paths),
            plan=plan.model_dump(mode="json"),
            items_by_host={h.host: h.items_by_role() for h in plan.hosts},
            coverage=matrix["coverage"],
            host_status=status,
            summary=plan_summary(plan, status),
            **paths,
        )
        return result
