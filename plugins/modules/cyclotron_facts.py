#!/usr/bin/python
# Copyright: Cyclotron contributors
# Apache-2.0
"""Ansible module: gather raw capability facts on a Linux or macOS host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cyclotron_facts
short_description: Gather raw capability facts (packages, MCP servers, API key names, repos) on Linux/macOS
description:
  - Reads what a developer machine has installed and configured, mostly from files rather than by running
    package managers, and returns it as the C(cyclotron_raw) fact (format 1, the shape of
    C(cyclotron_py.raw.RawFacts)).
  - "Sources: OS packages (dpkg status + apt marks, rpm, Homebrew Cellar/Caskroom), Python packages
    (C(*.dist-info/METADATA) and C(*.egg-info)), pipx venvs, npm global prefixes, MCP servers configured
    for Claude Code, Claude Desktop, Cursor and VS Code, API key names from the environment and .env files,
    versions of chosen commands, and git repositories under chosen roots."
  - Secret values never leave the host. MCP C(env) blocks are reduced to variable names, URLs lose
    userinfo and query strings, argument values after C(--token), C(--api-key), C(--key), C(--password),
    C(--header) and secret-looking flags are replaced by C(<redacted>), and .env files yield names only.
  - A broken source (unreadable file, malformed JSON, failing command) becomes an entry in
    C(cyclotron_raw.errors) naming the file or command and a fix; the other sources are still gathered.
  - Paths starting with C(~) or C($HOME) in every option resolve against O(home), not the process home,
    so several users' homes can be gathered from one account.
version_added: "0.1.0"
author:
  - Cyclotron contributors
attributes:
  check_mode:
    support: full
    details: Read-only; check mode returns the same facts.
  diff_mode:
    support: none
  facts:
    support: full
options:
  home:
    description:
      - Home directory that C(~) paths, C(~/.claude.json), C(~/.env), C(~/.npmrc) and the assistants' user
        configs resolve against.
      - Defaults to the home of the user the module runs as.
    type: path
  sources:
    description:
      - Which sources to gather. O(sources=os_packages) covers dpkg/apt, rpm and Homebrew.
      - OS facts and RV(ansible_facts.cyclotron_raw.managers) are always gathered.
    type: list
    elements: str
    choices: [os_packages, python, pipx, npm, mcp, api_keys, commands, git]
    default: [os_packages, python, pipx, npm, mcp, api_keys, commands, git]
  include_dependencies:
    description:
      - When V(false), packages installed only as dependencies are left out (apt C(Auto-Installed), Homebrew
        formulae without C(installed_on_request), Python packages another package in the same environment
        requires).
      - When V(true) they are included with C(top_level=false).
    type: bool
    default: false
  python_environments:
    description:
      - Python executables or virtualenv directories whose packages to read.
      - A virtualenv directory is read through C(lib/python3*/site-packages); an executable outside a
        virtualenv is run once to print its C(sys.path).
      - An empty list means C(python3) on E(PATH), if there is one.
    type: list
    elements: str
    default: []
  pipx_home:
    description:
      - pipx home whose C(venvs/*/pipx_metadata.json) files to read.
      - Defaults to E(PIPX_HOME), else the first existing of C(~/.local/share/pipx), C(~/.local/pipx)
        (and C(~/Library/Application Support/pipx) on macOS).
    type: str
  npm_prefixes:
    description:
      - npm global prefixes whose C(lib/node_modules/*/package.json) (and C(@scope/*)) to read;
        C(<prefix>/node_modules) is read too.
      - When not set, the prefix npm would use is derived without running npm, from
        E(NPM_CONFIG_PREFIX)/E(npm_config_prefix), C(prefix=) in C(~/.npmrc), else two levels above
        C(node) on E(PATH).
    type: list
    elements: str
  mcp_project_dirs:
    description:
      - Project directories to look for C(.mcp.json) (Claude Code, scope project), C(.cursor/mcp.json)
        and C(.vscode/mcp.json).
      - When not set, the project paths listed in C(~/.claude.json) plus the git repositories found under
        O(git_roots).
    type: list
    elements: str
  api_key_patterns:
    description:
      - Regular expressions (Python C(re.search)); a variable name matching any of them is reported as an
        API key name. Values are never reported.
    type: list
    elements: str
    default:
      - (?i).*_API_KEY$
      - (?i).*_TOKEN$
      - (?i).*_SECRET(_KEY)?$
      - (?i)^(OPENAI|ANTHROPIC|GEMINI|GOOGLE|GROQ|MISTRAL|HF|HUGGINGFACE|GITHUB|GITLAB|AWS|AZURE)_.*KEY.*$
  read_environment:
    description:
      - Report matching variable names from the module's process environment (origin C(env)).
    type: bool
    default: true
  env_files:
    description:
      - Dotenv files to read names from (C(KEY=VALUE), C(export KEY=VALUE), quotes and comments handled).
        Missing files are skipped silently.
    type: list
    elements: str
    default: ['~/.env']
  commands:
    description:
      - Version probes. Each command whose C(argv[0]) is found on E(PATH) runs with C(LANG=C), a 10 s
        timeout and stdout and stderr captured; up to 8 run in parallel.
      - Commands not on E(PATH) are left out without an error.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name reported for the command.
        type: str
        required: true
      argv:
        description: Command and arguments, run without a shell.
        type: list
        elements: str
        required: true
      regex:
        description:
          - Regular expression searched in the output; group 1 (else the whole match) is the version.
        type: str
  git_roots:
    description:
      - Directories searched for git repositories (directories containing C(.git)). Repositories,
        C(node_modules), C(.venv) and hidden directories are not descended into.
    type: list
    elements: str
    default: ['~/src', '~/code', '~/projects', '~/git', '~/repos']
  git_max_depth:
    description: How many directory levels below each root to search.
    type: int
    default: 3
  probe_cache:
    description:
      - File (relative paths and C(~) resolve against O(home)) that remembers each probed command's
        version, keyed on the executable's path, inode, size and modification time, so an unchanged
        binary is not started again. Empty disables the cache.
      - Not written in check mode.
    type: str
    default: ~/.cache/cyclotron/probes.json
  brew_prefixes:
    description:
      - Homebrew prefixes whose C(Cellar) and C(Caskroom) to read.
      - When not set, E(HOMEBREW_PREFIX), C(/opt/homebrew), C(/usr/local), C(/home/linuxbrew/.linuxbrew)
        and C(~/.linuxbrew), where they have a C(Cellar) or C(Caskroom).
    type: list
    elements: str
  dpkg_status_path:
    description:
      - The dpkg status database. Meant for tests and benchmarks; leave the default on real hosts.
    type: path
    default: /var/lib/dpkg/status
  apt_extended_states_path:
    description:
      - apt's auto-installed marks. Meant for tests and benchmarks; leave the default on real hosts.
    type: path
    default: /var/lib/apt/extended_states
notes:
  - Does not run C(pip list), C(npm ls -g), C(brew), C(dpkg-query) or C(git); the only processes it may
    start are C(rpm -qa) (RPM hosts without dpkg), one C(python -c) per interpreter outside a virtualenv,
    and the O(commands) probes.
  - For Windows hosts use the Windows counterpart, whose output the controller converts to the same shape.
seealso:
  - module: ansible.builtin.package_facts
  - module: community.general.pip_package_info
"""

