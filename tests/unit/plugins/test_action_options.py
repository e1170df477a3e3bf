"""The controller-side action plugins check their options against their module's documentation:
a missing or wrongly typed option fails naming it (no KeyError traceback), and ``changed`` says
whether files were written. Run through ``ansible localhost -m <action>``, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.action_args import documented_spec, module_doc_file, validate_options

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "manifests" / "valid"
ACTIONS = ("cyclotron_gather", "cyclotron_plan", "cyclotron_sync_report", "cyclotron_validate")


def adhoc(action: str, args: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any], str]:
    """``ansible localhost -m action -a JSON``; the task result (json callback) and all output."""
    env = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-m", action, "-a", json.dumps(args), *extra],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    try:
        result: dict[str, Any] = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        result = {}
    return proc.returncode, result, output


@pytest.mark.parametrize(
    ("action", "args", "named"),
    [
        ("cyclotron_plan", {"hosts": [], "generated_dir": "/nonexistent"}, "missing required arguments: plans_dir"),
        ("cyclotron_plan", {"hosts": [], "plans_dir": "/x", "generated_dir": "/y", "approve": "some"},
         "approve"),
        ("cyclotron_sync_report", {"hosts": []}, "missing required arguments: plan"),
        ("cyclotron_sync_report", {"plan": {}, "fail_on_failed_items": "maybe"}, "fail_on_failed_items"),
        ("cyclotron_validate", {"domains": {}}, "missing required arguments: paths"),
        ("cyclotron_gather", {"facts": {}}, "missing required arguments: dest"),
        ("cyclotron_gather", {"dest": "/tmp", "facts": "not a mapping"}, "facts"),
        ("cyclotron_validate", {"paths": ["/tmp"], "path": "typo"}, "unsupported option path"),
    ],
    ids=["plan-missing", "plan-choice", "report-missing", "report-bool", "validate-missing", "gather-missing",
         "gather-type", "validate-unknown"],
)
def test_a_bad_option_fails_naming_it(action: str, args: dict[str, Any], named: str) -> None:
    rc, result, output = adhoc(action, args)
    assert rc != 0, output
    assert result.get("failed") is True, output
    assert result["msg"].startswith(f"{action}: ") and named in result["msg"], result
    assert "Traceback" not in output and "KeyError" not in output, output


@pytest.mark.parametrize("action", ACTIONS)
def test_the_spec_is_the_modules_documentation(action: str) -> None:
    import yaml

    namespace: dict[str, Any] = {}
    exec(module_doc_file(REPO_ROOT / "plugins" / "action" / f"{action}.py").read_text(), namespace)
    documented = yaml.safe_load(namespace["DOCUMENTATION"])["options"]
    spec = documented_spec(module_doc_file(REPO_ROOT / "plugins" / "action" / f"{action}.py"))
    assert set(spec) == set(documented)
    for name, option in documented.items():
        assert spec[name]["type"] == option["type"], name
        assert spec[name].get("required", False) == option.get("required", False), name


def test_validate_options_defaults_and_converts() -> None:
    spec = documented_spec(module_doc_file(REPO_ROOT / "plugins" / "action" / "cyclotron_plan.py"))
    params, problems = validate_options(spec, {"hosts": "pc1,pc2", "plans_dir": "p", "generated_dir": "g"})
    assert problems == []
    assert params["hosts"] == ["pc1", "pc2"] and params["approve"] == "low-risk" and params["inventory_hosts"] == []


def test_plan_is_changed_when_it_writes_files_and_not_in_check_mode(tmp_path: Path) -> None:
    # pc3 is in the play but was not gathered now: only its manifest on disk is known.
    args = {"hosts": ["pc1", "pc2"], "inventory_hosts": ["pc1", "pc2", "pc3"], "manifest_dir": str(FIXTURES),
            "plans_dir": str(tmp_path / "plans"), "generated_dir": str(tmp_path / "generated")}
    rc, result, output = adhoc("cyclotron_plan", args, "--check")
    assert rc == 0, output
    assert result["changed"] is False and "plan_path" not in result, result
    assert not (tmp_path / "plans").exists()

    rc, result, output = adhoc("cyclotron_plan", args)
    assert rc == 0, output
    assert result["changed"] is True and Path(result["plan_path"]).is_file(), result
    status = result["host_status"]
    assert {h: s["status"] for h, s in status.items()} == {"pc1": "gathered", "pc2": "gathered", "pc3": "unreachable"}
    assert status["pc3"]["last_gathered_at"] and status["pc3"]["age_seconds"] > 0, status
    assert any(line.startswith("  pc3: UNREACHABLE - not gathered in this run") for line in result["summary"]), result
