"""Version parsing and ordering across package managers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclotron_py.hostscript import host_code
from cyclotron_py.versions import comparable_keys, compare_versions, is_parseable, natural_key, parse_version

REPO = Path(__file__).resolve().parents[2]
SHARED_CASES: list[dict[str, Any]] = json.loads(
    (REPO / "tests" / "fixtures" / "version_cases.json").read_text(encoding="utf-8")
)["cases"]
# The standard-library copy the gatherer and the installer use on hosts.
HOST = host_code(REPO / "plugins" / "module_utils" / "cyclotron_versions.py")[0]


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['manager']}:{case['a']}~{case['b']}"


@pytest.mark.parametrize("case", SHARED_CASES, ids=_case_id)
def test_shared_cases_controller(case: dict[str, Any]) -> None:
    assert compare_versions(case["a"], case["b"], case["manager"]) == case["order"]
    assert compare_versions(case["b"], case["a"], case["manager"]) == -case["order"]


@pytest.mark.parametrize("case", SHARED_CASES, ids=_case_id)
def test_shared_cases_host(case: dict[str, Any]) -> None:
    """The host copy agrees with the controller, except where the case says why not (and then it
    really differs, so the note stays true)."""
    key_a, key_b = HOST.version_key(case["a"]), HOST.version_key(case["b"])
    order = (key_a > key_b) - (key_a < key_b)
    if "host" in case:
        assert order != case["order"], "the host copy now agrees: drop the case's 'host' note"
    else:
        assert order == case["order"]
        assert HOST.same_version(case["a"], case["b"]) is (case["order"] == 0)


def test_host_orders_non_versions_first() -> None:
    """npm tags and other words are no version: older than any, so "upgrade from latest" never happens."""
    assert HOST.version_key("latest") < HOST.version_key("0.0.1")
    assert HOST.version_key("build9") < HOST.version_key("build10")


@pytest.mark.parametrize(("text", "manager"), [("18.19.0+dfsg-6~deb12u2", None), ("2.43.0.windows.1", "winget")])
def test_is_parseable(text: str, manager: str | None) -> None:
    assert is_parseable(text, manager) and not is_parseable("latest", manager)


@pytest.mark.parametrize(
    ("a", "manager_a", "b", "manager_b", "expected"),
    [
        # PEP 440 (pip)
        ("2.31.0", "pip", "2.32.3", "pip", -1),
        ("1.0rc1", "pip", "1.0", "pip", -1),
        ("1.0.dev1", "pip", "1.0a1", "pip", -1),
        ("1.0.post1", "pip", "1.0", "pip", 1),
        ("1.0+local.1", "pip", "1.0", "pip", 1),
        ("1!0.1", "pip", "2.0", "pip", 1),
        ("2.0", "pip", "2.0.0", "pip", 0),
        # semver (npm)
        ("1.0.0-rc.1", "npm", "1.0.0", "npm", -1),
        ("1.0.0-alpha", "npm", "1.0.0-alpha.1", "npm", -1),
        ("1.0.0-alpha.beta", "npm", "1.0.0-beta", "npm", -1),
        ("1.0.0-beta.11", "npm", "1.0.0-beta.2", "npm", 1),
        ("1.0.0+build.5", "npm", "1.0.0", "npm", 0),
        ("10.0.0", "npm", "9.9.9", "npm", 1),
        # Debian (apt): epochs, revisions, tilde
        ("1:2.39.5-0+deb12u1", "apt", "2:1.0-1", "apt", -1),
        ("1.0~rc1-1", "apt", "1.0-1", "apt", -1),
        ("2.39.5-1", "apt", "2.39.5-2", "apt", -1),
        ("3.3a-3", "apt", "3.3-3", "apt", 1),
        ("1.0", "apt", "1.0-0", "apt", 0),
        ("1.0.1", "apt", "1.0", "apt", 1),
        # winget / choco: 4-part numbers and Git for Windows tails
        ("2.43.0.0", "winget", "2.43.0", "winget", 0),
        ("1.21.3231.0", "winget", "1.21.10000.0", "winget", -1),
        ("2.43.0.windows.1", "winget", "2.43.0", "winget", 1),
        # brew revisions
        ("1.2_1", "brew", "1.2", "brew", 1),
        # across managers: release numbers decide, packaging parts do not
        ("2.47.1", "winget", "1:2.39.5-0+deb12u1", "apt", 1),
        ("2.43.0", "winget", "1:2.43.0-1", "apt", 0),
        ("20.18.1", "winget", "18.19.0+dfsg-6~deb12u2", "apt", 1),
        ("2.43.0.windows.1", "path", "2.43.0", "winget", 0),
        ("2.43.0.windows.1", None, "2.43.0", "winget", 1),  # one manager given: both read as winget
        ("1.0rc1", "pip", "1.0.0-rc.2", "npm", -1),
        ("v1.2.3", None, "1.2.3", None, 0),
    ],
)
def test_order(a: str, manager_a: str | None, b: str, manager_b: str | None, expected: int) -> None:
    assert compare_versions(a, b, manager_a, manager_b) == expected
    assert compare_versions(b, a, manager_b, manager_a) == -expected


@pytest.mark.parametrize(
    ("raw", "manager", "scheme"),
    [
        ("2.31.0", "pip", "pep440"),
        ("1.0.0-rc.1", "npm", "semver"),
        ("1:2.39.5-0+deb12u1", "apt", "debian"),
        ("3.11.2-1+b1", "apt", "debian"),
        ("10.0.19041.1", "winget", "winget"),
        ("2.43.0.windows.1", "winget", "winget"),
        ("1.2_1", "brew", "loose"),
        ("1.2.3", None, "pep440"),
        ("1:1.0", None, "debian"),
    ],
)
def test_scheme(raw: str, manager: str | None, scheme: str) -> None:
    parsed = parse_version(raw, manager)
    assert parsed.parseable
    assert parsed.scheme == scheme
    assert parsed.raw == raw


@pytest.mark.parametrize("raw", ["latest", "Unknown", "build-abc", "", "   ", "< 1.0", "x" * 200])
def test_unparseable_is_flagged(raw: str) -> None:
    parsed = parse_version(raw, "winget")
    assert not parsed.parseable
    assert parsed.scheme == "string"
    assert compare_versions(raw, "1.0", "winget") is None
    assert comparable_keys([parsed, parse_version("1.0")]) is None


def test_natural_key_orders_digit_runs_as_numbers() -> None:
    assert natural_key("build9") < natural_key("build10")
    assert natural_key("beta") < natural_key("gamma")


def test_same_scheme_uses_full_keys_mixed_schemes_use_upstream() -> None:
    # Within apt, the epoch wins; across managers it carries no meaning.
    apt_new, apt_old = parse_version("1:1.0-1", "apt"), parse_version("2.0-1", "apt")
    keys = comparable_keys([apt_new, apt_old])
    assert keys is not None and keys[0] > keys[1]
    mixed = comparable_keys([apt_new, parse_version("2.0", "winget")])
    assert mixed is not None and mixed[0] < mixed[1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=5),
    st.lists(st.integers(0, 50), min_size=1, max_size=5),
    st.sampled_from(["pip", "npm", "apt", "winget", "brew", None]),
)
def test_numeric_versions_order_like_numbers(a: list[int], b: list[int], manager: str | None) -> None:
    if manager == "npm":  # semver has exactly three parts
        a, b = (a + [0, 0, 0])[:3], (b + [0, 0, 0])[:3]

    def trimmed(parts: list[int]) -> tuple[int, ...]:
        t = list(parts)
        while len(t) > 1 and t[-1] == 0:
            t.pop()
        return tuple(t)

    expected = (trimmed(a) > trimmed(b)) - (trimmed(a) < trimmed(b))
    text_a, text_b = ".".join(map(str, a)), ".".join(map(str, b))
    assert compare_versions(text_a, text_b, manager) == expected
