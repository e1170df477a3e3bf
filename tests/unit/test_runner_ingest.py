"""The event consumer, fed a recorded ansible-runner event stream (a real manual sync of two hosts)."""

from __future__ import annotations

import json
from pathlib import Path

from cyclotron_py.runner import RunState, _exit_code, ingest, minimal_environment
from cyclotron_py.store import ItemOutcome

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "runner" / "manual_sync_two_hosts.json"


def replay(events: list[dict]) -> RunState:
    state = RunState()
    for event in events:
        ingest(state, event)
    return state


def test_a_recorded_manual_sync_replays_into_hosts_plan_and_approvals() -> None:
    state = replay(json.loads(FIXTURE.read_text()))
    assert {"pca", "pcb"} <= set(state.hosts)
    assert state.plan_id.startswith("plan-")
    assert [(a["host"], a["capability_id"]) for a in state.awaiting] == [("pcb", "api_key:ANTHROPIC_API_KEY")]
    assert {m["host"] for m in state.manifests} == {"pca", "pcb"}
    assert state.coverage_before == 50.0 and state.coverage_after == 50.0
    assert state.outcomes == []
    assert all(h.failed == 0 and h.unreachable == 0 for h in state.hosts.values())
    assert _exit_code(0, state) == (0, "successful")


def test_unreachable_failed_and_censored_events() -> None:
    state = replay([
        {"event": "runner_on_start", "event_data": {"host": "pc1", "task": "Install six"}},
        {"event": "runner_on_unreachable", "event_data": {"host": "pc3", "res": {"msg": "ssh: connect refused"}}},
        {"event": "runner_on_failed", "event_data": {"host": "pc2", "task": "Write key", "res": {"censored": "x"}}},
        {"event": "runner_on_failed", "event_data": {"host": "pc1", "ignore_errors": True, "res": {"msg": "ok"}}},
        {"event": "runner_on_ok", "event_data": {"host": "pc2", "task_action": "cyclotron_sync_report",
                                                 "res": {"censored": "the output has been hidden"}}},
    ])
    assert state.hosts["pc3"].status == "unreachable" and "connect refused" in state.hosts["pc3"].error
    assert state.hosts["pc2"].status == "failed" and "hidden by no_log" in state.hosts["pc2"].error
    assert state.hosts["pc1"].ok == 1 and state.hosts["pc1"].current_task == "Install six"
    assert state.outcomes == []  # a censored result is never read
    assert _exit_code(2, state)[0] == 4


def test_a_failed_report_task_still_carries_the_outcomes() -> None:
    """sync.yml's report task fails on purpose when an item failed: its result is read all the same."""
    report = {"outcomes": {"pc2": [{"id": "colorama", "status": "failed_rolled_back", "manager": "pip",
                                    "package": "colorama", "reason": "verify: no match"}]},
              "coverage_after": {"overall": {"percent": 75.0}}}
    state = replay([{"event": "runner_on_failed", "event_data": {
        "host": "localhost", "task_action": "cyclotron_sync_report",
        "res": {"failed": True, "msg": "1 item(s) failed", "report": report, "lines": ["pc2: colorama failed"]}}}])
    assert [(o.host, o.capability_id, o.outcome) for o in state.outcomes] == [
        ("pc2", "colorama", "failed_rolled_back")]
    assert state.coverage_after == 75.0 and state.summary_lines == ["pc2: colorama failed"]
    assert _exit_code(2, state) == (2, "failed")


def test_items_done_follow_the_installer_outcome_list_live() -> None:
    state = RunState()
    plan = {"plan_id": "plan-1", "hosts": [{"host": "pc2", "items": [{"id": "six"}, {"id": "pip:tomli"}]}]}
    touched = ingest(state, {"event": "runner_on_ok", "event_data": {
        "host": "localhost", "task_action": "cyclotron_plan", "res": {"plan": plan}}})
    assert touched == {"localhost", "pc2"} and state.hosts["pc2"].items_total == 2
    record = {"event": "runner_on_ok", "event_data": {"host": "pc2", "task_action": "ansible.builtin.set_fact", "res": {
        "ansible_facts": {"cyclotron_outcomes": [{"id": "six", "status": "installed"}]}}}}
    assert ingest(state, record) == {"pc2"}
    assert (state.hosts["pc2"].items_done, state.outcomes) == (1, [])  # counted, not yet recorded as outcomes


def test_failed_items_give_exit_2() -> None:
    state = RunState(outcomes=[ItemOutcome("pc1", "pip:nope", "failed_rolled_back")])
    assert _exit_code(2, state) == (2, "failed")


def test_minimal_environment_drops_credentials_and_keeps_what_ansible_needs() -> None:
    env = minimal_environment({
        "PATH": "/usr/bin", "HOME": "/root", "ANSIBLE_HOME": "/tmp/a", "OPENAI_API_KEY": "sk-1",
        "GITHUB_TOKEN": "ghp_x", "ANSIBLE_VAULT_PASSWORD": "hunter2", "ANSIBLE_VAULT_PASSWORD_FILE": "/p",
        "HTTPS_PROXY": "http://proxy:3128", "SSL_CERT_FILE": "/ca.pem", "AWS_SECRET_ACCESS_KEY": "x",
        "CYCLOTRON_STATE_DIR": "/s", "RANDOM_THING": "1",
    })
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "ANSIBLE_HOME": "/tmp/a", "ANSIBLE_VAULT_PASSWORD_FILE": "/p",
                   "HTTPS_PROXY": "http://proxy:3128", "SSL_CERT_FILE": "/ca.pem", "CYCLOTRON_STATE_DIR": "/s"}
