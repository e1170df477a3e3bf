"""Loading a fleet's manifests for the engine: straight into compact records, fast.

``cyclotron matrix/report/plan/diff`` and the sync playbook's plan step read manifests
through here. Each document is decoded with msgspec and checked by hand against the same
rules as the full validator (``cyclotron_py.validate``: the pydantic model plus its extra
checks), without building a pydantic object per capability, and turned into
``compare.HostRecord``/``CapRow`` with shared strings. The fast check is a *sufficient*
condition: whatever it is not sure of (any error, an unusual shape, stray whitespace that
the model would strip) sends that file to the full validator, which decides and writes the
report. So the fast path accepts exactly what the validator accepts, with the same warnings,
and a rejected file gets the validator's file/field/fix message.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast, get_args

import msgspec

from . import managers
from .catalog import TYPE_BY_MANAGER
from .compare import CapRow, HostRecord, host_record
from .compare.records import _iso
from .forked import Forked, can_fork, fork_call
from .models import (
    CAPABILITY_ID_RE,
    CAPABILITY_TYPES,
    DEFAULT_DOMAINS,
    HOST_RE,
    MANAGERS,
    SCHEMA_VERSION,
    Capability,
    CapabilitySource,
    Manifest,
    OsFamily,
    OsInfo,
    Priority,
    Risk,
    SourceError,
)
from .validate import (
    FileResult,
    Problem,
    SeverityName,
    expand_paths,
    package_problem,
    validate_data,
    validate_file,
    version_problem,
)
from .validate.checks import (
    _DATETIME,
    _check_strings,
    _check_timestamp,
    duplicate_host_problems,
    invalid_manifests_error,
    log_warnings,
)
from .validate.messages import _path_key, _show
from .validate.reading import MAX_MANIFEST_BYTES
from .validate.secret_checks import _has_control, _secret_kind

Finding = tuple[SeverityName, str, str]
PathsArg = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def _limits(model: type[Any]) -> dict[str, tuple[int, int]]:
    """``{field: (min_length, max_length)}`` from the pydantic model, so the limits have one home."""
    out: dict[str, tuple[int, int]] = {}
    for name, info in model.model_fields.items():
        low, high = 0, 1 << 30
        for meta in info.metadata:
            low = getattr(meta, "min_length", None) or low
            high = getattr(meta, "max_length", None) or high
        out[name] = (low, high)
    return out


def _required(model: type[Any]) -> frozenset[str]:
    return frozenset(n for n, info in model.model_fields.items() if info.is_required())


_MANIFEST_KEYS = frozenset(Manifest.model_fields)
_MANIFEST_REQUIRED = _required(Manifest) | {"schema_version"}  # missing is an error, see _check_schema_version
_CAP_KEYS = frozenset(Capability.model_fields)
_CAP_REQUIRED = _required(Capability)
_SOURCE_KEYS = frozenset(CapabilitySource.model_fields)
_OS_KEYS = frozenset(OsInfo.model_fields)
_ERROR_KEYS = frozenset(SourceError.model_fields)
_CAP_LIMITS = _limits(Capability)
_SOURCE_LIMITS = _limits(CapabilitySource)
_OS_LIMITS = _limits(OsInfo)
_ERROR_LIMITS = _limits(SourceError)
# Closed sets, as {value: value}: a lookup checks the value and returns one shared string.
_TYPES = {t: t for t in CAPABILITY_TYPES}
_KNOWN_MANAGERS = {m: m for m in MANAGERS}
_FAMILIES = frozenset(get_args(OsFamily))
_PRIORITIES = {p: p for p in get_args(Priority)}
_RISKS = {r: r for r in get_args(Risk)}
_EMPTY: dict[str, Any] = {}
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


# A checked capability: (id, row, ':' in its text, backslashes in its text, warnings).
_Checked = tuple[str, CapRow, int, int, tuple[tuple[str, Finding], ...]]
_ID_ROW: Callable[[_Checked], tuple[str, CapRow]] = operator.itemgetter(0, 1)
_COLONS: Callable[[_Checked], int] = operator.itemgetter(2)
_BACKSLASHES: Callable[[_Checked], int] = operator.itemgetter(3)
_FINDINGS: Callable[[_Checked], tuple[Any, ...]] = operator.itemgetter(4)


class _Top(msgspec.Struct, forbid_unknown_fields=True):
    """A manifest's top level as read by the fast path: values checked by hand, capabilities raw."""

    schema_version: Any = msgspec.UNSET
    host: Any = msgspec.UNSET
    gathered_at: Any = msgspec.UNSET
    os: Any = msgspec.UNSET
    managers: Any = msgspec.UNSET
    capabilities: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    errors: Any = msgspec.UNSET


_TOP_DECODER = msgspec.json.Decoder(_Top)


