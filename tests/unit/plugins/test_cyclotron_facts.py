"""cyclotron_facts: gathering from real files in a fake home, and one real module run through Ansible."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.hostscript import host_code
from cyclotron_py.raw import RawFacts

REPO = Path(__file__).resolve().parents[3]
VENV_PY = Path(sys.executable).parent / "python"
ANSIBLE = Path(sys.executable).parent / "ansible"

# Loaded from its file, as the action plugins load it (it is not importable as a package).
cg: Any = host_code(REPO / "plugins" / "module_utils" / "cyclotron_gather.py")[0]

# Values that must never appear in any output.
SECRETS = (
    "sk-claude-env-secret-123",
    "ghp_argsecretvalue0123456789",
    "inline-api-key-secret",
    "url-password-secret",
    "url-query-secret",
    "header-bearer-secret",
    "desktop-env-secret",
    "vscode-env-secret",
    "dotenv-openai-secret",
    "dotenv-multiline-secret",
    "process-env-secret",
    "git-remote-token-secret",
    "cursor-url-secret",
)

DPKG_STATUS = """\
Package: dpkg
Status: install ok installed
Priority: required
Architecture: amd64
Version: 1.21.22
Description: Debian package management system
 A long description line that starts with a space.

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4

Package: libpam-runtime
Status: install ok installed
Architecture: all
Version: 1.5.2-6

Package: git
Status: install ok installed
Architecture: amd64
Version: 1:2.39.2-1.1

Package: tmux
Status: hold ok installed
Architecture: amd64
Version: 3.3a-3

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 0.1

Package: libfoo
Status: install ok installed
Architecture: i386
Version: 1.0
"""

EXTENDED_STATES = """\
Package: dpkg
Architecture: amd64
Auto-Installed: 1

Package: libc6
Architecture: amd64
Auto-Installed: 1

Package: libpam-runtime
Architecture: amd64
Auto-Installed: 1

Package: git
Architecture: amd64
Auto-Installed: 0
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _json(path: Path, data: Any) -> Path:
    return _write(path, json.dumps(data, indent=2))


def _dist(site: Path, name: str, version: str, requires: tuple[str, ...] = (), dirname: str = "") -> None:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: test"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    body = "\n".join(lines) + "\n\nName: not-a-header\nRequires-Dist: body-text-is-ignored\n"
    _write(site / (dirname or f"{name.replace('-', '_')}-{version}.dist-info") / "METADATA", body)


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_SYSTEM=os.devnull)
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fake home with every source, a real venv and real git repositories."""
    root = tmp_path_factory.mktemp("facts")
    home = root / "home"
    app = home / "src" / "app"
    tool = home / "code" / "group" / "tool"

    # git: a repo with a commit and a credential in the remote; a detached one with packed refs.
    for repo in (app, tool):
        repo.mkdir(parents=True)
        _git(repo, "init", "-q", "-b", "main")
        _git(
            repo,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        )
    _git(app, "remote", "add", "origin", "https://bob:git-remote-token-secret@github.com/bob/app.git")
    _git(tool, "remote", "add", "upstream", "git@github.com:org/tool.git")
    _git(tool, "pack-refs", "--all")
    _git(tool, "checkout", "-q", "--detach")
    (home / "src" / "node_modules" / "dep").mkdir(parents=True)
    _git(home / "src" / "node_modules" / "dep", "init", "-q")

    # Claude Code: user and local scope in ~/.claude.json, project scope in .mcp.json.
    _json(
        home / ".claude.json",
        {
            "numStartups": 3,
            "mcpServers": {
                "memory": {
                    "type": "stdio",
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-memory"],
                    "env": {"MEMORY_FILE_PATH": "/tmp/memory.json", "ANTHROPIC_API_KEY": SECRETS[0]},
                },
                "github": {
                    "command": "github-mcp",
                    "args": ["--token", SECRETS[1], "--api-key=" + SECRETS[2], "--verbose"],
                },
                "remote": {
                    "type": "http",
                    "url": f"https://me:{SECRETS[3]}@mcp.example.com/mcp?token={SECRETS[4]}",
                    "headers": {"Authorization": "Bearer " + SECRETS[5]},
                },
                "bridge": {
                    "command": "npx",
                    "args": [
                        "mcp-remote",
                        "https://x.example.com/sse",
                        "--header",
                        "Authorization: Bearer " + SECRETS[5],
                    ],
                },
            },
            "projects": {
                str(app): {"mcpServers": {"local-db": {"command": "uvx", "args": ["mcp-server-sqlite"]}}},
                str(home / "gone"): {"allowedTools": []},
            },
        },
    )
    _json(
        app / ".mcp.json",
        {"mcpServers": {"events": {"type": "sse", "url": "https://events.example.com/sse"}}},
    )
    _write(app / ".cursor" / "mcp.json", '{"mcpServers": {"broken": ')  # malformed on purpose
    # Claude Desktop (Linux path), Cursor global, VS Code user profile with JSONC comments.
    _json(
        home / ".config" / "Claude" / "claude_desktop_config.json",
        {
            "mcpServers": {
                "filesystem": {
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"],
                    "env": {"FS_TOKEN": SECRETS[6]},
                }
            }
        },
    )
    _json(
        home / ".cursor" / "mcp.json",
        {"mcpServers": {"docs": {"url": f"https://docs.example.com/mcp?key={SECRETS[12]}"}}},
    )
    _write(
        home / ".config" / "Code" / "User" / "mcp.json",
        """{
  // VS Code writes comments and trailing commas
  "inputs": [{"type": "promptString", "id": "key", "password": true}],
  "servers": {
    "fetch": {"type": "stdio", "command": "uvx", "args": ["mcp-server-fetch"],
              "env": {"FETCH_KEY": "${input:key}", "OTHER": "SECRET7"}},
  },
}
""".replace("SECRET7", SECRETS[7]),
    )
    _json(
        app / ".vscode" / "mcp.json",
        {"servers": {"proj-fetch": {"command": "uvx", "args": ["mcp-server-fetch"]}}},
    )

    # .env: export, quotes, comments, a multi-line value and a name that is not a key.
    _write(
        home / ".env",
        f"""# comment
