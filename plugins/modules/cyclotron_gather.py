#!/usr/bin/python
"""Documentation for the cyclotron_gather action plugin (the module part runs on the host)."""

DOCUMENTATION = r"""
---
module: cyclotron_gather
short_description: Gather a host's capabilities and write its manifest on the controller
description:
  - Runs C(cyclotron_facts) on Linux/macOS hosts, or C(win_cyclotron_facts) on hosts with a PowerShell
    shell, then maps the raw facts through the capability catalog into a validated Cyclotron manifest and
    writes C(<dest>/<host>.json) on the controller atomically (temp file + rename).
  - Reports C(changed) only when the capabilities, managers, OS or errors differ from the file on
    disk; a new C(gathered_at) alone is not a change.
  - Sources that failed on the host (a missing manager, a malformed MCP config) are listed in C(errors)
    and shown as warnings; they never stop the manifest.
  - On POSIX hosts whose Python is known (C(ansible_python_interpreter) set, or discovered earlier) and
    whose connection pipelines, the options are validated on the controller against C(cyclotron_facts)'
    argument spec and the gatherer (standard library only) is piped to that Python as a plain script,
    without the AnsiballZ wrapper. The result is the same as running C(cyclotron_facts); otherwise the
    module itself runs.
options:
  facts:
    description:
      - Options for the facts module (see C(cyclotron_facts) and C(win_cyclotron_facts)); options the
        Windows module does not have are dropped for Windows hosts.
      - Without C(commands), the version probes of every catalog entry are used.
    type: dict
    default: {}
  dest:
    description: Directory on the controller that holds C(<host>.json) manifests.
    type: path
    required: true
  catalog:
    description: Catalog entries from inventory (C(cyclotron_catalog)) that extend or override the shipped catalog.
    type: dict
  domains:
    description: Domain names and descriptions replacing the seven defaults.
    type: dict
  host:
    description: Host name written into the manifest; defaults to C(inventory_hostname).
    type: str
attributes:
  check_mode:
    support: full
    description: In check mode the facts are gathered and the manifest built and validated, but not written.
  diff_mode:
    support: none
author: Cyclotron developers
"""

EXAMPLES = r"""
- name: Gather capabilities and write the manifest
  cyclotron_gather:
    dest: "{{ playbook_dir }}/../manifests"
    facts:
      python_environments: [~/venv]
      npm_prefixes: [~/.npm-global]
  register: cyclotron_manifest_written
"""

RETURN = r"""
path:
  description: Absolute path of the manifest on the controller.
  returned: always
  type: str
  sample: /home/me/cyclotron/manifests/pc1.json
gatherer:
  description: How the facts were read on the host, C(script) (piped gatherer) or the module's name.
  returned: always
  type: str
  sample: script
manifest:
  description: The manifest written (or, in check mode, that would be written).
  returned: always
  type: dict
  sample: {"schema_version": 1, "host": "pc1", "capabilities": []}
capabilities:
  description: Number of capabilities in the manifest.
  returned: always
  type: int
  sample: 42
by_type:
  description: Number of capabilities per type.
  returned: always
  type: dict
  sample: {"python_package": 3, "mcp_server": 1}
errors:
  description: Sources that failed on the host, each with the source and the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"source": "choco", "message": "choco not found on PATH"}]
plan_inputs:
  description:
    - What this host's plan depends on besides the manifests, for C(cyclotron pull), which plans from the
      gather alone; C(policy) and C(approve) are the host's C(cyclotron_policy) and C(cyclotron_approve).
  returned: always
  type: dict
  sample: {"policy": null, "catalog": null, "domains": null, "approve": "low-risk"}
"""
