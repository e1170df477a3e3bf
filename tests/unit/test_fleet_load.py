"""The fast loader accepts exactly what the full validator accepts, with the same warnings, and
rejects with the validator's report; manifests without `managers` get them inferred."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.compare import capability_matrix, distribution_plan, host_record, unportable_by_host
from cyclotron_py.errors import ManifestError
from cyclotron_py.fleet_load import Loader, load_records
from cyclotron_py.sync import collect_manifests
from cyclotron_py.validate import load_manifests, validate_data, validate_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
ALL_FIXTURES = sorted((FIXTURES / "valid").glob("*.json")) + sorted((FIXTURES / "corrupt").glob("*.json"))
PC1 = json.loads((FIXTURES / "valid" / "pc1.json").read_text(encoding="utf-8"))
FAKE_GITHUB = "ghp" + "_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _row(cap: Any) -> tuple[Any, ...]:
    return (cap.id, cap.type, cap.name, cap.version, cap.domain, cap.priority, cap.risk, cap.source.manager,
            cap.source.package, cap.source.path, cap.top_level, cap.details)


def _same_as_validator(path: Path) -> None:
    manifest, problems = validate_file(path)
    record, result = Loader().load_file(path)
    assert (record is not None) == (manifest is not None), path
    if record is None:
        assert result.problems == problems  # the validator's own report
        return
    assert manifest is not None
    assert result.problems == [p for p in problems if p.severity == "warning"] == problems
    full = host_record(manifest, compact=True)
    assert (record.host, record.family, record.distribution, record.managers, record.gathered_at) == (
        full.host, full.family, full.distribution, full.managers, full.gathered_at
    )
    assert {k: _row(v) for k, v in record.caps.items()} == {k: _row(v) for k, v in full.caps.items()}


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_is_judged_as_the_validator_judges_it(path: Path) -> None:
    _same_as_validator(path)


def _edit(doc: dict[str, Any], how: str) -> str:
    cap = doc["capabilities"][0]
    text = None
    if how == "dup-key-in-capability":
        text = json.dumps(doc).replace('"type": "software",', '"type": "software", "type": "command",', 1)
    elif how == "dup-top-key":
        text = json.dumps(doc).replace('"host": "pc1",', '"host": "pc1", "host": "pc2",', 1)
    elif how == "spaced-colon-dup":
        text = json.dumps(doc).replace('"host": "pc1",', '"host" : "pc1", "host"\n:"pc1",', 1)
    elif how == "dup-key-escaped-colon":  # the repeated key's ':' offset by a colon written as \u003a
        text = json.dumps(doc).replace('"host": "pc1",', '"host": "pc1", "host": "pc1",', 1)
        hour = f'"gathered_at": "{doc["gathered_at"][:13]}'
        text = text.replace(f"{hour}:", f"{hour}\\u003a", 1)
        assert "\\u003a" in text
    elif how == "dup-os-key":
        text = json.dumps(doc).replace('"family": ', '"family": "linux", "family": ', 1)
    elif how == "dup-detail-key":
        cap["details"] = {"branch": "main"}
        text = json.dumps(doc).replace('"branch": "main"', '"branch": "main", "branch": "dev"', 1)
    elif how == "padded-id":
        cap["id"] = " " + cap["id"]
    elif how == "padded-name":
        cap["name"] += " "
    elif how == "secret-name":
        cap["name"] = FAKE_GITHUB
    elif how == "secret-detail":
        cap["details"] = {"env": {"GITHUB_TOKEN": FAKE_GITHUB}}
    elif how == "control-char":
        cap["name"] = "Git\x1b[31m"
    elif how == "extra-key":
        cap["package"] = "x"
    elif how == "unknown-domain":
        cap["domain"] = "devlopment"
    elif how == "future":
        doc["gathered_at"] = "2999-01-01T00:00:00Z"
    elif how == "no-zone":
        doc["gathered_at"] = "2025-01-01T00:00:00"
    elif how == "no-schema-version":
        del doc["schema_version"]
    elif how == "managers-null":
        doc["managers"] = None
    elif how == "duplicate-id":
        doc["capabilities"].append(copy.deepcopy(cap))
    elif how == "bad-version":
        cap["version"] = "1.0; rm -rf /"
    elif how == "odd-version":
        cap["version"] = "release-candidate"
    elif how == "type-mismatch":
        cap["type"] = "command"
    elif how == "bool-as-string":
        cap["top_level"] = "true"
    elif how == "bom":
        text = "\ufeff" + json.dumps(doc)
    elif how == "no-managers":
        del doc["managers"]
    return text if text is not None else json.dumps(doc, indent=1)


EDITS = [
    "dup-key-in-capability", "dup-top-key", "spaced-colon-dup", "dup-key-escaped-colon", "dup-os-key",
    "dup-detail-key", "padded-id", "padded-name", "secret-name",
    "secret-detail", "control-char", "extra-key", "unknown-domain", "future", "no-zone", "no-schema-version",
    "managers-null", "duplicate-id", "bad-version", "odd-version", "type-mismatch", "bool-as-string", "bom",
    "no-managers",
]


@pytest.mark.parametrize("how", EDITS)
def test_edited_manifest_is_judged_as_the_validator_judges_it(tmp_path: Path, how: str) -> None:
    path = tmp_path / "pc1.json"
    path.write_text(_edit(copy.deepcopy(PC1), how), encoding="utf-8")
    _same_as_validator(path)


@pytest.mark.parametrize("path", sorted((FIXTURES / "valid").glob("*.json")), ids=lambda p: p.name)
def test_valid_fixture_takes_the_fast_path(path: Path) -> None:
    assert Loader()._fast_file(path, str(path), path.stem) is not None


@pytest.mark.parametrize("how", ["future", "odd-version", "type-mismatch", "no-managers"])
def test_warnings_are_given_by_the_fast_path_itself(tmp_path: Path, how: str) -> None:
    path = tmp_path / "pc1.json"
    path.write_text(_edit(copy.deepcopy(PC1), how), encoding="utf-8")
    fast = Loader()._fast_file(path, str(path), "pc1")
    assert fast is not None
    assert fast[1] == validate_file(path)[1]


@pytest.mark.parametrize("how", ["padded-id", "secret-detail", "unknown-domain", "odd-version", "no-managers"])
def test_in_memory_document_is_judged_as_the_validator_judges_it(how: str) -> None:
    doc = json.loads(_edit(copy.deepcopy(PC1), how).lstrip("\ufeff"))
    manifest, problems = validate_data(copy.deepcopy(doc), file="<pc1>", expected_host="pc1")
    record, result = Loader().load_document(doc, file="<pc1>", expected_host="pc1")
    assert (record is None) == (manifest is None)
    assert result.problems == problems


def test_rejection_message_is_the_validators(tmp_path: Path) -> None:
    for path in ALL_FIXTURES:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ManifestError) as full:
        load_manifests(tmp_path)
    with pytest.raises(ManifestError) as fast:
        load_records(tmp_path)
    assert str(fast.value) == str(full.value)


def test_duplicate_host_in_two_files_is_rejected_like_the_validator(tmp_path: Path) -> None:
    (tmp_path / "pc1.json").write_text(json.dumps(PC1), encoding="utf-8")
    (tmp_path / "copy.json").write_text(json.dumps(PC1).replace('"pc1"', '"pc1"'), encoding="utf-8")
    other = tmp_path / "b"
    other.mkdir()
    (other / "pc1.json").write_text(json.dumps(PC1), encoding="utf-8")
    with pytest.raises(ManifestError) as full:
        load_manifests([tmp_path / "pc1.json", other / "pc1.json"])
    with pytest.raises(ManifestError) as fast:
        load_records([tmp_path / "pc1.json", other / "pc1.json"])
    assert str(fast.value) == str(full.value)


# --------------------------------------------------------------------------- managers absent: inferred

WINGET_PKG = {"manager": "winget", "package": "Git.Git", "path": ""}


def _windows(host: str, caps: list[tuple[str, str]], managers: list[str] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "host": host,
        "gathered_at": "2025-01-06T09:14:02Z",
        "os": {"family": "windows"},
        "capabilities": [
            {"id": f"winget:{pkg}", "type": "software", "name": pkg, "version": "1.0", "domain": "productivity",
             "source": {"manager": "winget", "package": pkg}}
            for pkg, _ in caps
        ],
    }
    if managers is not None:
        doc["managers"] = managers
    return doc


@pytest.mark.parametrize("path", ["fast", "full"])
def test_windows_manifest_without_managers_gets_its_winget_gaps_installed(tmp_path: Path, path: str) -> None:
    # A hand-written manifest (no "managers" key) listing winget packages: the host has winget.
    hand = _windows("pc8", [("Git.Git", "")], None)
    peer = _windows("pc9", [("Git.Git", ""), ("7zip.7zip", "")], ["winget"])
    for doc in (hand, peer):
        (tmp_path / f"{doc['host']}.json").write_text(json.dumps(doc), encoding="utf-8")
    records = load_records(tmp_path) if path == "fast" else [host_record(m) for m in load_manifests(tmp_path)]
    by_host = {r.host: r for r in records}
    assert by_host["pc8"].managers == ("winget",)
    assert by_host["pc8"].managers_inferred is True
    assert by_host["pc9"].managers_inferred is False
    matrix = capability_matrix(records)
    wanted = [r["id"] for r in distribution_plan(matrix).get("pc8", [])]
    assert "winget:7zip.7zip" in wanted
    assert not any("has no winget" in g["reason"] for g in unportable_by_host(matrix).get("pc8", []))


def test_explicit_empty_managers_still_means_none(tmp_path: Path) -> None:
    hand = _windows("pc8", [("Git.Git", "")], [])
    peer = _windows("pc9", [("Git.Git", ""), ("7zip.7zip", "")], ["winget"])
    for doc in (hand, peer):
        (tmp_path / f"{doc['host']}.json").write_text(json.dumps(doc), encoding="utf-8")
    records = load_records(tmp_path)
    assert {r.host: r.managers_inferred for r in records} == {"pc8": False, "pc9": False}
    matrix = capability_matrix(records)
    assert "winget:7zip.7zip" not in [r["id"] for r in distribution_plan(matrix).get("pc8", [])]
    reasons = [g["reason"] for g in unportable_by_host(matrix)["pc8"]]
    assert any("the host has no winget" in r for r in reasons)


def test_plan_step_reads_a_gathered_hosts_file_not_again(tmp_path: Path) -> None:
    # The gathered document is the one validated; a stale (here: broken) file of that host is not read.
    (tmp_path / "pc1.json").write_text("{ not json", encoding="utf-8")
    records = collect_manifests({"pc1": PC1}, tmp_path)
    assert [r.host for r in records] == ["pc1"]


def test_two_processes_load_what_one_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI loads the second half of a large fleet in a forked worker: the same records, warnings
    # and reports, in file order, whatever the worker's half holds (valid, warned, corrupt).
    from cyclotron_py import fleet_load

    paths = []
    for n, path in enumerate(ALL_FIXTURES):
        copy_path = tmp_path / f"{n:02d}-{path.name}"
        copy_path.write_bytes(path.read_bytes())
        paths.append(copy_path)
    forks: list[int] = []
    real_fork = fleet_load._forked

    def counted(loader: Loader, some: list[Path]) -> Any:
        forks.append(len(some))
        return real_fork(loader, some)

    monkeypatch.setattr(fleet_load, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(fleet_load, "_forked", counted)
    one = Loader().load_files(paths)
    two = Loader().load_files(paths, parallel=True)
    assert forks and 0 < forks[0] < len(paths)
    assert [r.file for _, r in two] == [str(p) for p in paths]
    assert [(r.problems, r.valid) for _, r in two] == [(r.problems, r.valid) for _, r in one]
    assert [None if rec is None else (rec.host, rec.managers, {k: _row(v) for k, v in rec.caps.items()})
            for rec, _ in two] == [
        None if rec is None else (rec.host, rec.managers, {k: _row(v) for k, v in rec.caps.items()})
        for rec, _ in one
    ]
