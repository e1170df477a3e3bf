"""Benchmark the dashboard (issue 9 targets): `/api/fleet` requests per second and p95 latency
against the same JSON served as a static file by the same server (target >= 0.5x), and the time to
a rendered grid in Chromium (navigation timing; target <= 1.5 s for the 100 x 5,000 first page).

    python benchmarks/bench_dashboard.py [--requests 2000] [--clients 2] [--loads 5] [--skip-browser]

Two fleets: the three fixture PCs (tests/fixtures/manifests/valid, the demo's size) and 100
synthetic hosts x 5,000 capabilities (benchmarks/gen_manifests.py). For each, the dashboard app
(`cyclotron serve`'s own `build`) runs under uvicorn in a child process, with one extra static
route serving a copy of its `/api/fleet` answer from a file; the client (keep-alive, N threads)
alternates blocks of requests to the two URLs. Chromium (Debian's, headless) then loads the grid
page `--loads` times (a fresh page each time, after one warm-up) and the script prints the median
navigation timings: response end, DOMContentLoaded and load event. Figures only; asserts nothing.
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
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from gen_manifests import generate  # noqa: E402

from tests.dashboard_support import VALID_FLEET, chromium, free_port  # noqa: E402


def serve_child(manifests: str, static_dir: str, port: int) -> None:
    """In the child: the dashboard app plus /bench/<file> served by StaticFiles, under uvicorn."""
    import uvicorn
    from fastapi.staticfiles import StaticFiles

    from cyclotron_py.commands.serve import build
    from tests.dashboard_support import serve_args

    app, _, _ = build(serve_args(Path(manifests), port=port))
    app.mount("/bench", StaticFiles(directory=static_dir), name="bench")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def hammer(url: str, requests: int, clients: int) -> tuple[float, float]:
    """(requests per second, p95 latency in ms) for ``requests`` GETs over ``clients`` keep-alive threads."""
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients

    def work() -> None:
        mine = []
        with httpx.Client(timeout=30) as client:
            for _ in range(per_client):
                start = time.perf_counter()
                response = client.get(url)
                response.read()
                mine.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status_code}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.95 * (len(latencies) - 1))] * 1000


def navigation(base: str, loads: int) -> dict[str, float]:
    with chromium() as browser:
        timings: dict[str, list[float]] = {"responseEnd": [], "domContentLoadedEventEnd": [], "loadEventEnd": []}
        for round_number in range(loads + 1):
            page = browser.new_page()
            page.goto(base + "/", wait_until="load")
            page.wait_for_selector("#grid")
            entry = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
            cells = page.locator("#grid td.cell").count()
            page.close()
            if round_number == 0:
                continue  # warm-up: the server computes the comparison on its first request
            data = json.loads(entry)
            for key in timings:
                timings[key].append(data[key])
        return {k: statistics.median(v) for k, v in timings.items()} | {"cells": cells}


def bench_fleet(name: str, manifests: Path, args: argparse.Namespace, work: Path) -> None:
    state = work / f"state-{name}"
    static = work / f"static-{name}"
    static.mkdir()
    port = free_port()
    env = dict(os.environ, CYCLOTRON_STATE_DIR=str(state), PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen([sys.executable, __file__, "--child", str(manifests), str(static), str(port)],
                             env=env, cwd=REPO_ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        started = time.perf_counter()
        while True:
            try:
                body = httpx.get(base + "/api/fleet", timeout=600).content
                break
            except httpx.TransportError:
                if child.poll() is not None:
                    raise RuntimeError("the dashboard did not start") from None
                time.sleep(0.2)
        first = time.perf_counter() - started
        (static / "fleet.json").write_bytes(body)
        hosts = len(json.loads(body)["hosts"])
        print(f"\n{name}: {hosts} hosts; server up and first /api/fleet (comparison computed) {first:.2f} s; "
              f"/api/fleet body {len(body) / 1024:.1f} KiB")
        results: dict[str, list[tuple[float, float]]] = {"api": [], "static": []}
        block = max(args.requests // 4, args.clients)
        hammer(base + "/api/fleet", block // 4, args.clients)  # warm both paths
        hammer(base + "/bench/fleet.json", block // 4, args.clients)
        for _ in range(4):  # interleaved blocks, so load from other work hits both alike
            results["api"].append(hammer(base + "/api/fleet", block, args.clients))
            results["static"].append(hammer(base + "/bench/fleet.json", block, args.clients))
        api_rps = statistics.median(r for r, _ in results["api"])
        static_rps = statistics.median(r for r, _ in results["static"])
        api_p95 = statistics.median(p for _, p in results["api"])
        static_p95 = statistics.median(p for _, p in results["static"])
        print(f"  /api/fleet        {api_rps:8.0f} req/s  p95 {api_p95:6.2f} ms")
        print(f"  static fleet.json {static_rps:8.0f} req/s  p95 {static_p95:6.2f} ms")
        print(f"  ratio api/static  {api_rps / static_rps:8.2f}x  (target >= 0.5x)")
        matrix_rps, matrix_p95 = hammer(base + "/api/matrix", max(block // 4, args.clients), args.clients)
        print(f"  /api/matrix (first page, gaps only) {matrix_rps:.0f} req/s  p95 {matrix_p95:.2f} ms")
        if not args.skip_browser:
            nav = navigation(base, args.loads)
            print(f"  Chromium, grid page ({nav['cells']:.0f} cells), median of {args.loads}: response end "
                  f"{nav['responseEnd']:.0f} ms, DOMContentLoaded {nav['domContentLoadedEventEnd']:.0f} ms, "
                  f"load {nav['loadEventEnd']:.0f} ms  (target <= 1500 ms)")
    finally:
        child.terminate()
        child.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per URL and fleet")
    parser.add_argument("--clients", type=int, default=2, help="client threads (keep-alive connections)")
    parser.add_argument("--loads", type=int, default=5, help="Chromium page loads per fleet")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--caps", type=int, default=5000)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("MANIFESTS", "STATIC", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        serve_child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="cyclotron-bench-dashboard-"))
    try:
        print(f"load average {os.getloadavg()[0]:.1f}; {args.requests} requests per URL, {args.clients} clients")
        bench_fleet("demo", VALID_FLEET, args, work)
        large = work / "large"
        large.mkdir()
        for manifest in generate(args.hosts, args.caps):
            (large / f"{manifest['host']}.json").write_text(json.dumps(manifest), encoding="utf-8")
        bench_fleet(f"{args.hosts}x{args.caps}", large, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
