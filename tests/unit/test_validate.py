"""Manifest validation: corrupt input of every kind becomes a clear problem, never a traceback."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyclotron_py.cli import main
from cyclotron_py.errors import ManifestError
from cyclotron_py.models import DEFAULT_DOMAINS, Capability
from cyclotron_py.validate import (
    MAX_MANIFEST_BYTES,
    FileResult,
    Problem,
    format_report,
    load_domains,
    load_manifests,
    parses_as_version,
    validate_data,
    validate_file,
    validate_paths,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
VALID = FIXTURES / "valid"
CORRUPT = FIXTURES / "corrupt"

# Fake credentials are assembled at run time so secret scanners do not flag this file.
FAKE_ANTHROPIC = "sk-" + "ant-api03-" + "Xy7Qm2Lp9Rt4Vn8Kb3Hd6Jf1Gs5Wc0Ze"
FAKE_GITHUB = "ghp" + "_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
FAKE_RANDOM = "xK9mP2vL8nQ4wR7tY3uZ6aB1cD5eF0gH" + "Jq"


def pc1() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VALID / "pc1.json").read_text(encoding="utf-8"))
    return data


def problems_of(data: Any, host: str | None = "pc1") -> list[Problem]:
    _, problems = validate_data(data, file="pc1.json", expected_host=host)
    return problems


def mutate(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    data = pc1()
    result = change(data)
    return data if result is None else result


def cap(i: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: d["capabilities"][i]


# --------------------------------------------------------------------------- the valid fixtures


def test_valid_fixtures_have_no_problems() -> None:
    results = validate_paths(VALID)
    assert [Path(r.file).name for r in results] == ["pc1.json", "pc2.json", "pc3.json"]
    for result in results:
        assert result.problems == [], format_report([result], color=False)
        assert result.valid


def test_valid_fixtures_cover_every_capability_type() -> None:
    manifests = load_manifests(VALID)
    assert [m.host for m in manifests] == ["pc1", "pc2", "pc3"]
    types = {c.type for m in manifests for c in m.capabilities}
    assert types == {
        "software",
        "python_package",
        "npm_package",
        "pipx_tool",
        "mcp_server",
        "api_key",
        "command",
        "git_repo",
    }
    assert {m.os.family for m in manifests} == {"windows", "linux"}


# --------------------------------------------------------------------------- corrupt data, one case each


def _del(*keys: str | int) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        target: Any = d
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _set(value: Any, *keys: str | int) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        target: Any = d
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _append_copy_of_first(d: dict[str, Any]) -> None:
    d["capabilities"].append(copy.deepcopy(d["capabilities"][0]))


def _move_package_up(d: dict[str, Any]) -> None:
    d["capabilities"][0]["package"] = d["capabilities"][0]["source"].pop("package")


def _rename(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d[new] = d.pop(old)

    return change


CORRUPT_DATA: list[tuple[str, Callable[[dict[str, Any]], Any], str, str, str]] = [
    # (case, change, JSON path, message fragment, severity)
    ("list", lambda d: [d], "$", "JSON array, not an object", "error"),
    ("string", lambda d: "pc1", "$", "JSON string, not an object", "error"),
    ("schema-missing", _del("schema_version"), "$.schema_version", "schema_version is missing", "error"),
    ("schema-2", _set(2, "schema_version"), "$.schema_version", "newer than this Cyclotron", "error"),
    (
        "schema-str",
        _set("1", "schema_version"),
        "$.schema_version",
        "the string '1', not the number 1",
        "error",
    ),
    ("schema-bool", _set(True, "schema_version"), "$.schema_version", "not a supported version", "error"),
    ("no-host", _del("host"), "$.host", "required key 'host' is missing", "error"),
    (
        "no-gathered-at",
        _del("gathered_at"),
        "$.gathered_at",
        "required key 'gathered_at' is missing",
        "error",
    ),
    ("no-os", _del("os"), "$.os", "required key 'os' is missing", "error"),
    ("cap-no-id", _del("capabilities", 0, "id"), "$.capabilities[0].id", "required key 'id'", "error"),
    (
        "cap-no-type",
        _del("capabilities", 1, "type"),
        "$.capabilities[1].type",
        "required key 'type'",
        "error",
    ),
    ("cap-no-domain", _del("capabilities", 2, "domain"), "$.capabilities[2].domain", "'domain'", "error"),
    ("cap-no-source", _del("capabilities", 3, "source"), "$.capabilities[3].source", "'source'", "error"),
    ("cap-not-object", _set("git", "capabilities", 4), "$.capabilities[4]", "must be an object", "error"),
    (
        "unknown-type",
        _set("sofware", "capabilities", 5, "type"),
        "$.capabilities[5].type",
        "'sofware' is not a valid capability type",
        "error",
    ),
    (
        "unknown-domain",
        _set("infra", "capabilities", 3, "domain"),
        "$.capabilities[3].domain",
        "'infra' is not a known domain",
        "error",
    ),
    (
        "duplicate-id",
        _append_copy_of_first,
        "$.capabilities[23].id",
        "duplicate capability id 'git' at $.capabilities[0] and $.capabilities[23]",
        "error",
    ),
    ("version-empty", _set("", "capabilities", 0, "version"), "$.capabilities[0].version", "empty", "error"),
    (
        "version-shell",
        _set("2.47; rm -rf ~", "capabilities", 0, "version"),
        "$.capabilities[0].version",
        "contains spaces or shell characters",
        "error",
    ),
    (
        "version-spaces",
        _set("2.47 (build 5)", "capabilities", 0, "version"),
        "$.capabilities[0].version",
        "is not a version",
        "error",
    ),
    (
        "version-text",
        _set("latest", "capabilities", 0, "version"),
        "$.capabilities[0].version",
        "does not parse as a version number",
        "warning",
    ),
    (
        "version-number",
        _set(2, "capabilities", 0, "version"),
        "$.capabilities[0].version",
        "must be a string",
        "error",
    ),
    ("host-mismatch", _set("pc2", "host"), "$.host", "does not match the file name pc1.json", "error"),
    ("host-grammar", _set("pc 1; ls", "host"), "$.host", "is not an inventory hostname", "error"),
    ("time-garbage", _set("yesterday", "gathered_at"), "$.gathered_at", "not a valid timestamp", "error"),
    (
        "time-month",
        _set("2025-13-01T00:00:00Z", "gathered_at"),
        "$.gathered_at",
        "not a valid timestamp",
        "error",
    ),
    ("time-naive", _set("2025-01-06T09:14:02", "gathered_at"), "$.gathered_at", "has no time zone", "error"),
    ("time-number", _set(1736154842, "gathered_at"), "$.gathered_at", "is a number", "error"),
    ("time-future", _set("2999-01-01T00:00:00Z", "gathered_at"), "$.gathered_at", "in the future", "warning"),
    (
        "typo-top",
        _rename("capabilities", "capabilites"),
        "$.capabilites",
        "unknown key 'capabilites'",
        "error",
    ),
    (
        "typo-source",
        lambda d: _rename("package", "pakage")(d["capabilities"][0]["source"]),
        "$.capabilities[0].source.pakage",
        "unknown key 'pakage'",
        "error",
    ),
    ("misplaced-key", _move_package_up, "$.capabilities[0].package", "unknown key 'package'", "error"),
    (
        "id-injection",
        _set("pip:foo; touch /tmp/pwned", "capabilities", 13, "id"),
        "$.capabilities[13].id",
        "contains shell metacharacters",
        "error",
    ),
    (
        "package-injection",
        _set("foo; touch /tmp/pwned", "capabilities", 13, "source", "package"),
        "$.capabilities[13].source.package",
        "shell metacharacters",
        "error",
    ),
    (
        "package-option",
        _set("--index-url=http://evil.example/simple", "capabilities", 13, "source", "package"),
        "$.capabilities[13].source.package",
        "option injection",
        "error",
    ),
    (
        "package-grammar",
        _set("Type Script", "capabilities", 16, "source", "package"),
        "$.capabilities[16].source.package",
        "is not a valid npm package id",
        "error",
    ),
    (
        "env-name",
        _set("OPENAI API KEY", "capabilities", 21, "source", "package"),
        "$.capabilities[21].source.package",
        "is not an environment variable name",
        "error",
    ),
    (
        "secret-anthropic",
        _set({"note": FAKE_ANTHROPIC}, "capabilities", 20, "details"),
        "$.capabilities[20].details.note",
        "secret value in manifest (looks like an OpenAI/Anthropic API key)",
        "error",
    ),
    (
        "secret-github-in-args",
        lambda d: d["capabilities"][19]["details"]["args"].append(FAKE_GITHUB),
        "$.capabilities[19].details.args[2]",
        "secret value in manifest (looks like a GitHub token)",
        "error",
    ),
    (
        "secret-entropy",
        _set(FAKE_RANDOM, "capabilities", 19, "details", "command"),
        "$.capabilities[19].details.command",
        "secret value in manifest (looks like a high-entropy token)",
        "error",
    ),
    (
        "secret-env-value",
        _set({"GITHUB_PERSONAL_ACCESS_TOKEN": "hunter2hunter2"}, "capabilities", 19, "details", "env"),
        "$.capabilities[19].details.env.GITHUB_PERSONAL_ACCESS_TOKEN",
        "secret value in manifest (the value of 'GITHUB_PERSONAL_ACCESS_TOKEN')",
        "error",
    ),
    (
        "secret-url-password",
        _set(
            "https://alex:hunter2hunter2@github.com/example/dotfiles.git",
            "capabilities",
            22,
            "details",
            "remote",
        ),
        "$.capabilities[22].details.remote",
        "looks like a password in a URL",
        "error",
    ),
    (
        "control-chars",
        _set("\x1b[2J\x1b[31mGit", "capabilities", 0, "name"),
        "$.capabilities[0].name",
        "control characters",
        "error",
    ),
    (
        "os-family-case",
        _set("Windows", "os", "family"),
        "$.os.family",
        "'Windows' is not a valid family",
        "error",
    ),
    (
        "unknown-manager",
        _set("pip3", "capabilities", 13, "source", "manager"),
        "$.capabilities[13].source.manager",
        "'pip3' is not a known manager",
        "error",
    ),
    (
        "details-list",
        _set([], "capabilities", 0, "details"),
        "$.capabilities[0].details",
        "must be an object",
        "error",
    ),
    (
        "top-level-text",
        _set("maybe", "capabilities", 0, "top_level"),
        "$.capabilities[0].top_level",
        "true or false",
        "error",
    ),
    ("name-empty", _set("", "capabilities", 0, "name"), "$.capabilities[0].name", "name is empty", "error"),
    (
        "type-vs-manager",
        _set("npm_package", "capabilities", 13, "type"),
        "$.capabilities[13].type",
        "does not match source manager 'pip'",
        "warning",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "fragment", "severity"),
    [case[1:] for case in CORRUPT_DATA],
    ids=[case[0] for case in CORRUPT_DATA],
)
def test_corrupt_data(
    change: Callable[[dict[str, Any]], Any], path: str, fragment: str, severity: str
) -> None:
    manifest, problems = validate_data(mutate(change), file="pc1.json", expected_host="pc1")
    matching = [p for p in problems if p.path == path and fragment in p.message]
    assert matching, "\n".join(f"{p.path}: {p.message}" for p in problems)
    assert matching[0].severity == severity
    assert matching[0].fix and matching[0].file == "pc1.json"
    if severity == "error":
        assert manifest is None
    else:
        assert manifest is not None and all(p.severity == "warning" for p in problems)


@pytest.mark.parametrize(
    ("change", "fix"),
    [
        (
            _set("infra", "capabilities", 3, "domain"),
            "use 'infrastructure' (known: infrastructure, development",
        ),
        (_set("Security", "capabilities", 3, "domain"), "use 'security'"),
        (_set("develpment", "capabilities", 3, "domain"), "use 'development'"),
        (_set("sofware", "capabilities", 5, "type"), "use 'software'"),
        (_set("Windows", "os", "family"), "use 'windows'"),
        (_set("pip3", "capabilities", 13, "source", "manager"), "use 'pip'"),
        (_rename("capabilities", "capabilites"), "did you mean 'capabilities'?"),
        (_move_package_up, "move it into 'source'"),
        (_set("pc2", "host"), "rename the file to pc2.json"),
    ],
)
def test_fix_suggestions(change: Callable[[dict[str, Any]], Any], fix: str) -> None:
    problems = problems_of(mutate(change))
    assert any(fix in p.fix for p in problems), [p.fix for p in problems]


def test_wrong_schema_version_stops_further_checks() -> None:
    data = pc1()
    data["schema_version"] = 2
    data["capabilities"][0]["domain"] = "infra"
    assert [p.path for p in problems_of(data)] == ["$.schema_version"]


def test_missing_fields_are_all_reported_at_once() -> None:
    data = pc1()
    data["capabilities"][1] = {"name": "half an entry"}
    paths = {p.path for p in problems_of(data)}
    for key in ("id", "type", "domain", "source"):
        assert f"$.capabilities[1].{key}" in paths


def test_problems_sorted_by_capability_index() -> None:
    data = pc1()
    data["capabilities"][12]["domain"] = "nope"
    data["capabilities"][2]["domain"] = "nope"
    paths = [p.path for p in problems_of(data)]
    assert paths == ["$.capabilities[2].domain", "$.capabilities[12].domain"]


def test_custom_domains() -> None:
    data = pc1()
    data["capabilities"][0]["domain"] = "homelab"
    assert problems_of(data)
    domains = {"homelab": "Home servers", **DEFAULT_DOMAINS}
    manifest, problems = validate_data(data, file="pc1.json", domains=domains)
    assert manifest is not None, problems


@pytest.mark.parametrize(
    "version",
    [
        "1:2.39.5-0+deb12u1",
        "2.43.0.windows.1",
        "1.2.3-beta.1+build.5",
        "20.10.24+dfsg1-1+b3",
        "3.3a-3",
        "1.0.0rc1",
        "v1.2",
        "2024.12.14",
        "1.2.3_1",
        " 2.47.1 ",
    ],
)
def test_versions_accepted(version: str) -> None:
    data = pc1()
    data["capabilities"][0]["version"] = version
    assert problems_of(data) == []


def test_parses_as_version() -> None:
    assert parses_as_version("18.19.0+dfsg-6~deb12u2")
    assert not parses_as_version("latest")


@pytest.mark.parametrize(
    "value",
    [
        "3f8c2a9d4e1b7c6a5d0e9f8b7a6c5d4e3f2a1b0c",  # a commit id
        "{1D8E6291-B0D5-35EC-8441-6616F567A0F7}",  # a GUID
        "MSIX\\Microsoft.DesktopAppInstaller_1.24.25200.0_x64__8wekyb3d8bbwe",
        "C:\\Users\\alex\\AppData\\Local\\Microsoft\\WindowsApps\\Microsoft.WindowsTerminal_8wekyb3d8bbwe",
        "GITHUB_PERSONAL_ACCESS_TOKEN",
        "${GITHUB_TOKEN}",
        "python-language-server-Extras2024ForWindowsAndLinuxSupport",
    ],
)
def test_no_false_secret_alarm(value: str) -> None:
    data = pc1()
    data["capabilities"][19]["details"]["note"] = value
    data["capabilities"][19]["details"]["args"].append(value)
    assert problems_of(data) == []


@pytest.mark.parametrize(
    "details",
    [
        {"env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}},
        {"env": {"GITHUB_TOKEN": "GITHUB_PERSONAL_ACCESS_TOKEN"}},
        {"env": {"OPENAI_API_KEY": ""}},
        {"token_env": "a long description of the variable"},
        {"password_manager": "KeePassXC 2.7.9"},
    ],
)
def test_secret_named_keys_without_values(details: dict[str, Any]) -> None:
    data = pc1()
    data["capabilities"][19]["details"].update(details)
    assert problems_of(data) == []


def test_secret_never_echoed() -> None:
    data = pc1()
    data["capabilities"][0]["version"] = FAKE_ANTHROPIC
    data["capabilities"][1]["domain"] = FAKE_GITHUB[:40]
    data["capabilities"][20]["details"] = {"env": {"ANTHROPIC_API_KEY": FAKE_ANTHROPIC}}
    result = FileResult("pc1.json", None, problems_of(data))
    for fmt in ("text", "json"):
        report = format_report([result], color=False, fmt=fmt)  # type: ignore[arg-type]
        assert "secret value in manifest" in report
        assert FAKE_ANTHROPIC not in report and FAKE_GITHUB[:40] not in report


def test_control_characters_in_source_errors_only_warn() -> None:
    data = pc1()
    data["errors"] = [{"source": "npm", "message": "\x1b[31mnpm ERR!\x1b[0m code E404"}]
    manifest, problems = validate_data(data, file="pc1.json", expected_host="pc1")
    assert manifest is not None
    assert [(p.path, p.severity) for p in problems] == [("$.errors[0].message", "warning")]


def test_winget_local_record_is_a_warning() -> None:
    data = pc1()
    data["capabilities"][9]["source"]["package"] = "ARP\\Machine\\X64\\{1D8E6291-B0D5-35EC-8441-6616F567A0F7}"
    manifest, problems = validate_data(data, file="pc1.json", expected_host="pc1")
    assert manifest is not None
    assert [p.severity for p in problems] == ["warning"]


# --------------------------------------------------------------------------- corrupt files


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("empty.json", "the file is empty"),
        ("truncated.json", "the file looks truncated"),
        ("yaml.json", "looks like YAML, not JSON"),
        ("html.json", "HTML or XML, not JSON"),
        ("list.json", "JSON array, not an object"),
        ("latin1.json", "not UTF-8 text: invalid byte 0xfc at line 26 column 21"),
        ("utf16.json", "UTF-16"),
        ("pc9.json", "unknown key 'capabilites'"),
        ("hand-edited.json", "'infra' is not a known domain"),
    ],
)
def test_corrupt_fixture_files(name: str, fragment: str) -> None:
    manifest, problems = validate_file(CORRUPT / name)
    assert manifest is None
    assert any(fragment in p.message for p in problems), [p.message for p in problems]
    assert all(p.file == str(CORRUPT / name) and p.fix for p in problems)


def test_truncated_reports_position_and_fix() -> None:
    _, [problem] = validate_file(CORRUPT / "truncated.json")
    assert problem.path == "$"
    assert "line " in problem.message and "column " in problem.message
    assert "re-gather the host" in problem.fix and "restore it from git" in problem.fix


def test_host_mismatch_with_file_name() -> None:
    _, problems = validate_file(CORRUPT / "pc9.json")
    assert any(p.path == "$.host" and "does not match the file name pc9.json" in p.message for p in problems)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("   \n\t\n", "the file is empty"),
        ("{", "looks truncated"),
        ('{"host": "pc1", "os": {"family": "lin', "looks truncated"),
        ('{"host": "pc1",,}', "invalid JSON at line 1 column 16"),
        ("hello world", "invalid JSON at line 1 column 1"),
        ('{"schema_version": NaN}', "NaN is not a JSON value"),
        (b'{"host": "\x00"}', "NUL bytes"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b"\xef\xbb\xbf[]", "JSON array"),  # a UTF-8 BOM is skipped
    ],
)
def test_unreadable_content(tmp_path: Path, content: str | bytes, fragment: str) -> None:
    manifest, problems = validate_file(write(tmp_path, "pc1.json", content))
    assert manifest is None
    assert any(fragment in p.message for p in problems), [p.message for p in problems]


def test_duplicate_json_keys(tmp_path: Path) -> None:
    text = (
        (VALID / "pc1.json")
        .read_text(encoding="utf-8")
        .replace('"host": "pc1",', '"host": "pc1",\n  "host": "pc1",', 1)
    )
    _, problems = validate_file(write(tmp_path, "pc1.json", text))
    assert [(p.path, "appears more than once" in p.message) for p in problems] == [("$", True)]


def test_too_large_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "pc1.json"
    with path.open("wb") as fh:  # sparse: no disk space used
        fh.truncate(MAX_MANIFEST_BYTES + 1)
    manifest, [problem] = validate_file(path)
    assert manifest is None and "over 50 MB" in problem.message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "file not found" in validate_file(tmp_path / "nope.json")[1][0].message
    assert "is a directory" in validate_file(tmp_path)[1][0].message


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "pc1.json", b"\xef\xbb\xbf" + (VALID / "pc1.json").read_bytes())
    manifest, problems = validate_file(path)
    assert manifest is not None and problems == []


# --------------------------------------------------------------------------- several files


def test_directory_expands_to_json_files(tmp_path: Path) -> None:
    for host in ("pc1", "pc2"):
        write(tmp_path, f"{host}.json", (VALID / f"{host}.json").read_text(encoding="utf-8"))
    write(tmp_path, "notes.txt", "not a manifest")
    write(tmp_path, ".pc3.json.tmp.json", "{")  # an editor or atomic-write leftover
    results = validate_paths([tmp_path, tmp_path / "pc1.json"])
    assert [Path(r.file).name for r in results] == ["pc1.json", "pc2.json"]


def test_duplicate_hosts_across_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for sub in ("a", "b"):
        write(tmp_path / sub, "pc1.json", (VALID / "pc1.json").read_text(encoding="utf-8"))
    with pytest.raises(ManifestError, match="also has a manifest in"):
        load_manifests([tmp_path / "a", tmp_path / "b"])


def test_load_manifests_refuses_invalid() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests([VALID, CORRUPT / "hand-edited.json"])
    message = str(info.value)
    assert "1 of 4 manifests invalid" in message
    assert "'infra' is not a known domain. Fix: use 'infrastructure'" in message
    assert "pc1.json: valid" not in message


def test_load_manifests_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_manifests(tmp_path / "nope")
    with pytest.raises(ManifestError, match="no \\*.json manifests"):
        load_manifests(tmp_path)


def test_report_format() -> None:
    results = validate_paths([VALID / "pc1.json", CORRUPT / "hand-edited.json"])
    text = format_report(results, color=False)
    lines = text.splitlines()
    assert lines[0] == f"✔ {VALID / 'pc1.json'}: valid (23 capabilities)"
    assert lines[1] == f"✖ {CORRUPT / 'hand-edited.json'}: 5 problems (4 errors, 1 warning)"
    assert (
        "  $.capabilities[3].domain: 'infra' is not a known domain. Fix: use 'infrastructure' (known: "
        in text
    )
    assert "  $.capabilities[4].version: warning: version 'latest'" in text
    assert lines[-1] == "2 manifests: 1 valid, 1 invalid (4 errors, 1 warning)"
    assert "\033[" not in text
    assert "\033[31m✖\033[0m" in format_report(results, color=True)
    data = json.loads(format_report(results, color=False, fmt="json"))
    assert data["valid"] is False and data["summary"]["errors"] == 4
    assert data["files"][0] == {
        "file": str(VALID / "pc1.json"),
        "valid": True,
        "host": "pc1",
        "capabilities": 23,
        "errors": 0,
        "warnings": 0,
        "problems": [],
    }


# --------------------------------------------------------------------------- CLI


def test_cli_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(VALID)]) == 0
    out, err = capsys.readouterr()
    assert out.count("✔") == 3 and "Traceback" not in out + err


def test_cli_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CORRUPT), str(VALID / "pc2.json")]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert out.count("✖") == len(list(CORRUPT.glob("*.json")))
    assert "the file looks truncated" in out


def test_cli_warnings_only_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pc1()
    data["capabilities"][0]["version"] = "latest"
    path = write(tmp_path, "pc1.json", json.dumps(data))
    assert main(["validate", str(path)]) == 0
    assert "warning: version 'latest'" in capsys.readouterr().out


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(CORRUPT / "pc9.json")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in data["files"][0]["problems"]] == ["$.host", "$.capabilites"]


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Bad input exits 1 as in every command (cyclotron_py.cli); 2 is left to argparse.
    assert main(["validate", str(tmp_path / "missing.json")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path)]) == 1
    assert "no *.json manifests" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    bad = write(tmp_path, "domains.yml", "infra: [unclosed")
    assert main(["validate", "--domains", str(bad), str(VALID)]) == 1
    err = capsys.readouterr().err
    assert "not valid YAML" in err and "Traceback" not in err


def test_cli_domains_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pc1()
    data["capabilities"][0]["domain"] = "homelab"
    path = write(tmp_path, "pc1.json", json.dumps(data))
    assert main(["validate", str(path)]) == 1
    domains = write(
        tmp_path,
        "all.yml",
        "cyclotron_domains:\n  homelab: Home servers\n  infrastructure: x\n"
        "  development: x\n  ai: x\n  productivity: x\n",
    )
    assert main(["validate", "--domains", str(domains), str(path)]) == 0
    capsys.readouterr()


def test_load_domains_shapes(tmp_path: Path) -> None:
    assert load_domains(write(tmp_path, "a.yml", "- ai\n- media\n")) == {"ai": "", "media": ""}
    assert load_domains(write(tmp_path, "b.yml", "ai: Assistants\n")) == {"ai": "Assistants"}
    with pytest.raises(Exception, match="must be lowercase"):
        load_domains(write(tmp_path, "c.yml", "AI Stuff: x\n"))


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_cli_colour_only_on_tty_without_no_color(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_color: str | None, coloured: bool
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    main(["validate", str(VALID / "pc1.json")])
    assert ("\033[" in capsys.readouterr().out) is coloured


# --------------------------------------------------------------------------- never a traceback

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [*Capability.model_fields, "unknown"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_any_json_never_raises(value: Any) -> None:
    manifest, problems = validate_data(value, file="f.json")
    assert manifest is None or isinstance(manifest.host, str)
    assert all("internal error" not in p.message for p in problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, 22), key=st.sampled_from(FIELDS), value=json_values)
def test_any_field_value_never_raises(index: int, key: str, value: Any) -> None:
    data = pc1()
    data["capabilities"][index][key] = value
    manifest, problems = validate_data(data, file="pc1.json", expected_host="pc1")
    assert all("internal error" not in p.message for p in problems)
    assert all(p.path.startswith("$") and p.message and p.fix for p in problems)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_never_raise(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "pc1.json"
    path.write_bytes(raw)
    manifest, problems = validate_file(path)
    assert manifest is None and problems
    assert all("internal error" not in p.message for p in problems)
