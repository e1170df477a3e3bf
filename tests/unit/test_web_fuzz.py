"""The dashboard's API fuzzed with schemathesis against its own OpenAPI schema, in-process over
ASGI: whatever the parameters and bodies, no 500 (bad input is a 4xx). Kept small and bounded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cyclotron_py.commands.serve import build
from cyclotron_py.store import ItemOutcome, Store
from cyclotron_py.web.security import TOKEN_HEADER
from tests.dashboard_support import TESTCLIENT_WARNING, copy_fleet, manifest, serve_args

pytestmark = pytest.mark.filterwarnings(TESTCLIENT_WARNING)
MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def token_and_app() -> tuple[str, object]:
    root = Path(tempfile.mkdtemp(prefix="cyclotron-fuzz-"))
    saved = os.environ.get("CYCLOTRON_STATE_DIR")
    os.environ["CYCLOTRON_STATE_DIR"] = str(root / "state")
    try:
        (root / "state").mkdir(mode=0o700)
        with Store.open(root / "state") as store:
            store.snapshot_manifest(manifest("pc1"))
            store.snapshot_manifest(manifest("pc3"))
            run_id = store.start_run("sync", "semi-auto")
            store.record_hosts(run_id, {"pc1": {"status": "complete"}, "pc3": {"status": "failed", "error": "x"}})
            store.record_items(run_id, [ItemOutcome("pc3", "gh", "failed", reason="apt failed")])
            store.finish_run(run_id, "failed", 2)
            store.queue_approvals([{"host": "pc3", "capability_id": f"api_key:K{n}_API_KEY"} for n in range(5)],
                                  plan_id="plan-fuzz")
        app, token, _ = build(serve_args(copy_fleet(root / "manifests"), host="testserver"))
    finally:
        if saved is None:
            os.environ.pop("CYCLOTRON_STATE_DIR", None)
        else:
            os.environ["CYCLOTRON_STATE_DIR"] = saved
    return token, app


def test_no_input_makes_the_api_fail_with_a_server_error(token_and_app: tuple[str, object]) -> None:
    token, app = token_and_app
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    fuzzed = []
    for result in api.get_all_operations():
        operation = result.ok()

        @given(operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers={TOKEN_HEADER: token}, checks=[not_a_server_error])
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])

        call()
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    assert len(fuzzed) == 8, fuzzed
