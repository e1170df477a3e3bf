"""The user's path from files: `cyclotron matrix|report|plan DIR` against a bare json.load of DIR.

    .venv/bin/python benchmarks/bench_load.py                     # 100 files x 5,000 capabilities
    .venv/bin/python benchmarks/bench_load.py --hosts 100 --hosts 1000 --caps 500   # growth
    .venv/bin/python benchmarks/bench_load.py --code /work/main --code .     # before/after, one run

Generates the fleet with benchmarks/gen_manifests.py into a temporary directory, then runs, each
in a fresh child process (so its peak RSS is its own, read with wait4):

- ``bare``: ``json.load`` of every file, one at a time, timed inside the child (no start-up);
- ``matrix DIR -o FILE`` (the table), ``matrix DIR --json -o FILE``, ``report DIR -o FILE`` (text),
  ``plan DIR --check`` (the summary; writes nothing) and ``plan DIR --out D`` (the summary,
  ``plans/<id>.json`` and ``generated/<id>.yml``): the CLI's wall time *including* interpreter
  start-up and imports.

Each checkout's Python is compiled to bytecode first (the environment may set
PYTHONDONTWRITEBYTECODE, and a checkout without ``__pycache__`` would compile its imports every
run). ``--rounds N`` (default 3) runs every figure N times, interleaved, and prints medians: the
bare parse alone moves by 0.3 s between single runs here, so its runs are pooled over every
checkout of one size and each checkout's ratio divides by that one median.

Prints each figure, its ratio to the bare parse, and peak RSS. Targets: ratio <= 2 and peak
<= 500 MB at 100 x 5,000; 10x the files about 10x the time. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_manifests import main as generate  # noqa: E402

BARE = """
import json, sys, time
from pathlib import Path
files = sorted(Path(sys.argv[1]).glob("*.json"))
start = time.perf_counter()
for path in files:
    with open(path, "rb") as handle:
        json.load(handle)
print(time.perf_counter() - start)
"""


def _measured(argv: list[str], code: Path) -> tuple[float, float, str]:
    """Run under a tiny wrapper that reports its child's own peak RSS (RUSAGE_CHILDREN is a max
    over every child this process ever had, so each figure gets a wrapper of its own)."""
    wrapper = (
        "import os, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)\n"
        "out = proc.stdout.read(); _, status, usage = os.wait4(proc.pid, 0)\n"
        "sys.stderr.write(f'{time.perf_counter() - start} {usage.ru_maxrss} {status}\\n')\n"
        "sys.stdout.buffer.write(out)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], env=env, cwd=code, capture_output=True, check=False
    )
    wall, peak, status = proc.stderr.decode().strip().splitlines()[-1].split()
    if int(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed (wait status {status}):\n{proc.stderr.decode()[-2000:]}")
    return float(wall), int(peak) / 1024, proc.stdout.decode()


def run_size(
    hosts: int, caps: int, code: Path, work: Path, only: list[str] | None = None
) -> list[tuple[str, float, float]]:
    fleet = work / f"fleet-{hosts}x{caps}"
    if not fleet.is_dir():
        generate(["--hosts", str(hosts), "--caps", str(caps), "--out", str(fleet)])
    out = work / "out"
    py = sys.executable
    wall, peak, text = _measured([py, "-c", BARE, str(fleet)], code)
    rows = [("bare json.load", float(text.strip()), peak)]
    commands = {
        "matrix": ["matrix", str(fleet), "-o", str(out / "matrix.txt")],
        "matrix --json": ["matrix", str(fleet), "--json", "-o", str(out / "matrix.json")],
        "report": ["report", str(fleet), "-o", str(out / "report.txt")],
        "plan --check": ["plan", str(fleet), "--check"],
        "plan (writes)": ["plan", str(fleet), "--out", str(out / "plan")],
    }
    for name, args in commands.items():
        if only and name.split()[0] not in only:
            continue
        wall, peak, _ = _measured([py, "-m", "cyclotron_py.cli", *args], code)
        rows.append((name, wall, peak))
    return rows


def _medians(rounds: list[list[tuple[str, float, float]]]) -> list[tuple[str, float, float]]:
    """Per figure, the median time over the rounds and the largest peak."""
    return [
        (name, statistics.median(r[i][1] for r in rounds), max(r[i][2] for r in rounds))
        for i, (name, _, _) in enumerate(rounds[0])
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, action="append", help="manifest files (repeatable; default 100)")
    parser.add_argument("--caps", type=int, default=5000, help="capabilities per file")
    parser.add_argument("--code", type=Path, action="append",
                        help="checkout whose cyclotron_py runs (repeatable, same fleet; default: this)")
    parser.add_argument("--only", action="append", help="run only this command (matrix, report, plan; repeatable)")
    parser.add_argument("--work", type=Path, help="keep generated fleets here (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of every figure (medians)")
    args = parser.parse_args(argv)
    sizes = args.hosts or [100]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        codes = [c.resolve() for c in (args.code or [ROOT])]
        for code in codes:
            compileall.compile_dir(code / "cyclotron_py", quiet=1)
        print(f"load average: {os.getloadavg()[0]:.1f}; medians of {args.rounds} interleaved rounds")
        first: dict[tuple[Path, str], float] = {}
        for hosts in sizes:
            runs: dict[Path, list[list[tuple[str, float, float]]]] = {code: [] for code in codes}
            for _ in range(args.rounds):
                for code in codes:
                    runs[code].append(run_size(hosts, args.caps, code, work, args.only))
            # json.load does not depend on the checkout: every bare run of this size is pooled,
            # so each checkout's ratio divides by the same figure.
            bare = statistics.median(r[0][1] for code in codes for r in runs[code])
            for code in codes:
                rows = _medians(runs[code])
                rows[0] = (rows[0][0], bare, rows[0][2])
                print(f"\n{hosts} files x {args.caps} capabilities, code {code}")
                print(f"  {'':16} {'seconds':>8} {'x bare':>7} {'peak MB':>8} {'x first size':>12}")
                for name, seconds, peak in rows:
                    first.setdefault((code, name), seconds)
                    growth = seconds / first[(code, name)] if hosts != sizes[0] else 1.0
                    print(f"  {name:16} {seconds:8.2f} {seconds / bare:7.2f} {peak:8.0f} {growth:12.1f}")
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
