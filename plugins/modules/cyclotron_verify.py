#!/usr/bin/python
# Copyright: Cyclotron contributors
# Apache-2.0 (see pyproject.toml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cyclotron_verify
short_description: Run a version probe and check what it prints
description:
  - Runs a catalog verify probe (an argv list, never a shell string) with C(LANG=C) and
    C(LC_ALL=C), searches its stdout, then its stderr, with O(regex) and returns the version
    (the first group of the regex, or the whole match when it has no group).
  - Fails with a message naming the command when it is not installed, cannot run, exits
    non-zero, times out, prints nothing the regex matches, or prints a version lower than
    O(min_version).
  - Never changes anything (C(changed=false) always).
  - The environment of the probe (proxy, PATH additions) is set with the task's C(environment).
options:
  command:
    description:
      - The probe as an argv list, e.g. C([git, --version]). The first element is looked up in
        O(search_paths), then on E(PATH); an absolute path is used as is.
    type: list
    elements: str
    required: true
  regex:
    description: Python regular expression; group 1 (or the whole match) is the version.
    type: str
    required: true
  min_version:
    description:
      - Lowest acceptable version. Compared loosely (numbers numerically, pre-release tags
        such as C(rc1) below the release).
    type: str
  timeout:
    description: Seconds the probe may run.
    type: float
    default: 30
  search_paths:
    description:
      - Directories searched for the command before E(PATH) and put first on the probe's E(PATH)
        (a venv's C(bin), an npm prefix's C(bin)).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    details: The probe only reads, so it runs in check mode too.
  diff_mode:
    support: none
author:
  - Cyclotron contributors
"""

EXAMPLES = r"""
- name: Verify git
  cyclotron_verify:
    command: [git, --version]
    regex: 'git version (\d+\.\d+\.\d+)'
    min_version: "2.30"

- name: Verify six inside a virtualenv
  cyclotron_verify:
    command: [python3, -c, "import six; print(six.__version__)"]
    regex: '(\d+\.\d+\.\d+)'
    search_paths: [/opt/tools/venv/bin]
"""

RETURN = r"""
version:
  description: The version the probe printed.
  returned: success
  type: str
  sample: "2.43.0"
executable:
  description: The executable that ran.
  returned: when the command was found
  type: str
  sample: /usr/bin/git
rc:
  description: Exit code of the probe.
  returned: when the probe ran
  type: int
  sample: 0
stdout:
  description: Standard output of the probe.
  returned: when the probe ran
  type: str
  sample: "git version 2.43.0"
stderr:
  description: Standard error of the probe.
  returned: when the probe ran
  type: str
  sample: ""
"""

import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.cyclotron_versions import version_key  # noqa: E402

_OUTPUT_LIMIT = 4000


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            command=dict(type="list", elements="str", required=True),
            regex=dict(type="str", required=True),
            min_version=dict(type="str"),
            timeout=dict(type="float", default=30.0),
            search_paths=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` is lower than, equal to or higher than ``right`` (the host's one
    version order, module_utils/cyclotron_versions.py: 1.2 == 1.2.0, 1.2.0rc1 < 1.2.0)."""
    a, b = version_key(left), version_key(right)
    return (a > b) - (a < b)


def find_version(pattern: re.Pattern[str], *texts: str) -> str | None:
    for text in texts:
        match = pattern.search(text)
        if match:
            return (match.group(1) if pattern.groups else match.group(0)).strip()
    return None


def run_module(module: AnsibleModule) -> None:
    argv: list[str] = module.params["command"]
    search_paths: list[str] = module.params["search_paths"] or []
    result: dict = {"changed": False}
    if not argv or not argv[0]:
        module.fail_json(msg="command is empty: give the probe as an argv list, e.g. [git, --version]")
    try:
        pattern = re.compile(module.params["regex"])
    except re.error as exc:
        module.fail_json(msg=f"regex {module.params['regex']!r} is not a valid regular expression: {exc}")

    name = argv[0]
    if os.path.isabs(name):
        path = name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    else:
        path = module.get_bin_path(name, required=False, opt_dirs=search_paths)
    if not path:
        where = f" (searched {', '.join(search_paths)} and PATH)" if search_paths else " on PATH"
        module.fail_json(msg=f"{name} is not installed: command not found{where}", **result)
    assert path is not None  # fail_json exits
    result["executable"] = path

    env = dict(os.environ, LANG="C", LC_ALL="C")
    if search_paths:
        env["PATH"] = os.pathsep.join(search_paths + [env.get("PATH", os.defpath)])
    try:
        proc = subprocess.run(
            [path] + argv[1:],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=module.params["timeout"],
            check=False,
        )
    except subprocess.TimeoutExpired:
        module.fail_json(msg=f"{' '.join(argv)} did not finish within {module.params['timeout']:g} s", **result)
    except OSError as exc:
        module.fail_json(msg=f"{' '.join(argv)} could not run: {exc.strerror or exc}", **result)

    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    result.update(rc=proc.returncode, stdout=stdout[-_OUTPUT_LIMIT:], stderr=stderr[-_OUTPUT_LIMIT:])
    if proc.returncode != 0:
        module.fail_json(msg=f"{' '.join(argv)} exited with rc={proc.returncode}", **result)

    version = find_version(pattern, stdout, stderr)
    if version is None:
        module.fail_json(
            msg=f"the output of {' '.join(argv)} does not match {pattern.pattern!r}: "
            f"{(stdout or stderr).strip()[:200]!r}",
            **result,
        )
    assert version is not None  # fail_json exits
    result["version"] = version
    min_version = module.params["min_version"]
    if min_version and compare_versions(version, min_version) < 0:
        module.fail_json(
            msg=f"{' '.join(argv)} reports version {version}, lower than the required {min_version}",
            **result,
        )
    module.exit_json(**result)


def main() -> None:
    run_module(build_module())


if __name__ == "__main__":
    main()
