"""Benchmark the run store (issue 8 targets): recording 10,000 item outcomes (<= 0.5 s) and the
queries `cyclotron status` makes with 1,000 runs in history (<= 0.3 s, process start excluded).

    python benchmarks/bench_store.py [-n 5]

Real SQLite files in a temp dir (WAL, synchronous=NORMAL, as the store opens them). Prints best and
median of -n rounds; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cyclotron_py.store import ItemOutcome, Store  # noqa: E402

OUTCOMES = ("installed", "upgraded", "already-present", "failed-rolled-back")


def record_items(root: Path, n: int) -> float:
    with Store.open(root / f"items-{time.monotonic_ns()}") as db:
        run = db.start_run("sync", "full-auto")
        items = [
            ItemOutcome(f"pc{i % 100}", f"pip:pkg{i}", OUTCOMES[i % 4], "pip", f"pkg{i}", "1.0", "1.1", "")
            for i in range(n)
        ]
        start = time.perf_counter()
        db.record_items(run, items)
        return time.perf_counter() - start


def status_queries(db: Store) -> float:
    start = time.perf_counter()
    db.heartbeat()
    db.current_run()
    last = db.last_run()
    if last:
        db.host_outcomes(last["id"])
    db.approvals()
    db.last_gathered()
    db.runs(limit=20)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        times = [record_items(root, 10_000) for _ in range(args.n)]
        print(f"record 10,000 item outcomes: best {min(times):.3f} s, median {statistics.median(times):.3f} s "
              f"(target <= 0.5 s: {'met' if statistics.median(times) <= 0.5 else 'NOT met'})")
        with Store.open(root / "history") as db:
            for _ in range(1000):
                run = db.start_run("sync", "semi-auto")
                db.record_hosts(run, {f"pc{h}": {"status": "complete", "ok": 10, "changed": 1} for h in range(10)})
                db.record_items(run, [ItemOutcome(f"pc{h}", "pip:six", "installed") for h in range(10)])
                db.finish_run(run, "successful", 0)
            status = [status_queries(db) for _ in range(args.n)]
        print(f"status queries with 1,000 runs (10 hosts each): best {min(status) * 1000:.1f} ms, "
              f"median {statistics.median(status) * 1000:.1f} ms (target <= 300 ms: "
              f"{'met' if statistics.median(status) <= 0.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
