#!/usr/bin/python
# Stand-in for chocolatey.chocolatey.win_chocolatey_facts on Linux (tests only).

from __future__ import annotations

import os
import sys

from ansible.module_utils.basic import AnsibleModule

sys.path.insert(0, os.environ["CYCLOTRON_FAKE_DIR"])
import fakedb  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(filter=dict(type="list", elements="str", default=["all"], aliases=["gather_subset"])),
        supports_check_mode=True,
    )
    db = fakedb.load()
    packages = [{"package": name, "version": version} for name, version in sorted(db["installed"].items())]
    module.exit_json(changed=False, ansible_facts={"ansible_chocolatey": {"packages": packages}})


if __name__ == "__main__":
    main()
