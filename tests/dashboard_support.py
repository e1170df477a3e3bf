"""Shared pieces of the dashboard tests: a state dir with a store, the three-PC fixture fleet,
an app over them, a uvicorn server on a free port and Debian's Chromium through Playwright."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
VALID_FLEET = REPO_ROOT / "tests" / "fixtures" / "manifests" / "valid"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
XSS = "<img src=x onerror=alert(1)>"
# The starlette TestClient's note about httpx (a UserWarning) is not ours to fix.
TESTCLIENT_WARNING = "ignore:Using `httpx` with `starlette.testclient`"


def asgi_client_class() -> Any:
    """FastAPI's TestClient, imported without starlette's note that it prefers httpx2 to httpx."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from fastapi.testclient import TestClient
    return TestClient


def copy_fleet(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in VALID_FLEET.glob("*.json"):
        shutil.copy(path, target / path.name)
    return target


def manifest(host: str) -> dict[str, Any]:
    return json.loads((VALID_FLEET / f"{host}.json").read_text())


def serve_args(manifests: Path, **extra: Any) -> argparse.Namespace:
    values = {"host": "127.0.0.1", "port": 8900, "manifests": str(manifests), "policy": None, "catalog": None,
              "domains": None, **extra}
    return argparse.Namespace(**values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(
    env: Mapping[str, str], *args: str, cwd: Path = REPO_ROOT
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`cyclotron serve` in a subprocess on a free port; yields (base URL, process). After the block
    the process has ended and ``process.captured`` is its (stdout, stderr)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclotron_py.cli", "serve", "--port", str(port), *args],
        env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"cyclotron serve exited {proc.returncode}: {proc.stderr.read()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(base + "/api/fleet", timeout=2):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("cyclotron serve did not answer within 30 s")
        yield base, proc
    finally:
        proc.terminate()
        try:
            captured = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            captured = proc.communicate()
        proc.captured = captured  # type: ignore[attr-defined]  # (stdout, stderr) for the test


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A fresh headless Chromium context (Debian's binary, its own profile dir)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="cyclotron-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def environment(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CYCLOTRON_STATE_DIR"] = str(state)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env
