"""Filters over the capability catalog (thin adapters over cyclotron_py.catalog)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from cyclotron_py.catalog import load_catalog
from cyclotron_py.errors import CyclotronError


def cyclotron_catalog_probes(overrides: dict[str, Any] | None = None, domains: Any = None) -> list[dict[str, Any]]:
    """Version probes of every catalog entry, as the facts modules' `commands` option wants them."""
    if overrides is not None and not isinstance(overrides, dict):
        raise AnsibleFilterError(
            f"cyclotron_catalog_probes: cyclotron_catalog must be a mapping, got {type(overrides).__name__}"
        )
    try:
        catalog = load_catalog(overrides or None, domains or None)
    except CyclotronError as exc:
        raise AnsibleFilterError(f"cyclotron_catalog_probes: {exc}") from None
    probes: dict[str, dict[str, Any]] = {}
    for entry in catalog.entries.values():
        if entry.verify is not None:
            name = entry.verify.command[0]
            probes.setdefault(name, {"name": name, "argv": list(entry.verify.command), "regex": entry.verify.regex})
    return [probes[name] for name in sorted(probes)]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cyclotron_catalog_probes": cyclotron_catalog_probes}
