"""Validation: the pydantic model plus what a schema cannot say (known domains, unique ids,
parseable versions, safe package names, no secret values), and loading a set of files."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .. import managers, secrets, versions
from ..catalog import INSTALL_MANAGERS, TYPE_BY_MANAGER
from ..errors import ManifestError, PlanError
from ..models import CAPABILITY_TYPES, DEFAULT_DOMAINS, HOST_RE, SCHEMA_VERSION, Manifest
from ..safety import check_env_name, check_mcp_name, check_package
from .messages import (
    _SHELL_CHARS,
    EXAMPLE_TIME,
    REGATHER,
    _closest,
    _join,
    _json_type,
    _path_key,
    _show,
    _translate,
)
from .reading import _load_json, expand_paths
from .report import FileResult, Problem, SeverityName, _s, format_report
from .secret_checks import _has_control, _is_control, _secret_kind

log = logging.getLogger(__name__)

# Windows uninstall DisplayNames hold '&' ("Tom & Jerry") and are never passed to an installer.
_SHELL_CHARS_REGISTRY = frozenset(";|`$<>")


def validate_data(
    data: Any,
    *,
    file: str,
    domains: Mapping[str, str] | None = None,
    expected_host: str | None = None,
) -> tuple[Manifest | None, list[Problem]]:
    """Validate parsed JSON. The manifest is returned only when there is no error (warnings allowed)."""
    known = dict(domains) if domains else dict(DEFAULT_DOMAINS)
    try:
        return _validate_data(data, file, known, expected_host)
    except Exception as exc:  # last resort: a bug here must not become a traceback for the user
        log.debug("validator failed on %s", file, exc_info=True)
        return None, [
            Problem(
                file,
                "$",
                f"internal error while validating ({type(exc).__name__})",
                "please report this with the manifest (remove anything private first)",
            )
        ]


def validate_file(
    path: str | os.PathLike[str], *, domains: Mapping[str, str] | None = None
) -> tuple[Manifest | None, list[Problem]]:
    """Read and validate one manifest file. A file named ``<host>.json`` must hold host ``<host>``."""
    path = Path(path)
    file = str(path)
    data, problems = _load_json(path, file)
    if problems:
        return None, problems
    expected = path.stem if path.suffix == ".json" else None
    return validate_data(data, file=file, domains=domains, expected_host=expected)


def validate_paths(
    paths_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    domains: Mapping[str, str] | None = None,
) -> list[FileResult]:
    """Validate every manifest file (directories expand to ``*.json``) and check hosts are unique.

    Raises ManifestError only when a path does not exist or a directory holds no manifests.
    """
    results = []
    for path in expand_paths(paths_or_dir):
        manifest, problems = validate_file(path, domains=domains)
        results.append(FileResult(str(path), manifest, problems))
    _check_duplicate_hosts(results)
    return results


def load_manifests(
    paths_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    domains: Mapping[str, str] | None = None,
) -> list[Manifest]:
    """Valid manifests in file order, or ManifestError carrying the report of every invalid file."""
    results = validate_paths(paths_or_dir, domains=domains)
    for result in results:
        log_warnings(result.warnings)
    bad = [r for r in results if not r.valid]
    if bad:
        raise invalid_manifests_error(bad, len(results))
    return [r.manifest for r in results if r.manifest is not None]



def package_problem(manager: str, package: str) -> tuple[SeverityName, str, str] | None:
    """Why ``package`` is not a safe id for ``manager``: (severity, message, fix), or None when fine."""
    if not package:
        return None
    shown = _show(package)
    if package.startswith("-"):
        return (
            "error",
            f"package {shown} starts with '-', which the package manager would read as an option "
            "(option injection)",
            "remove the leading '-'; a manifest holding this may have been tampered with — " + REGATHER,
        )
    local_record = manager == "winget" and re.match(r"^(?:ARP|MSIX)\\", package) is not None
    if manager == "registry":
        bad = _SHELL_CHARS_REGISTRY
    elif local_record:
        bad = _SHELL_CHARS - {"\\"}  # ARP\Machine\X64\{GUID}
    else:
        bad = _SHELL_CHARS
    found = sorted({ch for ch in package if ch in bad or _is_control(ch)})
    if found:
        return (
            "error",
            f"package {shown} contains shell metacharacters or control characters "
            f"({' '.join(repr(ch) for ch in found)})",
            "a package id never contains these; the manifest may have been tampered with — " + REGATHER,
        )
    if local_record:
        # Listed by `winget list` for software winget did not install; it cannot install it either.
        return (
            "warning",
            f"winget id {shown} is a local install record, not an installable package",
            "nothing to do if it stays on this host; give it a catalog entry to make it portable",
        )
    if manager in INSTALL_MANAGERS:
        try:
            check_package(manager, package)
        except PlanError:
            return (
                "error",
                f"{shown} is not a valid {manager} package id",
                f"write the id exactly as {manager} lists it (e.g. {managers.MANAGERS_BY_NAME[manager].example})",
            )
    elif manager == "env":
        try:
            check_env_name(package)
        except PlanError:
            return (
                "error",
                f"{shown} is not an environment variable name",
                "API keys are recorded by variable NAME only (letters, digits, '_'), e.g. OPENAI_API_KEY",
            )
    elif manager == "mcp":
        try:
            check_mcp_name(package)
        except PlanError:
            return (
                "warning",
                f"MCP server name {shown} cannot be distributed to other hosts",
                "rename the server in the assistant's config to letters, digits, '.', '_' or '-'",
            )
    return None


def version_problem(version: str) -> tuple[SeverityName, str, str] | None:
    """Why ``version`` is not a usable version string: (severity, message, fix), or None when fine."""
    text = version.strip()  # the model strips surrounding whitespace too
    if not text:
        return ("error", "version is an empty string", "use null when the version is unknown")
    if _secret_kind(text):
        return None  # reported once, as a secret
    if any(ch.isspace() or ch in _SHELL_CHARS or _is_control(ch) for ch in text):
        return (
            "error",
            f"version {_show(text)} is not a version (it contains spaces or shell characters)",
            'write only the version, e.g. "1.2.3", or null when unknown',
        )
    if parses_as_version(text):
        return None
    return (
        "warning",
        f"version {_show(text)} does not parse as a version number",
        'comparisons will treat it as plain text; write the version (e.g. "1.2.3") or null when unknown',
    )


def parses_as_version(text: str) -> bool:
    """True for PEP 440, semver, Debian (``1:2.39.5-0+deb12u1``) and winget (``2.43.0.windows.1``)."""
    return versions.is_parseable(text)


# --------------------------------------------------------------------------- validation


def _validate_data(
    data: Any, file: str, domains: dict[str, str], expected_host: str | None
) -> tuple[Manifest | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [
            Problem(
                file,
                "$",
                f"the manifest is a JSON {_json_type(data)}, not an object",
                "a manifest is one JSON object (schema_version, host, gathered_at, os, capabilities) "
                "per host file; " + REGATHER,
            )
        ]
    problems: list[Problem] = []
    version_problem_, stop = _check_schema_version(data, file)
    if version_problem_:
        problems.append(version_problem_)
    if stop:
        return None, problems
    model_input = {**data, "schema_version": SCHEMA_VERSION}  # reported above; don't repeat it
    manifest: Manifest | None = None
    try:
        manifest = Manifest.model_validate(model_input)
    except ValidationError as exc:
        problems.extend(_translate(err, file, domains) for err in exc.errors(include_url=False))
    problems += _check_host(data, file, expected_host)
    problems += _check_timestamp(data, manifest, file)
    problems += _check_capabilities(data.get("capabilities"), file, domains)
    problems += _check_strings(data, file)
    problems = sorted(dict.fromkeys(problems), key=lambda p: _path_key(p.path))
    if any(p.severity == "error" for p in problems):
        return None, problems
    return manifest, problems


def _check_schema_version(data: dict[str, Any], file: str) -> tuple[Problem | None, bool]:
    """(problem, stop): a newer schema means the rest cannot be judged by this version's rules."""
    path = "$.schema_version"
    if "schema_version" not in data:
        return Problem(
            file,
            path,
            "schema_version is missing",
            f'add "schema_version": {SCHEMA_VERSION} as the first key, or ' + REGATHER,
        ), False
    value = data["schema_version"]
    if type(value) is int and value == SCHEMA_VERSION:
        return None, False
    if type(value) is int and value > SCHEMA_VERSION:
        return Problem(
            file,
            path,
            f"schema_version {value} is newer than this Cyclotron understands ({SCHEMA_VERSION})",
            "upgrade Cyclotron on the controller, or re-gather the host with this version",
        ), True
    if isinstance(value, str) and value.strip() == str(SCHEMA_VERSION):
        return Problem(
            file,
            path,
            f"schema_version is the string {_show(value)}, not the number {SCHEMA_VERSION}",
            f'write "schema_version": {SCHEMA_VERSION} without quotes',
        ), False
    return Problem(
        file,
        path,
        f"schema_version {_show(value)} is not a supported version",
        f'write "schema_version": {SCHEMA_VERSION}, or ' + REGATHER,
    ), True


