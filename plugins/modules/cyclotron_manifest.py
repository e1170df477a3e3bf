#!/usr/bin/python
"""Documentation for the cyclotron_manifest action plugin (it runs on the controller)."""

DOCUMENTATION = r"""
---
module: cyclotron_manifest
short_description: Normalise raw capability facts into a manifest and write it on the controller
description:
  - Maps the raw facts of C(cyclotron_facts) (POSIX) or C(win_cyclotron_facts) (Windows) through the
    capability catalog into a validated Cyclotron manifest, and writes C(<dest>/<host>.json) on the
    controller atomically (temp file + rename).
  - Runs entirely on the controller as an action plugin; nothing is sent to the host.
  - Reports C(changed) only when the capabilities, managers, OS or errors differ from the file on
    disk; a new C(gathered_at) alone is not a change.
options:
  raw:
    description: The C(cyclotron_raw) fact returned by C(cyclotron_facts).
    type: dict
  raw_windows:
    description: The C(cyclotron_raw_windows) fact returned by C(win_cyclotron_facts); parsed on the controller.
    type: dict
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
    description: Host name written into the manifest.
    type: str
    default: inventory_hostname
  include_dependencies:
    description: For Windows raw facts, keep packages installed only as dependencies.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: In check mode the manifest is built and validated but not written.
  diff_mode:
    support: none
author: Cyclotron developers
"""

EXAMPLES = r"""
- name: Gather raw facts
  cyclotron_facts:
  register: cyclotron_gathered

- name: Write the manifest
  cyclotron_manifest:
    raw: "{{ cyclotron_gathered.ansible_facts.cyclotron_raw }}"
    dest: "{{ playbook_dir }}/../manifests"
"""

RETURN = r"""
path:
  description: Absolute path of the manifest on the controller.
  returned: always
  type: str
  sample: /home/me/cyclotron/manifests/pc1.json
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
"""
