"""Synthetic capability manifests for benchmarks: N hosts x M capabilities each.

    python benchmarks/gen_manifests.py --hosts 100 --caps 5000 --out /tmp/fleet   # writes <host>.json

The fleet looks like a real one scaled up: 60% Windows, 30% Linux, 10% macOS hosts, each with
exactly ``caps`` top-level capabilities drawn from a universe 1.2x larger (so every host
lacks some), with popular ids on most hosts and rare ones on few. Ids mix pip (45%), npm
(25%), winget (10%, Windows only), apt (5%, Linux only), MCP servers, API-key names,
commands and git repos, plus every catalog id. Most hosts run an id's latest version; some
run an older one (version drift) and 1% of versions do not parse. Deterministic per seed.
Every manifest validates against the Manifest model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cyclotron_py.catalog import load_catalog  # noqa: E402

OS_MIX = (("windows", 0.6), ("linux", 0.3), ("darwin", 0.1))
MANAGERS = {
    "windows": ["choco", "env", "git", "mcp", "npm", "path", "pip", "registry", "winget"],
    "linux": ["apt", "env", "git", "mcp", "npm", "path", "pip", "pipx"],
    "darwin": ["brew", "env", "git", "mcp", "npm", "path", "pip", "pipx"],
}
# (qualifier, share of the universe, OS families that can have it)
KINDS = (
    ("pip", 0.45, None),
    ("npm", 0.25, None),
    ("winget", 0.10, {"windows"}),
    ("apt", 0.05, {"linux"}),
    ("mcp", 0.04, None),
    ("api_key", 0.03, None),
    ("command", 0.03, None),
    ("git", 0.03, None),
)
TYPES = {
    "pip": ("python_package", "pip", "development"),
    "npm": ("npm_package", "npm", "development"),
    "winget": ("software", "winget", "productivity"),
    "apt": ("software", "apt", "infrastructure"),
    "mcp": ("mcp_server", "mcp", "ai"),
    "api_key": ("api_key", "env", "ai"),
    "command": ("command", "path", "development"),
    "git": ("git_repo", "git", "development"),
}
NO_VERSION = {"mcp", "api_key", "git"}


class Universe:
    """Every capability the fleet could have, with popularity and a version history each."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.items: list[dict[str, Any]] = []
        catalog = load_catalog()
        for entry in catalog.entries.values():
            self.items.append({"kind": "catalog", "entry": entry, "os": None})
        remaining = size - len(self.items)
        counter = 0
        for kind, share, oses in KINDS:
            count = max(1, int(remaining * share)) if kind != "pip" else 0
            for _ in range(count):
                self.items.append({"kind": kind, "n": counter, "os": oses})
                counter += 1
        while len(self.items) < size:  # pip takes what is left
            self.items.append({"kind": "pip", "n": counter, "os": None})
            counter += 1
        for item in self.items:
            # Popularity: a few ids everywhere, a long tail of rarer ones.
            item["weight"] = rng.paretovariate(1.2)
            depth = rng.choice((1, 1, 2, 3))
            major = rng.randint(0, 30)
            item["versions"] = [f"{major}.{rng.randint(0, 20)}.{i}" for i in range(depth)]
            if rng.random() < 0.01:
                item["versions"] = [f"build-{rng.randint(100, 999)}", *item["versions"]]


def _capability(item: dict[str, Any], family: str, rng: random.Random) -> dict[str, Any] | None:
    versions = item["versions"]
    version = versions[-1] if rng.random() < 0.8 else rng.choice(versions)
    if item["kind"] == "catalog":
        entry = item["entry"]
        manager = next((m for m in MANAGERS[family] if entry.package_for(m)), None)
        if manager is None:
            return None
        return {
            "id": entry.id,
            "type": {"pip": "python_package", "pipx": "pipx_tool", "npm": "npm_package"}.get(manager, "software"),
            "name": entry.name,
            "version": version,
            "domain": entry.domain,
            "priority": entry.priority,
            "risk": entry.risk,
            "source": {"manager": manager, "package": entry.package_for(manager), "path": ""},
        }
    kind, n = item["kind"], item["n"]
    cap_type, manager, domain = TYPES[kind]
    details: dict[str, Any] = {}
    if kind == "pip":
        package, cap_id = f"bench-pkg{n}", f"pip:bench-pkg{n}"
    elif kind == "npm":
        package, cap_id = f"@bench/pkg-{n}", f"npm:@bench/pkg-{n}"
    elif kind == "winget":
        package, cap_id = f"Bench.App{n}", f"winget:bench.app{n}"
    elif kind == "apt":
        package, cap_id = f"libbench{n}", f"apt:libbench{n}"
    elif kind == "mcp":
        package, cap_id = f"server{n}", f"mcp:server{n}"
        npm = f"@bench/mcp-server-{n}"
        details = {
            "transport": "stdio",
            "command": "npx",
            "args": ["-y", npm],
            "url": "",
            "env_names": [],
            "package": {"manager": "npm", "name": npm, "version": ""},
        }
    elif kind == "api_key":
        package, cap_id = f"BENCH_KEY_{n}", f"api_key:BENCH_KEY_{n}"
    elif kind == "command":
        package, cap_id = f"benchcmd{n}", f"command:benchcmd{n}"
    else:
        package, cap_id = f"github.com/bench/repo{n}", f"git:github.com/bench/repo{n}"
        details = {"remote": f"https://github.com/bench/repo{n}.git", "branch": "main", "head": ""}
    return {
        "id": cap_id,
        "type": cap_type,
        "name": package,
        "version": None if kind in NO_VERSION else version,
        "domain": domain,
        "priority": "normal",
        "risk": "low",
        "source": {"manager": manager, "package": package, "path": ""},
        "top_level": kind != "pip" or rng.random() > 0.05,
        "details": details,
    }


def generate(hosts: int, caps: int, *, universe: int | None = None, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield one manifest dict per host (pc0001, pc0002, ...), one at a time."""
    rng = random.Random(seed)
    world = Universe(universe or int(caps * 1.2), rng)
    width = max(4, len(str(hosts)))
    for i in range(hosts):
        host_rng = random.Random(f"{seed}-{i}")
        roll, family = host_rng.random(), "windows"
        for name, share in OS_MIX:
            if roll < share:
                family = name
                break
            roll -= share
        eligible = [it for it in world.items if it["os"] is None or family in it["os"]]
        # Weighted sampling without replacement (Efraimidis-Spirakis): popular ids first.
        keyed = sorted(eligible, key=lambda it: host_rng.random() ** (1.0 / it["weight"]), reverse=True)
        chosen: list[dict[str, Any]] = []
        for item in keyed:
            cap = _capability(item, family, host_rng)
            if cap is not None:
                chosen.append(cap)
                if len(chosen) == caps:
                    break
        chosen.sort(key=lambda c: c["id"])
        yield {
            "schema_version": 1,
            "host": f"pc{i + 1:0{width}d}",
            "gathered_at": f"2025-01-{1 + i % 28:02d}T12:00:00Z",
            "os": {"family": family, "distribution": "", "version": "", "arch": "x86_64"},
            "managers": MANAGERS[family],
            "capabilities": chosen,
            "errors": [],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--caps", type=int, default=100, help="capabilities per host")
    parser.add_argument("--universe", type=int, default=None, help="distinct ids in the fleet (default 1.2x caps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="directory for <host>.json files")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for manifest in generate(args.hosts, args.caps, universe=args.universe, seed=args.seed):
        path = out / f"{manifest['host']}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    print(f"wrote {args.hosts} manifests x {args.caps} capabilities to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
