#!/usr/bin/python
# Stand-in for chocolatey.chocolatey.win_chocolatey on Linux (tests only): name/state/version
# with the real module's rules for present, latest/upgrade, downgrade and absent.

from __future__ import annotations

import os
import sys

from ansible.module_utils.basic import AnsibleModule

sys.path.insert(0, os.environ["CYCLOTRON_FAKE_DIR"])
import fakedb  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True),
            state=dict(
                type="str",
                default="present",
                choices=["absent", "downgrade", "upgrade", "latest", "present", "reinstalled"],
            ),
            version=dict(type="str"),
            source=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    state, version = module.params["state"], module.params["version"]
    db = fakedb.load()
    changed = False
    for name in module.params["name"]:
        key = fakedb.lookup(db["installed"], name)
        before = db["installed"][key] if key else None
        if state == "absent":
            target = None
        elif before is None:
            target = version or fakedb.latest(db, name)
            if target is None or not fakedb.has_version(db, name, target):
                module.fail_json(msg=f"choco install {name}: the package was not found with the source(s) listed")
        elif state == "present":
            if version and version != before:
                module.fail_json(msg=f"Chocolatey package '{name}' is already installed with version(s) '{before}'")
            target = before
        elif state == "downgrade" and version:
            if not fakedb.has_version(db, name, version):
                module.fail_json(msg=f"choco upgrade {name} --version {version}: not found")
            target = version
        else:
            newest = fakedb.latest(db, name) or before
            target = newest if fakedb.newer(newest, before) else before
        if target != before:
            changed = True
            if not module.check_mode:
                db["log"].append([state, name, target])
                if target is None:
                    db["installed"].pop(key or name, None)
                else:
                    db["installed"][key or name] = target
    if not module.check_mode:
        fakedb.save(db)
    module.exit_json(changed=changed)


if __name__ == "__main__":
    main()
