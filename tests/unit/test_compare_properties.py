"""Properties of the comparison over generated fleets (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyclotron_py.compare import apply_recommendations, capability_matrix, dumps, host_record
from cyclotron_py.models import Manifest
from tests.unit.test_compare import CATALOG, MANAGERS, cap, manifest

# A mix of catalog ids (some OS-specific), manager-qualified ids, MCP servers, keys, repos, commands.
POOL = [
    "git", "jq", "docker", "windows-terminal", "tmux", "ruff", "typescript", "steam", "claude-desktop",
    "pip:requests", "pip:numpy", "npm:left-pad", "winget:foo.bar", "apt:libfoo", "registry:Tool",
    "api_key:OPENAI_API_KEY", "command:rg", "mcp:memory", "mcp:local", "git:github.com/x/y",
]
ONLY = {"winget:foo.bar": "windows", "registry:Tool": "windows", "apt:libfoo": "linux"}
VERSIONS = ["1.0", "1.2", "2.0", "2.0.0", None, "nightly"]
MCP = {
    "mcp:memory": {"transport": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"],
                   "url": "", "env_names": []},
    "mcp:local": {"transport": "stdio", "command": "/opt/local/server", "args": [], "url": "", "env_names": []},
}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _host_cap(cap_id: str, family: str, version: str | None) -> dict[str, Any] | None:
    if ONLY.get(cap_id, family) != family:
        return None
    entry = CATALOG.get(cap_id)
    manager = None
    if entry is not None:
        usable = [m for m in MANAGERS[family] if entry.package_for(m)]
        if not usable:
            return None
        manager = usable[0]
    if cap_id.startswith(("mcp:", "api_key:", "git:")):
        version = None
    details: dict[str, Any] = MCP.get(cap_id, {})
    if cap_id.startswith("git:"):
        details = {"remote": "https://github.com/x/y.git", "branch": "main"}
    return cap(cap_id, version, manager=manager, details=details)


@st.composite
def hosts(draw: st.DrawFn, count: tuple[int, int] = (1, 5)) -> list[Manifest]:
    n = draw(st.integers(*count))
    out = []
    for i in range(n):
        family = draw(st.sampled_from(["windows", "linux", "darwin"]))
        managers = draw(st.lists(st.sampled_from(MANAGERS[family]), unique=True, min_size=1))
        ids = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=12))
        caps = [c for c in (_host_cap(cid, family, draw(st.sampled_from(VERSIONS))) for cid in ids) if c]
        out.append(manifest(f"h{i}", caps, family=family, managers=sorted(managers)))
    return out


@SETTINGS
@given(hosts())
def test_applying_the_distribution_makes_every_portable_capability_universal(fleet: list[Manifest]) -> None:
    records = [host_record(m) for m in fleet]
    matrix = capability_matrix(records, catalog=CATALOG)
    # A host that receives git can then clone repos: iterate to the fixpoint (a few rounds at most).
    for _ in range(3):
        if not matrix["summary"]["recommendations"]:
            break
        records = apply_recommendations(records, matrix)
        matrix = capability_matrix(records, catalog=CATALOG)
    assert matrix["summary"]["recommendations"] == 0
    unportable = {(h, u["id"]) for h in matrix["hosts"] for u in matrix["unportable"][f"to_{h}"]}
    for cap_id, row in matrix["capabilities"].items():
        for host in row["missing"]:
            assert (host, cap_id) in unportable, f"{cap_id} still missing on {host} with no reason"
        if not any(c == cap_id for _, c in unportable):
            assert row["status"] == "universal"


@SETTINGS
@given(hosts(count=(1, 1)), st.integers(2, 5))
def test_identical_manifests_have_no_gaps(one: list[Manifest], copies: int) -> None:
    base = one[0]
    fleet = [base.model_copy(update={"host": f"twin{i}"}) for i in range(copies)]
    matrix = capability_matrix(fleet, catalog=CATALOG)
    assert all(row["status"] == "universal" for row in matrix["capabilities"].values())
    assert matrix["summary"]["recommendations"] == 0
    assert matrix["summary"]["unportable"] == 0
    assert matrix["version_drift"] == []
    assert matrix["coverage"]["overall"]["percent"] == 100.0


@SETTINGS
@given(hosts(count=(1, 5)), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_order(fleet: list[Manifest], rnd: Any) -> None:
    shuffled = []
    for m in fleet:
        caps = list(m.capabilities)
        rnd.shuffle(caps)
        shuffled.append(m.model_copy(update={"capabilities": caps}))
    rnd.shuffle(shuffled)
    assert dumps(capability_matrix(fleet, catalog=CATALOG)) == dumps(capability_matrix(shuffled, catalog=CATALOG))
