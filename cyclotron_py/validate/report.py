"""Problems and the report: what is wrong with a manifest, grouped per file, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..models import Manifest

# Text reports list this many problems per file; --format json lists all.
MAX_LISTED_PROBLEMS = 100

SeverityName = Literal["error", "warning"]


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

def _s(count: int) -> str:
    return "" if count == 1 else "s"


_COLOURS = {"red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m"}


def _painter(color: bool) -> Any:
    def paint(name: str, text: str) -> str:
        return f"{_COLOURS[name]}{text}\033[0m" if color else text

    return paint

