"""Benchmark the N-way comparison: the full matrix for 100 hosts x 5,000 capabilities and
1,000 hosts x 5,000 capabilities (targets: <= 1 s and <= 500 MB for 100 hosts; growth to
1,000 hosts <= 12x the 100-host time).

    python benchmarks/bench_compare.py                  # both sizes
    python benchmarks/bench_compare.py --hosts 100      # one size
    python benchmarks/bench_compare.py --quick          # 10 and 100 hosts x 500, a smoke run

Each size runs in a fresh process, so its peak RSS is its own. Per size:
1. setup (not timed against the target): generate the manifests (benchmarks/gen_manifests.py),
   validate each with the pydantic Manifest model, and keep it as compact engine records
   (``compare.host_record(..., compact=True)``), one host at a time;
2. time ``compare.capability_matrix(records)`` with time.perf_counter: best and median of
   ``--repeats`` runs (the whole matrix: index, coverage, drift, portability, recommendations);
3. measure the same call once more under tracemalloc (peak bytes allocated by the comparison
   itself, input excluded), and report the process's peak RSS (ru_maxrss: input + comparison).
It prints figures and whether the targets are met; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_SECONDS = 1.0
TARGET_MB = 500.0
TARGET_GROWTH = 12.0


def _records(hosts: int, caps: int, seed: int) -> tuple[list[Any], float, float]:
    from gen_manifests import generate

    from cyclotron_py.compare import host_record
    from cyclotron_py.models import Manifest

    strings: dict[str, str] = {}
    records = []
    gen = validate = 0.0
    stream = generate(hosts, caps, seed=seed)
    while True:
        t0 = time.perf_counter()
        data = next(stream, None)
        t1 = time.perf_counter()
        gen += t1 - t0
        if data is None:
            break
        manifest = Manifest.model_validate(data)
        records.append(host_record(manifest, compact=True, strings=strings))
        validate += time.perf_counter() - t1
    return records, gen, validate


def worker(hosts: int, caps: int, repeats: int, seed: int) -> dict[str, Any]:
    from cyclotron_py.catalog import load_catalog
    from cyclotron_py.compare import capability_matrix, dumps

    catalog = load_catalog()
    records, gen_s, validate_s = _records(hosts, caps, seed)
    entries = sum(len(r.caps) for r in records)
    gc.collect()
    rss_input_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    times, cpu = [], []
    matrix: dict[str, Any] = {}
    for _ in range(repeats):
        matrix = {}
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        matrix = capability_matrix(records, catalog=catalog)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # Peak RSS of the process so far: the records plus one comparison (JSON dump excluded).
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = matrix["summary"]
    del matrix
    gc.collect()
    tracemalloc.start()
    result = capability_matrix(records, catalog=catalog)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    text = dumps(result)
    dump_s = time.perf_counter() - t0
    json_mb = len(text.encode()) / 2**20
    del result, text
    return {
        "hosts": hosts,
        "caps_per_host": caps,
        "entries": entries,
        "generate_s": round(gen_s, 2),
        "validate_s": round(validate_s, 2),
        "matrix_best_s": round(min(times), 3),
        "matrix_median_s": round(statistics.median(times), 3),
        "matrix_cpu_best_s": round(min(cpu), 3),
        "json_dump_s": round(dump_s, 3),
        "json_mb": round(json_mb, 1),
        "compare_peak_mb": round(peak / 2**20, 1),
        "input_rss_mb": round(rss_input_mb, 1),
        "process_peak_rss_mb": round(rss_mb, 1),
        "load_average": round(os.getloadavg()[0], 1),
        "summary": summary,
    }


def run_size(hosts: int, caps: int, repeats: int, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--hosts", str(hosts), "--caps", str(caps),
           "--repeats", str(repeats), "--seed", str(seed)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, action="append", help="host count (repeatable)")
    parser.add_argument("--caps", type=int, default=5000, help="capabilities per host")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10 and 100 hosts x 500 capabilities")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.hosts[0], args.caps, args.repeats, args.seed)))
        return 0
    if args.quick:
        sizes, caps = [10, 100], 500
    else:
        sizes, caps = args.hosts or [100, 1000], args.caps
    print(f"cyclotron compare benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    results = []
    for hosts in sizes:
        repeats = args.repeats if hosts <= 100 else max(1, min(args.repeats, 3))
        r = run_size(hosts, caps, repeats, args.seed)
        results.append(r)
        s = r["summary"]
        print(
            f"{hosts:>5} hosts x {caps} caps ({r['entries']:,} entries, {s['capabilities']:,} ids): "
            f"matrix best {r['matrix_best_s']:.3f} s wall / {r['matrix_cpu_best_s']:.3f} s CPU, "
            f"median {r['matrix_median_s']:.3f} s ({repeats} runs, load average {r['load_average']})"
        )
        print(
            f"        memory: comparison peak {r['compare_peak_mb']:.0f} MB (tracemalloc), process peak RSS "
            f"{r['process_peak_rss_mb']:.0f} MB (of which {r['input_rss_mb']:.0f} MB before comparing: "
            f"interpreter, catalog, input records)"
        )
        print(
            f"        not timed: generate {r['generate_s']:.1f} s, validate + compact {r['validate_s']:.1f} s, "
            f"JSON dump {r['json_dump_s']:.2f} s ({r['json_mb']:.0f} MB); "
            f"{s['recommendations']:,} recommendations, {s['unportable']:,} unportable, {s['drifted']:,} drifted"
        )
    by_hosts = {r["hosts"]: r for r in results}
    if 100 in by_hosts and caps == 5000:
        r = by_hosts[100]
        ok_t = r["matrix_best_s"] <= TARGET_SECONDS
        ok_m = r["process_peak_rss_mb"] <= TARGET_MB
        print(f"target 100 x 5000 <= {TARGET_SECONDS} s: {'met' if ok_t else 'NOT met'}; "
              f"<= {TARGET_MB:.0f} MB: {'met' if ok_m else 'NOT met'}")
    if 100 in by_hosts and 1000 in by_hosts:
        growth = by_hosts[1000]["matrix_best_s"] / by_hosts[100]["matrix_best_s"]
        print(f"growth 100 -> 1000 hosts: {growth:.1f}x (target <= {TARGET_GROWTH:.0f}x, linear = 10x): "
              f"{'met' if growth <= TARGET_GROWTH else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
