"""The checked-in JSON Schema matches the pydantic models, and the fixtures satisfy it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.models import manifest_json_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "cyclotron_py" / "schema" / "manifest.schema.json"
VALID = ROOT / "tests" / "fixtures" / "manifests" / "valid"
REGENERATE = "cyclotron schema > cyclotron_py/schema/manifest.schema.json"


def checked_in_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def test_checked_in_schema_matches_models() -> None:
    assert checked_in_schema() == manifest_json_schema(), (
        f"{SCHEMA_FILE.relative_to(ROOT)} is out of date with cyclotron_py/models.py; "
        f"regenerate it with `{REGENERATE}` and commit the result"
    )


def test_schema_is_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(checked_in_schema())


@pytest.mark.parametrize("path", sorted(VALID.glob("*.json")), ids=lambda p: p.name)
def test_valid_fixtures_satisfy_json_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(checked_in_schema())
    errors = sorted(validator.iter_errors(json.loads(path.read_text(encoding="utf-8"))), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_json_schema_rejects_what_the_validator_rejects() -> None:
    # Sanity check that the schema is strict too: unknown keys and unknown types fail.
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(checked_in_schema())
    data = json.loads((VALID / "pc1.json").read_text(encoding="utf-8"))
    data["capabilites"] = []
    data["capabilities"][0]["type"] = "sofware"
    messages = [e.message for e in validator.iter_errors(data)]
    assert any("capabilites" in m for m in messages)
    assert any("sofware" in m for m in messages)
