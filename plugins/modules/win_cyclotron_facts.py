#!/usr/bin/python
# Copyright: (c) 2025, Cyclotron contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Documentation only: the module is win_cyclotron_facts.ps1 (as in ansible.windows).

DOCUMENTATION = r"""
---
module: win_cyclotron_facts
short_description: Gather raw capability facts from a Windows host for Cyclotron
description:
  - Returns native Windows output for the controller to parse with C(cyclotron_py.windows.to_raw) -
    the file C(winget export --include-versions) writes, C(choco list -r) output, the Uninstall registry
    entries, names (never values) of API-key-like environment variables and C(.env) entries, MCP config
    files with every C(env) and C(headers) value blanked, version probes of commands on PATH, and the
    HEAD and remote URLs of git repositories.
  - Read-only; nothing on the host changes. Temporary export files are removed.
  - winget is installed per user and fails as SYSTEM or in a plain WinRM session (winget-cli issue 256).
    Run the module as the logged-in user with O(become=true), C(become_method=runas),
    C(become_user=<user>); otherwise C(winget_error) says why and the other sources are still gathered.
  - A source that fails adds an entry to C(errors) instead of failing the task.
options:
  home:
    description:
      - Profile directory whose MCP configs are read (C(.claude.json), C(.cursor), C(AppData\Roaming)).
      - Defaults to C(%USERPROFILE%) of the user the module runs as.
    type: path
  env_files:
    description:
      - C(.env) files whose variable names are reported. Values are never read into the result.
    type: list
    elements: path
    default: []
  api_key_patterns:
    description:
      - .NET regular expressions; environment and C(.env) names matching any of them are reported.
      - The default matches names like C(OPENAI_API_KEY), C(GITHUB_TOKEN), C(AWS_SECRET_ACCESS_KEY).
    type: list
    elements: str
    default: ['(?i)(^|_)(api_?key|token|secret|password|access_key(_id)?)($|_)', '(?i)_KEY$']
  project_dirs:
    description:
      - Project directories searched for C(.mcp.json), C(.cursor\mcp.json) and C(.vscode\mcp.json).
    type: list
    elements: path
    default: []
  commands:
    description:
      - Version probes. A probe whose C(argv[0]) is found with C(Get-Command) is run and its output returned.
      - The default probes git, python, pip, node and npm.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name the command is reported under.
        type: str
        required: true
      argv:
        description: Program and arguments, run without a shell.
        type: list
        elements: str
        required: true
      regex:
        description: Regular expression whose first group is the version; applied on the controller.
        type: str
  git_roots:
    description:
      - Directories searched for git repositories (hidden folders, C(node_modules) and junctions skipped).
    type: list
    elements: path
    default: []
  git_max_depth:
    description: How many directory levels below each root are searched.
    type: int
    default: 3
  sources:
    description: Which sources to gather.
    type: list
    elements: str
    choices: [winget, choco, registry, env, mcp, commands, git]
    default: [winget, choco, registry, env, mcp, commands, git]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: windows
notes:
  - Parsing happens on the controller (C(cyclotron_py.windows)), so this module stays small and is tested
    through recorded output.
  - Windows PowerShell 5.1 cannot read JSON with comments; such an MCP config is reported in C(errors).
seealso:
  - name: winget-cli issue 256 (winget as SYSTEM)
    description: Why winget needs the logged-in user's context.
    link: https://github.com/microsoft/winget-cli/issues/256
author:
  - Cyclotron contributors
"""

EXAMPLES = r"""
- name: Gather raw facts as the logged-in user (winget needs the user's context)
  win_cyclotron_facts:
    project_dirs:
      - C:\Users\alice\src\webapp
    git_roots:
      - C:\Users\alice\src
    env_files:
      - C:\Users\alice\src\webapp\.env
  become: true
  become_method: runas
  become_user: alice
  vars:
    ansible_become_password: "{{ cyclotron_windows_user_password }}"

- name: Gather everything except winget as SYSTEM, reading alice's profile
  win_cyclotron_facts:
    home: C:\Users\alice
    sources: [choco, registry, mcp, git]
    git_roots: [C:\Users\alice\src]
"""

RETURN = r"""
ansible_facts:
  description: Facts set on the host.
  returned: always
  type: complex
  contains:
    cyclotron_raw_windows:
      description: Native output for C(cyclotron_py.windows.to_raw).
      returned: always
      type: complex
      contains:
        winget_export:
          description: Text of the file C(winget export) wrote, or null when winget was not run or failed.
          returned: always
          type: str
          sample: '{"$schema": "https://aka.ms/winget-packages.schema.2.0.json", "Sources": []}'
        winget_error:
          description: Why winget output is missing, else null.
          returned: always
          type: str
          sample: winget.exe is not on PATH ...
        choco_list:
          description:
            - Output of C(choco list -r) (v2) or C(choco list --local-only -r) (v1); null without choco.
          returned: always
          type: str
          sample: "git|2.44.0\ngit.install|2.44.0"
        choco_error:
          description: Why choco output is missing, else null.
          returned: always
          type: str
        registry:
          description: Entries under the HKLM, HKLM WOW6432Node and HKCU Uninstall keys.
          returned: always
          type: list
          elements: dict
          sample:
            - key: HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\Git_is1
              hive: HKLM
              DisplayName: Git
              DisplayVersion: 2.44.0
              Publisher: The Git Development Community
              InstallDate: "20240311"
              SystemComponent: null
              ParentKeyName: null
              WindowsInstaller: null
        env_names:
          description: User, machine and process environment variable names matching O(api_key_patterns).
          returned: always
          type: list
          elements: str
          sample: [ANTHROPIC_API_KEY, GITHUB_TOKEN]
        env_files:
          description: Matching variable names per C(.env) file.
          returned: always
          type: dict
          sample: {C:\Users\alice\src\webapp\.env: [OPENAI_API_KEY]}
        mcp_files:
          description:
            - MCP config text per path, reduced to the server blocks; C(env)/C(headers) values and URL
              passwords are cut.
            - null for a file Windows PowerShell could not parse (see C(errors)).
          returned: always
          type: dict
          sample: {C:\Users\alice\.cursor\mcp.json: '{"mcpServers":{"x":{"command":"npx","env":{"K":""}}}}'}
        commands:
          description: Probes whose program was found, with its output and exit code.
          returned: always
          type: list
          elements: dict
          sample:
            - name: git
              path: C:\Program Files\Git\cmd\git.exe
              version_output: git version 2.44.0.windows.1
              rc: 0
              regex: null
        git_repos:
          description:
            - Repositories under O(git_roots) with C(.git/HEAD), the ref it names and remote URL lines.
          returned: always
          type: list
          elements: dict
          sample:
            - {path: C:\Users\alice\src\webapp, head_text: "ref: refs/heads/main\n",
               ref_text: "0123456789abcdef0123456789abcdef01234567\n",
               config_text: "[core]\n[remote \"origin\"]\n\turl = https://github.com/alice/webapp.git"}
        os:
          description: Windows version, caption and processor architecture.
          returned: always
          type: dict
          sample: {version: 10.0.22631, caption: Microsoft Windows 11 Pro, arch: AMD64}
        home:
          description: Profile directory that was read.
          returned: always
          type: str
          sample: C:\Users\alice
        api_key_patterns:
          description: The patterns used, so the controller filters the same way.
          returned: always
          type: list
          elements: str
        errors:
          description: Problems per source; the task itself does not fail.
          returned: always
          type: list
          elements: dict
          sample: [{source: mcp, message: "C:\\Users\\alice\\.cursor\\mcp.json: cannot be read as JSON ..."}]
"""
