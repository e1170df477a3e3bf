#!/usr/bin/python
# Copyright: Cyclotron contributors
# Apache-2.0 (see pyproject.toml)

# Documentation only: the module is win_winget.ps1 (as in ansible.windows).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_winget
short_description: Install, upgrade or remove a package with winget (Windows Package Manager)
description:
  - Reads the installed version from C(winget export --include-versions --source SOURCE) (documented
    JSON, not the C(winget list) table, whose columns are truncated and localised), then runs
    C(winget install), C(winget upgrade) or C(winget uninstall) with C(--id ID --exact) and
    C(--accept-source-agreements --disable-interactivity) as an argv list, and reads the version again.
  - >-
    Fails with a message naming the fix when winget is missing, when the module runs as SYSTEM, or when
    winget cannot start. winget only works in the logged-in user's session (winget-cli issue 256):
    run the task with C(become=true), C(become_method=runas) and C(become_user) set to that user.
  - No Ansible collection ships a winget module (community.windows issues 89 and 611).
  - Needs winget 1.4 or later (C(--disable-interactivity)).
options:
  id:
    description:
      - Package identifier, matched exactly (C(--id ID --exact)).
      - Must match C(^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}$); anything else fails before winget runs.
    type: str
    required: true
  version:
    description:
      - Exact version to install (C(--version)). Without it, C(present) installs the latest version
        when the package is absent and leaves any installed version alone.
      - Must match C(^[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,63}$). Not allowed with O(state=latest).
    type: str
  state:
    description:
      - C(present) installs when absent (or when O(version) differs from the installed version),
        C(latest) also runs C(winget upgrade) when installed, C(absent) uninstalls.
    type: str
    choices: [present, absent, latest]
    default: present
  scope:
    description: Install scope passed as C(--scope) to install, upgrade and uninstall.
    type: str
    choices: [user, machine]
  source:
    description: winget source to install from and to read the installed version from.
    type: str
    default: winget
  allow_downgrade:
    description:
      - When O(version) differs from the installed version, uninstall the installed one first
        (winget will not install over a newer version). Used by rollbacks.
    type: bool
    default: false
attributes:
  check_mode:
    support: partial
    details: >-
      Reads the installed version and reports what would change; with O(state=latest) on an installed
      package it cannot tell whether an upgrade exists and reports no change.
  diff_mode:
    support: none
  platform:
    platforms: windows
notes:
  - >-
    Run as the logged-in user, e.g. C(become_method=runas) with that user's password in
    C(ansible_become_password); C(logon_type=interactive) (the runas default) loads the user profile
    winget needs.
  - Packages winget cannot match to a source are left out of C(winget export) and read as absent.
seealso:
  - name: winget command line reference
    link: https://learn.microsoft.com/windows/package-manager/winget/
  - name: winget return codes
    link: https://aka.ms/winget-returncodes
author:
  - Cyclotron contributors
"""

EXAMPLES = r"""
- name: Install Git for the logged-in user
  win_winget:
    id: Git.Git
  become: true
  become_method: runas
  become_user: "{{ cyclotron_winget_become_user }}"

- name: Pin Node.js LTS to one version, downgrading if needed
  win_winget:
    id: OpenJS.NodeJS.LTS
    version: "20.11.1"
    allow_downgrade: true
  become: true
  become_method: runas
  become_user: alice

- name: Read the installed version without changing anything
  win_winget:
    id: Microsoft.VisualStudioCode
  check_mode: true
  register: vscode

- name: Remove 7-Zip
  win_winget:
    id: 7zip.7zip
    state: absent
"""

RETURN = r"""
version_before:
  description: Installed version before the task; null when absent, C(unknown) when winget shows no version.
  returned: always
  type: str
  sample: "2.43.0"
version_after:
  description: Installed version after the task; null when absent.
  returned: always
  type: str
  sample: "2.44.0"
cmd:
  description: The last winget command line the module ran.
  returned: when winget ran
  type: str
  sample: winget.exe install --id Git.Git --exact --source winget --accept-source-agreements --disable-interactivity --silent --accept-package-agreements
rc:
  description: Exit code of the last install, upgrade or uninstall (0 when nothing ran).
  returned: always
  type: int
  sample: 0
stdout:
  description: Standard output of that command.
  returned: always
  type: str
  sample: "Successfully installed"
stderr:
  description: Standard error of that command.
  returned: always
  type: str
  sample: ""
"""
