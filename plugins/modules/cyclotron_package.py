#!/usr/bin/python
# Copyright: Cyclotron contributors
# Apache-2.0
"""Ansible module: install one pip or npm package with a read-back, or put it back as it was."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cyclotron_package
short_description: Install one pip or npm package and read its version back, or restore it
description:
  - With O(state=present), reads the installed version, decides (install when absent, upgrade when older
    than O(version), pin when O(pinned) and different, else nothing: never a downgrade unless pinned),
    installs through pip or npm with argv only, reads the version back and checks it.
  - With O(state=restored), puts the package back to O(before) (uninstall when O(before) is empty,
    reinstall that version otherwise) and checks it: the rollback of a failed item.
  - Names and versions are checked against strict patterns before anything runs (no options, URLs or paths).
  - Failed installs are retried with a doubling delay. The result tells whether the host may have changed
    (RV(attempted)), so a play can roll back.
  - The C(cyclotron_package) action plugin pipes the same code to the host's Python without this module's
    wrapper when the interpreter is known and the connection pipelines; the results are the same.
version_added: "0.1.0"
author:
  - Cyclotron contributors
attributes:
  check_mode:
    support: full
    details: Reads the version and reports what would be done; installs nothing.
  diff_mode:
    support: none
options:
  manager:
    description: Package manager.
    type: str
    required: true
    choices: [pip, npm]
  package:
    description: Package name (PyPI name, or npm C(name) / C(@scope/name)).
    type: str
    required: true
  version:
    description: Version wanted; empty for the latest. An npm tag (C(latest), C(next)) is passed as it is.
    type: str
    default: ""
  pinned:
    description: Install exactly O(version), downgrading if needed.
    type: bool
    default: false
  state:
    description: C(present) installs; C(restored) puts the package back to O(before).
    type: str
    default: present
    choices: [present, restored]
  before:
    description: With O(state=restored), the version to go back to; empty means the package was absent.
    type: str
    default: ""
  virtualenv_created:
    description:
      - With O(state=restored) and O(before) empty, remove O(virtualenv) too: the install being rolled
        back created it (RV(created_virtualenv)).
    type: bool
    default: false
  python:
    description: Python whose packages are read (pip); defaults to the virtualenv's, else the module's Python.
    type: str
    default: ""
  virtualenv:
    description: Virtualenv to install into (pip), created with O(virtualenv_command) when missing.
    type: str
    default: ""
  virtualenv_command:
    description: Command that creates the virtualenv (split like a shell would; the path is appended).
    type: str
    default: python3 -m venv
  pip_executable:
    description: pip to run when no virtualenv is set; defaults to C(<python> -m pip).
    type: str
    default: ""
  extra_args:
    description: Extra pip arguments (for example C(--user)), split like a shell would.
    type: str
    default: ""
  npm_executable:
    description: npm executable.
    type: str
    default: npm
  npm_prefix:
    description: Global prefix npm installs into (C(npm prefix --global)); required for npm.
    type: str
    default: ""
  retries:
    description: Further attempts of a failed install.
    type: int
    default: 3
  retry_delay:
    description: Seconds before the first retry; doubled for each next one.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Install six into a virtualenv
  cyclotron_package:
    manager: pip
    package: six
    virtualenv: ~/venv
  register: six_install

- name: Put it back as it was
  cyclotron_package:
    manager: pip
    package: six
    virtualenv: ~/venv
    state: restored
    before: "{{ six_install.before }}"
  when: six_install.attempted

- name: Install an npm package into a user prefix
  cyclotron_package:
    manager: npm
    package: "@modelcontextprotocol/server-memory"
    npm_prefix: ~/.npm-global
"""

RETURN = r"""
decision:
  description: What was (or in check mode would be) done, install, upgrade, pin or none; remove or reinstall when restoring.
  returned: success
  type: str
  sample: install
before:
  description: Version before, empty when the package was absent.
  returned: always
  type: str
  sample: ""
after:
  description: Version read back at the end, empty when absent.
  returned: success
  type: str
  sample: 1.17.0
want:
  description: The version asked for, empty for the latest.
  returned: success
  type: str
  sample: ""
created_virtualenv:
  description: The install created O(virtualenv); pass it back as O(virtualenv_created) to the rollback.
  returned: when the virtualenv was created
  type: bool
  sample: true
virtualenv_removed:
  description: The rollback removed the virtualenv the install had created.
  returned: when it did
  type: bool
  sample: true
attempted:
  description: Whether a command that changes the host ran, so a rollback is due after a failure.
  returned: always
  type: bool
  sample: true
attempts:
  description:
    - How many times the install (or restore) command ran. Only a transient error (timeout, connection reset,
      HTTP 429/5xx) is retried; a permanent one (no such package or version, npm E404/ETARGET) fails at once.
  returned: when the command ran
  type: int
  sample: 1
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.cyclotron_install import ARGUMENT_SPEC, run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = run(module.params, module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
