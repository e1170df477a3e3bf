"""Filters capability_matrix / capability_gaps / distribution_plan / capability_report:
the same results as the CLI on the same input, and clear AnsibleFilterErrors on bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from cyclotron_py.cli import main

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "manifests" / "valid"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

_spec = importlib.util.spec_from_file_location(
    "cyclotron_filter_under_test", REPO / "plugins" / "filter" / "cyclotron.py"
)
assert _spec and _spec.loader
flt: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flt)

POLICIES = {
    "pc1": {"exclude": ["tag:games"], "overrides": {"docker": {"priority": "low"}}},
    "pc3": {"domains": ["infrastructure", "ai", "development"], "ignore": ["command:*"],
            "pinned": {"pip:requests": "2.31.0"}},
}


def manifests() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("*.json"))]


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(POLICIES), encoding="utf-8")
    return path


def test_filters_are_registered() -> None:
    assert set(flt.FilterModule().filters()) == {
        "capability_matrix", "capability_gaps", "distribution_plan", "capability_report",
        "cyclotron_version_older",
    }


def test_matrix_filter_equals_cli(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from_filter = flt.capability_report(flt.capability_matrix(manifests(), policies=POLICIES), "json")
    from_cli = cli(["matrix", str(FIXTURES), "--json", "--policy", str(policy_file)], capsys)
    assert from_filter == from_cli
    # A mapping host -> manifest and JSON strings are accepted too.
    as_mapping = {m["host"]: json.dumps(m) for m in manifests()}
    assert flt.capability_report(flt.capability_matrix(as_mapping, policies=POLICIES), "json") == from_cli


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_report_filter_equals_cli(fmt: str, policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = flt.capability_matrix(manifests(), policies=POLICIES)
    assert flt.capability_report(matrix, fmt) == cli(
        ["report", str(FIXTURES), "--format", fmt, "--policy", str(policy_file)], capsys
    )


def test_gaps_filter_equals_cli(capsys: pytest.CaptureFixture[str]) -> None:
    pc1, _pc2, pc3 = manifests()
    from_filter = flt.capability_gaps(pc3, pc1)
    from_cli = json.loads(cli(["diff", str(FIXTURES / "pc3.json"), str(FIXTURES / "pc1.json")], capsys))
    assert from_filter == from_cli
    assert from_filter["pc_a"] == "pc3"


def test_distribution_plan_filter() -> None:
    matrix = flt.capability_matrix(manifests())
    plan = flt.distribution_plan(matrix)
    assert set(plan) == {"pc1", "pc2", "pc3"}
    assert plan["pc2"] == matrix["recommended_distribution"]["to_pc2"]
    assert flt.distribution_plan(manifests(), host="pc3") == plan["pc3"]
    with pytest.raises(AnsibleFilterError, match="host 'pc9' is not in the matrix"):
        flt.distribution_plan(matrix, host="pc9")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: flt.capability_matrix("manifests/"), r"capability_matrix: expects a list of manifests"),
        (lambda: flt.capability_matrix([42]), r"manifests\[0\] must be a manifest mapping"),
        (lambda: flt.capability_matrix(["{not json"]), r"manifests\[0\] is a string but not JSON"),
        (lambda: flt.capability_matrix([{**manifests()[0], "os": {"family": "beos"}}]),
         r"manifests\[0\] \(host pc1\) is not a valid manifest: \$\.os\.family"),
        (lambda: flt.capability_matrix([manifests()[0], manifests()[0]]), r"duplicate host name 'pc1'"),
        (lambda: flt.capability_matrix(manifests(), policies={"pc1": {"domains": ["gamez"]}}),
         r"cyclotron_policy for pc1: domains: 'gamez' is not a known domain"),
        (lambda: flt.capability_matrix(manifests(), policies=["pc1"]), r"policies must map host names"),
        (lambda: flt.capability_matrix(manifests(), catalog="catalog.yml"), r"catalog \(cyclotron_catalog\) must be"),
        (lambda: flt.capability_matrix(manifests(), catalog={"capabilities": {"x": {"name": "X", "domain": "nope"}}}),
         r"capabilities.x.domain 'nope' is not a known domain"),
        (lambda: flt.capability_matrix(manifests(), domains=5), r"domains \(cyclotron_domains\) must be"),
        (lambda: flt.capability_gaps(manifests()[0], {"host": "x"}),
         r"the second manifest \(host x\) is not a valid manifest: \$\.schema_version"),
        (lambda: flt.capability_report({"hosts": []}), r"expects a matrix from capability_matrix"),
        (lambda: flt.capability_report(flt.capability_matrix(manifests()), "pdf"), r"unknown report format 'pdf'"),
    ],
)
def test_bad_input_names_what_is_wrong(call: Any, match: str) -> None:
    with pytest.raises(AnsibleFilterError, match=match):
        call()


def test_custom_domains() -> None:
    m = flt.capability_matrix(manifests(), domains=["infrastructure", "development", "ai", "data", "security",
                                                    "productivity", "media", "games"])
    assert m["domains"][-1] == "games"


def test_through_ansible_identical_to_cli(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real thing: Ansible templating (tagged values, from_json) into the filter."""
    out = tmp_path / "matrix.json"
    playbook = tmp_path / "compare.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Compare through the filter",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "connection": "local",
                    "tasks": [
                        {
                            "name": "Write the matrix",
                            "ansible.builtin.copy": {
                                "content": "{{ cyclotron_manifests | capability_matrix(policies=test_policies)"
                                " | capability_report('json') }}",
                                "dest": str(out),
                                "mode": "0644",
                            },
                            "vars": {
                                "cyclotron_manifests": "{{ query('ansible.builtin.file', *test_files)"
                                " | map('from_json') | list }}",
                            },
                        }
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )
    extra = tmp_path / "vars.json"
    extra.write_text(
        json.dumps({
            "test_files": [str(p) for p in sorted(FIXTURES.glob("*.json"))],
            "test_policies": POLICIES,
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        }),
        encoding="utf-8",
    )
    run = subprocess.run(
        [str(PLAYBOOK), "-i", "localhost,", str(playbook), "-e", f"@{extra}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.read_text(encoding="utf-8") == cli(
        ["matrix", str(FIXTURES), "--json", "--policy", str(policy_file)], capsys
    )


@pytest.mark.parametrize(
    ("installed", "want", "manager", "older"),
    [
        ("1.9.0", "1.10.0", "apt", True),
        ("1:2.43.0-1", "2.44.0", "apt", False),  # the epoch outranks the upstream version
        ("2.43.0-1ubuntu1", "2.43.0-2", "apt", True),
        ("1.0~rc1-1", "1.0-1", "apt", True),  # Debian's tilde sorts before the release
        ("2.43.0.windows.1", "2.43.0", "choco", False),
        ("1.2.3.4", "1.2.3.10", "winget", True),
        ("3.12.1_1", "3.12.2", "brew", True),
        ("2.0.0", "1.0.0", "brew", False),
        ("1.0.0", "1.0.0", "apt", False),
        ("", "1.0.0", "apt", False),  # absent: an install, not an upgrade
        ("1.0.0", "", "apt", False),  # no wanted version: any is fine
        ("build9", "build10", None, True),  # no scheme fits: digit runs as numbers
    ],
)
def test_version_older_uses_the_controller_comparison(
    installed: str, want: str, manager: str | None, older: bool
) -> None:
    assert flt.cyclotron_version_older(installed, want, manager) is older


def test_version_older_names_a_bad_type() -> None:
    with pytest.raises(AnsibleFilterError, match="cyclotron_version_older: want must be a version string, got list"):
        flt.cyclotron_version_older("1.0", ["2.0"], "apt")
