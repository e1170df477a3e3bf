"""cyclotron_py.secrets and its host copy module_utils/cyclotron_redact.py, on one table of cases."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cyclotron_py import secrets
from cyclotron_py.hostscript import host_code

REPO = Path(__file__).resolve().parents[2]
CASES: dict[str, Any] = json.loads((REPO / "tests" / "fixtures" / "secret_cases.json").read_text(encoding="utf-8"))
HOST: ModuleType = host_code(REPO / "plugins" / "module_utils" / "cyclotron_redact.py")[0]
# The controller's redaction and the host copy must answer every case alike.
REDACTORS = pytest.mark.parametrize("impl", [secrets, HOST], ids=["controller", "host"])


@pytest.mark.parametrize("case", CASES["secrets"], ids=lambda c: c["kind"])
def test_secret_kind_finds(case: dict[str, Any]) -> None:
    assert secrets.secret_kind("".join(case["parts"])) == case["kind"]


@pytest.mark.parametrize("text", CASES["not_secrets"])
def test_secret_kind_passes(text: str) -> None:
    assert secrets.secret_kind(text) is None


@pytest.mark.parametrize("case", CASES["under_key"], ids=lambda c: f"{c['key']}={c['value']}")
def test_secret_under_key(case: dict[str, Any]) -> None:
    assert secrets.secret_under_key(case["key"], case["value"]) is case["secret"]


@REDACTORS
@pytest.mark.parametrize("case", CASES["args"], ids=lambda c: " ".join(map(str, c["args"])))
def test_redact_args(impl: ModuleType, case: dict[str, Any]) -> None:
    assert impl.redact_args(case["args"]) == case["redacted"]


@REDACTORS
@pytest.mark.parametrize("case", CASES["urls"], ids=lambda c: c["url"])
def test_strip_url(impl: ModuleType, case: dict[str, Any]) -> None:
    assert impl.strip_url(case["url"], keep_query=case.get("keep_query", False)) == case["stripped"]


@REDACTORS
@pytest.mark.parametrize("case", CASES["secrets"][:3], ids=lambda c: c["kind"])
def test_provider_keys_are_redacted_as_arguments(impl: ModuleType, case: dict[str, Any]) -> None:
    """A provider key passed as a bare argument never leaves the host, by its prefix alone."""
    assert impl.redact_value("".join(case["parts"])) == impl.REDACTED


def test_host_copy_has_the_same_rules() -> None:
    """The patterns are the same text on both sides; a change to one must be made to the other."""
    for name in ("REDACTED", "HEADER_FLAGS"):
        assert getattr(HOST, name) == getattr(secrets, name)
    for name in ("SENSITIVE_NAME_RE", "TOKEN_VALUE_RE"):
        assert getattr(HOST, name).pattern == getattr(secrets, name).pattern