def _check_host(data: dict[str, Any], file: str, expected: str | None) -> list[Problem]:
    host = data.get("host")
    if expected is None or not isinstance(host, str) or not HOST_RE.match(host.strip()):
        return []
    host = host.strip()
    if host == expected:
        return []
    return [
        Problem(
            file,
            "$.host",
            f"host {_show(host)} does not match the file name {expected}.json",
            f'rename the file to {host}.json or set "host": "{expected}" '
            "(each manifest is named after its inventory host)",
        )
    ]


def _check_timestamp(data: dict[str, Any], manifest: Manifest | None, file: str) -> list[Problem]:
    raw = data.get("gathered_at")
    path = "$.gathered_at"
    if raw is None or isinstance(raw, bool):
        return []  # missing or wrong type: reported by the model
    if isinstance(raw, int | float):
        return [
            Problem(
                file,
                path,
                f"gathered_at is a number ({_show(raw)}), not a timestamp string",
                f"write an ISO 8601 time with a time zone, e.g. {EXAMPLE_TIME}",
            )
        ]
    if manifest is not None:
        when = manifest.gathered_at
    else:
        try:
            when = _DATETIME.validate_python(raw)
        except ValidationError:
            return []  # reported by the model
    if when.tzinfo is None:
        return [
            Problem(
                file,
                path,
                f"timestamp {_show(raw)} has no time zone, so hosts cannot be compared in time",
                f"add one, e.g. {EXAMPLE_TIME} for UTC",
            )
        ]
    if when > datetime.now(UTC) + timedelta(days=1):
        return [
            Problem(
                file,
                path,
                f"timestamp {_show(raw)} is in the future",
                "check the clock of the host that gathered it and of the controller",
                "warning",
            )
        ]
    return []


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _check_capabilities(caps: Any, file: str, domains: dict[str, str]) -> list[Problem]:
    if not isinstance(caps, list):
        return []
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for i, cap in enumerate(caps):
        if not isinstance(cap, dict):
            continue
        base = f"$.capabilities[{i}]"
        cap_id = cap.get("id")
        if isinstance(cap_id, str) and cap_id.strip():
            cap_id = cap_id.strip()
            if cap_id in first_index:
                problems.append(
                    Problem(
                        file,
                        f"{base}.id",
                        f"duplicate capability id {_show(cap_id)} at $.capabilities[{first_index[cap_id]}] "
                        f"and $.capabilities[{i}]",
                        "keep one entry per id (merge them)",
                    )
                )
            else:
                first_index[cap_id] = i
        domain = cap.get("domain")
        if isinstance(domain, str) and 0 < len(domain.strip()) <= 50 and domain.strip() not in domains:
            problems.append(_unknown_domain(domain.strip(), f"{base}.domain", file, domains))
        version = cap.get("version")
        if isinstance(version, str) and len(version) <= 100:
            found = version_problem(version)
            if found:
                problems.append(Problem(file, f"{base}.version", found[1], found[2], found[0]))
        source = cap.get("source")
        if isinstance(source, dict):
            manager, package = source.get("manager"), source.get("package")
            if isinstance(package, str) and len(package) <= 300:
                found = package_problem(manager if isinstance(manager, str) else "", package.strip())
                if found:
                    problems.append(Problem(file, f"{base}.source.package", found[1], found[2], found[0]))
            cap_type = cap.get("type")
            expected_type = TYPE_BY_MANAGER.get(manager) if isinstance(manager, str) else None
            if expected_type and cap_type in CAPABILITY_TYPES and cap_type != expected_type:
                problems.append(
                    Problem(
                        file,
                        f"{base}.type",
                        f"type {_show(cap_type)} does not match source manager {_show(manager)}, "
                        f"which finds {expected_type} capabilities",
                        f"set type to {_show(expected_type)} or correct source.manager",
                        "warning",
                    )
                )
    return problems


