#!/usr/bin/python
# Stand-in for ansible.windows.win_command on Linux (tests only; see the README two levels up).

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    # Like the real module: no check mode support, so Ansible skips it in check mode.
    module = AnsibleModule(argument_spec=dict(argv=dict(type="list", elements="str", required=True)))
    rc, stdout, stderr = module.run_command(module.params["argv"])
    result = dict(changed=True, rc=rc, stdout=stdout, stderr=stderr, cmd=module.params["argv"])
    if rc != 0:
        module.fail_json(msg="non-zero return code", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