export OPENAI_API_KEY="{SECRETS[8]}"
GITHUB_TOKEN='ghp_x'
  # INDENTED_TOKEN=commented
PLAIN_SETTING=hello
PRIVATE_KEY_PEM="-----BEGIN-----
FAKE_INSIDE_TOKEN={SECRETS[9]}
-----END-----"
my_service_secret_key = value
""",
    )

    # A real venv (no pip: fast), with hand-made distributions.
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    _dist(
        site,
        "requests",
        "2.32.3",
        (
            "charset-normalizer (<4,>=2)",
            "idna<4,>=2.5",
            "urllib3 (<3,>=1.21.1)",
            "PySocks!=1.5.7,>=1.5.6; extra == 'socks'",
        ),
    )
    _dist(site, "charset-normalizer", "3.3.2")
    _dist(site, "idna", "3.7")
    _dist(site, "urllib3", "2.2.2")
    _dist(site, "PySocks", "1.7.1")  # only an extra of requests wants it: top level
    _dist(site, "black", "24.4.2", ('tomli>=1.1.0; python_version < "3.11"', "click>=8.0.0"))
    _dist(site, "tomli", "2.0.1")
    _dist(site, "click", "8.1.7")
    _write(
        site / "legacy-1.0-py3.11.egg-info" / "PKG-INFO",
        "Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n",
    )
    _write(site / "legacy-1.0-py3.11.egg-info" / "requires.txt", "six>=1.0\n\n[docs]\nsphinx\n")
    _dist(site, "six", "1.16.0")
    _dist(site, "sphinx", "7.0.0")
    _write(site / "single_file-0.1.egg-info", "Metadata-Version: 1.0\nName: single-file\nVersion: 0.1\n")

    # npm prefix with plain, scoped and broken packages, plus leftovers that are not packages.
    npm = root / "npm"
    modules = npm / "lib" / "node_modules"
    _json(modules / "npm" / "package.json", {"name": "npm", "version": "10.8.1"})
    _json(modules / "typescript" / "package.json", {"name": "typescript", "version": "5.5.3"})
    _json(
        modules / "@modelcontextprotocol" / "server-memory" / "package.json",
        {"name": "@modelcontextprotocol/server-memory", "version": "2025.4.25"},
    )
    _write(modules / "broken" / "package.json", "{not json")
    (modules / ".staging").mkdir()
    (modules / ".bin").mkdir()

    # pipx home.
    pipx = home / ".local" / "share" / "pipx"
    _json(
        pipx / "venvs" / "httpie" / "pipx_metadata.json",
        {"main_package": {"package": "httpie", "package_version": "3.2.2"}, "pipx_metadata_version": "0.3"},
    )

    # Homebrew prefix: leaf, dependency, no receipt, opt link choosing a version, a cask.
    brew = root / "brew"
    _json(brew / "Cellar" / "wget" / "1.24.5" / "INSTALL_RECEIPT.json", {"installed_on_request": True})
    _json(brew / "Cellar" / "wget" / "1.21.0" / "INSTALL_RECEIPT.json", {"installed_on_request": True})
    (brew / "opt").mkdir(parents=True)
    (brew / "opt" / "wget").symlink_to("../Cellar/wget/1.21.0")
    _json(brew / "Cellar" / "openssl@3" / "3.3.1" / "INSTALL_RECEIPT.json", {"installed_on_request": False})
    (brew / "Cellar" / "jq" / "1.7.1").mkdir(parents=True)
    (brew / "Caskroom" / "visual-studio-code" / "1.90.0").mkdir(parents=True)

    dpkg = _write(root / "dpkg-status", DPKG_STATUS)
    states = _write(root / "extended_states", EXTENDED_STATES)

    params = {
        "home": str(home),
        "python_environments": [str(env_dir)],
        "npm_prefixes": [str(npm)],
        "pipx_home": "~/.local/share/pipx",
        "brew_prefixes": [str(brew)],
        "git_roots": ["~/src", "~/code", "~/missing"],
        "dpkg_status_path": str(dpkg),
        "apt_extended_states_path": str(states),
        "api_key_patterns": cg.DEFAULT_API_KEY_PATTERNS + ["(?i)^PRIVATE_KEY_PEM$"],
        "commands": [
            {"name": "python", "argv": [sys.executable, "--version"], "regex": r"Python (\S+)"},
            {"name": "git", "argv": ["git", "--version"], "regex": r"version (\d+\.\d+\.\d+)"},
            {"name": "nothere", "argv": ["cyclotron-no-such-command"], "regex": "(.*)"},
        ],
    }
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent",
        "MY_SERVICE_TOKEN": SECRETS[10],
        "UNRELATED": "x",
    }
    return {
        "root": root,
        "home": home,
        "app": app,
        "tool": tool,
        "venv": env_dir,
        "npm": npm,
        "brew": brew,
        "pipx": pipx,
        "params": params,
        "environ": environ,
    }


@pytest.fixture(scope="module")
def facts(world: dict[str, Any]) -> dict[str, Any]:
    return cg.gather(world["params"], world["environ"])


def _pkgs(facts: dict[str, Any], manager: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in facts["packages"] if p["manager"] == manager}


def _assert_no_secrets(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"secret values in output: {leaked}"


def test_output_validates_and_carries_no_secret(facts: dict[str, Any]) -> None:
    raw = RawFacts.model_validate(facts)
    assert raw.format == 1
    assert raw.os.family in ("linux", "darwin")
    assert {"pip", "pipx", "npm", "brew"} <= set(raw.managers)
    _assert_no_secrets(json.dumps(facts))


def test_dpkg_manual_packages_only(facts: dict[str, Any]) -> None:
    apt = _pkgs(facts, "apt")
    # Auto-installed (incl. arch "all" marked under the native arch) and removed packages are left out.
    assert set(apt) == {"git", "tmux", "libfoo:i386"}
    assert apt["git"]["version"] == "1:2.39.2-1.1"
    assert all(p["top_level"] for p in apt.values())


def test_dpkg_with_dependencies(world: dict[str, Any]) -> None:
    errors: list[dict[str, str]] = []
    pkgs = cg.gather_dpkg(
        world["params"]["dpkg_status_path"], world["params"]["apt_extended_states_path"], True, errors
    )
    top = {p["name"]: p["top_level"] for p in pkgs}
    assert top == {
        "dpkg": False,
        "libc6": False,
        "libpam-runtime": False,
        "git": True,
        "tmux": True,
        "libfoo:i386": True,
    }
    assert errors == []


def test_dpkg_without_extended_states_counts_everything_manual(world: dict[str, Any]) -> None:
    errors: list[dict[str, str]] = []
    pkgs = cg.gather_dpkg(world["params"]["dpkg_status_path"], str(world["root"] / "absent"), False, errors)
    assert len(pkgs) == 6 and errors == []


def test_python_top_level_from_requires_dist(facts: dict[str, Any], world: dict[str, Any]) -> None:
    pip = _pkgs(facts, "pip")
    # requests pulls urllib3/idna/charset-normalizer; black pulls click but tomli only below 3.11 (the
    # venv runs this interpreter, 3.11+); PySocks is only behind an extra; legacy requires six.
    assert set(pip) == {"requests", "PySocks", "black", "tomli", "legacy", "sphinx", "single-file"}
    assert pip["requests"] == {
        "manager": "pip",
        "name": "requests",
        "version": "2.32.3",
        "top_level": True,
        "path": str(world["venv"]),
    }


def test_python_include_dependencies(world: dict[str, Any]) -> None:
    params = dict(world["params"], sources=["python"], include_dependencies=True)
    facts = cg.gather(params, world["environ"])
    pip = {p["name"]: p["top_level"] for p in facts["packages"]}
    assert pip["urllib3"] is False and pip["charset-normalizer"] is False and pip["six"] is False
    assert pip["click"] is False and pip["requests"] is True
    assert len(pip) == 12
    assert {p["manager"] for p in facts["packages"]} == {"pip"}


def test_python_executable_inside_venv_and_missing_env(world: dict[str, Any]) -> None:
    errors: list[dict[str, str]] = []
    exe = str(world["venv"] / "bin" / "python")
    pkgs = cg.gather_python([exe, str(world["root"] / "nope")], False, world["environ"], errors)
    assert {p["path"] for p in pkgs} == {exe}
    assert "requests" in {p["name"] for p in pkgs}
    assert [e["source"] for e in errors] == [str(world["root"] / "nope")]


def test_python_executable_outside_venv_is_asked_once(world: dict[str, Any]) -> None:
    errors: list[dict[str, str]] = []
    sites = cg.resolve_python_sites(sys.executable, world["environ"], errors)
    assert errors == [] and sites is not None
    assert all(os.path.basename(s) in ("site-packages", "dist-packages") for s in sites)


def test_npm_globals_plain_and_scoped(facts: dict[str, Any], world: dict[str, Any]) -> None:
    npm = _pkgs(facts, "npm")
    assert set(npm) == {"npm", "typescript", "@modelcontextprotocol/server-memory"}
    assert npm["typescript"]["version"] == "5.5.3" and npm["typescript"]["path"] == str(world["npm"])
    broken = str(world["npm"] / "lib" / "node_modules" / "broken" / "package.json")
    assert any(e["source"] == broken and "malformed JSON" in e["message"] for e in facts["errors"])


def test_npm_prefix_derivation(world: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path
    assert cg.npm_prefixes(None, str(home), {"NPM_CONFIG_PREFIX": "~/.npm-global", "PATH": ""}) == [
        str(home / ".npm-global")
    ]
    _write(home / ".npmrc", "registry=https://registry.npmjs.org/\nprefix=${HOME}/.npm-packages\n")
    assert cg.npm_prefixes(None, str(home), {"PATH": ""}) == [str(home / ".npm-packages")]
    bindir = tmp_path / "node" / "bin"
    _write(bindir / "node", "#!/bin/sh\n").chmod(0o755)
    assert cg.npm_prefixes(None, str(tmp_path / "elsewhere"), {"PATH": str(bindir)}) == [
        str(tmp_path / "node")
    ]


def test_pipx_and_brew(facts: dict[str, Any], world: dict[str, Any]) -> None:
    assert _pkgs(facts, "pipx") == {
        "httpie": {
            "manager": "pipx",
            "name": "httpie",
            "version": "3.2.2",
            "top_level": True,
            "path": str(world["pipx"]),
        }
    }
    brew = _pkgs(facts, "brew")
    assert set(brew) == {"wget", "jq", "visual-studio-code"}  # openssl@3 is a dependency
    assert brew["wget"]["version"] == "1.21.0"  # the opt/ link wins over the newest dir
    errors: list[dict[str, str]] = []
    with_deps = {p["name"]: p["top_level"] for p in cg.gather_brew(str(world["brew"]), True, errors)}
    assert with_deps["openssl@3"] is False and errors == []


def test_brew_newest_version_without_an_opt_link(tmp_path: Path) -> None:
    """Without opt/, the newest Cellar dir wins in version order: 1.10 > 1.9_3 > 1.9 and 2.0 > 2.0rc1."""
    for name, versions in (("tool", ("1.9", "1.9_3", "1.10")), ("cli", ("2.0rc1", "2.0")), ("app", ("3.3", "3.3a"))):
        for version in versions:
            (tmp_path / "Cellar" / name / version).mkdir(parents=True)
    errors: list[dict[str, str]] = []
    found = {p["name"]: p["version"] for p in cg.gather_brew(str(tmp_path), True, errors)}
    assert found == {"tool": "1.10", "cli": "2.0", "app": "3.3a"} and errors == []


def test_mcp_servers_every_assistant_and_scope(facts: dict[str, Any], world: dict[str, Any]) -> None:
    home, app = world["home"], world["app"]
    servers = {(s["assistant"], s["scope"], s["name"]): s for s in facts["mcp_servers"]}
    assert set(servers) == {
        ("claude_code", "user", "memory"),
        ("claude_code", "user", "github"),
        ("claude_code", "user", "remote"),
        ("claude_code", "user", "bridge"),
        ("claude_code", "local", "local-db"),
        ("claude_code", "project", "events"),
        ("claude_desktop", "user", "filesystem"),
        ("cursor", "global", "docs"),
        ("vscode", "user", "fetch"),
        ("vscode", "project", "proj-fetch"),
    }
    memory = servers[("claude_code", "user", "memory")]
    assert memory["env_names"] == ["ANTHROPIC_API_KEY", "MEMORY_FILE_PATH"]
    assert memory["args"] == ["-y", "@modelcontextprotocol/server-memory"]
    assert memory["path"] == str(home / ".claude.json") and memory["transport"] == "stdio"
    assert servers[("claude_code", "user", "github")]["args"] == [
        "--token",
        "<redacted>",
        "--api-key=<redacted>",
        "--verbose",
    ]
    remote = servers[("claude_code", "user", "remote")]
    assert remote["transport"] == "http" and remote["url"] == "https://mcp.example.com/mcp"
    assert servers[("claude_code", "user", "bridge")]["args"][-1] == "Authorization: <redacted>"
    assert servers[("claude_code", "local", "local-db")]["project"] == str(app)
    events = servers[("claude_code", "project", "events")]
    assert events["transport"] == "sse" and events["path"] == str(app / ".mcp.json")
    assert servers[("cursor", "global", "docs")]["url"] == "https://docs.example.com/mcp"
    assert servers[("vscode", "user", "fetch")]["env_names"] == ["FETCH_KEY", "OTHER"]
    assert servers[("claude_desktop", "user", "filesystem")]["env_names"] == ["FS_TOKEN"]


def test_malformed_config_is_an_error_and_the_rest_is_gathered(
    facts: dict[str, Any], world: dict[str, Any]
) -> None:
    broken = str(world["app"] / ".cursor" / "mcp.json")
    entries = [e for e in facts["errors"] if e["source"] == broken]
    assert len(entries) == 1 and "malformed JSON" in entries[0]["message"] and "fix" in entries[0]["message"]
    assert len(facts["mcp_servers"]) == 10


def test_broken_claude_json_does_not_stop_other_sources(tmp_path: Path) -> None:
    _write(tmp_path / ".claude.json", '{"mcpServers": {"x": 1, ')
    _json(tmp_path / ".cursor" / "mcp.json", {"mcpServers": {"ok": {"command": "x"}, "bad": "string"}})
    facts = cg.gather({"home": str(tmp_path), "sources": ["mcp"], "mcp_project_dirs": []}, {"PATH": ""})
    assert [s["name"] for s in facts["mcp_servers"]] == ["ok"]
    assert [e["source"] for e in facts["errors"]] == [
        str(tmp_path / ".claude.json"),
        str(tmp_path / ".cursor" / "mcp.json"),
    ]
    RawFacts.model_validate(facts)


def test_api_key_names_from_environment_and_env_file(facts: dict[str, Any], world: dict[str, Any]) -> None:
    env_file = str(world["home"] / ".env")
    keys = {(k["name"], k["origin"]) for k in facts["api_keys"]}
    assert keys == {
        ("MY_SERVICE_TOKEN", "env"),
        ("OPENAI_API_KEY", env_file),
        ("GITHUB_TOKEN", env_file),
        ("PRIVATE_KEY_PEM", env_file),
        ("my_service_secret_key", env_file),
    }


def test_env_file_names_skip_values_and_multiline_bodies(world: dict[str, Any]) -> None:
    names = cg.env_file_names(str(world["home"] / ".env"))
    assert names == [
        "OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "PLAIN_SETTING",
        "PRIVATE_KEY_PEM",
        "my_service_secret_key",
    ]


def test_commands_found_probed_and_missing_absent(facts: dict[str, Any]) -> None:
    commands = {c["name"]: c for c in facts["commands"]}
    assert set(commands) == {"python", "git"}
    assert commands["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert commands["git"]["version"] and commands["git"]["path"].endswith("git")


def test_git_repos_read_without_git(facts: dict[str, Any], world: dict[str, Any]) -> None:
    repos = {r["path"]: r for r in facts["git_repos"]}
    app, tool = str(world["app"]), str(world["tool"])
    assert set(repos) == {app, tool}  # node_modules is not searched
    assert repos[app] == {
        "path": app,
        "remote": "https://github.com/bob/app.git",
        "branch": "main",
        "head": _git(world["app"], "rev-parse", "HEAD"),
    }
    # Detached HEAD after pack-refs; no origin, so the only remote is reported as is.
    assert repos[tool] == {
        "path": tool,
        "remote": "git@github.com:org/tool.git",
        "branch": "",
        "head": _git(world["tool"], "rev-parse", "HEAD"),
    }


def test_git_packed_refs_and_depth(world: dict[str, Any], tmp_path: Path) -> None:
    repo = tmp_path / "a" / "b" / "c" / "deep"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "trunk")
    _git(
        repo,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    _git(repo, "pack-refs", "--all")
    errors: list[dict[str, str]] = []
    assert cg.find_git_repos([str(tmp_path)], 3, errors) == []
    assert cg.find_git_repos([str(tmp_path)], 4, errors) == [str(repo)]
    info = cg.read_git_repo(str(repo), errors)
    assert info and info["branch"] == "trunk" and info["head"] == _git(repo, "rev-parse", "HEAD")
    assert errors == []


def test_sources_subset(world: dict[str, Any]) -> None:
    facts = cg.gather(dict(world["params"], sources=["api_keys"]), world["environ"])
    assert facts["packages"] == [] and facts["mcp_servers"] == [] and facts["git_repos"] == []
    assert facts["api_keys"] and facts["os"]["family"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-y", "pkg"], ["-y", "pkg"]),
        (["--token", "abc", "--x"], ["--token", "<redacted>", "--x"]),
        (["--token", "--other"], ["--token", "--other"]),
        (["--api-key=abc"], ["--api-key=<redacted>"]),
        (["--key", "abc"], ["--key", "<redacted>"]),
        (["--password", "abc"], ["--password", "<redacted>"]),
        (["--client-secret", "abc"], ["--client-secret", "<redacted>"]),
        (["--header", "X-Api-Key: abc"], ["--header", "X-Api-Key: <redacted>"]),
        (["-H", "Authorization:abc"], ["-H", "Authorization: <redacted>"]),
        (["GITHUB_PERSONAL_ACCESS_TOKEN=abc"], ["GITHUB_PERSONAL_ACCESS_TOKEN=<redacted>"]),
        (["sk-ant-api03-abcdefghijkl"], ["<redacted>"]),
        (["https://u:p@h.example/x?token=q"], ["https://h.example/x"]),
        ([3, True], ["3", "True"]),
    ],
)
def test_redact_args(args: list[Any], expected: list[str]) -> None:
    assert cg.redact_args(args) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:tok@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("ssh://git:pw@github.com/o/r.git", "ssh://github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("https://h:8443/p?a=b#c", "https://h:8443/p"),
    ],
)
def test_strip_url(url: str, expected: str) -> None:
    assert cg.strip_url(url) == expected


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ('python_version < "3.8"', False),
        ('python_version >= "3.8"', True),
        ("python_version == '3.11'", True),
        ('python_version < "3.11" and sys_platform == "linux"', False),
        ('(python_version < "3.9" or os_name == "posix")', True),
        ('platform_system == "Windows"', False),
        ('"linux" in sys_platform', True),
        ("garbage ((", True),  # unparseable: counts as a real requirement
    ],
)
def test_evaluate_marker(marker: str, expected: bool) -> None:
    env = dict(cg._marker_env("3.11"), sys_platform="linux", os_name="posix", platform_system="Linux")
    assert cg.evaluate_marker(marker, env) is expected


def _ansible_env(world: dict[str, Any], **extra: str) -> dict[str, str]:
    """The project config, a private ANSIBLE_HOME, the JSON stdout callback and a token in the environment."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_HOME=str(world["root"] / "ah"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_LOCAL_TEMP=str(world["root"] / "at"),
        MY_SERVICE_TOKEN=SECRETS[10],
    )
    env.update(extra)
    return env


