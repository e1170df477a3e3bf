"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against `cyclotron serve`
on a free 127.0.0.1 port: the grid's colours and coverage, filters, an approve click, a real
`cyclotron run` watched live, the XSS case, no secret on any endpoint after an API-key sync, and
the README's screenshot."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.store import ItemOutcome, Store
from tests.dashboard_support import (
    CHROMIUM,
    REPO_ROOT,
    XSS,
    chromium,
    copy_fleet,
    environment,
    manifest,
    running_server,
)
from tests.integration.test_runs_local import SECRET_IN_CONTROLLER_ENV, SECRET_IN_HOME, _vault, fleet  # noqa: F401

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make deps installs it)"),
]
SCREENSHOT = REPO_ROOT / "docs" / "dashboard.png"
PRESENT, MISSING, AWAITING, FAILED = "rgb(27, 127, 59)", "rgb(198, 40, 40)", "rgb(21, 101, 192)", "rgb(123, 31, 162)"


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, Any]:
    """The three fixture PCs, plus what a store holds after a run: a pending approval and a failure."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with Store.open(state) as store:
        approval = store.queue_approvals(
            [{"host": "pc2", "capability_id": "powershell", "risk": "medium", "reason": "risk medium: asks a person"}],
            plan_id="plan-demo",
        )[0]
        run_id = store.start_run("sync", "semi-auto")
        store.record_hosts(run_id, {
            "pc1": {"status": "complete", "ok": 12, "items_total": 3, "items_done": 3},
            "pc2": {"status": "complete", "ok": 9, "items_total": 2, "items_done": 2},
            "pc3": {"status": "failed", "failed": 1, "items_total": 2, "items_done": 2,
                    "error": "Install gh: No package matching 'gh' is available"},
        })
        store.record_items(run_id, [
            ItemOutcome("pc1", "jq", "installed", manager="winget", package="jqlang.jq", version_after="1.7.1"),
            ItemOutcome("pc3", "gh", "failed-rolled-back", manager="apt", package="gh",
                        reason="No package matching 'gh' is available"),
        ])
        store.finish_run(run_id, "failed", 2)
    copy_fleet(tmp_path / "manifests")
    return {"state": state, "root": tmp_path, "approval": approval, "run": run_id}


def _serve(setup: dict[str, Any]) -> Any:
    # from the fleet's directory with the default --manifests, as after `make demo`
    return running_server(environment(setup["state"]), cwd=setup["root"])


def _token(state: Path) -> str:
    return (state / "dashboard-token").read_text().strip()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _cell(page: Any, cid: str, host: str) -> Any:
    return page.locator(f'tr.cap-row[data-id="{cid}"] td.cell[data-host="{host}"]')


def _background(locator: Any) -> str:
    return str(locator.evaluate("el => getComputedStyle(el).backgroundColor"))


def test_grid_shows_each_state_in_colour_with_a_label_and_the_coverage(demo: dict[str, Any]) -> None:
    with _serve(demo) as (base, _), chromium() as browser:
        fleet_doc = _get_json(base + "/api/fleet")
        page = browser.new_page()
        page.goto(base + "/")
        assert page.locator("th.host").all_inner_texts() == [
            f"{h}\n{fleet_doc['hosts'][h]['coverage']['percent']}%" for h in ("pc1", "pc2", "pc3")
        ]
        assert page.locator("#coverage-overall").inner_text() == f"{fleet_doc['coverage']['overall']['percent']}%"
        for domain, figure in fleet_doc["coverage"]["by_domain"].items():
            shown = page.locator(f'.summary .domain-cov[data-domain="{domain}"]').inner_text()
            assert shown == f"{domain} {figure['percent']}%"
        git_row = page.locator('tr.cap-row[data-id="git"] td.row-cov').inner_text()
        assert git_row == "100.0%"  # every host has git (at different versions)
        expected = {
            ("git", "pc1"): ("present", PRESENT, "present 2.47.1"),
            ("powershell", "pc3"): ("missing", MISSING, "missing"),
            ("powershell", "pc2"): ("awaiting", AWAITING, "awaiting approval (medium risk)"),
            ("gh", "pc3"): ("failed", FAILED, "failed: No package matching 'gh' is available"),
        }
        for (cid, host), (state, colour, label) in expected.items():
            cell = _cell(page, cid, host)
            assert cell.get_attribute("data-state") == state
            assert _background(cell) == colour, (cid, host)
            assert cell.inner_text() == label
        drift = _cell(page, "git", "pc2")
        assert drift.get_attribute("data-state") == "drift" and "2.43.0" in drift.inner_text()
        assert "2.47.1" in drift.inner_text()
        assert _cell(page, "htop", "pc1").inner_text().startswith("unportable: ")
        # gaps only by default: git is drifted so it stays, a capability every host has at one version does not
        assert page.locator('tr.cap-row[data-id="api_key:ANTHROPIC_API_KEY"]').count() == 0
        page.screenshot(path=str(SCREENSHOT), full_page=False)


def test_a_filter_narrows_the_rows(demo: dict[str, Any]) -> None:
    with _serve(demo) as (base, _), chromium() as browser:
        page = browser.new_page()
        page.goto(base + "/?gaps_only=false")
        everything = page.locator("tr.cap-row").count()
        page.select_option("select[name=domain]", "ai")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**domain=ai**")
        domains = page.locator("tr.cap-row").evaluate_all("rows => rows.map(r => r.dataset.domain)")
        assert 0 < len(domains) < everything and set(domains) == {"ai"}
        page.fill("input[name=q]", "filesystem")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**q=filesystem**")
        assert page.locator("tr.cap-row").evaluate_all("rows => rows.map(r => r.dataset.id)") == ["mcp:filesystem"]


def test_an_approve_click_changes_the_store(demo: dict[str, Any]) -> None:
    with _serve(demo) as (base, _), chromium() as browser:
        page = browser.new_page()
        page.goto(f"{base}/approvals#token={_token(demo['state'])}")
        assert page.evaluate("window.location.hash") == ""  # the token left the address bar
        from playwright.sync_api import expect

        row = page.locator(f'tr[data-approval="{demo["approval"]}"]')
        row.locator("input[name=reason]").fill("fine on pc2")
        row.locator("button.approve").click()
        expect(page.locator("#decision-result")).to_contain_text("approved")
        with Store.open(demo["state"]) as store:
            decided = store.approval(demo["approval"])
        assert decided["state"] == "approved" and decided["decision_reason"] == "fine on pc2"
        page.wait_for_selector(f'tr[data-approval="{demo["approval"]}"]', state="detached")


def test_untrusted_strings_render_as_text_and_run_no_script(tmp_path: Path, demo: dict[str, Any]) -> None:
    with Store.open(demo["state"]) as store:
        hostile = manifest("pc1")
        hostile["capabilities"][0]["name"] = XSS
        hostile["errors"] = [{"source": "npm", "message": XSS}]
        store.snapshot_manifest(hostile)
        store.snapshot_manifest(manifest("pc2"))
        store.queue_approvals([{"host": XSS, "capability_id": "git", "reason": XSS, "risk": XSS}], plan_id=XSS)
        run_id = store.start_run("sync", "manual")
        store.record_hosts(run_id, {XSS: {"status": "in progress", "current_task": XSS, "error": XSS}})
        store.record_items(run_id, [ItemOutcome(XSS, "git", "failed", reason=XSS)])
    with _serve(demo) as (base, _), chromium() as browser:
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        for url in ("/?gaps_only=false", "/approvals", f"/runs/{run_id}", "/runs", "/hosts/pc1"):
            page.goto(base + url)
            page.wait_for_load_state("load")
            assert page.locator('img[src="x"]').count() == 0, url
            assert page.get_by_text(XSS, exact=False).count() > 0, url
        page.goto(base + "/?gaps_only=false")
        page.wait_for_timeout(2500)  # a live refresh (a run is active: every 2 s) swaps the content in
        assert page.locator('img[src="x"]').count() == 0
        assert dialogs == []


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cyclotron_py.cli", *args], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_real_run_shows_live_progress_then_complete_and_no_secret_reaches_any_endpoint(
    fleet: dict[str, Path], tmp_path: Path  # noqa: F811 - the fixture from test_runs_local
) -> None:
    value = "sk-vault-" + secrets.token_hex(20)
    (fleet["pca"] / ".env").write_text(f"ANTHROPIC_API_KEY={value}\n")
    password = _vault(fleet, tmp_path, {"ANTHROPIC_API_KEY": value})
    env = environment(fleet["state"])
    out = fleet["out"]
    manifests = out / "manifest"
    dirs = [a for d in ("manifest", "plans", "generated", "reports") for a in ("-e", f"cyclotron_{d}_dir={out / d}")]
    with running_server(env, "--manifests", str(manifests)) as (base, server), chromium() as browser:
        page = browser.new_page()
        page.goto(base + "/")
        assert page.locator("#current-run").count() == 0
        run = _cli("run", "-i", str(fleet["inventory"]), *dirs, "--mode", "full-auto",
                   "--vault-password-file", str(password), env=env)
        seen: list[tuple[str, ...]] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if run.poll() is not None and page.locator("#current-run").count() == 0:
                break
            rows = page.locator("#current-run tr.host-progress")
            snapshot = tuple(rows.evaluate_all(
                "rows => rows.map(r => [r.dataset.host, r.dataset.status, r.querySelector('.task').textContent,"
                " r.querySelector('.done').textContent + '/' + r.querySelector('.total').textContent].join(' '))"))
            if snapshot and (not seen or seen[-1] != snapshot):
                seen.append(snapshot)
            page.wait_for_timeout(300)
        output = run.communicate(timeout=60)[0]
        assert run.returncode == 0, output
        assert value not in output
        # The page saw the run's hosts move (status, task or items changed) while it ran, then the
        # live panel went and the run shows complete.
        assert len(seen) >= 2, seen
        assert any("in progress" in line for snap in seen for line in snap), seen
        assert page.locator("#current-run").count() == 0
        page.goto(base + "/runs")
        first = page.locator("#runs tbody tr").first
        # pca, pcb and the controller (localhost plays the plan and report steps)
        assert "successful" in first.inner_text() and first.locator(".counts").inner_text() == "3 ok"
        run_id = first.get_attribute("data-run")
        page.goto(f"{base}/runs/{run_id}")
        statuses = page.locator("tr.host-progress").evaluate_all("rows => rows.map(r => r.dataset.status)")
        assert statuses and set(statuses) == {"complete"}, statuses
        assert "1/1" in page.locator('tr.host-progress[data-host="pcb"]').inner_text()
        assert "api_key:ANTHROPIC_API_KEY" in page.locator("#items").inner_text()

        # No endpoint, page or API, carries a secret value after the API-key sync.
        bodies = _every_endpoint(base, run_id or "1")
        for url, body in bodies.items():
            for secret in (value, SECRET_IN_HOME, SECRET_IN_CONTROLLER_ENV, _token(fleet["state"])):
                assert secret not in body, url
        assert len(bodies) >= 15
        server.terminate()


def _every_endpoint(base: str, run_id: str) -> dict[str, str]:
    schema = _get_json(base + "/openapi.json")
    values = {"host": ["pca", "pcb"], "run_id": [run_id], "approval_id": ["1"]}
    urls = ["/", "/?gaps_only=false", "/runs", f"/runs/{run_id}", "/approvals", "/hosts/pca", "/hosts/pcb",
            "/api/approvals?state=all", "/api/matrix?gaps_only=false&per_page=500", "/openapi.json",
            "/static/app.js"]
    for path, methods in schema["paths"].items():
        if "get" not in methods:
            continue
        expanded = [path]
        for name, options in values.items():
            expanded = [p.replace("{" + name + "}", o) for p in expanded for o in options]
        urls += expanded
    bodies = {}
    for url in urls:
        try:
            with urllib.request.urlopen(base + url, timeout=30) as response:
                bodies[url] = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            assert exc.code < 500, url
            bodies[url] = exc.read().decode("utf-8", "replace")
    return bodies
