"""Comparison filters: thin adapters over cyclotron_py.compare and cyclotron_py.reports.

Plain functions over plain data. Manifests arrive as mappings (``lookup('file') | from_json``,
or JSON strings, or a mapping of host -> manifest); each is validated exactly as the CLI
validates a manifest file, so the filter and ``cyclotron matrix --json`` give identical results.

    {{ manifests | capability_matrix(policies=cyclotron_policies, catalog=cyclotron_catalog) }}
    {{ manifest_a | capability_gaps(manifest_b) }}
    {{ matrix | distribution_plan }}             -> {host: [recommendation, ...]}
    {{ matrix | capability_report('markdown') }} -> text, markdown or json
    {{ installed | cyclotron_version_older(want, 'apt') }} -> bool, the installer roles' upgrade test
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    from cyclotron_py import compare, reports, versions
    from cyclotron_py.catalog import Catalog, load_catalog
    from cyclotron_py.errors import CyclotronError
    from cyclotron_py.models import Manifest
    from cyclotron_py.validate import validate_data
except ImportError as _exc:  # the controller's Python must have the project installed
    _IMPORT_ERROR: ImportError | None = _exc
else:
    _IMPORT_ERROR = None

_MAX_LISTED = 5


def _require() -> None:
    if _IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"cyclotron filters need the cyclotron_py package on the controller ({_IMPORT_ERROR}); "
            "install the project into Ansible's Python: pip install -e ."
        )


def _plain(value: Any, what: str, name: str) -> Any:
    """Tagged/lazy Ansible values -> plain JSON data (and a clear error for anything else)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"{name}: {what} is not JSON-like data ({exc})") from None


def _domains(domains: Any, name: str) -> dict[str, str] | None:
    if domains is None or domains == {} or domains == []:
        return None
    if isinstance(domains, list) and all(isinstance(d, str) for d in domains):
        return {d: "" for d in domains}
    if isinstance(domains, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in domains.items()}
    raise AnsibleFilterError(
        f"{name}: domains (cyclotron_domains) must be a mapping of name -> description or a list of names, "
        f"got {type(domains).__name__}"
    )


def _catalog(catalog: Any, domains: Any, name: str) -> Catalog:
    if catalog is not None and not isinstance(catalog, Mapping):
        raise AnsibleFilterError(
            f"{name}: catalog (cyclotron_catalog) must be a mapping, got {type(catalog).__name__}"
        )
    try:
        return load_catalog(_plain(catalog, "catalog", name) if catalog else None, _domains(domains, name))
    except CyclotronError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from None


def _manifest(item: Any, label: str, name: str, catalog: Catalog) -> Manifest:
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except ValueError as exc:
            raise AnsibleFilterError(f"{name}: {label} is a string but not JSON ({exc})") from None
    if not isinstance(item, Mapping):
        raise AnsibleFilterError(
            f"{name}: {label} must be a manifest mapping (e.g. lookup('file', path) | from_json), "
            f"got {type(item).__name__}"
        )
    data = _plain(item, label, name)
    host = data.get("host")
    if isinstance(host, str) and host:
        label = f"{label} (host {host})"
    manifest, problems = validate_data(data, file=label, domains=catalog.domains)
    errors = [p for p in problems if p.severity == "error"]
    if manifest is None or errors:
        shown = "; ".join(f"{p.path}: {p.message}. Fix: {p.fix}" for p in errors[:_MAX_LISTED])
        more = f" (and {len(errors) - _MAX_LISTED} more)" if len(errors) > _MAX_LISTED else ""
        raise AnsibleFilterError(f"{name}: {label} is not a valid manifest: {shown}{more}")
    return manifest


def _manifests(items: Any, name: str, catalog: Catalog) -> list[Manifest]:
    if isinstance(items, Mapping) and "host" not in items:
        pairs = [(f"manifests[{k!r}]", v) for k, v in items.items()]
    elif isinstance(items, list | tuple):
        pairs = [(f"manifests[{i}]", v) for i, v in enumerate(items)]
    else:
        raise AnsibleFilterError(
            f"{name}: expects a list of manifests (or a mapping host -> manifest), got {type(items).__name__}"
        )
    return [_manifest(item, label, name, catalog) for label, item in pairs]