def _run_ansible(world: dict[str, Any], args: dict[str, Any], *extra: str) -> subprocess.CompletedProcess:
    """`ansible localhost -m cyclotron_facts` with the project config and the JSON stdout callback."""
    env = _ansible_env(world)
    argv = [
        str(ANSIBLE),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        "cyclotron_facts",
        "-e",
        f"ansible_python_interpreter={VENV_PY}",
        "-a",
        json.dumps(args),
        *extra,
    ]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def _ansible(world: dict[str, Any], args: dict[str, Any], *extra: str) -> dict[str, Any]:
    proc = _run_ansible(world, args, *extra)
    _assert_no_secrets(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_module_end_to_end_and_check_mode(world: dict[str, Any]) -> None:
    args = {k: v for k, v in world["params"].items() if k != "api_key_patterns"}
    result = _ansible(world, args)
    assert result["changed"] is False
    raw = RawFacts.model_validate(result["ansible_facts"]["cyclotron_raw"])
    assert {p.name for p in raw.packages if p.manager == "npm"} == {
        "npm",
        "typescript",
        "@modelcontextprotocol/server-memory",
    }
    assert {p.name for p in raw.packages if p.manager == "apt"} == {"git", "tmux", "libfoo:i386"}
    assert ("MY_SERVICE_TOKEN", "env") in {(k.name, k.origin) for k in raw.api_keys}
    assert len(raw.mcp_servers) == 10 and len(raw.git_repos) == 2

    checked = _ansible(world, args, "--check")
    assert checked["changed"] is False
    assert checked["ansible_facts"] == result["ansible_facts"]


def test_module_rejects_bad_regex(world: dict[str, Any]) -> None:
    proc = _run_ansible(world, {"sources": ["api_keys"], "api_key_patterns": ["(unclosed"]})
    assert proc.returncode != 0
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["failed"] is True
    assert result["msg"].startswith("api_key_patterns: invalid regular expression '(unclosed'")


def test_probe_cache_skips_unchanged_binaries(tmp_path):
    """A probed binary that has not changed is not started again; a changed one is."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    runs = tmp_path / "runs"
    tool = bindir / "cyctool"
    tool.write_text(f"#!/bin/sh\necho x >> {runs}\necho 'cyctool 1.2.3'\n")
    tool.chmod(0o755)
    env = {"PATH": str(bindir)}
    spec = [{"name": "cyctool", "argv": ["cyctool", "--version"], "regex": r"(\d+\.\d+\.\d+)"}]
    cache = str(tmp_path / "cache" / "probes.json")

    for _ in range(2):
        found = cg.gather_commands(spec, env, [], cache)
        assert found[0]["version"] == "1.2.3"
    assert runs.read_text().count("x") == 1

    tool.write_text(f"#!/bin/sh\necho x >> {runs}\necho 'cyctool 2.0.0 (new build)'\n")
    assert cg.gather_commands(spec, env, [], cache)[0]["version"] == "2.0.0"
    assert runs.read_text().count("x") == 2

    # check mode reads the cache but never writes it
    other = str(tmp_path / "other.json")
    cg.gather_commands(spec, env, [], other, save_cache=False)
    assert not os.path.exists(other)


def _gather_action(
    world: dict[str, Any], facts: dict[str, Any], dest: Path, *extra: str, pipelining: bool = True
) -> dict[str, Any]:
    """`ansible localhost -m cyclotron_gather`: with pipelining it pipes the gatherer as a script."""
    env = _ansible_env(world, ANSIBLE_PIPELINING=str(pipelining))
    argv = [
        str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local", "-m", "cyclotron_gather",
        "-e", f"ansible_python_interpreter={VENV_PY}",
        "-a", json.dumps({"dest": str(dest), "facts": facts}),
        *extra,
    ]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    _assert_no_secrets(proc.stdout + proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    result["rc"] = proc.returncode
    return result


def test_gather_action_script_matches_the_module(world: dict[str, Any], tmp_path: Path) -> None:
    """The piped gatherer and the cyclotron_facts module build the same manifest."""
    facts = {k: v for k, v in world["params"].items() if k != "api_key_patterns"}
    by_script = _gather_action(world, facts, tmp_path / "script")
    by_module = _gather_action(world, facts, tmp_path / "module", pipelining=False)
    assert (by_script["rc"], by_module["rc"]) == (0, 0), (by_script, by_module)
    assert (by_script["gatherer"], by_module["gatherer"]) == ("script", "cyclotron_facts")
    for result in (by_script, by_module):
        result["manifest"].pop("gathered_at")
    assert by_script["manifest"] == by_module["manifest"]
    assert by_script["capabilities"] > 10 and "MY_SERVICE_TOKEN" in json.dumps(by_script["manifest"])

    checked = _gather_action(world, facts, tmp_path / "check", "--check")
    assert checked["rc"] == 0 and checked["gatherer"] == "script"
    assert not (tmp_path / "check").exists()


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"git_max_depth": "deep"}, "git_max_depth"),
        ({"sources": ["python", "floppy"]}, "floppy"),
        ({"sources": ["api_keys"], "api_key_patterns": ["(unclosed"]}, "invalid regular expression '(unclosed'"),
        ({"commands": [{"name": "x", "argv": []}]}, "argv must list the command"),
    ],
)
def test_gather_action_script_rejects_bad_options(
    world: dict[str, Any], tmp_path: Path, facts: dict[str, Any], message: str
) -> None:
    result = _gather_action(world, facts, tmp_path)
    assert result["rc"] != 0 and result["failed"] is True
    assert message in result["msg"]
    assert not list(tmp_path.glob("*.json"))


def test_script_expands_paths_on_the_host() -> None:
    """Path options stay as written on the controller; the host expands ~ and $VARS."""
    spec = importlib.util.spec_from_file_location("gather_action", REPO / "plugins" / "action" / "cyclotron_gather.py")
    assert spec is not None and spec.loader is not None
    action = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(action)
    params = action.script_params({"home": "~/x", "dpkg_status_path": "$CYC_ROOT/status"}, check_mode=True)
    assert params["home"] == "~/x" and params["dpkg_status_path"] == "$CYC_ROOT/status"
    assert params["check_mode"] is True and params["git_max_depth"] == 3


def test_gather_script_sees_the_task_environment(world: dict[str, Any], tmp_path: Path) -> None:
    """`environment:` on the play reaches the piped gatherer as it reaches modules."""
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "environment": {"CYC_PLAY_ONLY_TOKEN": SECRETS[11]},
            "tasks": [
                {
                    "cyclotron_gather": {"dest": str(tmp_path / "m"), "facts": {"sources": ["api_keys"]}},
                    "register": "gathered",
                },
                {"ansible.builtin.assert": {"that": ["gathered.gatherer == 'script'"]}},
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    env = _ansible_env(world, ANSIBLE_STDOUT_CALLBACK="default")
    proc = subprocess.run(
        [str(ANSIBLE) + "-playbook", "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"ansible_python_interpreter={VENV_PY}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    _assert_no_secrets(proc.stdout + proc.stderr + (tmp_path / "m" / "localhost.json").read_text())
    assert "CYC_PLAY_ONLY_TOKEN" in (tmp_path / "m" / "localhost.json").read_text()
