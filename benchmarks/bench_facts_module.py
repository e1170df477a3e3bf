#!/usr/bin/env python3
"""Benchmark cyclotron_facts against the stock Ansible chain, and its peak memory on a big host.

1. Wall time of ``ansible localhost -m cyclotron_facts`` (all sources) against the three stock
   modules that together cover the package part of it, each run ad hoc the same way:
   ``ansible.builtin.package_facts``, ``community.general.pip_package_info`` (clients = the project
   venv's pip) and ``community.general.npm`` (``global=true name=npm`` in check mode: the module has
   no list mode, but with a package that is present it runs ``npm list -g --json --long`` and stops).
   All use connection local and the project venv's python. Median of N runs; the stock figure is
   the sum of the three medians. Besides wall time, the task time the JSON callback records (module
   transfer + run, without ansible start-up) is compared too.
2. Peak RSS (ru_maxrss) of the module process on a synthetic host with 2,000 dpkg packages and
   2,000 Python distributions (test options dpkg_status_path / apt_extended_states_path and a fake
   venv): the real module main() runs in a child process and its rusage is read with wait4.

Prints figures only; no assertions. Usage: .venv/bin/python benchmarks/bench_facts_module.py [-n 5]
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
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_PY = REPO / ".venv" / "bin" / "python"
ANSIBLE = REPO / ".venv" / "bin" / "ansible"

# Version probes a sync run would pass (a subset of the catalog's verify commands).
PROBES = [
    {"name": "git", "argv": ["git", "--version"], "regex": r"(\d+\.\d+\.\d+)"},
    {"name": "node", "argv": ["node", "--version"], "regex": r"v(\d+\.\d+\.\d+)"},
    {"name": "npm", "argv": ["npm", "--version"], "regex": r"(\d+\.\d+\.\d+)"},
    {"name": "python3", "argv": ["python3", "--version"], "regex": r"Python (\S+)"},
    {"name": "curl", "argv": ["curl", "--version"], "regex": r"curl (\S+)"},
    {"name": "ssh", "argv": ["ssh", "-V"], "regex": r"OpenSSH_(\S+?),"},
]


def _ansible_env(home: Path) -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_NOCOLOR="1",
    )


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_adhoc(
    module: str, args: Any, env: dict[str, str], *extra: str
) -> tuple[float, float, dict[str, Any]]:
    """(wall s, task s, host result) of one ad-hoc module run."""
    argv = [
        str(ANSIBLE),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        module,
        "-e",
        f"ansible_python_interpreter={VENV_PY}",
        *extra,
    ]
    if args:
        argv += ["-a", args if isinstance(args, str) else json.dumps(args)]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    try:
        task = json.loads(proc.stdout)["plays"][0]["tasks"][0]
    except (ValueError, KeyError, IndexError):
        sys.exit(f"{module} failed (rc {proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    result = task["hosts"]["localhost"]
    if result.get("failed"):
        sys.exit(f"{module} failed: {result.get('msg')}")
    duration = task["task"]["duration"]
    return wall, _seconds(duration["end"]) - _seconds(duration["start"]), result


def bench_time(n: int) -> None:
    ansible_home = Path(tempfile.mkdtemp(prefix="cyc-bench-ah-"))
    env = _ansible_env(ansible_home)
    ours_args = {"python_environments": [str(REPO / ".venv")]}
    cases = {
        "cyclotron_facts (all sources)": ("cyclotron_facts", ours_args, ()),
        "cyclotron_facts (all sources + 6 probes)": ("cyclotron_facts", dict(ours_args, commands=PROBES), ()),
        "ansible.builtin.package_facts": ("ansible.builtin.package_facts", None, ()),
        "community.general.pip_package_info": (
            "community.general.pip_package_info",
            f"clients={REPO / '.venv' / 'bin' / 'pip'}",
            (),
        ),
        "community.general.npm (global, check)": (
            "community.general.npm",
            "global=true name=npm",
            ("--check",),
        ),
    }
    try:
        for module, args, extra in cases.values():  # warm-up: caches, .pyc files
            run_adhoc(module, args, env, *extra)
        load_before = os.getloadavg()[0]
        walls: dict[str, list[float]] = {label: [] for label in cases}
        tasks: dict[str, list[float]] = {label: [] for label in cases}
        results: dict[str, dict[str, Any]] = {}
        # Round robin, so load from other work on a shared machine hits every case alike.
        for _ in range(n):
            for label, (module, args, extra) in cases.items():
                wall, task, results[label] = run_adhoc(module, args, env, *extra)
                walls[label].append(wall)
                tasks[label].append(task)
        load_after = os.getloadavg()[0]
        medians = {
            label: (statistics.median(walls[label]), statistics.median(tasks[label])) for label in cases
        }
        counts: dict[str, str] = {}
        for label, result in results.items():
            facts = result.get("ansible_facts", {})
            if "cyclotron_raw" in facts:
                raw = facts["cyclotron_raw"]
                by_manager: dict[str, int] = {}
                for pkg in raw["packages"]:
                    by_manager[pkg["manager"]] = by_manager.get(pkg["manager"], 0) + 1
                counts[label] = (
                    f"packages {by_manager}, commands {len(raw['commands'])}, errors {len(raw['errors'])}"
                )
            elif facts.get("packages") or result.get("packages"):
                # package_facts: {name: [entries]}; pip_package_info: {pip: {name: [entries]}}.
                pkgs = facts.get("packages") or result["packages"]
                entries = [e for v in pkgs.values() for e in (v.values() if isinstance(v, dict) else [v])]
                counts[label] = f"{sum(len(e) for e in entries)} package entries"
    finally:
        shutil.rmtree(ansible_home, ignore_errors=True)

    print(f"== Wall time, median of {n} ad-hoc runs (connection local, {VENV_PY}) ==")
    print(f"load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs")
    print(f"{'case':45} {'wall s':>8} {'task s':>8}  gathered")
    for label, (wall, task) in medians.items():
        print(f"{label:45} {wall:8.3f} {task:8.3f}  {counts.get(label, '')}")
    stock = [medians[k] for k in list(cases)[2:]]
    stock_wall, stock_task = sum(w for w, _ in stock), sum(t for _, t in stock)
    print(f"{'stock chain (sum of the three)':45} {stock_wall:8.3f} {stock_task:8.3f}")
    for label in list(cases)[:2]:
        wall, task = medians[label]
        print(
            f"ratio {label:39} wall {wall / stock_wall:.3f}   task {task / stock_task:.3f}   (target <= 0.35)"
        )


# Runs the module's real main() in a child: module_utils/ is appended to ansible.module_utils'
# search path, as Ansible's packaging would ship it, and the args go in the way ansible-core's
# module debugging entry point reads them (argv, legacy JSON profile).
_DRIVER = r"""
import json, runpy, sys
import ansible.module_utils
ansible.module_utils.__path__.append(sys.argv[1])
module, args = sys.argv[2], sys.argv[3]
sys.argv = [module, json.dumps({"ANSIBLE_MODULE_ARGS": json.loads(args)})]
runpy.run_path(module, run_name="__main__")
"""


def run_module_process(args: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """(peak RSS MiB, wall s, result) of one module process."""
    argv = [
        str(VENV_PY),
        "-c",
        _DRIVER,
        str(REPO / "plugins" / "module_utils"),
        str(REPO / "plugins" / "modules" / "cyclotron_facts.py"),
        json.dumps(args),
    ]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    try:
        result = json.loads(text)
    except ValueError:
        sys.exit(f"module process failed (rc {proc.returncode}):\n{text[-2000:]}")
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return usage.ru_maxrss / scale, wall, result


def synthesize_host(root: Path, count: int) -> dict[str, Any]:
    """A fake venv with *count* distributions and a dpkg status with *count* packages (half auto)."""
    site = root / "venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    site.mkdir(parents=True)
    (root / "venv" / "pyvenv.cfg").write_text("include-system-site-packages = false\n")
    for i in range(count):
        dist = site / f"pkg_{i:04d}-1.{i}.0.dist-info"
        dist.mkdir()
        # Every fourth package requires the next one: a quarter of them are dependencies.
        requires = f"Requires-Dist: pkg-{i + 1:04d} (>=1.0)\n" if i % 4 == 0 and i + 1 < count else ""
        description = "A synthetic package used by the memory benchmark.\n" * 40
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: pkg-{i:04d}\nVersion: 1.{i}.0\nSummary: synthetic\n"
            f"{requires}Requires-Dist: extra-only ; extra == 'test'\n\n{description}"
        )
    stanzas, states = [], []
    for i in range(count):
        stanzas.append(
            f"Package: deb-{i:04d}\nStatus: install ok installed\nPriority: optional\nSection: misc\n"
            f"Installed-Size: {i}\nMaintainer: Bench <bench@example.com>\nArchitecture: amd64\n"
            f"Version: 1.{i}-1\nDepends: libc6 (>= 2.36)\nDescription: synthetic package {i}\n"
            " Long description line one.\n Long description line two.\n"
        )
        if i % 2:
            states.append(f"Package: deb-{i:04d}\nArchitecture: amd64\nAuto-Installed: 1\n")
    (root / "status").write_text("\n".join(stanzas))
    (root / "extended_states").write_text("\n".join(states))
    return {
        "home": str(root / "home"),
        "python_environments": [str(root / "venv")],
        "dpkg_status_path": str(root / "status"),
        "apt_extended_states_path": str(root / "extended_states"),
        "npm_prefixes": [],
        "brew_prefixes": [],
        "git_roots": [],
    }


def bench_memory(count: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="cyc-bench-mem-"))
    try:
        args = synthesize_host(root, count)
        (root / "home").mkdir()
        base_rss, base_wall, _ = run_module_process({"sources": ["api_keys"], "home": args["home"]})
        rows = []
        for deps in (False, True):
            rss, wall, result = run_module_process(dict(args, include_dependencies=deps))
            packages = result["ansible_facts"]["cyclotron_raw"]["packages"]
            rows.append((deps, rss, wall, len(packages), len(json.dumps(result))))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n== Peak memory of the module process: {count} dpkg packages + {count} Python distributions ==")
    print(f"baseline (interpreter + AnsibleModule, api_keys only): {base_rss:6.1f} MiB  {base_wall:.3f} s")
    for deps, rss, wall, npkgs, size in rows:
        print(
            f"include_dependencies={str(deps):5}  peak RSS {rss:6.1f} MiB  wall {wall:.3f} s  "
            f"{npkgs} packages returned, result {size / 1024:.0f} KiB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs per case (median reported)")
    parser.add_argument(
        "--packages", type=int, default=2000, help="packages per manager on the synthetic host"
    )
    parser.add_argument("--skip-time", action="store_true", help="only the memory benchmark")
    args = parser.parse_args(argv)
    if not args.skip_time:
        bench_time(args.n)
    bench_memory(args.packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
