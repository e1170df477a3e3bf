#!/usr/bin/python
"""Documentation for the cyclotron_plan action plugin (it runs on the controller)."""

DOCUMENTATION = r"""
---
module: cyclotron_plan
short_description: Compare the fleet's manifests and write the distribution plan
description:
  - Compares this run's manifests (registered by C(cyclotron_gather)) and those in O(manifest_dir)
    of hosts not gathered now, applies each host's C(cyclotron_policy), and plans installs for O(hosts).
  - Writes C(plans/<id>.json) and the generated playbook C(generated/<id>.yml); the id is a hash of the
    plan's content, so the same plan always has the same id.
  - Items above the approval mode's risk are listed as awaiting approval, not installed.
  - Refuses the whole plan when any package name, version, git remote or MCP entry is unsafe.
  - A host of O(inventory_hosts) that is not in O(hosts) was unreachable or failed to gather; it is
    returned in RV(host_status) as C(unreachable) with the age of its last manifest, named in
    RV(summary), and the summary never says the fleet is at parity while such a host exists.
  - Options are checked against this documentation; a missing or wrongly typed option fails naming it.
options:
  hosts:
    description: Hosts to plan installs for (the reachable hosts gathered in this run).
    type: list
    elements: str
    required: true
  inventory_hosts:
    description:
      - Every host this run meant to gather (gather.yml records the play's hosts, after C(--limit), as
        C(cyclotron_inventory_hosts)). Those missing from O(hosts) are reported as unreachable.
    type: list
    elements: str
    default: []
  manifest_dir:
    description: Directory of C(<host>.json) manifests on the controller.
    type: path
  plans_dir:
    description: Where C(<id>.json) is written.
    type: path
    required: true
  generated_dir:
    description: Where the generated playbook C(<id>.yml) is written.
    type: path
    required: true
  approve:
    description: Which risk levels to install.
    type: str
    choices: [all, low-risk, none]
    default: low-risk
  catalog:
    description: Catalog entries from inventory that extend or override the shipped catalog.
    type: dict
  domains:
    description: Domain names and descriptions replacing the seven defaults.
    type: dict
  decisions_file:
    description:
      - "A person's standing answers from the run store (C(cyclotron approve), C(cyclotron reject)): JSON
        mapping host to capability id to state, wanted_version and reason. C(cyclotron run) writes it into
        its private run dir."
      - Approved items install whatever O(approve) says; rejected items are neither installed nor queued
        again, until a different version is wanted.
    type: path
attributes:
  check_mode:
    support: full
    description: In check mode the plan is computed and returned but not written (C(changed) is false).
  diff_mode:
    support: none
author: Cyclotron developers
"""

EXAMPLES = r"""
- name: Plan the distribution
  cyclotron_plan:
    hosts: "{{ cyclotron_gathered_hosts }}"
    inventory_hosts: "{{ cyclotron_inventory_hosts }}"
    manifest_dir: "{{ playbook_dir }}/../manifests"
    plans_dir: "{{ playbook_dir }}/../plans"
    generated_dir: "{{ playbook_dir }}/../generated"
    approve: low-risk
"""

RETURN = r"""
plan:
  description: The plan (see C(cyclotron_py.plan.Plan)).
  returned: always
  type: dict
  sample: {"plan_id": "plan-1a2b3c4d5e6f", "approve": "low-risk", "hosts": []}
items_by_host:
  description: For each host, the installer role names and the items each receives.
  returned: always
  type: dict
  sample: {"pc2": {"pip": [{"id": "pip:six", "package": "six", "version": "1.16.0"}]}}
coverage:
  description: Coverage before installing, overall, per host and per domain.
  returned: always
  type: dict
  sample: {"overall": {"present": 40, "total": 60, "percent": 66.7}}
host_status:
  description:
    - For each host of O(inventory_hosts), C(gathered) or C(unreachable), with its last manifest's
      C(last_gathered_at) and C(age_seconds) (null when it has none).
  returned: always
  type: dict
  sample: {"pc3": {"status": "unreachable", "last_gathered_at": "2026-11-23T18:00:00Z", "age_seconds": 10800}}
changed:
  description: Whether the plan and its playbook were written (false in check mode).
  returned: always
  type: bool
  sample: true
summary:
  description: One line per host saying what it receives, awaits approval for, or cannot receive.
  returned: always
  type: list
  elements: str
  sample: ["plan-1a2b3c4d5e6f: 1 item(s) to install, approval mode low-risk"]
plan_path:
  description: Path of the plan JSON.
  returned: when not in check mode
  type: str
  sample: /home/me/cyclotron/plans/plan-1a2b3c4d5e6f.json
playbook_path:
  description: Path of the generated playbook.
  returned: when not in check mode
  type: str
  sample: /home/me/cyclotron/generated/plan-1a2b3c4d5e6f.yml
"""
