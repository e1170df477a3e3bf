"""Action plugin: gather a host's capabilities and write its manifest on the controller, in one task.

Runs cyclotron_facts (POSIX) or win_cyclotron_facts (PowerShell hosts) on the target,
then normalises the raw facts through the catalog (cyclotron_py.normalize) and writes
``<dest>/<host>.json`` atomically. One task per host keeps a fleet-wide gather cheap.

On POSIX hosts with a known Python and a pipelining connection, the options are validated here
against the module's own argument spec and ``module_utils/cyclotron_gather.py`` is piped to the
host's Python as a plain script: it needs only the standard library, so the host skips the
AnsiballZ wrapper and the import of ``ansible.module_utils.basic`` (~0.14 s of CPU per host,
several times the gathering itself). Anything else goes through the module as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from cyclotron_py import hostscript
from cyclotron_py.action_args import task_options
from cyclotron_py.catalog import load_catalog
from cyclotron_py.errors import CyclotronError
from cyclotron_py.manifest_io import write_manifest
from cyclotron_py.normalize import build_manifest
from cyclotron_py.policy import host_policy

# Options win_cyclotron_facts accepts; cyclotron_facts accepts these and more.
_WINDOWS_OPTIONS = frozenset(
    ("home", "sources", "env_files", "api_key_patterns", "project_dirs", "commands", "git_roots", "git_max_depth")
)
GATHER_CODE = Path(__file__).resolve().parents[1] / "module_utils" / "cyclotron_gather.py"


def script_params(facts_args: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Validate and default the facts options as AnsibleModule would, except path expansion."""
    params, errors = hostscript.script_params(GATHER_CODE, facts_args, check_mode)
    if errors:
        raise AnsibleActionFail("cyclotron_gather: facts: " + "; ".join(errors))
    return params


def catalog_probes(catalog: Any) -> list[dict[str, Any]]:
    """Version probes of the catalog's entries, one per command, in the facts modules' shape."""
    probes: dict[str, dict[str, Any]] = {}
    for entry in catalog.entries.values():
        if entry.verify is not None:
            name = entry.verify.command[0]
            probes.setdefault(name, {"name": name, "argv": list(entry.verify.command), "regex": entry.verify.regex})
    return [probes[name] for name in sorted(probes)]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = task_options(__file__, self._task.args)
        host = str(args["host"] or task_vars.get("inventory_hostname"))
        dest = args["dest"]
        if not dest:
            raise AnsibleActionFail("cyclotron_gather: 'dest' (the manifests directory on the controller) is empty")
        facts_args = {k: v for k, v in (args["facts"] or {}).items() if v is not None}
        try:
            catalog = load_catalog(args["catalog"] or None, args["domains"] or None)
        except CyclotronError as exc:
            raise AnsibleActionFail(f"cyclotron_gather: {exc}") from None
        facts_args.setdefault("commands", catalog_probes(catalog))

        windows = getattr(self._connection._shell, "SHELL_FAMILY", "") == "powershell"
        if windows:
            if "mcp_project_dirs" in facts_args:
                facts_args["project_dirs"] = facts_args.pop("mcp_project_dirs")
            facts_args = {k: v for k, v in facts_args.items() if k in _WINDOWS_OPTIONS}
        module = "win_cyclotron_facts" if windows else "cyclotron_facts"
        interpreter = None if windows else hostscript.known_python(self, task_vars)
        if interpreter:
            params = script_params(facts_args, bool(self._task.check_mode))
            gathered, gatherer = hostscript.run(self, interpreter, GATHER_CODE, params), "script"
        else:
            gathered = self._execute_module(module_name=module, module_args=facts_args, task_vars=task_vars)
            gatherer = module
        if gathered.get("failed") or gathered.get("unreachable"):
            gathered.setdefault("msg", f"{module} failed on {host}")
            return gathered

        try:
            facts = gathered.get("ansible_facts") or {}
            raw: Any
            if windows:
                from cyclotron_py.windows import to_raw  # only Windows hosts need the parsers

                raw = to_raw(
                    facts.get("cyclotron_raw_windows") or {},
                    include_dependencies=bool(facts_args.get("include_dependencies", False)),
                )
            else:
                raw = facts.get("cyclotron_raw")
            if not isinstance(raw, dict):
                raise AnsibleActionFail(f"cyclotron_gather: {module} on {host} returned no raw facts")
            manifest = build_manifest(host, raw, catalog)
        except CyclotronError as exc:
            raise AnsibleActionFail(f"cyclotron_gather: host {host}: {exc}") from None
        except ValueError as exc:  # pydantic ValidationError is a ValueError
            raise AnsibleActionFail(f"cyclotron_gather: host {host}: raw facts are malformed: {exc}") from None

        path, changed = write_manifest(dest, manifest, check_mode=self._task.check_mode)
        by_type: dict[str, int] = {}
        for cap in manifest.capabilities:
            by_type[cap.type] = by_type.get(cap.type, 0) + 1
        result.update(
            changed=changed,
            path=str(path),
            gatherer=gatherer,
            manifest=manifest.model_dump(mode="json"),
            capabilities=len(manifest.capabilities),
            by_type=dict(sorted(by_type.items())),
            errors=[e.model_dump() for e in manifest.errors],
            # What this host's plan depends on besides the manifests: `cyclotron pull` plans from the
            # gather alone and starts sync.yml only when there is something to install.
            plan_inputs={
                "policy": self._templar.template(host_policy(task_vars)),
                "catalog": args["catalog"] or None,
                "domains": args["domains"] or None,
                "approve": self._templar.template(task_vars.get("cyclotron_approve")),
            },
        )
        if manifest.errors:
            result["warnings"] = [f"{host}: {e.source}: {e.message}" for e in manifest.errors]
        return result
