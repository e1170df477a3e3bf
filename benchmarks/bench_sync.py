#!/usr/bin/env python3
"""Benchmark playbooks/sync.yml over the real-SSH three-user fleet (tests/integration/fleet.py).

1. **Time to parity, scenario 3.** pc1 has six (pip), pc2 idna (pip), pc3 is-number (npm).
   ``sync``: one ``ansible-playbook playbooks/sync.yml`` run (gather, validate, compare, plan,
   install with verify, re-gather, report) until all three have all three; against ``bare``: the
   sum of the six install commands a person would type for the same gaps, each run over SSH as
   the host's user (``~/venv/bin/pip install PKG``, ``npm install -g PKG`` with the prefix from
   the user's ~/.npmrc) with the same CA/proxy environment. Target: sync <= 1.5x bare.
2. **No-op at parity.** ``sync.yml`` on a fleet already at parity against ``gather.yml`` alone.
   Target: <= 1.5x.

Scenario 3 is timed twice: with **cold** caches (the users' pip and npm caches emptied before
every timed run, so both sides download the same packages, as on a machine that never had them)
and with **warm** caches (after an untimed warm-up: nothing is downloaded, so the figure is
Cyclotron's overhead alone, its worst case). Rounds are interleaved (bare and sync alternate who
goes first) so both share the machine's load alike. The user state is reset and set up again,
untimed, before every timed run. Prints every run, the medians and the ratios; no assertions.
Needs root (users and sshd), like the integration tests.

Usage: .venv/bin/python benchmarks/bench_sync.py [-n 3] [--noop 5] [--user-sources]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.fleet import Fleet, build_fleet, skip_reason  # noqa: E402
from tests.integration.sync_helpers import (  # noqa: E402
    HOSTS,
    USER_SOURCES,
    RunDirs,
    npm_install,
    npm_version,
    pip_install,
    pip_version,
    reset_fleet,
    run_playbook,
    write_inventory,
)

# Scenario 3: what each host starts with.
START: dict[str, tuple[str, str]] = {"pc1": ("pip", "six"), "pc2": ("pip", "idna"), "pc3": ("npm", "is-number")}
PACKAGES: tuple[tuple[str, str], ...] = tuple(START.values())


def clear_caches(fleet: Fleet) -> None:
    for h in fleet.hosts.values():
        for cache in (h.home / ".cache" / "pip", h.home / ".npm" / "_cacache"):
            shutil.rmtree(cache, ignore_errors=True)


def set_up(fleet: Fleet, cold: bool = False) -> None:
    reset_fleet(fleet)
    for host, (manager, name) in START.items():
        (pip_install if manager == "pip" else npm_install)(fleet, host, name)
    if cold:
        clear_caches(fleet)


def at_parity(fleet: Fleet) -> bool:
    for host in HOSTS:
        for manager, name in PACKAGES:
            version = pip_version(fleet, host, name) if manager == "pip" else npm_version(fleet, host, name)
            if not version:
                return False
    return True


def bare(fleet: Fleet) -> float:
    """The sum of the bare install commands for the gaps, each timed alone over SSH."""
    env = dict(fleet.install_environment)
    total = 0.0
    for host in HOSTS:
        h = fleet.hosts[host]
        for manager, name in PACKAGES:
            if START[host] == (manager, name):
                continue
            # What a person types: the venv's pip; npm -g (the user's ~/.npmrc sets the prefix).
            argv = [str(h.venv / "bin" / "pip"), "install", name] if manager == "pip" else ["npm", "i", "-g", name]
            start = time.monotonic()
            fleet.run(argv, host, env=env)
            total += time.monotonic() - start
    return total


def timed_sync(fleet: Fleet, inventory: Path, work: Path, label: str) -> float:
    dirs = RunDirs.make(Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work)))
    run = run_playbook(fleet, "sync.yml", dirs, inventory, label=label)
    if run.rc != 0:
        raise SystemExit(f"sync.yml failed (rc {run.rc}); log: {run.log}\n{run.stdout[-3000:]}")
    return run.seconds


def timed_gather(fleet: Fleet, inventory: Path, dirs: RunDirs) -> float:
    run = run_playbook(fleet, "gather.yml", dirs, inventory, label="gather")
    if run.rc != 0:
        raise SystemExit(f"gather.yml failed (rc {run.rc}); log: {run.log}")
    return run.seconds


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def rounds(
    n: int, first: Callable[[], float], second: Callable[[], float], names: tuple[str, str]
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {names[0]: [], names[1]: []}
    for i in range(n):
        order = [(names[0], first), (names[1], second)]
        if i % 2:
            order.reverse()
        for name, fn in order:
            seconds = fn()
            out[name].append(seconds)
            print(f"  round {i + 1} {name:>6}: {seconds:6.2f} s   (load {load()})", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3, help="timed rounds of scenario 3 (default 3)")
    parser.add_argument("--noop", type=int, default=5, help="timed rounds of the no-op comparison (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every run)")
    parser.add_argument(
        "--user-sources", action="store_true",
        help="gather only the users' sources (no dpkg), as the integration tests do",
    )
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        print(f"cannot build the SSH fleet here: {reason}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    print(f"building the three-user SSH fleet under {work} ...", flush=True)
    fleet = build_fleet(work / "fleet")
    try:
        inventory = write_inventory(
            fleet, work / "inventory", catalog=None, sources=USER_SOURCES if args.user_sources else None
        )
        sources = "user sources (no dpkg)" if args.user_sources else "all sources"
        print(f"fleet ready (slot {fleet.slot}); gather: {sources}; load {load()}", flush=True)

        print("warm-up (untimed): bare installs and one sync, to fill the users' pip/npm caches", flush=True)
        set_up(fleet)
        bare(fleet)
        set_up(fleet)
        timed_sync(fleet, inventory, work, "warmup")

        def run_bare(cold: bool) -> float:
            set_up(fleet, cold)
            seconds = bare(fleet)
            assert at_parity(fleet), "bare installs did not reach parity"
            return seconds

        def run_sync(cold: bool) -> float:
            set_up(fleet, cold)
            seconds = timed_sync(fleet, inventory, work, "sync")
            assert at_parity(fleet), "sync.yml did not reach parity"
            return seconds

        parity: dict[str, dict[str, list[float]]] = {}
        for mode in ("cold", "warm"):
            cold = mode == "cold"
            print(f"\n1{'ab'[not cold]}. time to parity, scenario 3, {mode} caches ({args.n} rounds)", flush=True)
            parity[mode] = rounds(
                args.n, functools.partial(run_bare, cold), functools.partial(run_sync, cold), ("bare", "sync")
            )

        # The fleet is at parity now (the last round ended there either way).
        if not at_parity(fleet):
            run_sync(False)
        noop_dirs = RunDirs.make(work / "noop")
        timed_sync(fleet, inventory, work, "settle")  # manifests current, nothing to do

        print(f"\n2. no-op sync at parity against gather.yml alone ({args.noop} rounds)", flush=True)
        noop = rounds(
            args.noop,
            lambda: timed_gather(fleet, inventory, noop_dirs),
            lambda: timed_sync(fleet, inventory, work, "noop"),
            ("gather", "sync"),
        )

        print("\nmedians")
        for mode, figures in parity.items():
            bare_m, sync_m = statistics.median(figures["bare"]), statistics.median(figures["sync"])
            print(f"  scenario 3, {mode} caches: bare installs {bare_m:.2f} s, sync.yml {sync_m:.2f} s, "
                  f"ratio {sync_m / bare_m:.2f}x (target <= 1.5x)")
        gather_m, noop_m = statistics.median(noop["gather"]), statistics.median(noop["sync"])
        print(f"  no-op:      gather.yml {gather_m:.2f} s, sync.yml {noop_m:.2f} s, "
              f"ratio {noop_m / gather_m:.2f}x (target <= 1.5x)")
        print(f"  load average at the end: {load()}")
    finally:
        fleet.teardown()
        if args.keep:
            print(f"logs kept under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
