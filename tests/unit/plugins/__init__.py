"""Tests of the Ansible plugins (modules, module_utils, filters, actions)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_as(name: str, path: Path) -> ModuleType:
    """Import the file at ``path`` as module ``name`` (registered in sys.modules, so a module
    under test that imports ``ansible.module_utils.<x>`` finds a file loaded under that name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
