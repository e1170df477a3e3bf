"""cyclotron_py.windows against recorded Windows output (tests/fixtures/windows/README.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.catalog import load_catalog
from cyclotron_py.raw import RawFacts, RawPackage
from cyclotron_py.windows import (
    WindowsFactsError,
    merge_windows_packages,
    parse_choco_list,
    parse_choco_packages_config,
    parse_commands,
    parse_git_repo,
    parse_mcp_files,
    parse_registry,
    parse_winget_export,
    to_raw,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "windows"
MCP_PATHS: dict[str, str] = json.loads((FIXTURES / "mcp" / "paths.json").read_text())
# Every fake secret in the fixtures contains this marker.
SECRET_MARK = "FAKE"


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def module_raw(name: str = "win_cyclotron_facts_result.json") -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(text(name))["ansible_facts"]["cyclotron_raw_windows"]
    return raw


def mcp_fixture_files() -> dict[str, str | None]:
    return {path: text(f"mcp/{name}") for path, name in MCP_PATHS.items()}


def by_name(packages: list[RawPackage]) -> dict[str, RawPackage]:
    return {p.name: p for p in packages}


# --- winget ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "count", "samples"),
    [
        (
            "winget_export.json",
            15,
            [
                ("Git.Git", "2.44.0", "winget"),
                ("OpenJS.NodeJS.LTS", "20.11.1", "winget"),
                ("Notepad++.Notepad++", "8.6.4", "winget"),
                ("9NBLGGH4NNS1", "1.22.10582.0", "msstore"),
                ("XP89DCGQ3K6VLD", "0.79.0", "msstore"),
            ],
        ),
        (
            "winget_export_bom.json",
            5,
            [("Git.Git", "2.44.0", "winget"), ("9NBLGGH4NNS1", "1.22.10582.0", "msstore")],
        ),
        (
            "winget_export_noversions.json",
            8,
            [("Git.Git", None, "winget"), ("Google.Chrome", None, "winget")],
        ),
    ],
)
def test_parse_winget_export(fixture: str, count: int, samples: list[tuple[str, str | None, str]]) -> None:
    packages = parse_winget_export(text(fixture))
    assert len(packages) == count
    assert all(p.manager == "winget" and p.top_level for p in packages)
    found = by_name(packages)
    for name, version, source in samples:
        assert (found[name].version, found[name].path) == (version, source)


def test_parse_winget_export_bytes_with_bom() -> None:
    raw = (FIXTURES / "winget_export_bom.json").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert parse_winget_export(raw) == parse_winget_export(text("winget_export_bom.json"))


def test_parse_winget_export_without_versions_has_no_version() -> None:
    assert {p.version for p in parse_winget_export(text("winget_export_noversions.json"))} == {None}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("", r"winget export is empty; re-run `winget export"),
        ("\ufeff  \r\n", "winget export is empty"),
        ("{", r"not valid JSON \(line 1 column 2"),
        (text("winget_export_invalid.json"), r"not valid JSON \(line \d+ column \d+: .*\); re-run"),
        ("[]", "has no 'Sources' list"),
        ('{"WinGetVersion": "1.7"}', "has no 'Sources' list"),
        ('{"Sources": [{"Packages": {}}]}', r"Sources\[0\] must have a 'Packages' list"),
        (
            '{"Sources": [{"Packages": [{"Version": "1.0"}]}]}',
            r"Sources\[0\]\.Packages\[0\] has no PackageIdentifier",
        ),
        ('{"Sources": ["winget"]}', r"Sources\[0\] must have a 'Packages' list"),
    ],
)
def test_parse_winget_export_rejects_bad_input(body: str, match: str) -> None:
    with pytest.raises(WindowsFactsError, match=match) as info:
        parse_winget_export(body)
    assert isinstance(info.value, ValueError)


def test_parse_winget_export_empty_sources_and_unknown_version() -> None:
    assert parse_winget_export('{"Sources": []}') == []
    doc = {"Sources": [{"Packages": [{"PackageIdentifier": "A.B", "Version": "Unknown"}]}]}
    assert parse_winget_export(json.dumps(doc)) == [RawPackage(manager="winget", name="A.B", path="winget")]


# --- Chocolatey -----------------------------------------------------------------

V2_DEPENDENCIES = {"7zip.install", "git.install", "notepadplusplus.install", "vscode.install"}


@pytest.mark.parametrize(
    ("fixture", "count", "dependencies", "samples"),
    [
        (
            "choco_list_v2_r.txt",
            20,
            V2_DEPENDENCIES,
            {"git": "2.44.0", "nodejs-lts": "20.11.1", "KB2919355": "1.0.20160915"},
        ),
        ("choco_list_v2_plain.txt", 20, V2_DEPENDENCIES, {"chocolatey": "2.2.2", "putty.portable": "0.80"}),
        ("choco_list_v1_plain.txt", 7, {"git.install"}, {"chocolatey": "0.10.15", "erlang": "22.3"}),
        ("choco_list_v2_r_warnings.txt", 3, {"git.install"}, {"chocolatey": "2.2.2", "git": "2.44.0"}),
    ],
)
def test_parse_choco_list(fixture: str, count: int, dependencies: set[str], samples: dict[str, str]) -> None:
    packages = parse_choco_list(text(fixture))
    assert len(packages) == count
    assert {p.name for p in packages if not p.top_level} == dependencies
    assert all(p.manager == "choco" for p in packages)
    found = by_name(packages)
    for name, version in samples.items():
        assert found[name].version == version
    # Without their meta package, .portable/.install packages are what the user installed.
    assert "Chocolatey" not in found


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("git|2.44.0", [("git", "2.44.0", True)]),
        ("git 2.44.0\r\n", [("git", "2.44.0", True)]),
        ("putty.portable|0.80", [("putty.portable", "0.80", True)]),
        ("putty|0.80\nputty.portable|0.80", [("putty", "0.80", True), ("putty.portable", "0.80", False)]),
        ("Git.Install|2.44.0\ngit|2.44.0", [("Git.Install", "2.44.0", False), ("git", "2.44.0", True)]),
        ("Chocolatey v2.2.2", []),
        ("1 packages installed.", []),
        ("WARNING: Not running from an elevated shell", []),
        ("", []),
        ("git|2.44.0\ngit|2.44.0", [("git", "2.44.0", True)]),
        ("pkg|1.0.0-beta2", [("pkg", "1.0.0-beta2", True)]),
    ],
)
def test_parse_choco_list_lines(body: str, expected: list[tuple[str, str, bool]]) -> None:
    assert [(p.name, p.version, p.top_level) for p in parse_choco_list(body)] == expected


def test_parse_choco_packages_config() -> None:
    packages = parse_choco_packages_config(text("packages.config"))
    assert len(packages) == 11
    found = by_name(packages)
    assert found["git"].version == "2.44.0"
    assert found["ripgrep"].version is None
    assert {p.name for p in packages if not p.top_level} == {"7zip.install", "git.install"}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("", "packages.config is empty"),
        ("<packages><package id=", r"not valid XML \(.*line 1"),
        ("<configuration />", r"root element is <configuration>, expected <packages>"),
        ('<packages><package version="1.0" /></packages>', "<package> number 1 has no valid id"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><packages />', "must not contain a DOCTYPE"),
    ],
)
def test_parse_choco_packages_config_rejects_bad_input(body: str, match: str) -> None:
    with pytest.raises(WindowsFactsError, match=match):
        parse_choco_packages_config(body)


# --- registry -------------------------------------------------------------------


def test_parse_registry_fixture() -> None:
    packages = parse_registry(json.loads(text("registry.json")))
    names = [p.name for p in packages]
    assert len(names) == len(set(names)) == 10
    assert names.count("7-Zip 23.01 (x64)") == 1  # WOW6432Node duplicate
    assert "Python 3.12.2 Core Interpreter (64-bit)" not in names  # SystemComponent = 1
    assert not [n for n in names if n.startswith("Security Update")]  # ParentKeyName
    assert all(p.manager == "registry" and p.top_level for p in packages)
    found = by_name(packages)
    assert (found["Git"].version, found["Git"].path) == ("2.44.0", "HKLM")
    assert found["Microsoft Visual Studio Code (User)"].path == "HKCU"


def test_parse_registry_single_object() -> None:
    assert [p.name for p in parse_registry(json.loads(text("registry_single.json")))] == ["Git"]


@pytest.mark.parametrize(
    ("entry", "kept"),
    [
        ({"DisplayName": "Tool", "DisplayVersion": "1.0"}, True),
        ({"displayname": "Tool", "displayversion": "1.0"}, True),
        ({"DisplayName": "Tool", "SystemComponent": 1}, False),
        ({"DisplayName": "Tool", "SystemComponent": "1"}, False),
        ({"DisplayName": "Tool", "SystemComponent": 0}, True),
        ({"DisplayName": "Tool", "ParentKeyName": "OfficeX"}, False),
        ({"DisplayName": "Tool", "ParentKeyName": ""}, True),
        ({"DisplayName": "  "}, False),
        ({"DisplayVersion": "1.0"}, False),
        ("not a mapping", False),
    ],
)
def test_parse_registry_filters(entry: Any, kept: bool) -> None:
    assert bool(parse_registry([entry])) is kept


def test_parse_registry_dedupes_by_name_and_version() -> None:
    entries = [
        {"DisplayName": "Tool", "DisplayVersion": "1.0"},
        {"DisplayName": "tool", "DisplayVersion": "1.0"},
        {"DisplayName": "Tool", "DisplayVersion": "2.0"},
    ]
    assert [(p.name, p.version) for p in parse_registry(entries)] == [("Tool", "1.0"), ("Tool", "2.0")]


# --- merge ----------------------------------------------------------------------


def test_merge_windows_packages_fixtures() -> None:
    merged = merge_windows_packages(
        parse_winget_export(text("winget_export.json")),
        parse_choco_list(text("choco_list_v2_r.txt")),
        parse_registry(json.loads(text("registry.json"))),
    )
    registry = sorted(p.name for p in merged if p.manager == "registry")
    assert registry == [
        "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135",
        "Mozilla Firefox (x64 en-US)",
        "Zoom Workplace",
    ]
    assert len([p for p in merged if p.manager != "registry"]) == 35


@pytest.mark.parametrize(
    ("manager", "package", "display_name", "covered"),
    [
        ("winget", "Git.Git", "Git", True),
        ("winget", "Google.Chrome", "Google Chrome", True),
        ("winget", "OpenJS.NodeJS.LTS", "Node.js", True),
        ("winget", "7zip.7zip", "7-Zip 23.01 (x64)", True),
        ("winget", "Notepad++.Notepad++", "Notepad++ (64-bit x64)", True),
        ("winget", "Python.Python.3.12", "Python 3.12.2 (64-bit)", True),
        ("winget", "Microsoft.VisualStudioCode", "Microsoft Visual Studio Code (User)", True),
        ("choco", "nodejs-lts", "Node.js", True),
        ("choco", "putty.portable", "PuTTY release 0.80 (64-bit)", True),
        ("choco", "git", "GitHub Desktop", False),
        ("winget", "Git.Git", "Zoom Workplace", False),
        ("winget", "GoLang.Go", "Go Programming Language amd64 go1.22.1", False),
    ],
)
def test_merge_windows_packages_heuristic(
    manager: str, package: str, display_name: str, covered: bool
) -> None:
    managed = [RawPackage(manager=manager, name=package)]
    entry = RawPackage(manager="registry", name=display_name)
    merged = merge_windows_packages(
        managed if manager == "winget" else [], managed if manager == "choco" else [], [entry]
    )
    assert (entry not in merged) is covered


# --- MCP ------------------------------------------------------------------------

CLAUDE_JSON = "C:\\Users\\alice\\.claude.json"
MSIX = (
    "C:\\Users\\alice\\AppData\\Local\\Packages\\Claude_pzs8sxrjxfjjc\\LocalCache\\Roaming\\Claude\\"
    "claude_desktop_config.json"
)


def test_parse_mcp_files_fixtures() -> None:
    servers, errors = parse_mcp_files(mcp_fixture_files(), home="C:\\Users\\alice")
    assert errors == []
    got = {(s.assistant, s.scope, s.name): s for s in servers}
    assert sorted(got) == sorted(
        [
            ("claude_code", "user", "memory"),
            ("claude_code", "user", "github"),
            ("claude_code", "local", "postgres"),
            ("claude_code", "local", "stripe"),
            ("claude_code", "project", "api"),
            ("claude_code", "project", "sqlite"),
            ("claude_code", "project", "linear"),
            ("claude_desktop", "user", "filesystem"),
            ("claude_desktop", "user", "github"),
            ("claude_desktop", "user", "memory"),
            ("claude_desktop", "user", "brave-search"),
            ("cursor", "global", "context7"),
            ("cursor", "global", "internal"),
            ("cursor", "project", "playwright"),
            ("vscode", "user", "perplexity"),
            ("vscode", "user", "fetch"),
            ("vscode", "project", "github"),
        ]
    )
    memory = got["claude_code", "user", "memory"]
    # `cmd /c npx ...` is unwrapped to the portable form.
    assert (memory.command, memory.args, memory.env_names) == (
        "npx",
        ["-y", "@modelcontextprotocol/server-memory"],
        ["MEMORY_FILE_PATH"],
    )
    assert got["claude_desktop", "user", "memory"].command == "npx"  # `cmd /C`
    assert got["claude_desktop", "user", "memory"].path == MSIX
    assert got["claude_desktop", "user", "brave-search"].env_names == ["BRAVE_API_KEY"]
    # Local scope keeps the config file as path, as the POSIX module does.
    assert got["claude_code", "local", "postgres"].path == CLAUDE_JSON
    assert got["claude_code", "local", "postgres"].args[-1] == "postgresql://localhost:5432/app"
    assert "--api-key=<redacted>" in got["claude_code", "local", "stripe"].args
    assert got["claude_code", "project", "linear"].args == ["-y", "linear-mcp", "--token", "<redacted>"]
    assert got["claude_code", "project", "sqlite"].args[-2:] == [
        "--db-path",
        "C:\\Users\\alice\\src\\webapp\\data.db",
    ]
    github = got["claude_code", "user", "github"]
    assert (github.transport, github.url, github.env_names) == (
        "http",
        "https://api.githubcopilot.com/mcp/",
        [],
    )
    internal = got["cursor", "global", "internal"]
    assert (internal.transport, internal.url) == (
        "sse",
        "https://mcp.internal.example.com/sse",
    )
    assert got["cursor", "global", "context7"].transport == "http"
    assert got["claude_code", "project", "api"].url == "${API_BASE_URL:-https://api.example.com}/mcp"
    assert got["vscode", "user", "perplexity"].env_names == ["PERPLEXITY_API_KEY"]


def test_parse_mcp_files_never_returns_secret_values() -> None:
    files = {
        **mcp_fixture_files(),
        "C:\\Users\\bob\\AppData\\Roaming\\Claude\\claude_desktop_config.json": text("mcp/malformed.json"),
    }
    assert sum(SECRET_MARK in (body or "") for body in files.values()) >= 6
    servers, errors = parse_mcp_files(files)
    dumped = json.dumps([s.model_dump() for s in servers] + [e.model_dump() for e in errors])
    assert SECRET_MARK not in dumped
    assert "sk-ant" not in dumped  # .claude.json's primaryApiKey is never looked at


def test_parse_mcp_files_sanitised_module_text_matches_disk_files() -> None:
    # What the module sends (env/headers blanked, other keys dropped) parses to the same servers.
    from_module = module_raw()["mcp_files"]
    on_disk, _ = parse_mcp_files(mcp_fixture_files())
    sent, errors = parse_mcp_files({k: v for k, v in from_module.items() if k in MCP_PATHS})
    assert errors == []
    assert sent == on_disk


@pytest.mark.parametrize(
    ("path", "body", "match"),
    [
        (
            "C:\\Users\\bob\\AppData\\Roaming\\Claude\\claude_desktop_config.json",
            text("mcp/malformed.json"),
            r"^C:\\Users\\bob\\AppData\\Roaming\\Claude\\claude_desktop_config\.json: "
            r"not valid JSON \(line 5",
        ),
        ("C:\\Users\\bob\\.cursor\\mcp.json", "[1, 2]", r"\.cursor\\mcp\.json: expected a JSON object"),
        ("C:\\Users\\bob\\.cursor\\mcp.json", '{"mcpServers": []}', "the servers block must be an object"),
        ("C:\\Users\\bob\\.cursor\\mcp.json", '{"mcpServers": {"x": "npx"}}', "server 'x' must be an object"),
        ("C:\\Users\\bob\\notes.json", "{}", r"notes\.json: not a known MCP config file"),
    ],
)
def test_parse_mcp_files_errors_name_the_file(path: str, body: str, match: str) -> None:
    servers, errors = parse_mcp_files({path: body})
    assert servers == []
    assert len(errors) == 1
    assert errors[0].source == "mcp"
    assert re.search(match, errors[0].message), errors[0].message


@pytest.mark.parametrize(
    ("path", "home", "scope"),
    [
        ("D:\\profiles\\bob\\.cursor\\mcp.json", "D:\\profiles\\bob", "global"),
        ("D:\\profiles\\bob\\.cursor\\mcp.json", "", "project"),
        ("C:\\Users\\bob\\.cursor\\mcp.json", "", "global"),
        ("C:\\Users\\bob\\src\\app\\.cursor\\mcp.json", "C:\\Users\\bob", "project"),
    ],
)
def test_parse_mcp_files_cursor_scope(path: str, home: str, scope: str) -> None:
    servers, _ = parse_mcp_files({path: '{"mcpServers": {"x": {"command": "npx"}}}'}, home=home)
    assert [s.scope for s in servers] == [scope]


@pytest.mark.parametrize(
    ("entry", "command", "args", "transport"),
    [
        ({"command": "cmd", "args": ["/c", "npx", "-y", "pkg"]}, "npx", ["-y", "pkg"], "stdio"),
        ({"command": "cmd.exe", "args": ["/s", "/c", "uvx", "tool"]}, "uvx", ["tool"], "stdio"),
        (
            {"command": "C:\\Windows\\System32\\cmd.exe", "args": ["/C", "node", "s.js"]},
            "node",
            ["s.js"],
            "stdio",
        ),
        ({"command": "cmd", "args": ["/c"]}, "cmd", ["/c"], "stdio"),
        (
            {"command": "npx", "args": ["-y", "pkg", "--api-key", "plainvalue"]},
            "npx",
            ["-y", "pkg", "--api-key", "<redacted>"],
            "stdio",
        ),
        ({"command": "npx", "args": ["--token", "--verbose"]}, "npx", ["--token", "--verbose"], "stdio"),
        ({"command": "npx", "args": ["ghp_abcdefgh12", "sk-ab"]}, "npx", ["<redacted>", "sk-ab"], "stdio"),
        (
            {
                "command": "npx",
                "args": ["mcp-remote", "https://x/mcp", "--header", "Authorization: Bearer t0k"],
            },
            "npx",
            ["mcp-remote", "https://x/mcp", "--header", "Authorization: <redacted>"],
            "stdio",
        ),
        (
            {"command": "uvx", "args": ["srv", "API_KEY=abc", "MODE=x"]},
            "uvx",
            ["srv", "API_KEY=<redacted>", "MODE=x"],
            "stdio",
        ),
        (
            {"command": "npx", "args": ["--key", "abc", "--db-path", "C:\\x.db"]},
            "npx",
            ["--key", "<redacted>", "--db-path", "C:\\x.db"],
            "stdio",
        ),
        (
            {"command": "npx", "args": ["ssh://git@host/r", "https://u:p@h/x?k=v#f"]},
            "npx",
            ["ssh://git@host/r", "https://h/x"],
            "stdio",
        ),
        (
            {"command": "npx", "args": ["https://tok@example.com/x"]},
            "npx",
            ["https://example.com/x"],
            "stdio",
        ),
        ({"command": "npx", "args": {"value": ["-y", "pkg"], "Count": 2}}, "npx", ["-y", "pkg"], "stdio"),
        ({"type": "streamable-http", "url": "https://x/mcp"}, "", [], "http"),
        ({"type": "sse", "url": "https://x/sse"}, "", [], "sse"),
        ({"url": "https://x/mcp"}, "", [], "http"),
    ],
)
def test_parse_mcp_server_entry(entry: dict[str, Any], command: str, args: list[str], transport: str) -> None:
    servers, errors = parse_mcp_files({".mcp.json": json.dumps({"mcpServers": {"s": entry}})})
    assert errors == []
    assert (servers[0].command, servers[0].args, servers[0].transport) == (command, args, transport)


def test_parse_mcp_files_skips_unreadable_and_empty() -> None:
    assert parse_mcp_files({"C:\\a\\.mcp.json": None, "C:\\b\\.mcp.json": "  "}) == ([], [])


def test_parse_mcp_files_non_text_is_an_error() -> None:
    servers, errors = parse_mcp_files({"C:\\a\\.mcp.json": {"mcpServers": {}}})  # type: ignore[dict-item]
    assert servers == []
    assert [e.message for e in errors] == ["C:\\a\\.mcp.json: expected the file's text, got dict"]


# --- commands and git -----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "version"),
    [
        ({"name": "git", "version_output": "git version 2.44.0.windows.1"}, "2.44.0"),
        (
            {
                "name": "git",
                "version_output": "git version 2.44.0.windows.1",
                "regex": r"git version (\d+\.\d+\.\d+)",
            },
            "2.44.0",
        ),
        ({"name": "node", "version_output": "v20.11.1", "regex": r"v\d+"}, "v20"),
        ({"name": "tool", "version_output": "no version here"}, None),
    ],
)
def test_parse_commands_versions(entry: dict[str, Any], version: str | None) -> None:
    commands, errors = parse_commands([entry])
    assert errors == []
    assert commands[0].version == version


def test_parse_commands_drops_store_stub_and_reports_bad_regex() -> None:
    stub = {
        "name": "python",
        "path": "C:\\Users\\a\\AppData\\Local\\Microsoft\\WindowsApps\\python.exe",
        "version_output": "Python was not found; run without arguments to install from the Microsoft Store",
    }
    bad = {"name": "x", "version_output": "1.0", "regex": "("}
    commands, errors = parse_commands([stub, bad])
    assert [c.name for c in commands] == ["x"]
    assert len(errors) == 1
    assert errors[0].message.startswith("x: regex '(' is invalid")


@pytest.mark.parametrize(
    ("entry", "remote", "branch", "head"),
    [
        (
            {
                "head_text": "ref: refs/heads/main\n",
                "ref_text": "a" * 40 + "\n",
                "config_text": '[remote "origin"]\n\turl = https://github.com/a/b.git',
            },
            "https://github.com/a/b.git",
            "main",
            "a" * 40,
        ),
        (
            {"head_text": "ref: refs/heads/feature/x", "ref_text": "b" * 40 + " refs/heads/feature/x"},
            "",
            "feature/x",
            "b" * 40,
        ),
        ({"head_text": "c" * 40}, "", "", "c" * 40),
        (
            {"config_text": '[remote "origin"]\n\turl = https://alice:FAKEtoken@github.com/a/b.git'},
            "https://github.com/a/b.git",
            "",
            "",
        ),
        (
            {
                "config_text": '[remote "upstream"]\n url = git@github.com:u/r.git\n'
                '[remote "origin"]\n url = ssh://git@host/r'
            },
            "ssh://git@host/r",
            "",
            "",
        ),
        (
            {
                "config_text": '[remote "fork"]\n\turl = git@github.com:u/r.git\n'
                '[branch "main"]\n\tremote = fork'
            },
            "git@github.com:u/r.git",
            "",
            "",
        ),
    ],
)
def test_parse_git_repo(entry: dict[str, Any], remote: str, branch: str, head: str) -> None:
    repo = parse_git_repo({"path": "C:\\src\\r", **entry})
    assert (repo.path, repo.remote, repo.branch, repo.head) == ("C:\\src\\r", remote, branch, head)


# --- to_raw ---------------------------------------------------------------------


def test_to_raw_full_module_result() -> None:
    facts = to_raw(module_raw())
    model = RawFacts.model_validate(facts)
    assert model.os.model_dump() == {
        "family": "windows",
        "distribution": "windows",
        "version": "10.0.22631",
        "arch": "x86_64",
    }
    assert model.managers == ["winget", "choco", "pip", "npm", "git"]
    names = {(p.manager, p.name) for p in model.packages}
    assert ("winget", "Git.Git") in names
    assert ("winget", "9NBLGGH4NNS1") in names
    assert ("choco", "git") in names
    assert ("choco", "git.install") not in names  # dependency, left out by default
    assert {p.name for p in model.packages if p.manager == "registry"} == {
        "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135",
        "Mozilla Firefox (x64 en-US)",
        "Zoom Workplace",
    }
    assert len(model.mcp_servers) == 17
    assert {(k.name, k.origin) for k in model.api_keys} == {
        ("ANTHROPIC_API_KEY", "env"),
        ("AWS_ACCESS_KEY_ID", "env"),
        ("AWS_SECRET_ACCESS_KEY", "env"),
        ("GITHUB_TOKEN", "env"),
        ("HF_TOKEN", "env"),
        ("OPENAI_API_KEY", "env"),
        ("OPENAI_API_KEY", "C:\\Users\\alice\\src\\webapp\\.env"),
        ("STRIPE_SECRET_KEY", "C:\\Users\\alice\\src\\webapp\\.env"),
        ("DATABASE_PASSWORD", "C:\\Users\\alice\\src\\webapp\\.env"),
    }
    assert {c.name: c.version for c in model.commands} == {
        "git": "2.44.0",
        "python": "3.12.2",
        "pip": "24.0",
        "node": "20.11.1",
        "npm": "10.2.4",
    }
    repos = {r.path.rsplit("\\", 1)[-1]: r for r in model.git_repos}
    assert (repos["webapp"].remote, repos["webapp"].branch) == ("https://github.com/alice/webapp.git", "main")
    assert repos["dotfiles"].remote == "https://gitlab.example.com/alice/dotfiles.git"
    assert repos["dotfiles"].head == "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
    assert (repos["detached"].branch, repos["detached"].head) == (
        "",
        "0123456789abcdef0123456789abcdef01234567",
    )
    assert [e.source for e in model.errors] == ["mcp"]
    assert SECRET_MARK not in json.dumps(facts)


def test_to_raw_accepts_the_whole_module_result_and_dependencies() -> None:
    result = json.loads(text("win_cyclotron_facts_result.json"))
    with_deps = to_raw(result, include_dependencies=True)
    names = {p["name"] for p in with_deps["packages"] if p["manager"] == "choco"}
    assert {"git.install", "vscode.install"} <= names
    assert len(with_deps["packages"]) == len(to_raw(result)["packages"]) + len(V2_DEPENDENCIES)


def test_to_raw_as_system_reports_winget_error() -> None:
    facts = RawFacts.model_validate(to_raw(module_raw("win_cyclotron_facts_result_system.json")))
    assert facts.managers == []
    assert [e.source for e in facts.errors] == ["winget"]
    assert "become_method runas" in facts.errors[0].message
    assert [p.name for p in facts.packages] == ["Git", "7-Zip 23.01 (x64)", "Node.js"]


@pytest.mark.parametrize(
    ("override", "source", "match"),
    [
        ({"winget_export": text("winget_export_invalid.json")}, "winget", "not valid JSON"),
        ({"winget_export": ""}, "winget", "winget export is empty"),
        ({"choco_list": 5}, "choco", ""),
        ({"mcp_files": {"C:\\Users\\a\\.mcp.json": "{"}}, "mcp", r"\.mcp\.json: not valid JSON"),
        ({"api_key_patterns": ["("]}, "env", r"api_key_patterns: '\(' is invalid"),
        ({"commands": [{"name": "x", "version_output": "1", "regex": "["}]}, "commands", "x: regex"),
    ],
)
def test_to_raw_turns_parse_failures_into_errors(override: dict[str, Any], source: str, match: str) -> None:
    facts = RawFacts.model_validate(to_raw({**module_raw(), "errors": [], **override}))
    mine = [e for e in facts.errors if e.source == source]
    assert len(mine) == 1
    assert re.search(match, mine[0].message)


@pytest.mark.parametrize("value", [[], "text", None, 3])
def test_to_raw_rejects_non_mapping(value: Any) -> None:
    with pytest.raises(
        WindowsFactsError, match=r"cyclotron_raw_windows must be a mapping, got \w+; pass the fact"
    ):
        to_raw(value)


def test_to_raw_minimal_input() -> None:
    facts = RawFacts.model_validate(to_raw({}))
    assert (facts.os.family, facts.managers, facts.packages, facts.errors) == ("windows", [], [], [])


def test_to_raw_env_names_case_insensitive_and_filtered() -> None:
    facts = to_raw(
        {"env_names": ["GITHUB_TOKEN", "github_token", "PATH", "TOKENIZERS_PARALLELISM", "ProgramFiles(x86)"]}
    )
    assert [k["name"] for k in facts["api_keys"]] == ["GITHUB_TOKEN"]


# --- catalog identity -----------------------------------------------------------


@pytest.mark.parametrize(
    ("manager", "package", "cap_id"),
    [
        ("winget", "Git.Git", "git"),
        ("winget", "OpenJS.NodeJS.LTS", "nodejs"),
        ("winget", "Python.Python.3.12", "python"),
        ("winget", "Microsoft.VisualStudioCode", "vscode"),
        ("winget", "7zip.7zip", "sevenzip"),
        ("choco", "git", "git"),
        ("choco", "nodejs-lts", "nodejs"),
        ("choco", "vscode", "vscode"),
        ("winget", "9NBLGGH4NNS1", "winget:9nblggh4nns1"),
    ],
)
def test_to_raw_packages_identify_through_catalog(manager: str, package: str, cap_id: str) -> None:
    facts = RawFacts.model_validate(to_raw(module_raw()))
    catalog = load_catalog()
    found = [p for p in facts.packages if (p.manager, p.name) == (manager, package)]
    assert len(found) == 1
    pkg = found[0]
    capability = catalog.identify(
        pkg.manager, pkg.name, version=pkg.version, path=pkg.path, top_level=pkg.top_level
    )
    assert capability.id == cap_id
    assert capability.version == pkg.version


def test_every_winget_and_choco_package_identifies() -> None:
    catalog = load_catalog()
    facts = RawFacts.model_validate(to_raw(module_raw(), include_dependencies=True))
    for pkg in facts.packages:
        if pkg.manager in ("winget", "choco"):
            catalog.identify(
                pkg.manager, pkg.name, version=pkg.version, path=pkg.path, top_level=pkg.top_level
            )
