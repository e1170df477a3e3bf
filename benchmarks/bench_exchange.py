#!/usr/bin/env python3
"""Benchmark the git exchange (issue 10), in one run; prints figures, asserts nothing.

1. N hosts (default 30) publishing at the same moment: N real `cyclotron exchange publish`
   processes, each with its own state dir and manifest, into one bare repository, with the
   default retry settings (2, 4, 8, 16 s + up to 1 s jitter) unless --base is given. Prints the
   time until all have landed, each process's time, the retry counts (rejected pushes, from each
   host's run history), and checks the remote: hosts present, merge commits.
2. A `cyclotron pull` cycle with nothing to change against `git fetch` plus
   `ansible-playbook playbooks/gather.yml` alone, on one local sandbox (target <= 1.3x);
   rounds interleaved, medians.

Usage: .venv/bin/python benchmarks/bench_exchange.py [--hosts 30] [--base 2] [-n 5] [--skip-pull]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclotron_py.store import Store  # noqa: E402
from tests.unit.plugins.test_cyclotron_install import _wheel  # noqa: E402

CYCLOTRON = [sys.executable, "-m", "cyclotron_py.cli"]
FIXTURE = REPO / "tests/fixtures/manifests/valid/pc1.json"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def concurrent_publish(work: Path, hosts: int, retry: dict[str, float] | None) -> None:
    work.mkdir(parents=True)
    remote = work / "exchange.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    base = json.loads(FIXTURE.read_text())
    commands = []
    for n in range(hosts):
        host = f"host{n:02d}"
        state = work / "state" / host
        state.mkdir(parents=True)
        if retry:
            (state / "config.yml").write_text(yaml.safe_dump({"exchange_git": {"retry": retry}}))
        manifest = work / "m" / f"{host}.json"
        manifest.parent.mkdir(exist_ok=True)
        manifest.write_text(json.dumps({**base, "host": host}))
        commands.append((host, state, [*CYCLOTRON, "exchange", "publish", "--repo", str(remote), "--host", host,
                                       "--manifest", str(manifest)]))
    start = time.perf_counter()
    procs = [(host, state, subprocess.Popen(argv, cwd=REPO, env=dict(os.environ, CYCLOTRON_STATE_DIR=str(state)),
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
             for host, state, argv in commands]
    ends: dict[str, float] = {}
    outputs: dict[str, str] = {}
    while len(ends) < len(procs):
        for host, _, proc in procs:
            if host not in ends and proc.poll() is not None:
                ends[host] = time.perf_counter() - start
                outputs[host] = proc.stdout.read() if proc.stdout else ""
        time.sleep(0.01)
    total = max(ends.values())
    retries = {}
    for host, state, _ in procs:
        with Store.open(state) as store:
            retries[host] = sum(1 for e in store.exchange_events() if e["outcome"] == "rejected")
    landed = {line.split("/")[1] for line in git("-C", str(remote), "ls-tree", "-r", "--name-only", "main",
                                                   "hosts").splitlines()}
    merges = git("-C", str(remote), "rev-list", "--merges", "main").split()
    not_pushed = [h for h, out in outputs.items() if "pushed" not in out or "unpushed" in out]
    counts = sorted(retries.values())
    print(f"{hosts} hosts publishing at once (retry {retry or 'defaults: base 2 s, max 16 s, jitter 1 s'}):")
    print(f"  all landed after {total:.2f} s; per process median {statistics.median(ends.values()):.2f} s, "
          f"fastest {min(ends.values()):.2f} s")
    print(f"  retries (rejected pushes): total {sum(counts)}, per host median {statistics.median(counts)}, "
          f"max {max(counts)}, hosts with none {counts.count(0)}")
    print(f"  on the remote: {len(landed)}/{hosts} hosts, {len(merges)} merge commits, "
          f"{git('-C', str(remote), 'rev-list', '--count', 'main')} commits; not pushed: {not_pushed or 'none'}")


def pull_at_parity(work: Path, rounds: int) -> None:
    from tests.integration.test_exchange_pull import _sandbox

    wheels = work / "wheels"
    wheels.mkdir(parents=True)
    _wheel(wheels, "cycalpha", "1.0.0")
    pc = _sandbox(work, "pca", wheels, "cycalpha")
    remote = work / "pull.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    env = dict(os.environ, CYCLOTRON_STATE_DIR=str(pc["state"]), ANSIBLE_HOME=str(work / "ansible-home"))
    pull = [*CYCLOTRON, "pull", "--repo", str(remote), "--host", "pca", "--mode", "full-auto", "-i",
            str(pc["inventory"])]
    subprocess.run(pull, cwd=REPO, env=env, check=True, capture_output=True)  # publish once: steady state
    clone = work / "plain-clone"
    git("clone", "--quiet", str(remote), str(clone))
    gather = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(pc["inventory"]),
              str(REPO / "playbooks/gather.yml"), "-e", f"cyclotron_manifest_dir={work / 'plain-manifests'}"]
    genv = dict(env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))

    def timed(*commands: list[str]) -> float:
        start = time.perf_counter()
        for argv in commands:
            subprocess.run(argv, cwd=REPO, env=genv, check=True, capture_output=True)
        return time.perf_counter() - start

    pulls, baselines = [], []
    for n in range(rounds):
        order = [("pull", lambda: timed(pull)),
                 ("base", lambda: timed(["git", "-C", str(clone), "fetch", "--quiet"], gather))]
        for name, run in order if n % 2 == 0 else reversed(order):
            (pulls if name == "pull" else baselines).append(run())
    p, b = statistics.median(pulls), statistics.median(baselines)
    print(f"pull at parity vs git fetch + gather.yml, {rounds} interleaved rounds:")
    print(f"  pull {', '.join(f'{t:.2f}' for t in pulls)} s; fetch+gather {', '.join(f'{t:.2f}' for t in baselines)} s")
    print(f"  medians {p:.2f} s vs {b:.2f} s = {p / b:.2f}x (target <= 1.3x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--base", type=float, default=None, help="first retry wait in seconds (default: 2)")
    parser.add_argument("--jitter", type=float, default=None, help="up to this many seconds added (default: 1)")
    parser.add_argument("-n", type=int, default=5, help="pull rounds (default 5)")
    parser.add_argument("--skip-pull", action="store_true")
    parser.add_argument("--skip-publish", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as tmp:
        retry = None
        if args.base or args.jitter is not None:
            base = args.base or 2.0
            retry = {"base": base, "max": base * 8, "jitter": base / 2 if args.jitter is None else args.jitter,
                     "total": 120}
        if not args.skip_publish:
            concurrent_publish(Path(tmp) / "publish", args.hosts, retry)
        if not args.skip_pull:
            pull_at_parity(Path(tmp) / "pull", args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
