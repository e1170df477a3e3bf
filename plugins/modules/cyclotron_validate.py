#!/usr/bin/python
"""Documentation for the cyclotron_validate action plugin (it runs on the controller)."""

DOCUMENTATION = r"""
---
module: cyclotron_validate
short_description: Validate Cyclotron manifest files on the controller
description:
  - Checks each manifest for schema, known domains, required fields, duplicate ids, versions that do
    not parse, corrupt or truncated JSON, unsafe package names and host names that do not match the
    file; also refuses two files for one host.
  - Fails with a report that lists each problem with file, JSON path, what is wrong and a suggested fix.
  - Same checks as C(cyclotron validate).
options:
  paths:
    description: Manifest files, or directories whose C(*.json) files are manifests.
    type: list
    elements: path
    required: true
  domains:
    description: Domain names and descriptions replacing the seven defaults.
    type: dict
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
author: Cyclotron developers
"""

EXAMPLES = r"""
- name: Validate every manifest
  cyclotron_validate:
    paths: ["{{ playbook_dir }}/../manifests"]
"""

RETURN = r"""
valid:
  description: Whether every manifest is valid.
  returned: always
  type: bool
  sample: true
summary:
  description: Counts of files, valid and invalid files, errors and warnings.
  returned: always
  type: dict
  sample: {"files": 3, "valid": 3, "invalid": 0, "errors": 0, "warnings": 0}
report:
  description: The report, one line per file and per problem.
  returned: always
  type: list
  elements: str
  sample: ["✔ manifests/pc1.json: valid (42 capabilities)"]
"""
