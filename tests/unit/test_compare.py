"""The comparison engine: N-way matrix, two-way gaps, drift, portability, policy, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cyclotron_py.catalog import load_catalog
from cyclotron_py.compare import (
    GAP_CATEGORIES,
    ComparisonDocument,
    MatrixDocument,
    Recommendation,
    capability_gaps,
    capability_matrix,
    comparison_json_schema,
    distribution_plan,
    dumps,
    host_record,
    recommendations_for,
    unportable_by_host,
)
from cyclotron_py.compare.layout import dump_utf8, dumps_stdlib, dumps_utf8
from cyclotron_py.errors import ManifestError, PolicyError
from cyclotron_py.models import Manifest
from cyclotron_py.plan import build_plan
from cyclotron_py.validate import load_manifests

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "valid"
SCHEMA = Path(__file__).resolve().parents[2] / "cyclotron_py" / "schema" / "comparison.schema.json"
CATALOG = load_catalog()

MANAGERS = {
    "windows": ["winget", "choco", "pip", "npm", "mcp", "env", "path", "git", "registry"],
    "linux": ["apt", "pip", "pipx", "npm", "mcp", "env", "path", "git"],
    "darwin": ["brew", "pip", "pipx", "npm", "mcp", "env", "path", "git"],
}
_QUALIFIED = {
    "pip": ("python_package", "pip"),
    "pipx": ("pipx_tool", "pipx"),
    "npm": ("npm_package", "npm"),
    "winget": ("software", "winget"),
    "choco": ("software", "choco"),
    "apt": ("software", "apt"),
    "brew": ("software", "brew"),
    "registry": ("software", "registry"),
    "api_key": ("api_key", "env"),
    "command": ("command", "path"),
    "git": ("git_repo", "git"),
    "mcp": ("mcp_server", "mcp"),
}
_SYSTEM = {"windows": "winget", "linux": "apt", "darwin": "brew"}


def cap(cap_id: str, version: str | None = None, *, manager: str | None = None, **extra: Any) -> dict[str, Any]:
    """A capability dict: type, manager, package and domain follow from the id like gathering does."""
    qualifier, _, name = cap_id.partition(":")
    entry = CATALOG.get(cap_id)
    if entry is not None:
        manager = manager or next(iter(entry.packages))
        package = entry.package_for(manager) or cap_id
        kind = {"pip": "python_package", "pipx": "pipx_tool", "npm": "npm_package"}.get(manager, "software")
        base = {"name": entry.name, "domain": entry.domain, "priority": entry.priority, "risk": entry.risk}
    else:
        kind, default_manager = _QUALIFIED[qualifier]
        manager = manager or default_manager
        package = name
        defaults = CATALOG.defaults[kind]
        base = {"name": name, "domain": defaults.domain, "priority": defaults.priority, "risk": defaults.risk}
    data: dict[str, Any] = {
        "id": cap_id,
        "type": kind,
        **base,
        "version": version,
        "source": {"manager": manager, "package": package, "path": ""},
    }
    data.update(extra)
    return data


def manifest(
    host: str,
    caps: list[dict[str, Any]],
    family: str = "linux",
    managers: list[str] | None = None,
    gathered: str = "2025-01-06T09:00:00Z",
) -> Manifest:
    return Manifest.model_validate(
        {
            "host": host,
            "gathered_at": gathered,
            "os": {"family": family},
            "managers": MANAGERS[family] if managers is None else managers,
            "capabilities": caps,
        }
    )


def fixture_fleet() -> list[Manifest]:
    return load_manifests(FIXTURES)


def recs_of(matrix: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in matrix["recommended_distribution"][f"to_{host}"]}


def unportable_of(matrix: dict[str, Any], host: str) -> dict[str, str]:
    return {u["id"]: u["reason"] for u in matrix["unportable"][f"to_{host}"]}


# --------------------------------------------------------------------------- the matrix


def test_three_hosts_universal_unique_partial() -> None:
    m = capability_matrix(fixture_fleet())
    assert m["hosts"] == ["pc1", "pc2", "pc3"]
    assert m["kind"] == "matrix" and m["schema_version"] == 1
    assert set(m["universal_capabilities"]) == {
        "api_key:ANTHROPIC_API_KEY", "git", "mcp:filesystem", "nodejs", "pip:requests", "python"
    }
    assert "claude-desktop" in m["unique_to_pc1"]
    assert "cursor" in m["unique_to_pc2"]
    assert "tmux" in m["unique_to_pc3"]
    assert m["partial_capabilities"]["docker"] == ["pc1", "pc3"]
    docker = m["capabilities"]["docker"]
    assert docker["name"] == "Docker Desktop"
    assert docker["versions"] == {"pc1": "4.37.1", "pc3": "20.10.24+dfsg1-1+b3"}
    assert docker["missing"] == ["pc2"]
    assert docker["coverage"] == 66.7
    assert docker["status"] == "partial"
    # A dependency-only package is not a capability of the fleet.
    assert "apt:libssl3" not in m["capabilities"] and "pip:certifi" not in m["capabilities"]
    assert m["comparison_timestamp"] == "2025-01-06T09:15:40Z"  # the newest manifest


def test_coverage_per_capability_host_and_domain() -> None:
    m = capability_matrix(
        [
            manifest("a", [cap("pip:x", "1"), cap("pip:y", "1"), cap("jq", "1.7")]),
            manifest("b", [cap("pip:x", "1")]),
        ]
    )
    cov = m["coverage"]
    assert cov["by_host"]["a"] == {"present": 3, "total": 3, "percent": 100.0}
    assert cov["by_host"]["b"] == {"present": 1, "total": 3, "percent": 33.3}
    assert cov["by_domain"]["development"] == {"present": 4, "total": 6, "percent": 66.7}
    assert cov["overall"] == {"present": 4, "total": 6, "percent": 66.7}
    assert m["summary"]["capabilities"] == 3 and m["summary"]["universal"] == 1


def test_recommendation_entries() -> None:
    m = capability_matrix(fixture_fleet())
    docker = recs_of(m, "pc2")["docker"]
    assert docker == {
        "id": "docker",
        "name": "Docker Desktop",
        "type": "software",
        "domain": "infrastructure",
        "priority": "high",
        "risk": "high",
        "reason": "missing",
        "from_host": "pc1",  # the host whose manager (winget) pc2 will use
        "source_version": "4.37.1",
        "version": "4.37.1",
        "current_version": None,
        "pinned": False,
        "manager": "winget",
        "package": "Docker.DockerDesktop",
        "details": {},
    }
    for host in m["hosts"]:
        for rec in recommendations_for(m, host):
            assert isinstance(rec, Recommendation)


def test_manager_choice_and_version_only_when_meaningful() -> None:
    m = capability_matrix(fixture_fleet())
    pc3 = recs_of(m, "pc3")
    # Windows -> Linux: the catalog's apt package, and no winget version forced on apt.
    assert (pc3["vscode"]["manager"], pc3["vscode"]["package"], pc3["vscode"]["version"]) == ("apt", "code", None)
    assert pc3["vscode"]["source_version"] == "1.96.2"
    # pip -> pip keeps the version.
    assert (pc3["pip:numpy"]["manager"], pc3["pip:numpy"]["version"]) == ("pip", "2.2.1")
    pc1 = recs_of(m, "pc1")
    # A pipx tool goes to a host without pipx through pip, the next language manager.
    assert (pc1["ruff"]["manager"], pc1["ruff"]["package"]) == ("pip", "ruff")
    # choco on the source, winget on the target: Windows prefers winget.
    assert recs_of(m, "pc2")["sevenzip"]["manager"] == "winget"


def test_source_host_is_highest_version_then_name() -> None:
    fleet = [
        manifest("c", [cap("pip:x", "2.0")]),
        manifest("b", [cap("pip:x", "2.0")]),
        manifest("a", [cap("pip:x", "1.0")]),
        manifest("d", []),
    ]
    m = capability_matrix(fleet)
    assert recs_of(m, "d")["pip:x"]["from_host"] == "b"
    assert recs_of(m, "d")["pip:x"]["version"] == "2.0"


def test_mcp_server_travels_with_its_config_from_a_portable_holder() -> None:
    local = {"transport": "stdio", "command": "/opt/mcp/bin/mcp-server-memory", "args": [], "url": "",
             "env_names": ["MEMORY_FILE_PATH"]}
    npx = {"transport": "stdio", "command": "cmd", "args": ["/c", "npx", "-y", "@modelcontextprotocol/server-memory"],
           "url": "", "env_names": ["MEMORY_FILE_PATH"]}
    fleet = [
        manifest("a", [cap("mcp:memory", details=local)]),
        manifest("b", [cap("mcp:memory", details=npx)], family="windows"),
        manifest("c", []),
        manifest("d", [], managers=["apt", "pip"]),
    ]
    m = capability_matrix(fleet)
    rec = recs_of(m, "c")["mcp:memory"]
    assert rec["from_host"] == "b"  # a's server runs a local file; b's runs through npx
    assert (rec["manager"], rec["package"]) == ("mcp", "memory")
    assert rec["details"]["package"] == {"manager": "npm", "name": "@modelcontextprotocol/server-memory",
                                         "version": ""}
    assert rec["details"]["env_names"] == ["MEMORY_FILE_PATH"]
    assert "has no npm" in unportable_of(m, "d")["mcp:memory"]


@pytest.mark.parametrize(
    ("target_family", "target_managers", "cap_id", "reason"),
    [
        ("linux", None, "windows-terminal", "winget/choco-only; no apt package known"),
        ("linux", None, "winget:foo.bar", "winget-only; winget does not run on linux"),
        ("windows", ["choco", "pip"], "winget:foo.bar", "winget-only; the host has no winget"),
        ("linux", ["apt"], "pip:requests", "pip-only; the host has no pip"),
        ("linux", None, "command:rg", "no package known for command rg"),
        ("linux", None, "registry:Notepad++", "found in the Windows registry only"),
        ("windows", ["winget"], "git:github.com/x/y", "git is not installed on the host"),
        ("windows", [], "jq", "the host has no package manager Cyclotron installs with"),
    ],
)
def test_unportable_reasons(
    target_family: str, target_managers: list[str] | None, cap_id: str, reason: str
) -> None:
    details = {"remote": "https://github.com/x/y.git", "branch": "main"} if cap_id.startswith("git:") else {}
    source = manifest("src", [cap(cap_id, "1.0", details=details)], family="windows")
    target = manifest("dst", [], family=target_family, managers=target_managers)
    m = capability_matrix([source, target])
    assert reason in unportable_of(m, "dst")[cap_id]
    assert cap_id not in recs_of(m, "dst")
    # Reported, not dropped: the row still says the host lacks it.
    assert m["capabilities"][cap_id]["missing"] == ["dst"]


def test_api_keys_always_travel_git_needs_git() -> None:
    fleet = [
        manifest("a", [cap("api_key:OPENAI_API_KEY"),
                       cap("git:github.com/x/y", details={"remote": "https://github.com/x/y.git", "branch": "dev"})]),
        manifest("b", [], family="windows", managers=["winget"]),
        manifest("c", [], family="windows", managers=["winget", "git"]),
    ]
    m = capability_matrix(fleet)
    assert recs_of(m, "b")["api_key:OPENAI_API_KEY"]["manager"] == "env"
    assert recs_of(m, "b")["api_key:OPENAI_API_KEY"]["package"] == "OPENAI_API_KEY"
    git = recs_of(m, "c")["git:github.com/x/y"]
    assert (git["manager"], git["package"]) == ("git", "https://github.com/x/y.git")
    assert git["details"] == {"remote": "https://github.com/x/y.git", "branch": "dev"}


def test_unsafe_names_never_become_recommendations() -> None:
    fleet = [
        manifest("a", [cap("git:evil/x", details={"remote": "--upload-pack=touch /tmp/pwned"})]),
        manifest("b", []),
    ]
    m = capability_matrix(fleet)
    assert "git:evil/x" not in recs_of(m, "b")
    assert "not an https, ssh, git, file URL" in unportable_of(m, "b")["git:evil/x"]


# --------------------------------------------------------------------------- version drift


def test_drift_outdated_only_through_the_same_manager() -> None:
    m = capability_matrix(fixture_fleet())
    drift = {d["id"]: d for d in m["version_drift"]}
    assert drift["git"]["latest"] == "2.47.1" and drift["git"]["behind"] == ["pc2", "pc3"]
    assert drift["git"]["comparable"] is True
    pc2 = recs_of(m, "pc2")
    assert pc2["git"]["reason"] == "outdated"
    assert (pc2["git"]["current_version"], pc2["git"]["version"], pc2["git"]["from_host"]) == (
        "2.43.0", "2.47.1", "pc1"
    )
    # The peer's package installs the peer's version.
    assert pc2["python"]["package"] == "Python.Python.3.12"
    # pc3's git comes from apt; no apt host is newer, so nothing to upgrade through.
    assert "git" not in recs_of(m, "pc3")
    assert recs_of(m, "pc3")["pip:requests"]["reason"] == "outdated"
    assert m["capabilities"]["git"]["drift"] is True and m["capabilities"]["typescript"]["drift"] is False


def test_never_a_downgrade_unparseable_flagged() -> None:
    fleet = [
        manifest("a", [cap("pip:x", "2.0"), cap("pip:y", "nightly-7"), cap("pip:z", "1.0")]),
        manifest("b", [cap("pip:x", "1.0"), cap("pip:y", "1.0"), cap("pip:z", "1.0.0")]),
    ]
    m = capability_matrix(fleet)
    assert recs_of(m, "b")["pip:x"]["reason"] == "outdated"
    assert "pip:x" not in recs_of(m, "a")
    drift = {d["id"]: d for d in m["version_drift"]}
    assert drift["pip:y"]["unparseable"] == ["a"] and drift["pip:y"]["comparable"] is False
    assert "pip:y" not in recs_of(m, "a") and "pip:y" not in recs_of(m, "b")
    assert "pip:z" not in drift  # 1.0 == 1.0.0


def test_unparseable_only_compared_as_strings() -> None:
    fleet = [manifest("a", [cap("pip:x", "build10")]), manifest("b", [cap("pip:x", "build9")])]
    entry = capability_matrix(fleet)["version_drift"][0]
    assert (entry["latest"], entry["behind"], entry["comparable"]) == ("build10", ["b"], False)
    assert entry["unparseable"] == ["a", "b"]


# --------------------------------------------------------------------------- policy


def test_policy_exclude_domains_ignore_override_pin() -> None:
    fleet = [
        manifest("desktop", [cap("steam", "1.0", manager="brew"), cap("vlc", "3.0"), cap("jq", "1.7"),
                             cap("command:rg", "14"), cap("docker", "24.0"), cap("pip:requests", "2.32.3")],
                 family="darwin"),
        manifest("laptop", [cap("pip:requests", "2.31.0")], family="darwin"),
        manifest("server", [cap("pip:requests", "2.31.0")]),
    ]
    policies = {
        "laptop": {"exclude": ["tag:games"], "ignore": ["command:*"],
                   "overrides": {"docker": {"priority": "low", "risk": "low"}},
                   "pinned": {"jq": "1.6", "pip:requests": "2.30.0"}},
        "server": {"domains": ["infrastructure", "ai"], "pinned": {"pip:requests": "2.30.0"}},
    }
    m = capability_matrix(fleet, policies=policies)
    laptop = recs_of(m, "laptop")
    assert "steam" not in laptop
    excluded = {e["id"]: e["reason"] for e in m["policy_excluded"]["to_laptop"]}
    assert excluded == {"steam": "matches exclude pattern 'tag:games'"}
    assert m["capabilities"]["steam"]["excluded"] == ["laptop", "server"]
    assert (laptop["docker"]["priority"], laptop["docker"]["risk"]) == ("low", "low")
    assert (laptop["jq"]["version"], laptop["jq"]["pinned"]) == ("1.6", True)
    # Ignored: not missing, not counted in coverage.
    row = m["capabilities"]["command:rg"]
    assert row["ignored"] == ["laptop"] and row["missing"] == ["server"] and row["coverage"] == 50.0
    server_excluded = {e["id"] for e in m["policy_excluded"]["to_server"]}
    assert {"vlc", "jq", "steam"} <= server_excluded and "docker" in recs_of(m, "server")
    # A pin is a downgrade the host asked for...
    pin = laptop["pip:requests"]
    assert (pin["reason"], pin["version"], pin["current_version"], pin["pinned"]) == (
        "pinned", "2.30.0", "2.31.0", True
    )
    # ...unless its policy keeps the domain away: exclusion wins, and says what it blocked.
    blocked = {(d["id"], d["gap"]) for d in m["policy_excluded"]["to_server"]}
    assert ("pip:requests", "pinned") in blocked
    assert "pip:requests" not in recs_of(m, "server")


def test_recommendations_in_stable_priority_order_shared_by_hosts_alike() -> None:
    """Each host's lists are stably ordered by priority (capability ids within one priority), and
    hosts of one profile share one recommendation object; a host whose policy changes the
    recommendation (an override, a pin) gets its own copy and the shared one is unchanged."""
    from cyclotron_py.compare.documents import PRIORITY_RANK

    caps = [cap("docker", "24.0"), cap("jq", "1.7"), cap("pip:requests", "2.32.3"), cap("python", "3.12.1"),
            cap("vlc", "3.0"), cap("nodejs", "20.1.0")]
    fleet = [manifest("source", caps), manifest("a", []), manifest("b", []), manifest("c", [])]
    m = capability_matrix(fleet, policies={"c": {"overrides": {"python": {"priority": "low"}}}})
    for key in ("recommended_distribution", "unportable", "policy_excluded"):
        for entries in m[key].values():
            ranks = [PRIORITY_RANK.get(e["priority"], 1) for e in entries]
            assert ranks == sorted(ranks)
            assert entries == sorted(entries, key=lambda e: PRIORITY_RANK.get(e["priority"], 1))
    a, b, c = (m["recommended_distribution"][f"to_{h}"] for h in ("a", "b", "c"))
    assert [r["id"] for r in a] == [r["id"] for r in b] and all(x is y for x, y in zip(a, b, strict=True))
    python_a, python_c = (next(r for r in recs if r["id"] == "python") for recs in (a, c))
    assert python_a["priority"] == "high" and python_c["priority"] == "low" and python_c is not python_a
    assert [r["id"] for r in c if r["priority"] == "low"] == sorted(r["id"] for r in c if r["priority"] == "low")
    assert m["summary"]["recommendations"] == len(a) + len(b) + len(c)


def test_ignored_everywhere_is_not_in_the_matrix() -> None:
    fleet = [manifest("a", [cap("command:rg", "1")]), manifest("b", [])]
    m = capability_matrix(fleet, policies={"a": {"ignore": ["command:*"]}, "b": {"ignore": ["command:*"]}})
    assert m["capabilities"] == {}


def test_bad_policy_raises() -> None:
    with pytest.raises(PolicyError, match="cyclotron_policy for a: domains: 'games' is not a known domain"):
        capability_matrix([manifest("a", [])], policies={"a": {"domains": ["games"]}})


# --------------------------------------------------------------------------- input errors


def test_duplicate_hosts_and_empty_input() -> None:
    with pytest.raises(ManifestError, match="duplicate host name 'a'"):
        capability_matrix([manifest("a", []), manifest("a", [cap("pip:x", "1")])])
    with pytest.raises(ManifestError, match="no manifests to compare"):
        capability_matrix([])


def test_compact_records_give_the_same_result() -> None:
    fleet = fixture_fleet()
    assert dumps(capability_matrix(fleet)) == dumps(
        capability_matrix([host_record(m, compact=True) for m in fleet])
    )


# --------------------------------------------------------------------------- two-way gaps


def test_two_way_gaps_original_shape() -> None:
    a, b = load_manifests([FIXTURES / "pc1.json", FIXTURES / "pc3.json"])
    gaps = capability_gaps(a, b)
    assert (gaps["pc_a"], gaps["pc_b"], gaps["kind"]) == ("pc1", "pc3", "gaps")
    assert set(gaps["gaps"]) == {f"{c}_missing_from_{h}" for c in GAP_CATEGORIES.values() for h in ("pc1", "pc3")}
    assert {"id": "claude-desktop", "name": "Claude Desktop", "domain": "ai", "priority": "high",
            "version": "0.7.8"} in gaps["gaps"]["software_missing_from_pc3"]
    assert [i["name"] for i in gaps["gaps"]["api_keys_missing_from_pc3"]] == ["OPENAI_API_KEY"]
    assert [i["id"] for i in gaps["gaps"]["mcp_tools_missing_from_pc3"]] == ["mcp:github"]
    assert [i["id"] for i in gaps["gaps"]["pipx_tools_missing_from_pc1"]] == ["httpie", "ruff"]
    assert "Claude Desktop" in gaps["priority_distribution"]["high"]
    assert "OPENAI_API_KEY" in gaps["priority_distribution"]["high"]
    assert "HTTPie" in gaps["priority_distribution"]["low"]
    assert {d["id"] for d in gaps["version_drift"]} >= {"git", "nodejs"}
    # Policy: what a host excludes is not "missing" from it.
    gaps = capability_gaps(a, b, policies={"pc3": {"exclude": ["claude-desktop"]}})
    assert "claude-desktop" not in {i["id"] for i in gaps["gaps"]["software_missing_from_pc3"]}


# --------------------------------------------------------------------------- interfaces


def test_distribution_plan_feeds_the_planner() -> None:
    fleet = fixture_fleet()
    m = capability_matrix(fleet)
    dist = distribution_plan(m)
    assert set(dist) == {"pc1", "pc2", "pc3"}
    assert dist["pc2"] == m["recommended_distribution"]["to_pc2"]
    families = {f.host: f.os.family for f in fleet}
    plan = build_plan(dist, families, CATALOG, approve="all", unportable=unportable_by_host(m))
    planned = {i.id for h in plan.hosts for i in h.items}
    assert {"docker", "mcp:brave-search", "git:gitlab.com/example/infra", "api_key:OPENAI_API_KEY"} <= planned
    with pytest.raises(ManifestError, match="not a capability matrix"):
        distribution_plan({"hosts": []})


def test_schema_file_is_generated_from_the_models() -> None:
    assert json.loads(SCHEMA.read_text(encoding="utf-8")) == comparison_json_schema(), (
        "regenerate: python -c 'import json; from cyclotron_py.compare import comparison_json_schema as s; "
        "print(json.dumps(s(), indent=2, sort_keys=True))' > cyclotron_py/schema/comparison.schema.json"
    )


def test_outputs_validate_against_schema_and_models() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    fleet = fixture_fleet()
    matrix = capability_matrix(fleet, policies={"pc3": {"exclude": ["tag:games"], "ignore": ["command:*"]}})
    gaps = capability_gaps(fleet[0], fleet[1])
    for doc in (matrix, gaps):
        text = dumps(doc)
        assert json.loads(text) == doc
        validator.validate(json.loads(text))
        assert ComparisonDocument.model_validate(doc).model_dump(mode="json") == doc
    bad = {**matrix, "surprise": ["x"]}
    assert not validator.is_valid(bad)
    with pytest.raises(ValueError, match="unknown key 'surprise'"):
        MatrixDocument.model_validate(bad)


def test_result_is_independent_of_input_order() -> None:
    fleet = fixture_fleet()
    shuffled = [
        m.model_copy(update={"capabilities": list(reversed(m.capabilities))}) for m in reversed(fleet)
    ]
    assert dumps(capability_matrix(fleet)) == dumps(capability_matrix(shuffled))


# --------------------------------------------------------------------------- the JSON text


def _layout_reference(value: Any, depth: int = 0, lead: str = "") -> str:
    """The layout as first written, line by line through json's encoder: dumps is held to it."""
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": ")).encode
    pad = "  " * depth
    expand = bool(value) and (
        (isinstance(value, dict) and depth < 2)
        or (isinstance(value, list) and (depth < 2 or isinstance(value[0], dict)) and depth < 3)
    )
    if not expand:
        return f"{pad}{lead}{encode(value)}"
    if isinstance(value, dict):
        inner = [_layout_reference(v, depth + 1, f"{encode(str(k))}: ") for k, v in sorted(value.items())]
        return f"{pad}{lead}{{\n" + ",\n".join(inner) + f"\n{pad}}}"
    inner = [_layout_reference(v, depth + 1) for v in value]
    return f"{pad}{lead}[\n" + ",\n".join(inner) + f"\n{pad}]"


