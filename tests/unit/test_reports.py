"""Reports (terminal inventory, Markdown, JSON) and the diff/matrix/report commands."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.cli import main
from cyclotron_py.compare import capability_matrix, dumps
from cyclotron_py.reports import (
    clean,
    code,
    install_command,
    md,
    render,
    render_markdown,
    render_text,
    use_color,
)
from cyclotron_py.validate import load_manifests
from tests.unit.test_compare import FIXTURES, cap, manifest

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def matrix() -> dict[str, Any]:
    return capability_matrix(load_manifests(FIXTURES))


# --------------------------------------------------------------------------- terminal report


def test_inventory_report_has_the_original_layout(matrix: dict[str, Any]) -> None:
    text = render_text(matrix)
    lines = text.splitlines()
    assert lines[:2] == ["CYCLOTRON CAPABILITY INVENTORY", "=============================="]
    assert "Domain: Infrastructure (63%)" in lines
    docker = next(line for line in lines if line.lstrip().startswith("Docker Desktop:"))
    assert re.fullmatch(r"  Docker Desktop: +✅ pc1  ❌ pc2  ✅ pc3  \(Coverage: 67%\)", docker)
    assert any(re.fullmatch(r"  Git: +✅ pc1  ✅ pc2  ✅ pc3  \(Coverage: 100%\)", line) for line in lines)
    critical = lines.index("CRITICAL GAPS (install immediately):")
    recommended = lines.index("RECOMMENDED (install soon):")
    assert "  - Claude Desktop on pc2" in lines[critical:recommended]
    assert "  - OPENAI_API_KEY on pc2, pc3" in lines[critical:recommended]
    assert "  - GitHub CLI on pc2, pc3" in lines[recommended:]
    assert "  - requests on pc2 (2.31.0 → 2.32.3), pc3 (2.28.1 → 2.32.3)" in lines
    assert "  - Windows Terminal to pc3: winget/choco-only; no apt package known" in lines
    # Domains in catalog order.
    order = [line for line in lines if line.startswith("Domain: ")]
    assert [o.split(" (")[0] for o in order] == [
        "Domain: Infrastructure", "Domain: Development", "Domain: AI", "Domain: Data",
        "Domain: Security", "Domain: Productivity", "Domain: Media",
    ]
    assert "\x1b[" not in text


def test_colour_only_when_asked(matrix: dict[str, Any]) -> None:
    coloured = render_text(matrix, color=True)
    assert "\x1b[32m✅ pc1\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == render_text(matrix)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(_Tty()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(_Tty()) is False


def test_names_from_manifests_cannot_drive_the_terminal_or_break_markdown() -> None:
    evil = cap("pip:x", "1.0", name="x\x1b[2J|`**y**`\nz")
    m = capability_matrix([manifest("a", [evil]), manifest("b", [])])
    text = render_text(m)
    assert "\x1b" not in text and "x?[2J" in text
    report = render_markdown(m)
    row = next(line for line in report.splitlines() if line.startswith("| **x"))
    assert "\\|" in row and "\\`" in row and "\n" not in row
    assert clean("a\x00b\x9bc") == "a?b?c"
    assert md("a|b_c") == "a\\|b\\_c"
    assert code("run `x`") == "``run `x```" or code("run `x`").startswith("``")


# --------------------------------------------------------------------------- Markdown report


def test_markdown_report(matrix: dict[str, Any]) -> None:
    report = render_markdown(matrix)
    assert report.startswith("# Cyclotron capability report\n")
    assert "| pc2 | windows | 43% (17/40) | 19 | 5 | 4 | 0 |" in report
    assert "### Infrastructure (63%)" in report
    assert "| **Docker Desktop** `docker` | high | ✅ 4.37.1 | ❌ | ✅ 20.10.24+dfsg1-1+b3 | 67% |" in report
    assert "### pc3 (linux): " in report
    assert "| high | Visual Studio Code | development | missing | pc1 | `sudo apt-get install -y code` |" in report
    assert "| normal | requests | development | outdated (2.28.1 → 2.32.3) | pc1 | " \
           "`pip install requests==2.32.3` |" in report
    assert "set OPENAI\\_API\\_KEY from the vault" in report
    assert "## Version drift" in report and "## Cannot be distributed" in report
    # Prioritised: within a host, high before normal before low.
    pc2 = report.split("### pc2")[1].split("###")[0]
    priorities = [line.split("|")[1].strip() for line in pc2.splitlines() if line.startswith("| ") and
                  line.split("|")[1].strip() in ("high", "normal", "low")]
    assert priorities == sorted(priorities, key=["high", "normal", "low"].index)


@pytest.mark.parametrize(
    ("rec", "family", "expected", "is_command"),
    [
        ({"manager": "winget", "package": "Git.Git", "version": None}, "windows",
         "winget install --id Git.Git --exact", True),
        ({"manager": "winget", "package": "Git.Git", "version": "2.47.1"}, "windows",
         "winget install --id Git.Git --exact --version 2.47.1", True),
        ({"manager": "choco", "package": "git", "version": None}, "windows", "choco install git -y", True),
        ({"manager": "pip", "package": "requests", "version": "2.31.0"}, "linux", "pip install requests==2.31.0", True),
        ({"manager": "npm", "package": "typescript", "version": None}, "linux", "npm install -g typescript", True),
        ({"manager": "npm", "package": "@scope/pkg", "version": "1.0.0"}, "linux",
         "npm install -g @scope/pkg@1.0.0", True),
        ({"manager": "apt", "package": "jq", "version": None}, "linux", "sudo apt-get install -y jq", True),
        ({"manager": "pipx", "package": "ruff", "version": "0.8.4", "reason": "outdated"}, "linux",
         "pipx install --force ruff==0.8.4", True),
        ({"manager": "brew", "package": "jq", "version": None}, "darwin", "brew install jq", True),
        ({"manager": "git", "package": "https://x/y.git", "details": {"branch": "dev"}}, "linux",
         "git clone --branch dev https://x/y.git", True),
        ({"manager": "env", "package": "OPENAI_API_KEY"}, "linux", "set OPENAI_API_KEY from the vault", False),
        ({"manager": "mcp", "package": "memory", "details": {"command": "cmd", "args": ["/c", "npx", "-y", "m"]}},
         "linux", "add MCP server memory: npx -y m", False),
        ({"manager": "pip", "package": "x; rm -rf ~", "version": None}, "linux", "pip install 'x; rm -rf ~'", True),
    ],
)
def test_install_commands(rec: dict[str, Any], family: str, expected: str, is_command: bool) -> None:
    assert install_command(rec, family) == (expected, is_command)


def test_render_dispatch(matrix: dict[str, Any]) -> None:
    assert json.loads(render(matrix, "json")) == matrix
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(matrix, "pdf")


# --------------------------------------------------------------------------- commands


def test_report_command_formats_and_atomic_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  matrix: dict[str, Any]) -> None:
    assert main(["report", str(FIXTURES)]) == 0
    assert capsys.readouterr().out == render_text(matrix)  # not a terminal: no colour
    assert main(["report", str(FIXTURES), "--color", "always"]) == 0
    assert "\x1b[" in capsys.readouterr().out
    expected_by_format = {"markdown": render_markdown(matrix), "json": dumps(matrix), "text": render_text(matrix)}
    for fmt, expected in expected_by_format.items():
        out = tmp_path / "reports" / f"report.{fmt}"
        assert main(["report", str(FIXTURES), "--format", fmt, "--output", str(out)]) == 0
        assert out.read_text(encoding="utf-8") == expected
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["report.json", "report.markdown", "report.text"]


def test_matrix_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], matrix: dict[str, Any]) -> None:
    assert main(["matrix", str(FIXTURES), "--json"]) == 0
    assert capsys.readouterr().out == dumps(matrix)
    assert main(["matrix", str(FIXTURES)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["CAPABILITY", "pc1", "pc2", "pc3", "COVERAGE"]
    assert re.search(r"^docker +4\.37\.1 +- +20\.10\.24\+df… +67%$", table, re.M)


def test_matrix_json_to_a_file_as_the_program(tmp_path: Path, matrix: dict[str, Any]) -> None:
    # Run as the program: the JSON is written in pieces while it is laid out, the process ends
    # straight after its output (os._exit), and a file that cannot be written is exit 1.
    out = tmp_path / "out" / "matrix.json"
    run = subprocess.run([sys.executable, "-m", "cyclotron_py.cli", "matrix", str(FIXTURES), "--json", "-o", str(out)],
                         capture_output=True, text=True, check=False)
    assert (run.returncode, run.stderr) == (0, "")
    assert out.read_text(encoding="utf-8") == dumps(matrix)
    assert [p.name for p in out.parent.iterdir()] == ["matrix.json"]  # no temp file left
    blocked = tmp_path / "file" / "matrix.json"
    blocked.parent.write_text("not a directory", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "cyclotron_py.cli", "matrix", str(FIXTURES), "--json",
                          "-o", str(blocked)], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "cyclotron matrix:" in run.stderr and "Traceback" not in run.stderr


def test_diff_command_seed_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(FIXTURES / "pc3.json"), str(FIXTURES / "pc1.json")]) == 0
    gaps = json.loads(capsys.readouterr().out)
    assert (gaps["pc_a"], gaps["pc_b"]) == ("pc3", "pc1")  # command line order
    assert set(gaps) == {"schema_version", "kind", "comparison_timestamp", "pc_a", "pc_b", "gaps",
                         "version_drift", "priority_distribution"}
    assert gaps["comparison_timestamp"] == "2025-01-06T09:14:02Z"
    assert [i["name"] for i in gaps["gaps"]["software_missing_from_pc3"]][:2] == ["Claude Desktop", "Firefox"]
    assert main(["diff", str(FIXTURES / "pc3.json"), str(FIXTURES / "pc1.json"), "--format", "text"]) == 0
    assert "Missing from pc3 (on pc1):" in capsys.readouterr().out


def test_policy_catalog_and_domains_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text("all:\n  exclude: ['tag:games']\npc3:\n  domains: [infrastructure, ai]\n", encoding="utf-8")
    assert main(["matrix", str(FIXTURES), "--json", "--policy", str(policy)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {e["id"] for e in doc["policy_excluded"]["to_pc3"]} >= {"gh", "keepassxc"}
    assert doc["policy_excluded"]["to_pc1"] == []
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(
        "cyclotron_catalog:\n  capabilities:\n    htop:\n      name: htop\n      domain: infrastructure\n"
        "      packages: {apt: htop, winget: htop.htop}\n", encoding="utf-8")
    assert main(["matrix", str(FIXTURES), "--json", "--catalog", str(catalog)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["id"]: r["package"] for r in doc["recommended_distribution"]["to_pc1"]}["htop"] == "htop.htop"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["matrix", "{bad}"], "manifests invalid"),
        (["matrix", "{good}", "{dup}"], "keep one manifest per host"),
        (["matrix", "{good}", "--policy", "{policy}"], "domains: 'gamez' is not a known domain"),
        (["report", "{good}", "--policy", "{notyaml}"], "policy file is not valid YAML/JSON"),
        (["diff", "{good}", "{good}"], "diff compares two manifest files"),
        (["matrix", "{nowhere}"], "no such file or directory"),
    ],
)
def test_bad_input_exit_1_and_no_output_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    good = tmp_path / "good"
    good.mkdir()
    for name in ("pc1.json", "pc2.json"):
        (good / name).write_text((FIXTURES / name).read_text(encoding="utf-8"), encoding="utf-8")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pc1.json").write_text((FIXTURES / "pc1.json").read_text(encoding="utf-8"), encoding="utf-8")
    (bad / "pc2.json").write_text('{"host": "pc2"', encoding="utf-8")
    dup = tmp_path / "dup"
    dup.mkdir()
    data = json.loads((FIXTURES / "pc1.json").read_text(encoding="utf-8"))
    (dup / "pc1.json").write_text(json.dumps(data), encoding="utf-8")
    policy = tmp_path / "policy.yml"
    policy.write_text("pc1: {domains: [gamez]}\n", encoding="utf-8")
    notyaml = tmp_path / "policy.json"
    notyaml.write_text("{pc1: [", encoding="utf-8")
    values = {"good": good, "bad": bad, "dup": dup, "policy": policy, "notyaml": notyaml, "nowhere": tmp_path / "x"}
    argv = [a.format(**values) for a in args]
    out = tmp_path / "out" / "result.txt"
    assert main([*argv, "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


# --------------------------------------------------------------------------- hosts not gathered


_STATUS = {
    "pc1": {"status": "gathered", "last_gathered_at": "2026-01-01T12:00:00Z", "age_seconds": 5},
    "pc3": {"status": "unreachable", "last_gathered_at": "2026-01-01T09:00:00Z", "age_seconds": 10800},
    "pc4": {"status": "unreachable", "last_gathered_at": None, "age_seconds": None},
}


def test_every_host_gathered_adds_nothing(matrix: dict[str, Any]) -> None:
    from cyclotron_py.reports import with_host_status

    gathered = {"pc1": _STATUS["pc1"]}
    for fmt in ("text", "markdown"):
        report = render(matrix, fmt)
        assert with_host_status(report, gathered, fmt) == report


def test_hosts_not_gathered_head_the_terminal_report(matrix: dict[str, Any]) -> None:
    from cyclotron_py.reports import with_host_status

    lines = with_host_status(render_text(matrix), _STATUS, "text").splitlines()
    assert lines[:3] == [
        "NOT GATHERED IN THIS RUN (1 of 3 hosts gathered; not known to be at parity):",
        "  - pc3 unreachable, last gathered 3 h ago (2026-01-01T09:00:00Z); compared from that manifest",
        "  - pc4 unreachable, never gathered; not compared",
    ]
    assert lines[4] == "CYCLOTRON CAPABILITY INVENTORY"


def test_hosts_not_gathered_come_under_the_markdown_title(matrix: dict[str, Any]) -> None:
    from cyclotron_py.reports import with_host_status

    lines = with_host_status(render_markdown(matrix), _STATUS, "markdown").splitlines()
    assert lines[:3] == ["# Cyclotron capability report", "", "## Not gathered in this run"]
    assert "| pc3 | 2026-01-01T09:00:00Z | 3 h |" in lines
    assert "| pc4 | never | - |" in lines
