"""The dashboard's JSON API and pages in-process (FastAPI TestClient over a real SQLite store):
status codes, the write token, cross-site refusal, headers, escaping."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.commands.serve import allowed_host_names, build, is_loopback
from cyclotron_py.store import Store
from cyclotron_py.web.security import TOKEN_HEADER
from tests.dashboard_support import (
    TESTCLIENT_WARNING,
    XSS,
    asgi_client_class,
    copy_fleet,
    environment,
    manifest,
    running_server,
    serve_args,
)

pytestmark = pytest.mark.filterwarnings(TESTCLIENT_WARNING)
BASE = "http://127.0.0.1:8900"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(path))
    return path


@pytest.fixture
def served(state: Path, tmp_path: Path) -> dict[str, Any]:
    app, token, created = build(serve_args(copy_fleet(tmp_path / "manifests")))
    with Store.open(state) as store:
        ids = store.queue_approvals(
            [{"host": "pc2", "capability_id": "powershell", "risk": "medium", "reason": "risk medium"},
             {"host": "pc3", "capability_id": "gh", "risk": "high", "reason": "risk high"}],
            plan_id="plan-test",
        )
    with asgi_client_class()(app, base_url=BASE) as client:
        yield {"client": client, "token": token, "created": created, "ids": ids, "state": state}


def _post(served: dict[str, Any], approval: int, body: dict[str, Any], **headers: str) -> Any:
    sent = {TOKEN_HEADER: served["token"], **headers}
    return served["client"].post(f"/api/approvals/{approval}", json=body, headers=sent)


def test_token_is_made_once_0600_and_reused(served: dict[str, Any], state: Path, tmp_path: Path) -> None:
    token_file = state / "dashboard-token"
    assert served["created"] and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == served["token"] and len(served["token"]) >= 32
    _, again, created = build(serve_args(tmp_path / "manifests"))
    assert again == served["token"] and not created


def test_every_read_endpoint_answers_json(served: dict[str, Any]) -> None:
    client = served["client"]
    fleet = client.get("/api/fleet").json()
    assert set(fleet["hosts"]) == {"pc1", "pc2", "pc3"} and fleet["pending_approvals"] == 2
    assert fleet["coverage"]["overall"]["percent"] > 0 and fleet["gaps"] > 0
    matrix = client.get("/api/matrix", params={"domain": "ai", "gaps_only": "false", "per_page": 3}).json()
    assert len(matrix["rows"]) == 3 and {r["domain"] for r in matrix["rows"]} == {"ai"}
    assert client.get("/api/hosts/pc2").json()["errors"][0]["source"] == "git"
    assert client.get("/api/runs").json() == {"page": 1, "per_page": 20, "total": 0, "pages": 1, "runs": []}
    assert [a["capability_id"] for a in client.get("/api/approvals").json()] == ["powershell", "gh"]
    schema = client.get("/openapi.json").json()
    assert {"/api/fleet", "/api/matrix", "/api/hosts/{host}", "/api/runs", "/api/runs/{run_id}",
            "/api/runs/{run_id}/events", "/api/approvals", "/api/approvals/{approval_id}"} <= set(schema["paths"])


def test_bad_parameters_get_422_and_unknown_resources_404_json(served: dict[str, Any]) -> None:
    client = served["client"]
    for url in ("/api/matrix?page=0", "/api/matrix?per_page=501", "/api/matrix?gaps_only=maybe",
                "/api/runs?per_page=abc", "/api/runs/0", "/api/approvals?state=bogus"):
        response = client.get(url)
        assert response.status_code == 422, url
        assert response.headers["content-type"] == "application/json"
    for url in ("/api/runs/99", "/api/runs/99/events", "/api/hosts/nohost", "/api/nothing", "/runs/7"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "detail" in response.json()
    assert _post(served, 999, {"decision": "approve"}).status_code == 404


def test_approve_and_reject_write_the_store_the_cli_reads(served: dict[str, Any], state: Path) -> None:
    first, second = served["ids"]
    response = _post(served, first, {"decision": "approve", "reason": "ok for pc2"})
    assert response.status_code == 200 and response.json() == {"id": first, "state": "approved", "changed": True}
    assert _post(served, first, {"decision": "approve"}).status_code == 409
    assert _post(served, second, {"decision": "reject"}).status_code == 422  # a rejection needs a reason
    assert _post(served, second, {"decision": "reject", "reason": "not on pc3"}).json()["state"] == "rejected"
    with Store.open(state) as store:
        approved, rejected = store.approval(first), store.approval(second)
    assert approved["state"] == "approved" and approved["decision_reason"] == "ok for pc2"
    assert approved["decided_by"].endswith("(dashboard)")
    assert rejected["state"] == "rejected" and rejected["decision_reason"] == "not on pc3"
    assert served["client"].get("/api/fleet").json()["pending_approvals"] == 0


def test_writes_need_the_token_and_refuse_cross_site_requests(served: dict[str, Any], state: Path) -> None:
    client, approval = served["client"], served["ids"][0]
    body = {"decision": "approve"}
    assert client.post(f"/api/approvals/{approval}", json=body).status_code == 401
    assert client.post(f"/api/approvals/{approval}", json=body, headers={TOKEN_HEADER: "wrong"}).status_code == 401
    assert _post(served, approval, body, Origin="http://evil.example").status_code == 403
    assert _post(served, approval, body, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    form = client.post(f"/api/approvals/{approval}", content="decision=approve",
                       headers={TOKEN_HEADER: served["token"], "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    # a page from elsewhere that resolves its own name to 127.0.0.1 (DNS rebinding) reads nothing
    assert client.get("/api/fleet", headers={"Host": "evil.example"}).status_code == 400
    with Store.open(state) as store:
        assert store.approval(approval)["state"] == "pending"
    assert _post(served, approval, body, Origin=BASE, **{"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_pages_render_escape_untrusted_strings_and_set_no_cookie(served: dict[str, Any], state: Path,
                                                               tmp_path: Path) -> None:
    with Store.open(state) as store:
        hostile = manifest("pc1")
        hostile["capabilities"][0]["name"] = XSS
        hostile["errors"] = [{"source": "git", "message": XSS}]
        store.snapshot_manifest(hostile)
        store.queue_approvals([{"host": XSS, "capability_id": "git", "reason": XSS}], plan_id=XSS)
        run_id = store.start_run("sync", "manual")
        store.record_hosts(run_id, {XSS: {"status": "in progress", "current_task": XSS, "error": XSS}})
    client = served["client"]
    for url in ("/", "/?gaps_only=false", "/runs", f"/runs/{run_id}", "/approvals", "/hosts/pc1"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert XSS not in response.text, url
        assert "set-cookie" not in response.headers
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get("/?gaps_only=false").text
    assert client.get("/api/approvals").json()[-1]["host"] == XSS  # JSON carries it as data


def test_binding_beyond_loopback_is_flagged() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert allowed_host_names("0.0.0.0") == ("*",)
    assert "192.168.1.5" in allowed_host_names("192.168.1.5")


def test_serve_prints_the_token_once_and_warns_beyond_loopback(tmp_path: Path) -> None:
    env = environment(tmp_path / "state")
    with running_server(env, "--manifests", str(copy_fleet(tmp_path / "m"))) as (_, first):
        pass
    out, err = first.captured
    token = (tmp_path / "state" / "dashboard-token").read_text().strip()
    assert f"write token (shown once; kept 0600 in {tmp_path / 'state' / 'dashboard-token'}): {token}" in out
    assert f"#token={token}" in out and "WARNING" not in err
    with running_server(env, "--host", "0.0.0.0", "--manifests", str(tmp_path / "m")) as (base, second):
        assert base.startswith("http://127.0.0.1:")
    out, err = second.captured
    assert token not in out and "write token: in " in out
    assert "WARNING: listening on 0.0.0.0" in err
