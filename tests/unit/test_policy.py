"""cyclotron_policy: validation with errors a person can act on, and the decisions it makes."""

from __future__ import annotations

from typing import Any

import pytest

from cyclotron_py.errors import PolicyError
from cyclotron_py.policy import Policy, PolicyMatcher, parse_policies, parse_policy


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"exlude": ["x"]}, r"cyclotron_policy for laptop: unknown key 'exlude'.*did you mean 'exclude'"),
        ({"domains": ["gamez"]}, r"domains: 'gamez' is not a known domain. Fix: use one of infrastructure"),
        ({"domains": "media", "include": [""]}, r"include: empty pattern. Fix: list glob patterns"),
        ({"exclude": ["tag:"]}, r"names no tag"),
        ({"pinned": {"nodejs": 1.10}}, r"pinned: nodejs: version 1.1 is a YAML number"),
        ({"pinned": {"nodejs": "1.0; rm -rf /"}}, r"is not a plain version string"),
        ({"pinned": {"Not An Id": "1.0"}}, r"'Not An Id' is not a capability id"),
        ({"pinned": {"nodejs": True}}, r"version must be a quoted string"),
        ({"overrides": {"docker": {}}}, r"overrides.docker: give priority"),
        ({"overrides": {"docker": {"priority": "urgent"}}}, r"overrides.docker.priority: Input should be"),
        ({"overrides": {"docker": {"colour": "red"}}}, r"overrides.docker.colour"),
        ("exclude everything", r"must be a mapping with keys domains, include"),
        ({"include": 5}, r"include: "),
    ],
)
def test_bad_policy_is_named(data: Any, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        parse_policy(data, host="laptop")


def test_good_policy_and_shorthands() -> None:
    policy = parse_policy(
        {
            "domains": "ai",
            "exclude": "tag:games",
            "ignore": ["command:*"],
            "pinned": {"nodejs": "20.18.1", "pip:requests": 2},
            "overrides": {"docker": {"priority": "low"}},
        },
        host="pc1",
    )
    assert policy.domains == ["ai"]
    assert policy.exclude == ["tag:games"]
    assert policy.pinned == {"nodejs": "20.18.1", "pip:requests": "2"}
    assert policy.overrides["docker"].priority == "low" and policy.overrides["docker"].risk is None
    assert parse_policy(None).empty
    assert parse_policy(policy) is policy


def test_custom_domains_are_known() -> None:
    parse_policy({"domains": ["games"]}, domains={"games": "Steam and friends"})
    with pytest.raises(PolicyError, match="'ai' is not a known domain"):
        parse_policy({"domains": ["ai"]}, domains={"games": ""})


def test_parse_policies_names_the_host() -> None:
    assert parse_policies(None) == {}
    with pytest.raises(PolicyError, match="for pc2: domains"):
        parse_policies({"pc1": {}, "pc2": {"domains": ["nope"]}})
    with pytest.raises(PolicyError, match="must map host names"):
        parse_policies(["pc1"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "cap_id", "domain", "tags", "decision", "reason"),
    [
        ({}, "docker", "infrastructure", (), "allowed", ""),
        ({"exclude": ["tag:games"]}, "steam", "media", ("games",), "excluded", "matches exclude pattern 'tag:games'"),
        ({"exclude": ["winget:*"]}, "winget:Foo.Bar", "development", (), "excluded", "'winget:*'"),
        ({"exclude": ["WINGET:*"]}, "winget:foo.bar", "development", (), "excluded", "'WINGET:*'"),
        ({"domains": ["infrastructure", "ai"]}, "vlc", "media", (), "excluded",
         "domain media is not in the host's allowed domains (infrastructure, ai)"),
        ({"domains": ["infrastructure", "ai"]}, "git", "infrastructure", (), "allowed", ""),
        ({"include": ["pip:*"]}, "npm:left-pad", "development", (), "excluded", "matches no include pattern (pip:*)"),
        ({"include": ["pip:*"]}, "pip:requests", "development", (), "allowed", ""),
        ({"ignore": ["command:*"], "exclude": ["command:*"]}, "command:rg", "development", (), "ignored", ""),
        ({"include": ["tag:ai*"]}, "claude-code", "ai", ("ai-tools",), "allowed", ""),
    ],
)
def test_decisions(
    policy: dict[str, Any], cap_id: str, domain: str, tags: tuple[str, ...], decision: str, reason: str
) -> None:
    matcher = PolicyMatcher(parse_policy(policy))
    got, why = matcher.decide(cap_id, domain, tags)
    assert got == decision
    assert reason in why
    assert matcher.ignores(cap_id, tags) == (decision == "ignored")


def test_equal_policies_compare_equal() -> None:
    a = parse_policy({"exclude": ["tag:games"]})
    b = Policy.model_validate({"exclude": "tag:games"})
    assert a.canonical() == b.canonical()


def test_a_hosts_own_policy_wins_over_the_exchanges() -> None:
    from cyclotron_py.policy import EXCHANGE_POLICY_VAR, host_policy

    exchange = {"exclude": ["pip:*"]}
    assert host_policy({"cyclotron_policy": {}, EXCHANGE_POLICY_VAR: exchange}) == {}
    assert host_policy({EXCHANGE_POLICY_VAR: exchange}) == exchange
    assert host_policy({"cyclotron_policy": None, EXCHANGE_POLICY_VAR: exchange}) == exchange
    assert host_policy({}) is None