class _Unsure(Exception):
    """The fast check cannot vouch for this document: the full validator decides."""


class Loader:
    """Loads manifests into HostRecords, sharing checked strings across files (one fleet, one pool)."""

    def __init__(self, domains: Mapping[str, str] | None = None) -> None:
        self.domains = dict(domains) if domains else None
        self.known = dict(domains) if domains else dict(DEFAULT_DOMAINS)
        # str -> the same str, once it is known to be clean (no secret, no control character,
        # nothing the model would strip): checked once per fleet, not once per occurrence.
        self.clean: dict[str, str] = {}
        self.caps: dict[bytes, _Checked] = {}

    # ------------------------------------------------------------------ entry points

    def load_file(self, path: Path) -> tuple[HostRecord | None, FileResult]:
        """(record, result): record is None when the file is invalid (result has the report)."""
        file = str(path)
        expected = path.stem if path.suffix == ".json" else None
        fast = self._fast_file(path, file, expected)
        if fast is not None:
            record, warnings = fast
            return record, FileResult(file, None, warnings)
        manifest, problems = validate_file(path, domains=self.domains)
        return self._from_manifest(file, manifest, problems)

    def load_files(self, paths: list[Path], *, parallel: bool = False) -> list[tuple[HostRecord | None, FileResult]]:
        """``load_file`` of each path, in order. ``parallel``: on a large fleet, and only in a
        single-threaded process (the CLI), the second half of the bytes is loaded in a forked
        worker meanwhile (see _forked); anything wrong with the worker and this process loads
        that half itself."""
        split = _split_point(paths) if parallel and can_fork() else 0
        if not split:
            return [self.load_file(path) for path in paths]
        worker = _forked(self, paths[split:])
        first = [self.load_file(path) for path in paths[:split]]
        second = worker.result() if worker is not None else None
        if second is None or len(second) != len(paths) - split:
            second = [self.load_file(path) for path in paths[split:]]
        return first + second

    def load_document(self, data: Any, *, file: str, expected_host: str | None) -> tuple[HostRecord | None, FileResult]:
        """Like load_file for an in-memory document (a manifest gathered in this run)."""
        try:
            document = data
            if isinstance(data, dict) and isinstance(data.get("capabilities"), list):
                # Dicts hold no repeated keys; each capability is cached by its JSON text.
                document = {**data, "capabilities": [_ENCODER.encode(c) for c in data["capabilities"]]}
            record, warnings = self._check(document, file, expected_host, None)
            return record, FileResult(file, None, warnings)
        except Exception:  # noqa: BLE001 - _Unsure, or anything odd: the full validator reports it
            pass
        manifest, problems = validate_data(data, file=file, domains=self.domains, expected_host=expected_host)
        return self._from_manifest(file, manifest, problems)

    def _from_manifest(
        self, file: str, manifest: Manifest | None, problems: list[Problem]
    ) -> tuple[HostRecord | None, FileResult]:
        result = FileResult(file, manifest, problems)
        if not result.valid or manifest is None:
            return None, result
        return host_record(manifest, compact=True, strings=self.clean), FileResult(file, None, result.warnings)

    # ------------------------------------------------------------------ the fast check

    def _fast_file(self, path: Path, file: str, expected: str | None) -> tuple[HostRecord, list[Problem]] | None:
        try:
            if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
                return None
            raw = path.read_bytes()
            if len(raw) > MAX_MANIFEST_BYTES or b"\x00" in raw:
                return None
            # Strict UTF-8 and RFC 8259 (a UTF-8 BOM or NaN fails here); capabilities stay raw text.
            top = _TOP_DECODER.decode(raw)
            data = {f: v for f in top.__struct_fields__ if (v := getattr(top, f)) is not msgspec.UNSET}
            return self._check(data, file, expected, raw)
        except Exception:  # noqa: BLE001 - _Unsure, or anything odd: the full validator reports it
            return None

    def _text(self, value: Any, low: int, high: int) -> str:
        """A string field: clean, already stripped and within the model's length limits."""
        if not isinstance(value, str) or not low <= len(value) <= high:
            raise _Unsure
        seen = self.clean.get(value)
        if seen is not None:
            return seen
        if value != value.strip() or _has_control(value) or _secret_kind(value):
            raise _Unsure
        self.clean[value] = value
        return value

    def _check(
        self, data: Any, file: str, expected: str | None, raw: bytes | None
    ) -> tuple[HostRecord, list[Problem]]:
        """``data``: the document with each capability as its JSON text; ``raw``: the file's bytes."""
        if not isinstance(data, dict) or not data.keys() <= _MANIFEST_KEYS or not data.keys() >= _MANIFEST_REQUIRED:
            raise _Unsure
        version = data["schema_version"]
        if type(version) is not int or version != SCHEMA_VERSION:
            raise _Unsure
        text = self._text
        host = text(data["host"], 1, 128)
        if not HOST_RE.match(host) or (expected is not None and host != expected):
            raise _Unsure
        when_raw = data["gathered_at"]
        if not isinstance(when_raw, str) or when_raw != when_raw.strip():
            raise _Unsure
        problems = _check_timestamp(data, None, file)
        if any(p.severity == "error" for p in problems):
            raise _Unsure
        when = _DATETIME.validate_python(when_raw)
        os_info = data["os"]
        if not isinstance(os_info, dict) or not os_info.keys() <= _OS_KEYS or os_info.get("family") not in _FAMILIES:
            raise _Unsure
        for key, value in os_info.items():
            text(value, *_OS_LIMITS[key])
        errors = data.get("errors", [])
        if not isinstance(errors, list):
            raise _Unsure
        for error in errors:
            if not isinstance(error, dict) or error.keys() != _ERROR_KEYS:
                raise _Unsure
            for key, value in error.items():
                if not isinstance(value, str) or len(value.strip()) > _ERROR_LIMITS[key][1]:
                    raise _Unsure
        # Secrets and control characters outside the capabilities (a handful of strings).
        if _check_strings({k: v for k, v in data.items() if k != "capabilities"}, file):
            raise _Unsure
        listed: list[str] = []
        if "managers" in data:
            if not isinstance(data["managers"], list):
                raise _Unsure
            listed = [text(m, 0, 1 << 30) for m in data["managers"]]
        caps, cap_colons, cap_backslashes, cap_problems = self._capabilities(data.get("capabilities", []), file)
        if raw is not None:
            # msgspec keeps the last of repeated keys; the validator reports them. Each distinct
            # capability text was checked once (_capability). Outside the capabilities, every key
            # written has one ':' after it, and so has each ':' of a string; with no escape there
            # (no backslash: no colon written as \u003a), equal counts mean no key is repeated.
            outside = {k: (v if k != "capabilities" else None) for k, v in data.items()}
            if raw.count(b"\\") != cap_backslashes or raw.count(b":") - cap_colons != _colons(outside):
                raise _Unsure
        problems += cap_problems
        if "managers" in data:
            found = tuple(sorted(set(listed)))
        else:
            found = managers.infer_managers(row.manager for row in caps.values())
        record = HostRecord(
            host=host,
            family=os_info["family"],
            distribution=os_info.get("distribution", ""),
            managers=found,
            gathered_at=_iso(when),
            caps=caps,
            managers_inferred="managers" not in data,
        )
        if len(problems) > 1:
            problems.sort(key=lambda p: _path_key(p.path))
        return record, problems

    def _capabilities(self, caps: Any, file: str) -> tuple[dict[str, CapRow], int, int, list[Problem]]:
        """(rows by id, ':' and backslashes in their texts, warnings). ``caps``: each one's JSON text.

        Most capabilities appear on many hosts with the same text: each distinct text is decoded
        and checked once per fleet, and its row is shared (rows are read-only). The per-file work
        is a few passes in C over the file's texts."""
        if not isinstance(caps, list):
            raise _Unsure
        cache = self.caps
        texts = list(map(bytes, caps))
        found: list[_Checked | None] = list(map(cache.get, texts))
        if None in found:
            for i, hit in enumerate(found):
                if hit is None:
                    text = texts[i]
                    found[i] = cache.get(text) or cache.setdefault(text, self._capability(text))
        hits = cast(list[_Checked], found)
        rows = dict(map(_ID_ROW, hits))
        if len(rows) != len(hits):
            raise _Unsure  # a duplicate id
        problems: list[Problem] = []
        if any(map(_FINDINGS, hits)):
            for i, hit in enumerate(hits):
                for suffix, (severity, message, fix) in hit[4]:
                    problems.append(Problem(file, f"$.capabilities[{i}]{suffix}", message, fix, severity))
        return rows, sum(map(_COLONS, hits)), sum(map(_BACKSLASHES, hits)), problems

    def _capability(self, raw: bytes) -> _Checked:
        """One capability's id, row, ':' and backslash counts, and warnings (path suffix, finding)."""
        cap = _DECODER.decode(raw)
        if not isinstance(cap, dict) or not cap.keys() <= _CAP_KEYS or not cap.keys() >= _CAP_REQUIRED:
            raise _Unsure
        source = cap["source"]
        if not isinstance(source, dict) or not source.keys() <= _SOURCE_KEYS:
            raise _Unsure
        text = self._text
        cap_id = text(cap["id"], *_CAP_LIMITS["id"])
        if not CAPABILITY_ID_RE.match(cap_id):
            raise _Unsure
        cap_type = _TYPES[cap["type"]]  # KeyError (not one of them): the validator decides
        name = text(cap["name"], *_CAP_LIMITS["name"])
        domain = text(cap["domain"], *_CAP_LIMITS["domain"])
        if domain not in self.known:
            raise _Unsure
        priority = _PRIORITIES[cap.get("priority", "normal")]
        risk = _RISKS[cap.get("risk", "low")]
        top_level = cap.get("top_level", True)
        if type(top_level) is not bool:
            raise _Unsure
        manager = _KNOWN_MANAGERS[source["manager"]]
        package = text(source.get("package", ""), *_SOURCE_LIMITS["package"])
        path = text(source.get("path", ""), *_SOURCE_LIMITS["path"])
        findings: list[tuple[str, Finding]] = []
        version = cap.get("version")
        if version is not None:
            version = text(version, *_CAP_LIMITS["version"])
            found = version_problem(version)
            if found is not None:
                findings.append((".version", found))
        if package:
            found = package_problem(manager, package)
            if found is not None:
                findings.append((".source.package", found))
        if any(severity == "error" for _, (severity, _m, _f) in findings):
            raise _Unsure
        expected_type = TYPE_BY_MANAGER.get(manager)
        if expected_type and cap_type != expected_type:
            findings.append((".type", _type_mismatch(cap_type, manager, expected_type)))
        details = cap.get("details", _EMPTY)
        if not isinstance(details, dict) or (details and _check_strings(details, "")):
            raise _Unsure
        # No repeated key: with whitespace removed the text holds at least one '":' per key
        # written (msgspec kept only the last of repeated ones), so equal counts mean none repeats.
        if raw.translate(None, b" \t\r\n").count(b'":') != len(cap) + len(source) + _count_keys(details):
            raise _Unsure
        row = CapRow(
            cap_id, cap_type, name, version, domain, priority, risk, manager, package, path,
            top_level, details or _EMPTY,
        )
        return cap_id, row, raw.count(b":"), raw.count(b"\\"), tuple(findings)


