"""`cyclotron serve`: the dashboard and its JSON API (127.0.0.1:8900 unless told otherwise)."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

from ..errors import CyclotronError
from ..fleet_view import FleetView
from ..store import Store, state_dir
from ..validate import load_domains
from .matrix import load_catalog_file, policies_for, read_policy_file

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8900


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="the dashboard: fleet grid, live runs, history and approvals, with a JSON API",
        description="Serve the dashboard over the store (and the manifests directory while the store has none). "
        "Reads need nothing; writes (approve/reject) need the token printed at first start.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default 127.0.0.1: this machine "
                        "only; anything else prints a warning)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8900)")
    parser.add_argument("--manifests", default="manifests", metavar="DIR",
                        help="manifests directory shown while the store holds no manifest (default manifests/)")
    parser.add_argument("--policy", metavar="FILE", help="host -> cyclotron_policy mapping (as cyclotron matrix)")
    parser.add_argument("--catalog", metavar="FILE", help="catalog overrides (as cyclotron matrix)")
    parser.add_argument("--domains", metavar="FILE", help="domains file (as cyclotron matrix)")
    parser.set_defaults(func=run)


def allowed_host_names(host: str) -> tuple[str, ...]:
    """The Host header names the server answers to: local names, plus the bound address; any
    name when bound to every interface (the token still guards writes)."""
    local = ("127.0.0.1", "localhost", "::1", "[::1]")
    if host in ("0.0.0.0", "::", ""):
        return ("*",)
    return (*local, host) if host not in local else local


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build(args: argparse.Namespace) -> tuple[Any, str, bool]:
    """(app, token, token_created) for the arguments, without serving (tests and benchmarks)."""
    from ..web.app import create_app
    from ..web.security import load_or_create_token

    if not 0 < args.port < 65536:
        raise CyclotronError(f"--port {args.port}: give a port between 1 and 65535")
    state = state_dir()
    store = Store.open(state)
    catalog = load_catalog_file(args.catalog, load_domains(args.domains) if args.domains else None)
    policy = read_policy_file(args.policy) if args.policy else None
    fleet = FleetView(
        store,
        manifests_dir=Path(args.manifests),
        catalog=catalog,
        policy_for=(lambda records: policies_for(records, policy, domains=catalog.domains))
        if policy
        else None,
    )
    token, created = load_or_create_token(state)
    app = create_app(store, state, fleet, token, allowed_hosts=allowed_host_names(args.host))
    return app, token, created


def run(args: argparse.Namespace) -> int:
    import uvicorn

    app, token, created = build(args)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    if not is_loopback(args.host):
        print(f"WARNING: listening on {args.host}, not only this machine: anyone who can reach port {args.port} "
              "can read the fleet's state (writes still need the token). Use --host 127.0.0.1 and an SSH tunnel "
              "to reach it from elsewhere.", file=sys.stderr)
    if created:
        print(f"write token (shown once; kept 0600 in {state_dir() / 'dashboard-token'}): {token}")
        print(f"open {url}#token={token} to approve from this browser")
    else:
        print(f"write token: in {state_dir() / 'dashboard-token'}")
    grid = app.state.dashboard.fleet.grid()  # compare once now, not on the first page load
    print(f"comparing {len(grid.matrix['hosts'])} host(s) from {grid.source}")
    print(f"dashboard on {url} (Ctrl-C stops it)", flush=True)
    # an open event stream must not keep Ctrl-C waiting
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=2)
    return 0
