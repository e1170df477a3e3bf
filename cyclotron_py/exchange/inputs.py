"""``policy/`` and ``catalog/`` in the exchange repository, kept by a person for the whole fleet.

Each is read from git's objects as untrusted input, a file at a time:

- ``policy/<name>.yml|yaml|json``: the same as ``cyclotron plan --policy FILE``: ``{host: policy}``
  (``all``: every host without its own entry), or a group_vars file holding ``cyclotron_policy``
  (= ``all``). Each policy is checked as the inventory's ``cyclotron_policy`` is.
- ``catalog/<name>.yml|yaml|json``: the same as ``cyclotron matrix --catalog FILE``: a
  ``cyclotron_catalog`` mapping (``capabilities``, ``defaults``), checked against the shipped
  catalog and domains.

A file that is not UTF-8 YAML/JSON, uses anchors or aliases, is too large, or fails the checks is
reported with its path and skipped; the others are used. Files are merged in name order: a host
or capability id that an earlier file already gave is reported and the earlier one kept. (Paths
outside these two directories, symlinks and sub-directories are refused by ``ExchangeRepo``.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import CyclotronError
from ..manifest_io import atomic_write_text
from ..models import HOST_RE
from ..policy import EXCHANGE_POLICY_VAR

INPUT_DIRS = ("policy", "catalog")
INPUT_SUFFIXES = (".yml", ".yaml", ".json")
MAX_INPUT_BYTES = 256 * 1024
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class ExchangeInputs:
    """The exchange's policies (``{host or 'all': policy}``) and catalog extension, validated."""

    policies: dict[str, Any] = field(default_factory=dict)
    catalog: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)

    def policy_for(self, host: str) -> Any:
        return self.policies.get(host, self.policies.get("all"))

    def extra_vars(self, host: str) -> dict[str, Any]:
        """What a pull passes to its playbooks: ``cyclotron_catalog``, and this host's policy as
        ``cyclotron_exchange_policy`` (used only when the inventory gives the host none)."""
        out: dict[str, Any] = {}
        if self.catalog:
            out["cyclotron_catalog"] = self.catalog
        policy = self.policy_for(host)
        if policy is not None:
            out[EXCHANGE_POLICY_VAR] = policy
        return out

    def write(self, directory: Path) -> list[Path]:
        """``policy.yml`` for ``cyclotron plan|matrix --policy``; ``catalog.yml`` for ``cyclotron matrix
        --catalog`` and ``ansible-playbook -e @catalog.yml`` (it holds ``cyclotron_catalog:``)."""
        written = []
        catalog = {"cyclotron_catalog": self.catalog} if self.catalog else None
        for name, data in (("policy.yml", self.policies), ("catalog.yml", catalog)):
            if data:
                path = directory / name
                atomic_write_text(path, "# from the exchange repository, validated by cyclotron exchange fetch\n"
                                  + yaml.safe_dump(data, sort_keys=True))
                written.append(path)
        return written


def read_inputs(files: Mapping[str, bytes]) -> ExchangeInputs:
    """``{repository path: bytes}`` of policy/ and catalog/ files -> what of them can be used."""
    inputs = ExchangeInputs()
    for path in sorted(files):
        try:
            data = _load(path, files[path])
            if path.startswith("policy/"):
                _add_policies(inputs, path, data)
            else:
                _add_catalog(inputs, path, data)
        except CyclotronError as exc:
            inputs.problems.append(f"{path}: {exc}: skipped")
            continue
        inputs.used.append(path)
    return inputs


def _load(path: str, raw: bytes) -> Any:
    if len(raw) > MAX_INPUT_BYTES:
        raise CyclotronError(f"{len(raw)} bytes, over {MAX_INPUT_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CyclotronError("not UTF-8 text") from None
    try:
        if path.endswith(".json"):
            return json.loads(text)
        # Anchors and aliases are refused: a few lines of them can stand for an enormous document.
        if any(isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)
               for event in yaml.parse(text, Loader=_LOADER)):
            raise CyclotronError("YAML anchors and aliases are not accepted here; write the values out")
        data = yaml.load(text, Loader=_LOADER)
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise CyclotronError(f"not valid {'JSON' if path.endswith('.json') else 'YAML'}{at}") from None
    _no_templates(data, "")
    # Plain JSON types from here on (a YAML date becomes its text): what the playbooks receive.
    return json.loads(json.dumps(data, default=str))


_TEMPLATE_MARKS = ("{{", "{%", "{#")


def _no_templates(value: Any, where: str) -> None:
    """The pull hands these values to Ansible as variables, which it would template: a string
    holding Jinja markup from the remote could run code on this machine. None is accepted."""
    if isinstance(value, str):
        if any(mark in value for mark in _TEMPLATE_MARKS):
            raise CyclotronError(f"{where or 'a value'}: holds template markup ({{{{, {{% or {{#}}), which is "
                                 "not accepted from the exchange")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _no_templates(str(key), f"{where}.{key}".lstrip("."))
            _no_templates(item, f"{where}.{key}".lstrip("."))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _no_templates(item, f"{where}[{n}]")


def _add_policies(inputs: ExchangeInputs, path: str, data: Any) -> None:
    from ..policy import parse_policy

    if isinstance(data, Mapping) and "cyclotron_policy" in data:
        data = {"all": data["cyclotron_policy"]}
    if not isinstance(data, Mapping):
        raise CyclotronError("expected a mapping of host names (or 'all') to cyclotron_policy mappings")
    found: dict[str, Any] = {}
    for host, value in data.items():
        name = str(host)
        if name != "all" and not HOST_RE.match(name):
            raise CyclotronError(f"{name[:60]!r} is not a host name (letters, digits, '.', '_', '-') nor 'all'")
        found[name] = parse_policy(value, host=name).model_dump(mode="json", exclude_defaults=True)
    for name, policy in found.items():
        if name in inputs.policies:
            inputs.problems.append(f"{path}: the policy for {name} is already given by an earlier file: "
                                   "the earlier one is kept")
        else:
            inputs.policies[name] = policy


def _add_catalog(inputs: ExchangeInputs, path: str, data: Any) -> None:
    from ..catalog import load_catalog

    if isinstance(data, Mapping) and "cyclotron_catalog" in data:
        data = data["cyclotron_catalog"]
    if not isinstance(data, dict):
        raise CyclotronError("expected a cyclotron_catalog mapping with 'capabilities' (and 'defaults')")
    load_catalog(data)  # CatalogError naming the entry and field
    merged = inputs.catalog or {"capabilities": {}}
    for section in ("capabilities", "defaults"):
        for key, value in (data.get(section) or {}).items():
            target = merged.setdefault(section, {})
            if key in target:
                inputs.problems.append(f"{path}: {section}.{key} is already given by an earlier file: "
                                       "the earlier one is kept")
            else:
                target[str(key)] = value
    inputs.catalog = merged
