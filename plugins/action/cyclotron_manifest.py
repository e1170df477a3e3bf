"""Action plugin: normalise a host's raw facts into a manifest and write it on the controller.

Thin adapter over cyclotron_py.normalize; runs in the controller process, so no
module is shipped and the write is a local temp file + rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from cyclotron_py.catalog import load_catalog
from cyclotron_py.errors import CyclotronError
from cyclotron_py.normalize import build_manifest


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("raw", "raw_windows", "dest", "catalog", "domains", "host", "include_dependencies"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        host = args.get("host") or task_vars.get("inventory_hostname")
        dest = args.get("dest")
        if not dest:
            raise AnsibleActionFail("cyclotron_manifest: 'dest' (the manifests directory) is required")
        raw = args.get("raw")
        if raw is None and args.get("raw_windows") is not None:
            from cyclotron_py.windows import to_raw as windows_to_raw  # only Windows hosts need it

            raw = windows_to_raw(
                args["raw_windows"], include_dependencies=bool(args.get("include_dependencies", False))
            )
        if not isinstance(raw, dict):
            raise AnsibleActionFail(
                f"cyclotron_manifest: host {host}: 'raw' must be the cyclotron_raw fact (a dict), "
                f"got {type(raw).__name__}; did the facts task run?"
            )
        try:
            catalog = load_catalog(args.get("catalog") or None, args.get("domains") or None)
            manifest = build_manifest(str(host), raw, catalog)
        except CyclotronError as exc:
            raise AnsibleActionFail(f"cyclotron_manifest: host {host}: {exc}") from None
        except ValueError as exc:  # pydantic ValidationError is a ValueError
            raise AnsibleActionFail(f"cyclotron_manifest: host {host}: raw facts are malformed: {exc}") from None

        document = manifest.model_dump(mode="json")
        text = json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        path = os.path.join(os.path.abspath(dest), f"{host}.json")
        changed = _content_differs(path, document)
        if changed and not self._task.check_mode:
            _atomic_write(path, text)
        result.update(
            changed=changed,
            path=path,
            manifest=document,
            capabilities=len(manifest.capabilities),
            errors=[e.model_dump() for e in manifest.errors],
            by_type=_count_by_type(document),
        )
        return result


def _content_differs(path: str, document: dict[str, Any]) -> bool:
    """Changed means capabilities, managers, OS or errors differ; a new timestamp alone is not a change."""
    try:
        with open(path, encoding="utf-8") as handle:
            old = json.load(handle)
    except (OSError, ValueError):
        return True
    if not isinstance(old, dict):
        return True
    return {k: v for k, v in old.items() if k != "gathered_at"} != {
        k: v for k, v in document.items() if k != "gathered_at"
    }


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _count_by_type(document: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cap in document["capabilities"]:
        counts[cap["type"]] = counts.get(cap["type"], 0) + 1
    return dict(sorted(counts.items()))
