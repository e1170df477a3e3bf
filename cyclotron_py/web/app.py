"""The dashboard: a FastAPI app with server-rendered pages and a JSON API over the store.

Pages (Jinja2, autoescaped; a little plain JavaScript refreshes them): ``/`` the fleet grid,
``/runs`` and ``/runs/{id}``, ``/approvals``, ``/hosts/{host}``. The JSON API lives under
``/api/`` with its schema at ``/openapi.json``. What both show comes from
``cyclotron_py.fleet_view``; approvals are decided through ``Store.decide``, as the CLI does.

Every handler is ``async``: they run one at a time on the event loop, so the one SQLite
connection is never used by two threads at once, and each is a few quick queries (the grid is
computed once per change of the manifests, see FleetView).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from .. import __version__
from ..daemon import load_config
from ..errors import CyclotronError
from ..fleet_view import (
    CELL_STATES,
    CELL_TITLES,
    FleetView,
    MatrixQuery,
    host_detail,
    run_detail,
    runs_page,
    status_document,
)
from ..store import Store
from .security import TOKEN_HEADER, Guard, token_matches

HERE = Path(__file__).resolve().parent
# How long /api/fleet's answer is reused while nothing in the store changed (ages and heartbeats).
FLEET_TTL_SECONDS = 5.0
EVENTS_POLL_SECONDS = 0.5
EVENTS_MAX_SECONDS = 6 * 3600

_token_header = APIKeyHeader(name=TOKEN_HEADER, auto_error=False, description="the write token (cyclotron serve)")


class Decision(BaseModel):
    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=2000, description="why; required to reject")


class DecisionResult(BaseModel):
    id: int
    state: str
    changed: bool


class Dashboard:
    """What the app serves from: the store, the fleet view and the caches over them."""

    def __init__(self, store: Store, state_dir: Path, fleet: FleetView, token: str) -> None:
        self.store = store
        self.state_dir = state_dir
        self.fleet = fleet
        self.token = token
        self.writes = 0  # our own commits (data_version counts only other connections')
        self._fleet_cache: tuple[Any, float, bytes] | None = None

    def status(self) -> dict[str, Any]:
        return status_document(self.store, load_config(self.state_dir))

    def fleet_json(self) -> bytes:
        key = (self.store.data_version, self.writes, self.fleet.grid().key)
        now = time.monotonic()
        cached = self._fleet_cache
        if cached is not None and cached[0] == key and now - cached[1] < FLEET_TTL_SECONDS:
            return cached[2]
        body = json.dumps(self.fleet.fleet_summary(self.status()), separators=(",", ":"), default=str).encode()
        self._fleet_cache = (key, now, body)
        return body


def create_app(store: Store, state_dir: Path, fleet: FleetView, token: str, *,
               allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]")) -> FastAPI:
    dash = Dashboard(store, state_dir, fleet, token)
    app = FastAPI(title="Cyclotron dashboard", version=__version__,
                  description="The fleet's capabilities, runs and approvals. Writes need the "
                              f"{TOKEN_HEADER} header (the token `cyclotron serve` prints).",
                  docs_url=None, redoc_url=None)
    app.state.dashboard = dash
    app.add_middleware(Guard, allowed_hosts=allowed_hosts)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                            trim_blocks=True, lstrip_blocks=True)

    @app.exception_handler(CyclotronError)
    async def store_trouble(request: Request, exc: CyclotronError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def page(name: str, request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
        status = dash.status()
        html = templates.get_template(name).render(
            request=request, status=status, live=bool(status["current_run"]), path=request.url.path,
            cell_states=CELL_STATES, cell_titles=CELL_TITLES, **context)
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})

    def not_found(what: str) -> HTTPException:
        return HTTPException(status_code=404, detail=f"no such {what}")

    # ------------------------------------------------------------------ JSON API

    @app.get("/api/fleet", tags=["fleet"], summary="hosts, coverage, gaps, current and last run, heartbeat")
    async def api_fleet() -> Response:
        return Response(dash.fleet_json(), media_type="application/json")

    @app.get("/api/matrix", tags=["fleet"], summary="one page of the grid: capabilities x hosts, with cell states")
    async def api_matrix(query: Annotated[MatrixQuery, Depends(matrix_query)]) -> dict[str, Any]:
        return dash.fleet.matrix_page(query)

    @app.get("/api/hosts/{host}", tags=["fleet"], summary="a host: OS, last gather, source errors, changes")
    async def api_host(host: Annotated[str, PathParam(max_length=300)]) -> dict[str, Any]:
        return known_host(host)

    @app.get("/api/runs", tags=["runs"], summary="past runs, newest first, with per-host outcome counts")
    async def api_runs(page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                       per_page: Annotated[int, Query(ge=1, le=200)] = 20,
                       host: Annotated[str, Query(max_length=300)] = "") -> dict[str, Any]:
        return runs_page(dash.store, page=page, per_page=per_page, host=host or None)

    @app.get("/api/runs/{run_id}", tags=["runs"], summary="a run: hosts, item outcomes, raw output")
    async def api_run(run_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> dict[str, Any]:
        detail = run_detail(dash.store, run_id)
        if detail is None:
            raise not_found("run")
        return detail

    @app.get("/api/runs/{run_id}/events", tags=["runs"],
             summary="server-sent events: the run's progress whenever it changes, until it ends",
             response_class=StreamingResponse)
    async def api_run_events(run_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> StreamingResponse:
        if dash.store.run(run_id) is None:
            raise not_found("run")
        return StreamingResponse(run_events(run_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def run_events(run_id: int) -> AsyncIterator[str]:
        last = None
        started = time.monotonic()
        while True:
            detail = run_detail(dash.store, run_id, raw=False)
            if detail is None:
                return
            detail.pop("items", None)
            text = json.dumps(detail, separators=(",", ":"), default=str)
            if text != last:
                yield f"event: progress\ndata: {text}\n\n"
                last = text
            if detail["status"] != "running" or time.monotonic() - started > EVENTS_MAX_SECONDS:
                yield f"event: end\ndata: {json.dumps({'status': detail['status']})}\n\n"
                return
            await asyncio.sleep(EVENTS_POLL_SECONDS)

    @app.get("/api/approvals", tags=["approvals"], summary="approvals (pending by default)")
    async def api_approvals(state: Annotated[Literal["pending", "approved", "rejected", "expired", "closed", "all"],
                                             Query()] = "pending") -> list[dict[str, Any]]:
        states = ("pending", "approved", "rejected", "expired", "closed") if state == "all" else (state,)
        return dash.store.approvals(states=states)

    @app.post("/api/approvals/{approval_id}", tags=["approvals"], response_model=DecisionResult,
              summary="approve or reject a pending item (needs the write token)",
              responses={401: {"description": "no or wrong token"}, 404: {"description": "no such approval"},
                         409: {"description": "already decided"}})
    async def api_decide(approval_id: Annotated[int, PathParam(ge=1, le=2**62)], body: Decision,
                         token: Annotated[str | None, Security(_token_header)] = None) -> DecisionResult:
        if not token_matches(dash.token, token):
            raise HTTPException(status_code=401, detail=f"a write needs the {TOKEN_HEADER} header with the token "
                                "that `cyclotron serve` printed (also in the state dir's dashboard-token)")
        if body.decision == "reject" and not body.reason.strip():
            raise HTTPException(status_code=422, detail="a rejection needs a reason")
        row = dash.store.approval(approval_id)
        if row is None:
            raise not_found("approval")
        if row["state"] != "pending":
            raise HTTPException(status_code=409, detail=f"approval {approval_id} is already {row['state']}")
        state = "approved" if body.decision == "approve" else "rejected"
        changed = dash.store.decide([approval_id], state, by=_who(), reason=body.reason.strip())
        dash.writes += 1
        return DecisionResult(id=approval_id, state=state if changed else row["state"], changed=bool(changed))

    def known_host(host: str) -> dict[str, Any]:
        body = dash.fleet.host_body(host)
        known = body is not None or host in dash.store.last_gathered()
        if not known and not dash.store.runs(limit=1, host=host):
            raise not_found("host")
        return host_detail(dash.store, host, body)

    # ------------------------------------------------------------------ pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def grid_page(request: Request, query: Annotated[MatrixQuery, Depends(matrix_query)]) -> HTMLResponse:
        data = dash.fleet.matrix_page(query)
        return page("grid.html", request, grid=data, fleet=json.loads(dash.fleet_json()),
                    page_link=lambda n: _page_link(request, n))

    @app.get("/runs", response_class=HTMLResponse, include_in_schema=False)
    async def runs_html(request: Request, page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1
                        ) -> HTMLResponse:
        return page("runs.html", request, history=runs_page(dash.store, page=page_number, per_page=20),
                    page_link=lambda n: _page_link(request, n))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    async def run_html(request: Request, run_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> HTMLResponse:
        detail = run_detail(dash.store, run_id)
        if detail is None:
            raise not_found("run")
        return page("run.html", request, run=detail)

    @app.get("/approvals", response_class=HTMLResponse, include_in_schema=False)
    async def approvals_html(request: Request) -> HTMLResponse:
        decided = dash.store.approvals(states=("approved", "rejected", "expired", "closed"))[-50:]
        return page("approvals.html", request, pending=dash.store.approvals(), decided=list(reversed(decided)))

    @app.get("/hosts/{host}", response_class=HTMLResponse, include_in_schema=False)
    async def host_html(request: Request, host: Annotated[str, PathParam(max_length=300)]) -> HTMLResponse:
        return page("host.html", request, host=known_host(host))

    return app


def matrix_query(
    domain: Annotated[str, Query(max_length=100)] = "",
    type: Annotated[str, Query(max_length=50)] = "",
    host: Annotated[str, Query(max_length=300)] = "",
    q: Annotated[str, Query(max_length=300)] = "",
    gaps_only: Annotated[bool, Query()] = True,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MatrixQuery:
    return MatrixQuery(domain=domain, type=type, host=host, q=q, gaps_only=gaps_only, page=page, per_page=per_page)


def _page_link(request: Request, number: int) -> str:
    return str(request.url.include_query_params(page=number).path) + "?" + str(
        request.url.include_query_params(page=number).query)


def _who() -> str:
    try:
        return f"{getpass.getuser()} (dashboard)"
    except (KeyError, OSError):
        return "dashboard"

