"""Every POSIX installer role's molecule scenario, run for real on this machine.

One test per ``roles/*/molecule/default``: ``molecule test`` with the default (delegated,
unmanaged) driver and a local connection, no containers. Each scenario keeps what it installs
under ``MOLECULE_EPHEMERAL_DIRECTORY`` (a temporary directory here) and checks install,
idempotence, verify and the rollback of deliberately failing items in its verify.yml.
Scenarios for Windows (a platform or connection marked windows/winrm/psrp) are skipped.

Molecule, Ansible and npm caches go to temporary directories; the scenario's log must not
contain the fake secrets of its vault (values with "fake" in ``cyclotron_api_keys_values``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
_WINDOWS_MARK = re.compile(r"windows|winrm|psrp|powershell", re.IGNORECASE)


def _scenarios() -> list[Path]:
    return sorted((REPO_ROOT / "roles").glob("*/molecule/default/molecule.yml"))


def _config(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def _windows_reason(config: dict[str, Any]) -> str | None:
    """Why a scenario targets Windows, from its platforms or its connection settings."""
    for platform in config.get("platforms") or []:
        if _WINDOWS_MARK.search(yaml.safe_dump(platform)):
            return f"platform {platform.get('name', '?')} is a Windows host"
    driver_options = (config.get("driver") or {}).get("options") or {}
    inventory = (config.get("provisioner") or {}).get("inventory") or {}
    for part in (driver_options.get("ansible_connection_options"), inventory.get("host_vars")):
        if part and re.search(r"ansible_(connection|shell_type):\s*(winrm|psrp|powershell)", yaml.safe_dump(part)):
            return "the scenario connects to a Windows host"
    return None


def _fake_secrets(value: Any) -> list[str]:
    """Literal fake secret values in a scenario's vault stand-in (never templates)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "cyclotron_api_keys_values" and isinstance(item, dict):
                found += [
                    v.replace("$$", "$") for v in item.values() if isinstance(v, str) and "fake" in v and "{{" not in v
                ]
            else:
                found += _fake_secrets(item)
    elif isinstance(value, list):
        for item in value:
            found += _fake_secrets(item)
    return found


def _params() -> list[Any]:
    params = []
    for path in _scenarios():
        role = path.parents[2].name
        reason = _windows_reason(_config(path))
        marks = [pytest.mark.skip(reason=f"Windows scenario: {reason}")] if reason else []
        params.append(pytest.param(path, id=role, marks=marks))
    return params


@pytest.mark.parametrize("molecule_file", _params())
def test_molecule_scenario(molecule_file: Path, tmp_path: Path) -> None:
    molecule = VENV_BIN / "molecule"
    if not molecule.exists() and shutil.which("molecule") is None:
        pytest.skip("molecule is not installed (pip install -e '.[test]')")
    role_dir = molecule_file.parents[2]
    config = _config(molecule_file)
    text = molecule_file.read_text(encoding="utf-8")
    if re.search(r"\bnpm\b|npx", text) and shutil.which("npm") is None:
        pytest.skip("npm is not installed")

    env = dict(os.environ)
    # Molecule writes its own ansible.cfg; the repo's would point the scenario elsewhere.
    env.pop("ANSIBLE_CONFIG", None)
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "ephemeral"),
            "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
            "npm_config_cache": str(tmp_path / "npm-cache"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "NO_COLOR": "1",
            "PY_COLORS": "0",
            "TERM": "dumb",
        }
    )
    proc = subprocess.run(
        [str(molecule) if molecule.exists() else "molecule", "test", "--scenario-name", "default"],
        cwd=role_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"molecule test failed for {role_dir.name} (rc={proc.returncode}):\n{output[-8000:]}"
    for secret in _fake_secrets(config):
        assert secret not in output, f"a vault value of the {role_dir.name} scenario reached the log"
