"""Manifest validation: every problem named by file, JSON path, what is wrong and a fix.

A manifest may come from another machine or a git remote, so it is read as
untrusted bytes: size-capped before reading, decoded strictly as UTF-8, parsed
as JSON with duplicate keys refused (``reading``), validated by the pydantic
``Manifest`` model and then checked for what a schema cannot say: known domains,
unique ids, parseable versions, safe package names (``checks``), no secret values
or control characters (``secret_checks``). Pydantic errors become plain English
(``messages``); ``report`` groups the Problems per file. Nothing a file contains
turns into a traceback: each failure becomes a ``Problem``.
"""

from __future__ import annotations

from .checks import (
    load_manifests,
    package_problem,
    parses_as_version,
    validate_data,
    validate_file,
    validate_paths,
    version_problem,
)
from .reading import MAX_DOMAINS_BYTES, MAX_MANIFEST_BYTES, expand_paths, load_domains
from .report import MAX_LISTED_PROBLEMS, FileResult, Problem, SeverityName, format_report, report_data

__all__ = [
    "MAX_DOMAINS_BYTES",
    "MAX_LISTED_PROBLEMS",
    "MAX_MANIFEST_BYTES",
    "FileResult",
    "Problem",
    "SeverityName",
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
