"""Per-capability facts the engine computes lazily: holders, version ranks, the best source host."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..catalog import CatalogEntry
from ..versions import comparable_keys, natural_key, parse_version


@dataclass(slots=True)
class _Meta:
    name: str
    type: str
    domain: str
    priority: str
    risk: str
    tags: tuple[str, ...]


class _Cap:
    """Per-capability facts the engine computes lazily (most capabilities need few of them)."""

    __slots__ = (
        "cid", "holders", "versions", "entry", "flat", "_ranks", "_best", "_by_manager", "_meta", "_managers"
    )

    def __init__(self, cid: str, holders: dict[str, Any], versions: dict[str, str | None],
                 entry: CatalogEntry | None) -> None:
        self.cid = cid
        self.holders = holders  # host -> Capability/CapRow, hosts sorted
        self.versions = versions
        self.entry = entry
        distinct = set(versions.values())
        distinct.discard(None)
        # One version (or none) among the holders: no parsing, ranks are "has a version or not".
        self.flat = len(distinct) <= 1
        self._ranks: dict[str, tuple[Any, ...]] | None = None
        self._best: str | None = None
        self._by_manager: dict[str, str] | None = None
        self._meta: _Meta | None = None
        self._managers: dict[str, str] | None = None

    def managers(self) -> dict[str, str]:
        """Host -> the manager its copy came through."""
        if self._managers is None:
            self._managers = {h: c.source.manager for h, c in self.holders.items()}
        return self._managers

    def ranks(self) -> dict[str, tuple[Any, ...]]:
        """(2, key) parseable > (1, natural order) unparseable > (0,) no version."""
        if self._ranks is None:
            if self.flat:
                self._ranks = {h: (0,) if v is None else (2,) for h, v in self.versions.items()}
            else:
                self._ranks = self._parse_ranks()
        return self._ranks

    def _parse_ranks(self) -> dict[str, tuple[Any, ...]]:
        manager_of = self.managers()
        pairs = {h: (v, manager_of[h]) for h, v in self.versions.items() if v is not None}
        parsed = {k: parse_version(*k) for k in set(pairs.values())}
        good = [k for k, p in parsed.items() if p.parseable]
        keys = comparable_keys([parsed[k] for k in good]) or []
        rank_of: dict[tuple[str, str], tuple[Any, ...]] = {
            k: (2, key) for k, key in zip(good, keys, strict=True)
        }
        for k, p in parsed.items():
            if not p.parseable:
                rank_of[k] = (1, natural_key(k[0]))
        none = (0,)
        return {h: rank_of[pairs[h]] if h in pairs else none for h in self.versions}

    def best(self) -> str:
        """The source host: highest version, then top-level, then the first host name."""
        if self._best is None:
            if self.flat:
                self._best = self._pick(self.holders)
            else:  # the best of each manager's best (computed anyway for drift)
                self._best = self._pick(sorted(self.by_manager().values()))
        return self._best

    def _pick(self, hosts: Iterable[str]) -> str:
        best, best_key = "", None
        if self.flat:
            # Every version is equal: the first top-level host with a version wins.
            versions, holders = self.versions, self.holders
            for h in hosts:
                key = (versions[h] is not None, holders[h].top_level)
                if key == (True, True):
                    return h
                if best_key is None or key > best_key:
                    best, best_key = h, key
            return best
        ranks = self.ranks()
        best_rank: tuple[Any, ...] | None = None
        for h in hosts:
            key2 = (ranks[h], self.holders[h].top_level)
            if best_rank is None or key2 > best_rank:
                best, best_rank = h, key2
        return best

    def best_for(self, manager: str) -> str:
        """The best holder whose own manager is ``manager`` (its version means something there)."""
        return self.by_manager().get(manager) or self.best()

    def by_manager(self) -> dict[str, str]:
        if self._by_manager is None:
            groups: dict[str, list[str]] = {}
            for h, manager in self.managers().items():
                groups.setdefault(manager, []).append(h)
            self._by_manager = {m: self._pick(hs) for m, hs in groups.items()}
        return self._by_manager

    def holder_managers(self) -> list[str]:
        """Managers the holders used, the source host's first."""
        first = self.managers()[self.best()]
        return sorted(self.by_manager(), key=lambda m: (m != first, m))

    def meta(self) -> _Meta:
        if self._meta is None:
            rep = self.holders[self.best()]
            e = self.entry
            if e is not None:
                self._meta = _Meta(e.name, rep.type, e.domain, e.priority, e.risk, tuple(e.tags))
            else:
                self._meta = _Meta(rep.name, rep.type, rep.domain, rep.priority, rep.risk, ())
        return self._meta
