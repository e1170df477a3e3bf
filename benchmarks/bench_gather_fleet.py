#!/usr/bin/env python3
"""Benchmark a whole-fleet gather: ``playbooks/gather.yml`` against stock fact gathering.

Generates an inventory of H local hosts (default 30, ``ansible_connection: local``, the project
venv's python) that all read one small shared sandbox: a home with a Claude Code MCP config, a
.env and a git repository, a Python venv and an npm prefix with one package. Then times, N runs
each and interleaved:

* ``gather``: ``ansible-playbook playbooks/gather.yml`` (cyclotron_facts on every host, manifests
  written to a temp directory, then validated), all sources the module has by default;
* ``bare``: a play with ``hosts: all, gather_facts: true, tasks: []`` (the stock setup module).

Prints each run, the medians and the ratio gather/bare (target: 0.4x or less). Figures only, no
assertions. Needs gather.yml and plugins/modules/cyclotron_facts.py.

Usage: .venv/bin/python benchmarks/bench_gather_fleet.py [--hosts 30] [-n 3] [--sources python,npm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
GATHER = REPO / "playbooks" / "gather.yml"
MODULE = REPO / "plugins" / "modules" / "cyclotron_facts.py"
BARE_PLAY = [{"name": "Stock facts only", "hosts": "all", "gather_facts": True, "tasks": []}]


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else str(VENV_BIN / name)


def build_sandbox(root: Path) -> dict[str, Any]:
    """One small host's worth of things to find, shared by every benchmark host."""
    home = root / "home"
    (home / "src").mkdir(parents=True)
    (home / ".claude.json").write_text(
        json.dumps(
            {"mcpServers": {"memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}}}
        )
    )
    (home / ".env").write_text("ANTHROPIC_API_KEY=bench-not-a-real-key\n")
    repo = home / "src" / "dotfiles"
    git_env = dict(
        os.environ,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "commit", "--quiet", "--allow-empty", "-m", "init"], check=True, env=git_env
    )

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    prefix = root / "npm"
    prefix.mkdir()
    if shutil.which("npm"):
        npm = subprocess.run(
            ["npm", "install", "--global", "--prefix", str(prefix), "--no-audit", "--no-fund", "is-number"],
            capture_output=True,
            text=True,
            env=dict(os.environ, npm_config_cache=str(root / "npm-cache")),
        )
        if npm.returncode != 0:
            print(f"note: npm install failed, the npm prefix stays empty: {npm.stderr.strip()[:200]}")
    return {
        "cyclotron_home": str(home),
        "cyclotron_facts_python_environments": [str(venv)],
        "cyclotron_facts_npm_prefixes": [str(prefix)],
        "cyclotron_facts_env_files": [str(home / ".env")],
        "cyclotron_facts_git_roots": [str(home / "src")],
        "cyclotron_facts_read_environment": False,
    }


def write_inventory(path: Path, hosts: int, host_vars: dict[str, Any], sources: list[str] | None) -> None:
    group_vars: dict[str, Any] = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        **host_vars,
    }
    if sources:
        group_vars["cyclotron_facts_sources"] = sources
    inventory = {"all": {"vars": group_vars, "hosts": {f"bench{i:02d}": None for i in range(1, hosts + 1)}}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))


def timed(argv: list[str], env: dict[str, str], label: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        sys.exit(f"{label} run failed (exit {proc.returncode}):\n{tail}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=30, help="number of local hosts (default 30)")
    parser.add_argument("-n", "--runs", type=int, default=3, help="runs of each play (default 3)")
    parser.add_argument("--sources", help="comma-separated cyclotron_facts sources (default: the module's)")
    parser.add_argument("--no-profile", action="store_true", help="skip the extra gather run that shows time per task")
    args = parser.parse_args(argv)

    missing = [str(p.relative_to(REPO)) for p in (GATHER, MODULE) if not p.exists()]
    if missing:
        print(f"skipped: {', '.join(missing)} not written yet")
        return 0

    with tempfile.TemporaryDirectory(prefix="cyclotron-bench-") as tmp_name:
        tmp = Path(tmp_name)
        host_vars = build_sandbox(tmp / "sandbox")
        inventory = tmp / "inventory.yml"
        sources = args.sources.split(",") if args.sources else None
        write_inventory(inventory, args.hosts, host_vars, sources)
        bare = tmp / "bare.yml"
        bare.write_text(yaml.safe_dump(BARE_PLAY, sort_keys=False))
        manifests = tmp / "manifests"

        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_HOME=str(tmp / "ansible-home"),
            ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp / "facts"),
            ANSIBLE_NOCOLOR="1",
        )
        playbook = _tool("ansible-playbook")
        gather_cmd = [
            playbook,
            "-i",
            str(inventory),
            str(GATHER),
            "-e",
            f"cyclotron_manifest_dir={manifests}",
        ]
        bare_cmd = [playbook, "-i", str(inventory), str(bare)]

        # Warm-up: first imports and .pyc compilation should not count against either side.
        timed(bare_cmd, env, "warm-up bare")
        timed(gather_cmd, env, "warm-up gather")

        times: dict[str, list[float]] = {"gather": [], "bare": []}
        for i in range(args.runs):
            order = [("bare", bare_cmd), ("gather", gather_cmd)]
            if i % 2:
                order.reverse()
            for label, cmd in order:
                seconds = timed(cmd, env, label)
                times[label].append(seconds)
                print(f"run {i + 1} {label:<6} {seconds:7.2f} s")

        written = len(list(manifests.glob("*.json")))
        gather_median = statistics.median(times["gather"])
        bare_median = statistics.median(times["bare"])
        print()
        print(f"hosts: {args.hosts} (local connection, forks from ansible.cfg), runs: {args.runs}")
        print(f"sources: {','.join(sources) if sources else 'module default'}; manifests written: {written}")
        print(f"gather.yml median:          {gather_median:7.2f} s")
        print(f"gather_facts: true median:  {bare_median:7.2f} s")
        print(f"ratio gather/bare:          {gather_median / bare_median:7.2f}x (target <= 0.40x)")

        if not args.no_profile:
            # One more gather, untimed, with the profile_tasks callback: where the time goes.
            profile_env = dict(env, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
            proc = subprocess.run(
                gather_cmd,
                capture_output=True,
                text=True,
                env=profile_env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
            )
            lines = proc.stdout.splitlines()
            recap = [i for i, line in enumerate(lines) if line.startswith("TASKS RECAP")]
            if recap:
                print()
                print("gather.yml time per task (all hosts, profile_tasks):")
                for line in lines[recap[-1] + 3 :]:
                    if line.strip():
                        print(f"  {line.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