def _type_mismatch(cap_type: str, manager: str, expected: str) -> Finding:
    # The warning validate.checks._check_capabilities gives (tests compare the two).
    return (
        "warning",
        f"type {_show(cap_type)} does not match source manager {_show(manager)}, "
        f"which finds {expected} capabilities",
        f"set type to {_show(expected)} or correct source.manager",
    )


def _colons(value: Any) -> int:
    """The ':' its JSON text has with no escapes: one per key, and those inside strings."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            count += item.count(":")
        elif isinstance(item, dict):
            count += len(item)
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _count_keys(value: Any) -> int:
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


# --------------------------------------------------------------------------- two processes

# Below this many bytes of manifests a second process costs more than it saves.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024


def _split_point(paths: list[Path]) -> int:
    """Where the second half of the bytes starts (0: not worth a second process)."""
    try:
        sizes = [path.stat().st_size for path in paths]
    except OSError:
        return 0
    total = sum(sizes)
    if len(paths) < 2 or total < PARALLEL_MIN_BYTES:
        return 0
    running = 0
    for n, size in enumerate(sizes):
        running += size
        if running * 2 >= total:
            return min(n + 1, len(paths) - 1)
    return 0


def _forked(loader: Loader, paths: list[Path]) -> Forked[list[tuple[HostRecord | None, FileResult]]] | None:
    """The files loaded in a forked child (cyclotron_py.forked): a capability row shared by many
    hosts crosses the pipe once."""
    return fork_call(lambda: [loader.load_file(path) for path in paths])


# --------------------------------------------------------------------------- public API


def load_records(
    paths: PathsArg, *, domains: Mapping[str, str] | None = None, parallel: bool = False
) -> list[HostRecord]:
    """Host records in file order, or ManifestError with the validator's report of every invalid file.

    The same contract as ``validate.load_manifests`` (warnings are logged), for the engine.
    ``parallel``: see Loader.load_files (the CLI sets it).
    """
    loader = Loader(domains)
    loaded = loader.load_files(expand_paths(paths), parallel=parallel)
    records, bad = sort_out(loaded)
    if bad:
        raise invalid_manifests_error(bad, len(loaded))
    return records


def sort_out(loaded: list[tuple[HostRecord | None, FileResult]]) -> tuple[list[HostRecord], list[FileResult]]:
    """(valid records, invalid files' results): a host with two manifests makes both invalid.
    Warnings of the valid files are logged."""
    duplicates = duplicate_host_problems([(r.file, rec.host) for rec, r in loaded if rec is not None])
    records: list[HostRecord] = []
    bad: list[FileResult] = []
    for record, result in loaded:
        if result.file in duplicates:
            result.problems.append(duplicates[result.file])
            bad.append(result)
        elif record is None:
            bad.append(result)
        else:
            log_warnings(result.problems)
            records.append(record)
    return records, bad


__all__ = ["PARALLEL_MIN_BYTES", "Loader", "load_records", "sort_out"]
