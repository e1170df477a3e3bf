#!/usr/bin/python
"""Documentation for the cyclotron_sync_report action plugin (it runs on the controller)."""

DOCUMENTATION = r"""
---
module: cyclotron_sync_report
short_description: Compare the fleet again after installing and report every item's outcome
description:
  - Reads the re-gathered manifests and each host's C(cyclotron_outcomes), computes coverage after the
    run, and writes C(reports/sync-<plan id>.md) and C(.json).
  - Hosts that had items planned but were not reached are reported as unreachable, and so are the
    hosts O(host_status) says were not gathered in this run (with the age of their last manifest).
    Every report names them, and none says the fleet is at parity while one exists.
  - Options are checked against this documentation; a missing or wrongly typed option fails naming it.
  - Fails when an item failed (and was rolled back), unless O(fail_on_failed_items) is false.
options:
  plan:
    description: The plan returned by C(cyclotron_plan).
    type: dict
    required: true
  coverage_before:
    description: Coverage returned by C(cyclotron_plan).
    type: dict
  hosts:
    description: Hosts gathered after installing (the ones still reachable).
    type: list
    elements: str
    default: []
  host_status:
    description: The C(host_status) returned by C(cyclotron_plan), which says the hosts not gathered in this run.
    type: dict
    default: {}
  manifest_dir:
    description: Directory of C(<host>.json) manifests on the controller.
    type: path
  reports_dir:
    description: Where the report files are written.
    type: path
  catalog:
    description: Catalog entries from inventory.
    type: dict
  domains:
    description: Domain names replacing the seven defaults.
    type: dict
  fail_on_failed_items:
    description: Fail the task when any item failed.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: In check mode the report is computed but not written.
  diff_mode:
    support: none
author: Cyclotron developers
"""

EXAMPLES = r"""
- name: Report before and after
  cyclotron_sync_report:
    plan: "{{ cyclotron_plan_result.plan }}"
    coverage_before: "{{ cyclotron_plan_result.coverage }}"
    hosts: "{{ cyclotron_gathered_hosts }}"
    host_status: "{{ cyclotron_plan_result.host_status }}"
    manifest_dir: "{{ playbook_dir }}/../manifests"
    reports_dir: "{{ playbook_dir }}/../reports"
"""

RETURN = r"""
lines:
  description: The report for the terminal, one line per item.
  returned: always
  type: list
  elements: str
  sample: ["Cyclotron sync plan-1a2b3c4d5e6f: coverage 67% -> 100%", "  pc2: pip:six [pip] installed 1.16.0"]
report:
  description:
    - The report as data (coverage before and after, counts per status, outcomes, unreachable hosts).
    - C(hosts) has each host's status; an unreachable one also has C(stage), C(gather) (not gathered in
      this run) or C(install) (not reached after planning).
  returned: always
  type: dict
  sample: {"coverage_before": 66.7, "coverage_after": 100.0, "unreachable": ["pc3"],
           "hosts": {"pc3": {"status": "unreachable", "stage": "gather", "last_gathered_at": null,
                             "age_seconds": null}}}
changed:
  description: Whether the report files were written (false in check mode or without O(reports_dir)).
  returned: always
  type: bool
  sample: true
report_path:
  description: Path of the Markdown report.
  returned: when not in check mode
  type: str
  sample: /home/me/cyclotron/reports/sync-plan-1a2b3c4d5e6f.md
"""
