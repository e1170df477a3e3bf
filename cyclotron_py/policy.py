"""Per-host distribution policy, from the ``cyclotron_policy`` inventory variable.

Group and host variables merge in Ansible as usual, so each host arrives here
with one mapping::

    cyclotron_policy:
      domains: [infrastructure, ai]      # allow-list; omit for every domain
      include: ["*"]                     # globs over capability ids, or tag:<glob>
      exclude: ["tag:games", "winget:*"]
      ignore: ["command:*"]              # left out of the comparison for this host
      pinned: {nodejs: "20.18.1"}        # install exactly this version (downgrade allowed)
      overrides: {docker: {priority: low, risk: high}}

``exclude``/``include``/``domains`` keep a capability from being *distributed* to
the host (it still shows as missing, marked as excluded by policy); ``ignore``
takes the host out of that capability's comparison altogether (not counted in
coverage, never a gap, never a source).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import PolicyError
from .models import CAPABILITY_ID_RE, DEFAULT_DOMAINS, Priority, Risk

POLICY_KEYS: tuple[str, ...] = ("domains", "include", "exclude", "ignore", "pinned", "overrides")
TAG_PREFIX = "tag:"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,99}$")

Decision = Literal["allowed", "excluded", "ignored"]


class CapabilityOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Priority | None = None
    risk: Risk | None = None

    @model_validator(mode="after")
    def _something(self) -> CapabilityOverride:
        if self.priority is None and self.risk is None:
            raise ValueError("give priority (high, normal, low) and/or risk (low, medium, high)")
        return self


def _check_pattern(pattern: str) -> str:
    if not pattern.strip():
        raise ValueError("empty pattern")
    if len(pattern) > 200:
        raise ValueError(f"pattern {pattern[:40]!r}... is longer than 200 characters")
    if pattern.startswith(TAG_PREFIX) and not pattern[len(TAG_PREFIX) :].strip():
        raise ValueError(f"{pattern!r} names no tag; write e.g. 'tag:games'")
    return pattern.strip()


class Policy(BaseModel):
    """One host's policy. Build it with ``parse_policy`` to get errors a person can act on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domains: list[str] | None = Field(
        default=None, description="Domains this host receives; None means all."
    )
    include: list[str] = Field(
        default_factory=list,
        description="Globs over capability ids (or tag:<glob>); when given, only matches are distributed.",
    )
    exclude: list[str] = Field(default_factory=list, description="Globs never distributed to this host.")
    ignore: list[str] = Field(
        default_factory=list, description="Globs left out of this host's comparison altogether."
    )
    pinned: dict[str, str] = Field(default_factory=dict, description="Capability id -> exact version.")
    overrides: dict[str, CapabilityOverride] = Field(
        default_factory=dict, description="Capability id -> priority and/or risk for this host."
    )

    @field_validator("include", "exclude", "ignore", "domains", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("include", "exclude", "ignore")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return [_check_pattern(p) for p in value]

    @field_validator("pinned", mode="before")
    @classmethod
    def _versions_are_strings(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for cap_id, version in value.items():
                if isinstance(version, float):
                    raise ValueError(
                        f"{cap_id}: version {version!r} is a YAML number; quote it "
                        f"(\"{version}\" loses digits: write e.g. '1.10' in quotes)"
                    )
                if isinstance(version, bool) or not isinstance(version, str | int):
                    raise ValueError(f"{cap_id}: version must be a quoted string like '1.2.3'")
            return {k: str(v) for k, v in value.items()}
        return value

    @field_validator("pinned")
    @classmethod
    def _pins(cls, value: dict[str, str]) -> dict[str, str]:
        for cap_id, version in value.items():
            _check_id(cap_id)
            if not _VERSION_RE.match(version):
                raise ValueError(f"{cap_id}: {version!r} is not a plain version string like '1.2.3'")
        return value

    @field_validator("overrides")
    @classmethod
    def _override_ids(cls, value: dict[str, CapabilityOverride]) -> dict[str, CapabilityOverride]:
        for cap_id in value:
            _check_id(cap_id)
        return value

    @property
    def empty(self) -> bool:
        return not (self.filters or self.pinned or self.overrides)

    @property
    def filters(self) -> bool:
        """True when the policy can exclude or ignore anything."""
        return self.domains is not None or bool(self.include or self.exclude or self.ignore)

    def canonical(self) -> str:
        """Equal policies give equal strings (hosts sharing a policy are evaluated once)."""
        return self.model_dump_json()


def _check_id(cap_id: str) -> None:
    if not CAPABILITY_ID_RE.match(cap_id):
        raise ValueError(
            f"{cap_id!r} is not a capability id; use a catalog id like 'nodejs' or a qualified id "
            "like 'pip:requests'"
        )


_FIXES: dict[str, str] = {
    "domains": "list domain names, e.g. [infrastructure, ai]",
    "include": "list glob patterns over capability ids, e.g. ['pip:*', 'tag:games']",
    "exclude": "list glob patterns over capability ids, e.g. ['tag:games']",
    "ignore": "list glob patterns over capability ids, e.g. ['command:*']",
    "pinned": "map capability ids to quoted versions, e.g. {nodejs: '20.18.1'}",
    "overrides": "map capability ids to {priority: high|normal|low, risk: low|medium|high}",
}


# The exchange repository's policy/ (cyclotron pull) arrives under its own name, so that a host's
# own inventory policy (trusted, and more specific than a fleet-wide file) is never overridden by it.
EXCHANGE_POLICY_VAR = "cyclotron_exchange_policy"


def host_policy(host_vars: Mapping[str, Any]) -> Any:
    """The policy that applies to a host: its inventory's ``cyclotron_policy`` (group and host vars
    merged by Ansible) when it has one, else the exchange's entry for it (or ``all``), else None."""
    own = host_vars.get("cyclotron_policy")
    return own if own is not None else host_vars.get(EXCHANGE_POLICY_VAR)


def parse_policy(
    data: Policy | Mapping[str, Any] | None,
    *,
    host: str = "",
    domains: Mapping[str, str] | None = None,
) -> Policy:
    """Validate one host's ``cyclotron_policy``. Raises PolicyError naming host, field and fix."""
    where = f"cyclotron_policy for {host}" if host else "cyclotron_policy"
    if data is None:
        return Policy()
    if isinstance(data, Policy):
        policy = data
    else:
        if not isinstance(data, Mapping):
            raise PolicyError(
                f"{where}: must be a mapping with keys {', '.join(POLICY_KEYS)}, "
                f"not {type(data).__name__}"
            )
        unknown = [str(k) for k in data if k not in POLICY_KEYS]
        if unknown:
            guess = {k: _closest(k) for k in unknown}
            hints = "; ".join(f"did you mean '{g}'?" for g in guess.values() if g)
            raise PolicyError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)}; use {', '.join(POLICY_KEYS)}"
                + (f" ({hints})" if hints else "")
            )
        try:
            policy = Policy.model_validate(dict(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [str(p) for p in err["loc"]]
            field = loc[0] if loc else ""
            path = ".".join(loc)
            msg = str(err["msg"]).removeprefix("Value error, ")
            fix = _FIXES.get(field, "")
            raise PolicyError(f"{where}: {path}: {msg}" + (f". Fix: {fix}" if fix else "")) from None
    known = dict(domains or DEFAULT_DOMAINS)
    for name in policy.domains or []:
        if name not in known:
            raise PolicyError(
                f"{where}: domains: {name!r} is not a known domain. Fix: use one of {', '.join(known)}, "
                "or define it in cyclotron_domains"
            )
    return policy


def parse_policies(
    data: Mapping[str, Any] | None, *, domains: Mapping[str, str] | None = None
) -> dict[str, Policy]:
    """``{host: policy mapping}`` -> ``{host: Policy}``; the first bad one raises PolicyError."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise PolicyError(
            f"policies must map host names to cyclotron_policy mappings, not {type(data).__name__}"
        )
    return {str(host): parse_policy(value, host=str(host), domains=domains) for host, value in data.items()}


def _closest(key: str) -> str | None:
    match = difflib.get_close_matches(key, POLICY_KEYS, n=1, cutoff=0.6)
    return match[0] if match else None


class PolicyMatcher:
    """A Policy compiled for fast, cached decisions over many capability ids."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._id_pats = {kind: self._compile(pats, tags=False) for kind, pats in self._kinds()}
        self._tag_pats = {kind: self._compile(pats, tags=True) for kind, pats in self._kinds()}
        self._domains = frozenset(policy.domains) if policy.domains is not None else None

    def _kinds(self) -> list[tuple[str, list[str]]]:
        p = self.policy
        return [("ignore", p.ignore), ("include", p.include), ("exclude", p.exclude)]

    @staticmethod
    def _compile(patterns: list[str], *, tags: bool) -> list[tuple[str, re.Pattern[str]]]:
        out = []
        for pattern in patterns:
            is_tag = pattern.startswith(TAG_PREFIX)
            if is_tag != tags:
                continue
            glob = pattern[len(TAG_PREFIX) :] if is_tag else pattern
            out.append((pattern, re.compile(fnmatch.translate(glob), re.IGNORECASE)))
        return out

    def _match(self, kind: str, cap_id: str, tags: tuple[str, ...]) -> str | None:
        for pattern, rx in self._id_pats[kind]:
            if rx.match(cap_id):
                return pattern
        for pattern, rx in self._tag_pats[kind]:
            if any(rx.match(tag) for tag in tags):
                return pattern
        return None

    def ignores(self, cap_id: str, tags: tuple[str, ...] = ()) -> bool:
        return self._match("ignore", cap_id, tags) is not None

    def decide(self, cap_id: str, domain: str, tags: tuple[str, ...] = ()) -> tuple[Decision, str]:
        """("ignored" | "excluded" | "allowed", reason) for one capability on this host."""
        if self._match("ignore", cap_id, tags):
            return "ignored", ""
        if self._domains is not None and domain not in self._domains:
            allowed = ", ".join(self.policy.domains or []) or "none"
            return "excluded", f"domain {domain} is not in the host's allowed domains ({allowed})"
        if self.policy.include and not self._match("include", cap_id, tags):
            return "excluded", f"matches no include pattern ({', '.join(self.policy.include)})"
        pattern = self._match("exclude", cap_id, tags)
        if pattern:
            return "excluded", f"matches exclude pattern {pattern!r}"
        return "allowed", ""


__all__ = [
    "POLICY_KEYS",
    "CapabilityOverride",
    "Policy",
    "PolicyMatcher",
    "parse_policies",
    "parse_policy",
]
