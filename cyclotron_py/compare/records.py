"""Compact engine input: one HostRecord per host, capabilities as CapRow without pydantic overhead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import managers
from ..models import Manifest

# --------------------------------------------------------------------------- compact input


@dataclass(slots=True)
class CapRow:
    """A capability without pydantic overhead; duck-types ``models.Capability`` for the engine."""

    id: str
    type: str
    name: str
    version: str | None
    domain: str
    priority: str
    risk: str
    manager: str
    package: str
    path: str
    top_level: bool
    details: dict[str, Any]

    @property
    def source(self) -> CapRow:  # cap.source.manager works for both shapes
        return self


@dataclass(slots=True)
class HostRecord:
    """One host as the engine sees it: ``caps`` maps capability id to a Capability or CapRow."""

    host: str
    family: str
    distribution: str
    managers: tuple[str, ...]
    gathered_at: str
    caps: dict[str, Any] = field(default_factory=dict)
    # The manifest had no ``managers`` key: ``managers`` are those its capabilities came through.
    managers_inferred: bool = False


_EMPTY: dict[str, Any] = {}


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def host_record(
    manifest: Manifest, *, compact: bool = False, strings: dict[str, str] | None = None
) -> HostRecord:
    """The engine's view of a validated manifest.

    ``compact=True`` copies every capability into a CapRow with shared (interned) strings,
    so the manifest can be dropped: about a tenth of the memory, for large fleets.
    """
    caps: dict[str, Any] = {}
    if compact:
        pool = strings if strings is not None else {}
        s = pool.setdefault
        for c in manifest.capabilities:
            src = c.source
            row = CapRow(
                s(c.id, c.id),
                s(c.type, c.type),
                s(c.name, c.name),
                None if c.version is None else s(c.version, c.version),
                s(c.domain, c.domain),
                s(c.priority, c.priority),
                s(c.risk, c.risk),
                s(src.manager, src.manager),
                s(src.package, src.package),
                src.path,
                c.top_level,
                c.details or _EMPTY,
            )
            _keep(caps, row)
    else:
        for c in manifest.capabilities:
            _keep(caps, c)
    # Hand-written manifests and the original design's format have no ``managers``; ``[]`` still means none.
    inferred = "managers" not in manifest.model_fields_set
    listed = managers.infer_managers(c.source.manager for c in manifest.capabilities) if inferred else manifest.managers
    return HostRecord(
        host=manifest.host,
        family=manifest.os.family,
        distribution=manifest.os.distribution,
        managers=tuple(sorted(set(listed))),
        gathered_at=_iso(manifest.gathered_at),
        caps=caps,
        managers_inferred=inferred,
    )


def _keep(caps: dict[str, Any], cap: Any) -> None:
    # A validated manifest has unique ids; if not, the top-level entry describes the capability.
    old = caps.get(cap.id)
    if old is None or (cap.top_level and not old.top_level):
        caps[cap.id] = cap
