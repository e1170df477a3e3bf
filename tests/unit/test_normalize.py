"""Raw facts -> manifest: identity through the catalog, merging, and refusal of bad entries."""

from __future__ import annotations

import pytest

from cyclotron_py.catalog import load_catalog
from cyclotron_py.normalize import build_manifest, git_identity, mcp_package
from cyclotron_py.raw import RawMcpServer

CATALOG = load_catalog()


def raw(**parts):
    base = {"os": {"family": "linux", "distribution": "debian", "version": "12", "arch": "x86_64"}}
    base.update(parts)
    return base


@pytest.mark.parametrize(
    ("remote", "identity"),
    [
        ("https://github.com/me/repo.git", "github.com/me/repo"),
        ("https://user:tok@GitHub.com:443/me/repo/", "github.com/me/repo"),
        ("git@github.com:me/repo.git", "github.com/me/repo"),
        ("ssh://git@gitlab.example.com/group/sub/repo.git", "gitlab.example.com/group/sub/repo"),
        ("/srv/git/notes.git", "/srv/git/notes"),
        ("file:///srv/git/notes.git", "/srv/git/notes"),
    ],
)
def test_git_identity(remote, identity):
    assert git_identity(remote) == identity


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("npx", ["-y", "@modelcontextprotocol/server-memory"], ("npm", "@modelcontextprotocol/server-memory", "")),
        ("cmd", ["/c", "npx", "-y", "@scope/pkg@1.2.3"], ("npm", "@scope/pkg", "1.2.3")),
        ("uvx", ["mcp-server-fetch"], ("pip", "mcp-server-fetch", "")),
        ("/usr/bin/node", ["server.js"], None),
    ],
)
def test_mcp_package(command, args, expected):
    found = mcp_package(RawMcpServer(name="s", assistant="cursor", path="/p", command=command, args=args))
    assert (None if found is None else (found["manager"], found["name"], found["version"])) == expected


def test_catalog_identity_across_managers():
    manifest = build_manifest(
        "pc1",
        raw(
            managers=["apt", "pip", "npm", "bogus"],
            packages=[
                {"manager": "apt", "name": "nodejs", "version": "18.19.0"},
                {"manager": "pip", "name": "Requests", "version": "2.31.0", "path": "/venv"},
                {"manager": "pip", "name": "pip", "version": "23.2"},
                {"manager": "npm", "name": "typescript", "version": "5.4.0"},
            ],
        ),
        CATALOG,
    )
    by_id = manifest.by_id()
    assert by_id["nodejs"].source.manager == "apt"
    assert by_id["nodejs"].domain == "infrastructure"
    assert by_id["pip:requests"].type == "python_package"
    assert by_id["typescript"].type == "npm_package"
    assert "pip:pip" not in by_id  # venv seed packages are not a person's choice
    assert manifest.managers == ["apt", "npm", "pip"]


def test_mcp_servers_merge_across_assistants_and_keep_names_only():
    manifest = build_manifest(
        "pc1",
        raw(
            mcp_servers=[
                {"name": "memory", "assistant": "claude_code", "path": "/h/.claude.json", "command": "npx",
                 "args": ["-y", "@modelcontextprotocol/server-memory"], "env_names": ["MEMORY_FILE_PATH"]},
                {"name": "memory", "assistant": "cursor", "path": "/h/.cursor/mcp.json", "command": "npx",
                 "args": ["-y", "@modelcontextprotocol/server-memory"]},
            ]
        ),
        CATALOG,
    )
    cap = manifest.by_id()["mcp:memory"]
    assert cap.type == "mcp_server"
    assert [c["assistant"] for c in cap.details["configured_in"]] == ["claude_code", "cursor"]
    assert cap.details["package"]["name"] == "@modelcontextprotocol/server-memory"
    assert cap.details["env_names"] == ["MEMORY_FILE_PATH"]


def test_commands_enrich_packages_or_stand_alone():
    manifest = build_manifest(
        "pc1",
        raw(
            packages=[{"manager": "apt", "name": "git"}],
            commands=[{"name": "git", "version": "2.39.5"}, {"name": "rg", "version": "14.1.0"},
                      {"name": "mytool", "version": "1.0"}],
        ),
        CATALOG,
    )
    by_id = manifest.by_id()
    assert by_id["git"].version == "2.39.5" and by_id["git"].type == "software"
    assert by_id["ripgrep"].type == "command"
    assert by_id["command:mytool"].priority == "low"


def test_bad_entries_become_errors_not_exceptions():
    manifest = build_manifest(
        "pc1",
        raw(
            packages=[{"manager": "nosuch", "name": "x"}],
            commands=[{"name": "evil;rm -rf", "version": "1"}],
            git_repos=[{"path": "/h/src/local-only"}],
            errors=[{"source": "choco", "message": "choco not found on PATH"}],
        ),
        CATALOG,
    )
    assert manifest.capabilities == []
    sources = [e.source for e in manifest.errors]
    assert sources[0] == "choco"
    assert "nosuch" in sources and "command:evil;rm -rf" in sources


def test_default_catalog_is_built_once_and_overrides_are_not_cached():
    from cyclotron_py.catalog import load_catalog

    assert load_catalog() is load_catalog()
    extra = {"capabilities": {"mytool": {"name": "My tool", "domain": "development", "packages": {"pip": "mytool"}}}}
    assert "mytool" in load_catalog(extra) and "mytool" not in load_catalog()
