#!/usr/bin/python
# Stand-in for ansible.builtin.dnf's dnf4 backend on Linux (tests only; see ../README.md).
# ansible.builtin.dnf's action runs "ansible.legacy.dnf", which a library path may override.

from __future__ import annotations

import os
import sys

from ansible.module_utils.basic import AnsibleModule

sys.path.insert(0, os.environ["CYCLOTRON_FAKE_DIR"])
import fakedb  # noqa: E402


def _split(db: dict, spec: str) -> tuple[str, str | None]:
    """``name`` or ``name-VERSION-RELEASE`` -> (name, version or None), as dnf resolves a spec."""
    for name, versions in db["available"].items():
        if spec.startswith(name + "-") and spec[len(name) + 1 :] in versions:
            return name, spec[len(name) + 1 :]
    return spec, None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent", "latest"]),
            allow_downgrade=dict(type="bool", default=False),
            install_weak_deps=dict(type="bool", default=True),
            lock_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    db = fakedb.load()
    state = module.params["state"]
    changed = False
    results: list[str] = []
    for spec in module.params["name"]:
        name, wanted = _split(db, spec)
        before = db["installed"].get(name)
        if state == "absent":
            target = None
        elif wanted:
            if before is not None and fakedb.newer(before, wanted) and not module.params["allow_downgrade"]:
                module.fail_json(msg=f"Package {spec} of lower version already installed, cannot downgrade", rc=1)
            target = wanted
        else:
            newest = fakedb.latest(db, name)
            if before is None and newest is None:
                db["log"].append(["install", spec, None])
                fakedb.save(db)
                module.fail_json(msg=f"Failed to install some of the specified packages: No match for argument: {spec}",
                                 failures=[f"No package {spec} available."], rc=1, results=[])
            target = newest if before is None or (state == "latest" and fakedb.newer(newest or "", before)) else before
        if target == before:
            continue
        changed = True
        results.append(f"{'Removed' if target is None else 'Installed'}: {name}-{target or before}")
        if module.check_mode:
            continue
        db["log"].append([state, spec, target])
        if target is None:
            db["installed"].pop(name, None)
        else:
            db["installed"][name] = target
    if not module.check_mode:
        fakedb.save(db)
    module.exit_json(changed=changed, msg="", rc=0, results=results)


if __name__ == "__main__":
    main()
