#!/usr/bin/python
# Stand-in for plugins/modules/win_winget.ps1 on Linux (tests only; see ../README.md).

from __future__ import annotations

import os
import sys

from ansible.module_utils.basic import AnsibleModule

sys.path.insert(0, os.environ["CYCLOTRON_FAKE_DIR"])
import fakedb  # noqa: E402

NO_APPLICABLE_UPDATE = -1978335189
NO_PACKAGE_FOUND = -1978335212


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            id=dict(type="str", required=True),
            version=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent", "latest"]),
            scope=dict(type="str", choices=["user", "machine"]),
            source=dict(type="str", default="winget"),
            allow_downgrade=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    pkg, version, state = module.params["id"], module.params["version"], module.params["state"]
    db = fakedb.load()
    key = fakedb.lookup(db["installed"], pkg)
    before = db["installed"][key] if key else None
    result = dict(changed=False, version_before=before, version_after=before, rc=0, stdout="", stderr="")

    actions: list[tuple[str, str | None]] = []
    if state == "absent":
        if before is not None:
            actions.append(("uninstall", None))
    elif before is None:
        actions.append(("install", version))
    elif version and before != version:
        if module.params["allow_downgrade"]:
            actions.append(("uninstall", None))
        actions.append(("install", version))
    elif state == "latest":
        actions.append(("upgrade", None))

    if actions and module.check_mode:
        result["changed"] = actions[0][0] != "upgrade"
        module.exit_json(**result)

    current = before
    for verb, wanted in actions:
        db["log"].append([verb, pkg, wanted])
        if verb == "uninstall":
            current = None
        elif verb == "upgrade":
            newest = fakedb.latest(db, pkg)
            if newest and current and fakedb.newer(newest, current):
                current = newest
                result["changed"] = True
            else:
                result["rc"] = NO_APPLICABLE_UPDATE
        else:
            target = wanted or fakedb.latest(db, pkg)
            if target is None or (wanted and not fakedb.has_version(db, pkg, wanted)):
                fakedb.save(db)
                result.update(rc=NO_PACKAGE_FOUND, stdout="No package found matching input criteria.")
                module.fail_json(msg=f"winget install {pkg} failed with exit code 0x8A150014", **result)
            if current is not None and fakedb.newer(current, target):
                fakedb.save(db)
                result.update(rc=-1978335135)
                module.fail_json(msg=f"winget install {pkg} failed: a newer version is installed", **result)
            current = target
        result["changed"] = True
        if current is None:
            db["installed"].pop(fakedb.lookup(db["installed"], pkg) or pkg, None)
        else:
            db["installed"][fakedb.lookup(db["installed"], pkg) or pkg] = current
    fakedb.save(db)
    result["version_after"] = current
    result["changed"] = result["changed"] or current != before
    module.exit_json(**result)


if __name__ == "__main__":
    main()