def _unknown_domain(domain: str, path: str, file: str, domains: dict[str, str]) -> Problem:
    known = ", ".join(domains)
    guess = _closest(domain, list(domains))
    if guess:
        fix = f"use {_show(guess)} (known: {known})"
    else:
        fix = f"use one of: {known}; or define it in cyclotron_domains and pass --domains"
    return Problem(file, path, f"{_show(domain)} is not a known domain", fix)


def _check_strings(data: dict[str, Any], file: str) -> list[Problem]:
    """Secret values and control characters anywhere in the document."""
    problems: list[Problem] = []
    secret_fix = (
        "delete the value — manifests carry API-key names only — and rotate the key, "
        "since this file may already have been shared"
    )
    # Paths are built only for values that are reported: a large manifest has ~100k strings.
    stack: list[tuple[Any, Any, Any]] = [(None, None, data)]

    def where(parent: Any, key: Any) -> str:
        if parent is None:
            return "$"
        base = where(*parent)
        return f"{base}[{key}]" if isinstance(key, int) else _join(base, key)

    while stack:
        parent, step, value = stack.pop()
        here = (parent, step)
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and _has_control(key):
                    problems.append(_control_problem(file, where(*here), _join(where(*here), key)))
                if (
                    isinstance(key, str)
                    and isinstance(item, str)
                    and secrets.secret_under_key(key, item)
                    and not _secret_kind(item)
                ):
                    problems.append(
                        Problem(
                            file,
                            _join(where(*here), key),
                            f"secret value in manifest (the value of {_show(key)})",
                            secret_fix,
                        )
                    )
                    continue
                stack.append((here, key, item))
        elif isinstance(value, list):
            stack.extend((here, i, item) for i, item in enumerate(value))
        elif isinstance(value, str):
            kind = _secret_kind(value)
            if kind:
                problems.append(
                    Problem(file, where(*here), f"secret value in manifest (looks like {kind})", secret_fix)
                )
            elif _has_control(value):
                path = where(*here)
                problems.append(_control_problem(file, path, path))
    return problems


