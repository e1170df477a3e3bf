"""Manifest validation: every problem named by file, JSON path, what is wrong and a fix.

A manifest may come from another machine or a git remote, so it is read as
untrusted bytes: size-capped before reading, decoded strictly as UTF-8, parsed
as JSON with duplicate keys refused, validated by the pydantic ``Manifest``
model and then checked for what a schema cannot say (known domains, unique
ids, parseable versions, safe package names, no secret values). Nothing a file
contains turns into a traceback: each failure becomes a ``Problem``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import managers, secrets, versions
from .catalog import INSTALL_MANAGERS, TYPE_BY_MANAGER
from .errors import CyclotronError, ManifestError, PlanError
from .models import (
    CAPABILITY_TYPES,
    DEFAULT_DOMAINS,
    HOST_RE,
    MANAGERS,
    SCHEMA_VERSION,
    Manifest,
)
from .safety import check_env_name, check_mcp_name, check_package

log = logging.getLogger(__name__)

# A real manifest is well under 1 MB; anything this big is not one.
MAX_MANIFEST_BYTES = 50 * 1024 * 1024
MAX_DOMAINS_BYTES = 1024 * 1024
# Text reports list this many problems per file; --format json lists all.
MAX_LISTED_PROBLEMS = 100

SeverityName = Literal["error", "warning"]

REGATHER = "re-gather the host (playbooks/gather.yml) or restore it from git"
EXAMPLE_TIME = '"2025-01-31T12:00:00Z"'


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest. ``path`` is a JSON path such as ``$.capabilities[3].domain``."""

    file: str
    path: str
    message: str
    fix: str
    severity: SeverityName = "error"

    def to_dict(self) -> dict[str, str]:
        return {
            "file": self.file,
            "path": self.path,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class FileResult:
    """The outcome for one file: the manifest when it has no errors, and every problem found."""

    file: str
    manifest: Manifest | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def valid(self) -> bool:
        return self.manifest is not None and not self.errors


# --------------------------------------------------------------------------- public API


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


def expand_paths(paths_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files to validate: each directory expands to the ``*.json`` files in it (sorted, dotfiles skipped).

    Raises ManifestError for a path that does not exist or a directory without manifests.
    """
    items = [paths_or_dir] if isinstance(paths_or_dir, str | os.PathLike) else list(paths_or_dir)
    if not items:
        raise ManifestError("no manifest files or directories given")
    out: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if not p.name.startswith(".") and not p.is_dir())
            if not found:
                raise ManifestError(f"{path}: no *.json manifests in this directory")
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            raise ManifestError(f"{path}: no such file or directory")
        for p in found:
            key = Path(os.path.realpath(p))  # unlike Path.resolve, never raises on a symlink loop
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


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
        for warning in result.warnings:
            log.warning("%s: %s: %s. Fix: %s", warning.file, warning.path, warning.message, warning.fix)
    bad = [r for r in results if not r.valid]
    if bad:
        raise ManifestError(
            f"{len(bad)} of {len(results)} manifest{_s(len(results))} invalid; "
            "fix them or run `cyclotron validate` for details\n" + format_report(bad, color=False)
        )
    return [r.manifest for r in results if r.manifest is not None]


def load_domains(path: str | os.PathLike[str]) -> dict[str, str]:
    """Domains from a YAML file: ``{name: description}``, a list of names, or a group_vars file
    holding ``cyclotron_domains``. Raises CyclotronError naming the file and the fix."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_DOMAINS_BYTES:
            raise CyclotronError(f"{path}: too large for a domains file (over 1 MB)")
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise CyclotronError(f"{path}: cannot read domains file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CyclotronError(f"{path}: domains file is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where else ""
        raise CyclotronError(f"{path}: domains file is not valid YAML{at}") from None
    if isinstance(data, dict) and "cyclotron_domains" in data:
        data = data["cyclotron_domains"]
    if isinstance(data, list):
        data = {name: "" for name in data}
    if not isinstance(data, dict) or not data:
        raise CyclotronError(
            f"{path}: expected a mapping of domain names to descriptions (or cyclotron_domains: ...)"
        )
    out: dict[str, str] = {}
    for name, description in data.items():
        if not isinstance(name, str) or not _DOMAIN_NAME_RE.match(name):
            raise CyclotronError(
                f"{path}: domain name {name!r} must be lowercase letters, digits, '_' or '-' (max 50)"
            )
        out[name] = "" if description is None else str(description)
    return out


def format_report(
    results: Sequence[FileResult], *, color: bool, fmt: Literal["text", "json"] = "text"
) -> str:
    """A report grouped per file: text for people (``color`` adds ANSI colours) or JSON for tools."""
    if fmt == "json":
        return json.dumps(report_data(results), indent=2)
    paint = _painter(color)
    lines: list[str] = []
    for result in results:
        errors, warnings = len(result.errors), len(result.warnings)
        if result.valid:
            count = len(result.manifest.capabilities) if result.manifest else 0
            extra = f", {warnings} warning{_s(warnings)}" if warnings else ""
            lines.append(
                f"{paint('green', '✔')} {result.file}: valid ({count} capabilit{'y' if count == 1 else 'ies'}"
                f"{extra})"
            )
        else:
            total = errors + warnings
            split = f" ({errors} error{_s(errors)}, {warnings} warning{_s(warnings)})" if warnings else ""
            lines.append(f"{paint('red', '✖')} {result.file}: {total} problem{_s(total)}{split}")
        for problem in result.problems[:MAX_LISTED_PROBLEMS]:
            label = f"{paint('yellow', 'warning')}: " if problem.severity == "warning" else ""
            lines.append(f"  {problem.path}: {label}{problem.message}. Fix: {problem.fix}")
        if len(result.problems) > MAX_LISTED_PROBLEMS:
            lines.append(
                f"  ... and {len(result.problems) - MAX_LISTED_PROBLEMS} more (--format json lists all)"
            )
    if len(results) > 1:
        summary = report_data(results)["summary"]
        lines.append(
            f"{summary['files']} manifests: {summary['valid']} valid, {summary['invalid']} invalid "
            f"({summary['errors']} error{_s(summary['errors'])}, "
            f"{summary['warnings']} warning{_s(summary['warnings'])})"
        )
    return "\n".join(lines)


def report_data(results: Sequence[FileResult]) -> dict[str, Any]:
    """The JSON form of a report (``cyclotron validate --format json``)."""
    files = [
        {
            "file": r.file,
            "valid": r.valid,
            "host": r.manifest.host if r.manifest else None,
            "capabilities": len(r.manifest.capabilities) if r.manifest else None,
            "errors": len(r.errors),
            "warnings": len(r.warnings),
            "problems": [p.to_dict() for p in r.problems],
        }
        for r in results
    ]
    valid = sum(1 for r in results if r.valid)
    return {
        "valid": valid == len(results),
        "summary": {
            "files": len(results),
            "valid": valid,
            "invalid": len(results) - valid,
            "errors": sum(len(r.errors) for r in results),
            "warnings": sum(len(r.warnings) for r in results),
        },
        "files": files,
    }


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


# --------------------------------------------------------------------------- reading and parsing

_DOMAIN_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
_SHELL_CHARS = frozenset(";&|`$<>'\"\\")
# Windows uninstall DisplayNames hold '&' ("Tom & Jerry") and are never passed to an installer.
_SHELL_CHARS_REGISTRY = frozenset(";|`$<>")
_YAML_START_RE = re.compile(r"^(?:---|%YAML|- |[A-Za-z_][\w .-]*:(?:\s|$))")


def _load_json(path: Path, file: str) -> tuple[Any, list[Problem]]:
    raw, problems = _read_bytes(path, file)
    if raw is None:
        return None, problems
    text, problems = _decode(raw, file)
    if text is None:
        return None, problems
    return _parse_json(text, file)


def _read_bytes(path: Path, file: str) -> tuple[bytes | None, list[Problem]]:
    def fail(message: str, fix: str) -> tuple[None, list[Problem]]:
        return None, [Problem(file, "$", message, fix)]

    try:
        st = path.stat()
    except FileNotFoundError:
        return fail("file not found", "check the path; manifests are written by playbooks/gather.yml")
    except OSError as exc:
        return fail(f"cannot read the file: {exc.strerror or exc}", "check the path and its permissions")
    if stat.S_ISDIR(st.st_mode):
        return fail("this is a directory", "pass the directory to `cyclotron validate` to check its *.json")
    if not stat.S_ISREG(st.st_mode):
        return fail("not a regular file", "point at the manifest file itself")
    too_big = (
        f"the file is over {MAX_MANIFEST_BYTES // (1024 * 1024)} MB, far larger than any manifest",
        "this is not a manifest or it is corrupt; " + REGATHER,
    )
    if st.st_size > MAX_MANIFEST_BYTES:
        return fail(*too_big)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)  # the size may change after stat
    except OSError as exc:
        return fail(f"cannot read the file: {exc.strerror or exc}", "check the file's permissions")
    if len(raw) > MAX_MANIFEST_BYTES:
        return fail(*too_big)
    return raw, []


def _decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    def fail(message: str, fix: str) -> tuple[None, list[Problem]]:
        return None, [Problem(file, "$", message, fix)]

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return fail(
            "the file is UTF-16 text (PowerShell 5 writes that with '>' or Out-File), not UTF-8",
            "re-save it as UTF-8 (Set-Content -Encoding utf8) or " + REGATHER,
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark is harmless
    if not raw.strip():
        return fail("the file is empty", REGATHER)
    if b"\x00" in raw:
        return fail(
            "the file holds NUL bytes: it is binary or UTF-16 data, not a UTF-8 JSON manifest", REGATHER
        )
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return fail(
            f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at line {line} column {column}",
            "re-save the file as UTF-8 (a hand edit may have saved it as Windows-1252) or " + REGATHER,
        )


class _DuplicateKeys:
    """object_pairs_hook that remembers objects with repeated keys (JSON readers keep only the last)."""

    def __init__(self) -> None:
        self.found: dict[int, list[str]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            self.found[id(obj)] = [key for key, n in counts.items() if n > 1]
        return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(text: str, file: str) -> tuple[Any, list[Problem]]:
    def fail(message: str, fix: str) -> tuple[None, list[Problem]]:
        return None, [Problem(file, "$", message, fix)]

    hook = _DuplicateKeys()
    try:
        data = json.loads(text, object_pairs_hook=hook, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return fail(*_explain_json_error(text, exc))
    except ValueError as exc:  # NaN / Infinity
        return fail(f"invalid JSON: {exc}", "write a number or null; " + REGATHER)
    except RecursionError:
        return fail("the JSON is nested too deeply to be a manifest", REGATHER)
    problems = []
    if hook.found:
        for path, obj in _walk_objects(data):
            for key in hook.found.get(id(obj), []):
                problems.append(
                    Problem(
                        file,
                        path,
                        f"key {_show(key)} appears more than once in this object "
                        "(JSON readers silently keep only the last)",
                        "keep one of them",
                    )
                )
    return data, problems


def _explain_json_error(text: str, exc: json.JSONDecodeError) -> tuple[str, str]:
    head = text.lstrip()
    where = f"line {exc.lineno} column {exc.colno}"
    if head.startswith("<"):
        return (
            "this is HTML or XML, not JSON (a web or error page saved in place of the manifest?)",
            REGATHER,
        )
    if not head.startswith(("{", "[")) and _YAML_START_RE.match(head):
        return (
            "this looks like YAML, not JSON; manifests are JSON",
            "manifests are written by the gather playbook: " + REGATHER,
        )
    if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
        return (
            f"the file looks truncated: the JSON ends early at {where} ({exc.msg})",
            REGATHER,
        )
    return (f"invalid JSON at {where}: {exc.msg}", "fix the JSON syntax there, or " + REGATHER)


def _walk_objects(data: Any) -> Iterator[tuple[str, Any]]:
    """(JSON path, value) for every object and array, without recursion."""
    stack: list[tuple[str, Any]] = [("$", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            yield path, value
            stack.extend((_join(path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            yield path, value
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))


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


def _secret_kind(text: str) -> str | None:
    """What kind of secret ``text`` holds, or None (see cyclotron_py.secrets)."""
    return secrets.secret_kind(text)


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


# C0 and C1 control characters except tab, newline and carriage return (as _is_control below).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 32 or 0x7F <= code <= 0x9F


def _check_duplicate_hosts(results: list[FileResult]) -> None:
    by_host: dict[str, list[FileResult]] = {}
    for result in results:
        if result.manifest is not None:
            by_host.setdefault(result.manifest.host, []).append(result)
    for host, group in by_host.items():
        if len(group) < 2:
            continue
        for result in group:
            others = ", ".join(r.file for r in group if r is not result)
            result.problems.append(
                Problem(
                    result.file,
                    "$.host",
                    f"host {_show(host)} also has a manifest in {others}",
                    "keep one manifest per host: delete or move the stale copy",
                )
            )
            result.manifest = None


# --------------------------------------------------------------------------- pydantic errors in plain English

_TYPE_WORDS = {
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
}

_FIELD_FIXES: dict[tuple[str, str], str] = {
    ("Manifest", "host"): 'add "host": "<inventory hostname>" — the file name without .json',
    ("Manifest", "gathered_at"): f'add "gathered_at": {EXAMPLE_TIME} (ISO 8601 with a time zone)',
    ("Manifest", "os"): 'add "os": {"family": "windows" | "linux" | "darwin"}',
    ("Manifest", "managers"): 'write the package managers found as a list, e.g. ["winget", "pip"]',
    ("Manifest", "errors"): 'write "errors": [] or a list of {"source": ..., "message": ...}',
    ("Manifest", "capabilities"): 'write "capabilities": [ ... ] (an empty list is allowed)',
    ("Capability", "id"): "add an id: a catalog id like 'nodejs' or a qualified id like 'pip:requests'",
    ("Capability", "type"): f"add a type: one of {', '.join(CAPABILITY_TYPES)}",
    ("Capability", "name"): 'add "name": the display name, e.g. "Node.js"',
    ("Capability", "source"): 'add "source": {"manager": "<manager>", "package": "<package id>"}',
    ("Capability", "version"): 'write the version as a string, e.g. "1.2.3", or null when unknown',
    ("Capability", "details"): "details is an object of type-specific data, e.g. {}",
    ("CapabilitySource", "manager"): f"add a manager: one of {', '.join(MANAGERS)}",
    ("OsInfo", "family"): "add the OS family: windows, linux or darwin",
    ("SourceError", "source"): "name the manager, command or file that failed",
    ("SourceError", "message"): "add the error message",
}


def _translate(err: Any, file: str, domains: dict[str, str]) -> Problem:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    value = err.get("input")
    path = _json_loc(loc)
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    key = loc[-1] if loc else ""
    model = _model_at(loc[:-1])
    model_name = model.__name__ if model else ""
    field_fix = _FIELD_FIXES.get((model_name, name), "see `cyclotron schema` for the expected format")
    if (model_name, name) == ("Capability", "domain"):
        field_fix = f"add a domain: one of {', '.join(domains)}"

    if kind == "missing":
        return Problem(file, path, f"required key {_show(name)} is missing", field_fix)
    if kind == "extra_forbidden":
        return _extra_key(file, path, str(key), model)
    if kind == "literal_error":
        choices = _literal_choices(model, name)
        guess = _closest(str(value), choices) if isinstance(value, str) else None
        what = "capability type" if (model_name, name) == ("Capability", "type") else name
        allowed = ", ".join(choices)
        fix = f"use {_show(guess)} (allowed: {allowed})" if guess else f"use one of: {allowed}"
        return Problem(file, path, f"{_show(value)} is not a valid {what}", fix)
    if kind == "value_error":
        return _value_error(file, path, model_name, name, value, err)
    if kind in _TYPE_WORDS:
        return Problem(
            file,
            path,
            f"must be {_TYPE_WORDS[kind]}, not {_describe(value)}",
            field_fix if (model_name, name) in _FIELD_FIXES else f"change it to {_TYPE_WORDS[kind]}",
        )
    if kind == "string_too_short":
        return Problem(file, path, f"{name} is empty", field_fix)
    if kind == "string_too_long":
        limit = (err.get("ctx") or {}).get("max_length", "?")
        size = len(value) if isinstance(value, str) else "?"
        return Problem(
            file,
            path,
            f"{name} is {size} characters long, over the limit of {limit}",
            f"shorten it; a value this long is not a real {name}",
        )
    if kind.startswith(("datetime", "date", "time")):
        reason = str(err.get("msg", "")).partition(", ")[2] or "unrecognised format"
        return Problem(
            file,
            path,
            f"{_show(value)} is not a valid timestamp ({reason})",
            f"use ISO 8601 with a time zone, e.g. {EXAMPLE_TIME}, or " + REGATHER,
        )
    return Problem(file, path, str(err.get("msg", "invalid value")).rstrip("."), field_fix)


def _value_error(file: str, path: str, model_name: str, name: str, value: Any, err: Any) -> Problem:
    if (model_name, name) == ("CapabilitySource", "manager"):
        guess = _closest(str(value), list(MANAGERS)) if isinstance(value, str) else None
        fix = f"use {_show(guess)}" if guess else "use a known manager"
        return Problem(
            file, path, f"{_show(value)} is not a known manager", f"{fix} (known: {', '.join(MANAGERS)})"
        )
    if (model_name, name) == ("Capability", "id"):
        text = value if isinstance(value, str) else ""
        if text.startswith("-"):
            why = "starts with '-' (option injection)"
        elif any(ch in _SHELL_CHARS or _is_control(ch) for ch in text):
            why = "contains shell metacharacters"
        else:
            why = "does not follow the id grammar"
        return Problem(
            file,
            path,
            f"capability id {_show(value)} {why}",
            "use a lowercase catalog id like 'nodejs' or a qualified id like 'pip:requests' "
            "(letters, digits, '.', '_', '+', '-', '@', '/'); " + REGATHER,
        )
    if (model_name, name) == ("Manifest", "host"):
        return Problem(
            file,
            path,
            f"host {_show(value)} is not an inventory hostname",
            "use letters, digits, '.', '_' or '-', the same as the file name <host>.json",
        )
    ctx = err.get("ctx") or {}
    message = str(ctx.get("error") or err.get("msg", "invalid value"))
    return Problem(
        file,
        path,
        message.removeprefix("Value error, ").rstrip("."),
        _FIELD_FIXES.get((model_name, name), "see `cyclotron schema` for the expected format"),
    )


def _extra_key(file: str, path: str, key: str, model: type[BaseModel] | None) -> Problem:
    if model is None:
        return Problem(file, path, f"unknown key {_show(key)}", "remove it")
    allowed = list(model.model_fields)
    guess = _closest(key, allowed)
    if guess:
        fix = f"did you mean {_show(guess)}? rename it"
    else:
        # A key that belongs one level down, e.g. "package" written beside "source".
        home = next(
            (
                name
                for name, info in model.model_fields.items()
                if (sub := _model_in(info.annotation)) is not None and key in sub.model_fields
            ),
            None,
        )
        fix = f"move it into {_show(home)}" if home else f"remove it (allowed here: {', '.join(allowed)})"
    return Problem(file, path, f"unknown key {_show(key)}", fix)


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the object at ``loc`` (None when not a model)."""
    model: type[BaseModel] = Manifest
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        inner = _model_in(info.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return _model_in(args[0]) if args else None
    return None


def _literal_choices(model: type[BaseModel] | None, name: str) -> list[str]:
    info = model.model_fields.get(name) if model else None
    if info is None or get_origin(info.annotation) is not Literal:
        return []
    return [str(a) for a in get_args(info.annotation)]


# --------------------------------------------------------------------------- helpers


def _closest(value: str, choices: Sequence[str]) -> str | None:
    """The choice a typo most likely meant: same word in other case, a prefix, or a near spelling."""
    low = value.strip().lower()
    if not low:
        return None
    for choice in choices:
        if choice.lower() == low:
            return choice
    if len(low) >= 2:
        prefixed = [c for c in choices if c.lower().startswith(low) or low.startswith(c.lower())]
        if len(prefixed) == 1:
            return prefixed[0]
    match = difflib.get_close_matches(low, [c.lower() for c in choices], n=1, cutoff=0.6)
    if match:
        return next(c for c in choices if c.lower() == match[0])
    return None


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _join(path: str, key: Any) -> str:
    if isinstance(key, str) and _IDENT_RE.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(str(key))}]"


def _json_loc(loc: Sequence[Any]) -> str:
    path = "$"
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


_PATH_TOKEN_RE = re.compile(r'\[(\d+)\]|\.([A-Za-z_]\w*)|\[("(?:[^"\\]|\\.)*")\]')


def _path_key(path: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key in document order: keys in model field order, $.capabilities[10] after [9]."""
    key: list[tuple[int, int, str]] = []
    model: type[BaseModel] | None = Manifest
    for index, name, quoted in _PATH_TOKEN_RE.findall(path):
        if index:
            key.append((1, int(index), ""))
            continue
        name = name or quoted
        fields = list(model.model_fields) if model else []
        key.append((2, fields.index(name) if name in fields else len(fields), name))
        info = model.model_fields.get(name) if model else None
        model = _model_in(info.annotation) if info else None
    return tuple(key)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    if isinstance(value, dict | list):
        return f"an {_json_type(value)}"
    if value is None:
        return "null"
    return f"the {_json_type(value)} {_show(value)}"


def _show(value: Any, limit: int = 60) -> str:
    """A value quoted for a report: escaped, shortened, and never a secret."""
    if isinstance(value, str):
        if _secret_kind(value):
            return "'<redacted>'"
        return repr(value if len(value) <= limit else value[:limit] + "…")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return f"a JSON {_json_type(value)}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


_COLOURS = {"red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m"}


def _painter(color: bool) -> Any:
    def paint(name: str, text: str) -> str:
        return f"{_COLOURS[name]}{text}\033[0m" if color else text

    return paint


__all__ = [
    "FileResult",
    "Problem",
    "expand_paths",
    "format_report",
    "load_domains",
    "load_manifests",
    "package_problem",
    "parses_as_version",
    "report_data",
    "validate_data",
    "validate_file",
    "validate_paths",
    "version_problem",
]
