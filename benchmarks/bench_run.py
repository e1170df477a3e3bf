#!/usr/bin/env python3
"""Benchmark `cyclotron run` against `ansible-playbook playbooks/sync.yml` at parity, in one run
(issue 8 target: <= 1.10x), over the real-SSH three-user fleet (tests/integration/fleet.py).

Both run the same sync.yml on the same fleet with the same directories; `cyclotron run` adds
ansible-runner, the event queue and consumer, the SQLite store and plain progress lines. Rounds
are interleaved (who goes first alternates). Prints every run, the medians and the ratio of wall
time, and of CPU time (user + system of the command and the processes it waited for: less
sensitive to other work on a shared machine); no assertions. The repo's Python is compiled to
bytecode before timing, so that neither side pays for writing .pyc files. Needs root (users and
sshd), like the integration tests.

Usage: .venv/bin/python benchmarks/bench_run.py [-n 5]
"""

from __future__ import annotations

import argparse
import compileall
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_sync import load, rounds  # noqa: E402

from tests.integration.fleet import build_fleet, skip_reason  # noqa: E402
from tests.integration.sync_helpers import (  # noqa: E402
    HOSTS,
    USER_SOURCES,
    RunDirs,
    pip_install,
    reset_fleet,
    run_playbook,
    write_inventory,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="timed rounds (default 5)")
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        print(f"cannot build the SSH fleet here: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    fleet = build_fleet(work / "fleet")
    try:
        inventory = write_inventory(fleet, work / "inventory", catalog=None, sources=USER_SOURCES)
        reset_fleet(fleet)
        for host in HOSTS:
            pip_install(fleet, host, "six")
        dirs = RunDirs.make(work / "dirs")
        state = work / "state"
        # Bytecode written once, before timing: neither side pays for writing .pyc files.
        for tree in ("cyclotron_py", "plugins"):
            compileall.compile_dir(REPO / tree, quiet=1)

        def playbook() -> float:
            run = run_playbook(fleet, "sync.yml", dirs, inventory, label="playbook")
            if run.rc != 0:
                raise SystemExit(f"sync.yml failed (rc {run.rc}); log: {run.log}")
            return run.seconds

        def cyclotron_run() -> float:
            extra = [a for key, value in dirs.extra_vars().items() for a in ("-e", f"{key}={value}")]
            env = fleet.env({"CYCLOTRON_STATE_DIR": str(state)})
            start = time.monotonic()
            proc = subprocess.run(
                [str(Path(sys.executable).parent / "cyclotron"), "run", "-i", str(inventory), "--mode", "full-auto",
                 *extra],
                cwd=REPO, env=env, capture_output=True, text=True, check=False,
            )
            seconds = time.monotonic() - start
            if proc.returncode != 0:
                raise SystemExit(f"cyclotron run failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}")
            return seconds

        cpu: dict[str, list[float]] = {"playbook": [], "run": []}

        def cpu_of(name: str, timed: Callable[[], float]) -> Callable[[], float]:
            def measured() -> float:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                seconds = timed()
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                return seconds

            return measured

        playbook()  # settle: manifests current, nothing to do
        print(f"fleet at parity (slot {fleet.slot}); {args.n} interleaved rounds; load {load()}", flush=True)
        times = rounds(args.n, cpu_of("playbook", playbook), cpu_of("run", cyclotron_run), ("playbook", "run"))
        bare, ours = statistics.median(times["playbook"]), statistics.median(times["run"])
        print(f"at parity: ansible-playbook sync.yml {bare:.2f} s, cyclotron run {ours:.2f} s, "
              f"ratio {ours / bare:.2f}x (target <= 1.10x)")
        bare_cpu, ours_cpu = statistics.median(cpu["playbook"]), statistics.median(cpu["run"])
        print(f"CPU time: ansible-playbook sync.yml {bare_cpu:.2f} s, cyclotron run {ours_cpu:.2f} s, "
              f"ratio {ours_cpu / bare_cpu:.2f}x")
    finally:
        fleet.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
