"""Which hosts a run did not gather: thin adapters over cyclotron_py.sync.fleet_status and
cyclotron_py.reports.render_host_status, for playbooks/plan.yml.

    {{ manifests | fleet_status(cyclotron_inventory_hosts, cyclotron_gathered_hosts) }}
    {{ report | with_host_status(status, 'markdown') }}   -> the report, those hosts named at its top
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from cyclotron_py.reports import with_host_status as _with_host_status
from cyclotron_py.sync import fleet_status as _fleet_status


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise AnsibleFilterError(f"fleet_status: {what} must be a list of host names, got {type(value).__name__}")
    return [str(v) for v in value]


def fleet_status(manifests: Any, expected: Any, gathered: Any) -> dict[str, dict[str, Any]]:
    """``{host: {status, last_gathered_at, age_seconds}}`` for each host of ``expected``."""
    if not isinstance(manifests, list | tuple) or not all(isinstance(m, Mapping) for m in manifests):
        raise AnsibleFilterError("fleet_status: expects a list of manifest mappings (lookup('file', ...) | from_json)")
    plain = json.loads(json.dumps(list(manifests)))
    return _fleet_status(_names(expected, "the play's hosts"), _names(gathered, "the gathered hosts"), plain)


def with_host_status(report: Any, status: Any, fmt: str = "text") -> str:
    if not isinstance(report, str) or not isinstance(status, Mapping):
        raise AnsibleFilterError(
            "with_host_status: expects a report string and fleet_status's mapping, "
            f"got {type(report).__name__} and {type(status).__name__}"
        )
    try:
        return _with_host_status(str(report), json.loads(json.dumps(dict(status))), fmt)
    except ValueError as exc:
        raise AnsibleFilterError(f"with_host_status: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_status": fleet_status, "with_host_status": with_host_status}
