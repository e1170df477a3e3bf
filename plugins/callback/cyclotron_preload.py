"""Callback plugin: import Cyclotron's controller code once, before Ansible forks its workers.

Action plugins are imported in each forked worker, so without this every host would pay
for importing pydantic and cyclotron_py and for building the catalog (~0.15 s of CPU).
Loaded automatically (it needs no enabling) and handles no events.
"""

from __future__ import annotations

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: cyclotron_preload
type: aggregate
short_description: Import Cyclotron's controller code before the workers fork
description:
  - Imports cyclotron_py (models, catalog, normalize, validate, compare, plan) and builds the shipped
    catalog in the controller's main process, so forked workers inherit them instead of importing
    them once per host. Handles no events.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "cyclotron_preload"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self) -> None:
        super().__init__()
        try:
            from cyclotron_py import catalog, compare, normalize, plan, validate  # noqa: F401

            catalog.load_catalog()
        except Exception:  # noqa: BLE001 - preloading only saves time; the plugins report real errors
            pass