def _policies(policies: Any, name: str) -> dict[str, Any] | None:
    if policies is None:
        return None
    if not isinstance(policies, Mapping):
        raise AnsibleFilterError(
            f"{name}: policies must map host names to cyclotron_policy mappings, "
            f"got {type(policies).__name__}"
        )
    return {str(k): v for k, v in _plain(policies, "policies", name).items()}


def capability_matrix(
    manifests: Any, policies: Any = None, catalog: Any = None, domains: Any = None
) -> dict[str, Any]:
    """The N-way matrix of ``manifests`` (cyclotron_py.compare.capability_matrix)."""
    _require()
    name = "capability_matrix"
    cat = _catalog(catalog, domains, name)
    found = _manifests(manifests, name, cat)
    try:
        return compare.capability_matrix(found, catalog=cat, policies=_policies(policies, name))
    except CyclotronError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from None


def capability_gaps(
    a: Any, b: Any, policies: Any = None, catalog: Any = None, domains: Any = None
) -> dict[str, Any]:
    """What each of two hosts lacks, in the original design's two-way shape."""
    _require()
    name = "capability_gaps"
    cat = _catalog(catalog, domains, name)
    first = _manifest(a, "the first manifest", name, cat)
    second = _manifest(b, "the second manifest", name, cat)
    try:
        return compare.capability_gaps(first, second, catalog=cat, policies=_policies(policies, name))
    except CyclotronError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from None


def distribution_plan(
    data: Any, policies: Any = None, catalog: Any = None, domains: Any = None, host: str | None = None
) -> Any:
    """``{host: [recommendation, ...]}`` from a matrix (or from manifests, compared first);
    with ``host=`` only that host's list."""
    _require()
    name = "distribution_plan"
    if isinstance(data, Mapping) and "recommended_distribution" in data:
        matrix: Mapping[str, Any] = data
    else:
        matrix = capability_matrix(data, policies=policies, catalog=catalog, domains=domains)
    try:
        plan = compare.distribution_plan(matrix)
    except CyclotronError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from None
    if host is None:
        return plan
    if host not in plan:
        raise AnsibleFilterError(f"{name}: host {host!r} is not in the matrix (hosts: {', '.join(plan)})")
    return plan[host]


def capability_report(matrix: Any, format: str = "text") -> str:  # noqa: A002 - the filter's keyword
    """Render a matrix: ``text`` (inventory report, no colour), ``markdown`` or ``json``."""
    _require()
    name = "capability_report"
    if not isinstance(matrix, Mapping) or "capabilities" not in matrix or "hosts" not in matrix:
        raise AnsibleFilterError(
            f"{name}: expects a matrix from capability_matrix, got {type(matrix).__name__}"
        )
    try:
        return reports.render(_plain(matrix, "matrix", name), format)
    except ValueError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from None


def cyclotron_version_older(installed: Any, want: Any, manager: str | None = None) -> bool:
    """True when ``installed`` is older than ``want`` in ``manager``'s version scheme (the
    controller's one comparison, cyclotron_py.versions). An empty side is never older: nothing
    installed is an install, no wanted version is "any". Versions that fit no scheme are ordered
    by their digit runs (``natural_key``)."""
    _require()
    name = "cyclotron_version_older"
    for what, value in (("installed", installed), ("want", want), ("manager", manager)):
        if value is not None and not isinstance(value, str | int | float):
            raise AnsibleFilterError(f"{name}: {what} must be a version string, got {type(value).__name__}")
    have, wanted = str(installed or "").strip(), str(want or "").strip()
    if not have or not wanted:
        return False
    order = versions.compare_versions(have, wanted, manager or None)
    if order is None:
        return versions.natural_key(have) < versions.natural_key(wanted)
    return order < 0


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "capability_matrix": capability_matrix,
            "capability_gaps": capability_gaps,
            "distribution_plan": distribution_plan,
            "capability_report": capability_report,
            "cyclotron_version_older": cyclotron_version_older,
        }