AWKWARD_TEXT = ["é漢😀", "a\x00b\x1f\x7f\x80\x9f", "\u2028\u2029", '"\\/\b\f\n\r\t', "x, y: {z}", "\ud800"]


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_dumps_is_the_line_by_line_json_text(text: str) -> None:
    """msgspec encodes the lines (dumps), json is the reference (dumps_stdlib): the same bytes,
    for awkward strings, keys that sort differently as bytes, and floats msgspec writes otherwise."""
    matrix = capability_matrix(fixture_fleet(), policies={"pc3": {"exclude": ["tag:games"]}})
    recs = matrix["recommended_distribution"]["to_pc2"]
    recs[0] = {**recs[0], "name": text, "details": {text: [text, 1e16, 1.5e-7, 0.1], "é": 1, "z": None}}
    matrix[f"unique_to_{text}"] = [text, "b"]
    matrix["capabilities"] = {**matrix["capabilities"], text: {**next(iter(matrix["capabilities"].values()))}}
    expected = _layout_reference(matrix) + "\n"
    assert dumps(matrix) == dumps_stdlib(matrix) == expected
    recs[0]["details"] = {"plain": [text]}  # no float: this batch goes through msgspec
    assert dumps(matrix) == _layout_reference(matrix) + "\n"
    # Written in pieces (matrix --json -o FILE): the same bytes.
    pieces: list[bytes] = []
    dump_utf8(matrix, pieces.append)
    assert len(pieces) > 3
    assert b"".join(pieces) == dumps_utf8(matrix) == dumps(matrix).encode("utf-8", "surrogatepass")


