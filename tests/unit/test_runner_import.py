"""How `cyclotron run` loads ansible_runner: without the package's plugin scan, and still whole for others."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_runner_modules_load_without_the_plugin_scan_and_the_package_stays_whole() -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from cyclotron_py.runner import _runner_api
        RunnerConfig, Runner, dump_artifacts, signal_handler = _runner_api()
        assert "importlib.metadata" not in sys.modules, "the entry-point scan ran"
        import ansible_runner
        assert ansible_runner.plugins == {{}}
        # Anyone else asking for the package's names gets the real __init__, run once into it.
        from ansible_runner import run, RunnerConfig as Config
        assert Config is RunnerConfig and ansible_runner.Runner is Runner and callable(run)
        assert isinstance(ansible_runner.plugins, dict)
        import ansible_runner.runner
        assert ansible_runner.runner.ansible_runner is ansible_runner
        assert _runner_api()[1] is Runner
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