def _control_problem(file: str, parent: str, path: str) -> Problem:
    # Source error messages quote tool output, which may carry colour codes; elsewhere it is tampering.
    severity: SeverityName = "warning" if parent.startswith("$.errors") else "error"
    return Problem(
        file,
        path,
        "text contains control characters (such as terminal escape codes)",
        "remove them; " + REGATHER,
        severity,
    )



def _check_duplicate_hosts(results: list[FileResult]) -> None:
    hosts = [(r.file, r.manifest.host) for r in results if r.manifest is not None]
    found = duplicate_host_problems(hosts)
    for result in results:
        if result.file in found:
            result.problems.append(found[result.file])
            result.manifest = None


def duplicate_host_problems(hosts: Sequence[tuple[str, str]]) -> dict[str, Problem]:
    """``{file: problem}`` for every file whose host also has another manifest; ``hosts`` is (file, host)."""
    by_host: dict[str, list[str]] = {}
    for file, host in hosts:
        by_host.setdefault(host, []).append(file)
    out: dict[str, Problem] = {}
    for host, group in by_host.items():
        if len(group) < 2:
            continue
        for file in group:
            others = ", ".join(f for f in group if f != file)
            out[file] = Problem(
                file,
                "$.host",
                f"host {_show(host)} also has a manifest in {others}",
                "keep one manifest per host: delete or move the stale copy",
            )
    return out


def log_warnings(problems: Iterable[Problem]) -> None:
    for warning in problems:
        if warning.severity == "warning":
            log.warning("%s: %s: %s. Fix: %s", warning.file, warning.path, warning.message, warning.fix)


def invalid_manifests_error(bad: Sequence[FileResult], total: int) -> ManifestError:
    """The error a command raises when some of ``total`` manifests are invalid: each file's report."""
    return ManifestError(
        f"{len(bad)} of {total} manifest{_s(total)} invalid; "
        "fix them or run `cyclotron validate` for details\n" + format_report(bad, color=False)
    )