EXAMPLES = r"""
- name: Gather capability facts
  cyclotron_facts:

- name: Gather Python and MCP facts for another account's home, with dependencies
  cyclotron_facts:
    home: /home/alice
    sources: [python, mcp]
    include_dependencies: true
    python_environments:
      - ~/.venvs/work
      - /usr/bin/python3

- name: Probe versions of a few commands
  cyclotron_facts:
    sources: [commands]
    commands:
      - name: node
        argv: [node, --version]
        regex: 'v(\d+\.\d+\.\d+)'
      - name: git
        argv: [git, --version]
        regex: '(\d+\.\d+\.\d+)'

- name: Show what could not be read
  ansible.builtin.debug:
    var: ansible_facts.cyclotron_raw.errors
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to the host's facts.
  returned: always
  type: complex
  contains:
    cyclotron_raw:
      description: Raw capability facts in the shape of C(cyclotron_py.raw.RawFacts).
      returned: always
      type: complex
      contains:
        format:
          description: Version of this shape.
          returned: always
          type: int
          sample: 1
        os:
          description:
            - C(family) (linux or darwin), C(distribution) (os-release ID or macos), C(version), C(arch).
          returned: always
          type: dict
          sample: {"family": "linux", "distribution": "debian", "version": "12", "arch": "x86_64"}
        managers:
          description: Package managers available on the host (apt, rpm, brew, pip, pipx, npm, git).
          returned: always
          type: list
          elements: str
          sample: ["apt", "pip", "npm", "git"]
        packages:
          description:
            - Installed packages. C(manager) is apt, rpm, brew, pip, pipx or npm; C(path) is the Python
              environment, npm prefix, pipx home or Homebrew prefix; C(top_level) is false for dependencies.
          returned: always
          type: list
          elements: dict
          sample: [{"manager": "pip", "name": "requests", "version": "2.32.3", "top_level": true,
                    "path": "/home/alice/.venvs/work"}]
        mcp_servers:
          description:
            - MCP servers. C(assistant) is claude_code, claude_desktop, cursor or vscode; C(scope) is user,
              local (Claude Code per project), project or global (Cursor); C(path) is the config file;
              C(project) is set for local and project scope. C(env_names) holds names only.
          returned: always
          type: list
          elements: dict
          sample: [{"name": "memory", "assistant": "claude_code", "scope": "user",
                    "path": "/home/alice/.claude.json", "transport": "stdio", "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-memory"], "url": "", "env_names": []}]
        api_keys:
          description: Names of API key variables; C(origin) is C(env) or the .env file path.
          returned: always
          type: list
          elements: dict
          sample: [{"name": "OPENAI_API_KEY", "origin": "env"}]
        commands:
          description: Probed commands found on PATH, with the version the regex extracted (or null).
          returned: always
          type: list
          elements: dict
          sample: [{"name": "node", "path": "/usr/bin/node", "version": "20.11.1"}]
        git_repos:
          description: Git repositories with origin URL (credentials removed), branch and HEAD commit.
          returned: always
          type: list
          elements: dict
          sample: [{"path": "/home/alice/src/app", "remote": "https://github.com/alice/app.git",
                    "branch": "main", "head": "3f2c1e0..."}]
        errors:
          description: Sources that could not be read, each with the file or command and a suggested fix.
          returned: always
          type: list
          elements: dict
          sample: [{"source": "/home/alice/.cursor/mcp.json",
                    "message": "malformed JSON at line 3 column 5 (...): fix the JSON ..."}]
"""

# Ansible module layout: the documentation strings come first, then the imports.
from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.cyclotron_gather import ARGUMENT_SPEC, gather, option_errors  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    problems = option_errors(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems))
    facts = gather({**module.params, "check_mode": module.check_mode})
    # Read-only: check mode gathers the same facts.
    module.exit_json(changed=False, ansible_facts={"cyclotron_raw": facts})


if __name__ == "__main__":
    main()
