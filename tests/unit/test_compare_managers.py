"""Hosts whose manifest lists no ``managers`` (hand-written, another tool, the original design's format)."""

from __future__ import annotations

from typing import Any

from cyclotron_py.compare import capability_matrix
from cyclotron_py.models import Manifest


def _manifest(host: str, family: str, caps: list[tuple[str, str, str]], managers: list[str] | None) -> Manifest:
    doc: dict[str, Any] = {
        "schema_version": 1, "host": host, "gathered_at": "2026-11-23T18:00:00Z",
        "os": {"family": family, "distribution": "", "version": "", "arch": "x86_64"},
        "capabilities": [
            {"id": cid, "type": "software", "name": pkg, "version": "1.0", "domain": "development",
             "source": {"manager": manager, "package": pkg, "path": ""}}
            for cid, manager, pkg in caps
        ],
    }
    if managers is not None:
        doc["managers"] = managers
    return Manifest.model_validate(doc)


def test_managers_are_inferred_from_sources_when_the_manifest_has_none() -> None:
    """A Windows PC whose manifest lists winget packages has winget, even without a managers field."""
    both = [("winget:Foo.Bar", "winget", "Foo.Bar"), ("winget:Git.Git", "winget", "Git.Git")]
    pc1 = _manifest("pc1", "windows", both, None)
    pc2 = _manifest("pc2", "windows", [("winget:Git.Git", "winget", "Git.Git")], None)
    matrix = capability_matrix([pc1, pc2])
    assert matrix["host_info"]["pc2"]["managers"] == ["winget"]
    assert matrix["host_info"]["pc2"]["managers_inferred"] is True
    assert [r["id"] for r in matrix["recommended_distribution"]["to_pc2"]] == ["winget:Foo.Bar"]
    assert matrix["unportable"]["to_pc2"] == []


def test_an_explicit_empty_list_still_means_no_managers() -> None:
    pc1 = _manifest("pc1", "windows", [("winget:Foo.Bar", "winget", "Foo.Bar")], ["winget"])
    pc2 = _manifest("pc2", "windows", [("winget:Git.Git", "winget", "Git.Git")], [])
    matrix = capability_matrix([pc1, pc2])
    assert matrix["host_info"]["pc2"]["managers"] == [] and matrix["host_info"]["pc2"]["managers_inferred"] is False
    assert matrix["recommended_distribution"]["to_pc2"] == []
    assert "the host has no winget" in matrix["unportable"]["to_pc2"][0]["reason"]