def test_dumps_writes_an_object_hosts_share_as_often_as_it_appears() -> None:
    """The layout encodes a dict shared by several lists once (by identity) and writes it each time;
    a batch that goes through json (a float) and one through msgspec meet the same object."""
    shared = {"id": "jq", "details": {}, "priority": "normal"}
    floaty = {"id": "x", "details": {"f": 1e16}, "priority": "low"}
    doc = {"hosts": ["a", "b", "c"],
           "recommended_distribution": {"to_a": [shared, floaty], "to_b": [shared], "to_c": [floaty, shared]}}
    expected = _layout_reference(doc) + "\n"
    assert dumps(doc) == dumps_stdlib(doc) == expected
    assert expected.count('"id": "jq"') == 3
    m = capability_matrix(fixture_fleet())
    assert dumps(m) == dumps_stdlib(m) == _layout_reference(m) + "\n"


def test_a_fleet_compared_in_two_processes_gives_the_same_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI compares the second half of a large fleet's capabilities in a forked child: the
    document is the one a single process makes, with policies that exclude, ignore, override
    and pin, drift, upgrades and unportable gaps on both sides of the split."""
    from cyclotron_py import forked
    from cyclotron_py.compare import engine

    fleet = [
        manifest("desktop", [cap("steam", "1.0", manager="brew"), cap("vlc", "3.0"), cap("jq", "1.7"),
                             cap("command:rg", "14"), cap("docker", "24.0"), cap("pip:requests", "2.32.3"),
                             cap("winget:Microsoft.PowerToys", "0.80")],
                 family="darwin"),
        manifest("laptop", [cap("pip:requests", "2.31.0"), cap("jq", "1.6")], family="darwin"),
        manifest("server", [cap("pip:requests", "2.31.0"), cap("npm:is-number", "7.0.0")]),
        *fixture_fleet(),
    ]
    policies = {
        "laptop": {"exclude": ["tag:games"], "ignore": ["command:*"],
                   "overrides": {"docker": {"priority": "low", "risk": "low"}},
                   "pinned": {"jq": "1.6", "pip:requests": "2.30.0"}},
        "server": {"domains": ["infrastructure", "ai", "development"], "pinned": {"pip:requests": "2.30.0"}},
    }
    one = capability_matrix(fleet, policies=policies)
    forks: list[int] = []
    real = forked.fork_call

    def counted(compute: Any) -> Any:
        forks.append(1)
        return real(compute)

    monkeypatch.setattr(engine, "PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(engine, "fork_call", counted)
    two = capability_matrix(fleet, policies=policies, parallel=True)
    assert forks == [1]
    assert dumps(two) == dumps(one)
    # No child, or a child that fails: this process compares that half itself.
    monkeypatch.setattr(engine, "fork_call", lambda compute: None)
    assert dumps(capability_matrix(fleet, policies=policies, parallel=True)) == dumps(one)
    monkeypatch.setattr(engine, "fork_call", lambda compute: real(lambda: 1 // 0))
    assert dumps(capability_matrix(fleet, policies=policies, parallel=True)) == dumps(one)
