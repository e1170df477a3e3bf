"""The SSH fleet harness itself: hosts answer over SSH, are separate users, and can
install pip and npm packages in a fresh login when given the install environment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .fleet import Fleet

pytestmark = pytest.mark.integration


def _recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    recap: dict[str, dict[str, int]] = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if m and "ok=" in m.group(2):
            recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return recap


def _write_playbook(path: Path, plays: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def _host_status(stdout: str) -> dict[str, str]:
    """Ad-hoc one-line output: 'pc1 | SUCCESS => ...' -> {'pc1': 'SUCCESS'}."""
    return dict(re.findall(r"^(\S+) \| (\w+)", stdout, flags=re.MULTILINE))


def test_ping_reaches_every_host_over_ssh(ssh_fleet: Fleet) -> None:
    proc = ssh_fleet.ansible("all", "ansible.builtin.ping", extra_args=["--one-line"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _host_status(proc.stdout) == {"pc1": "SUCCESS", "pc2": "SUCCESS", "pc3": "SUCCESS"}


def test_each_host_is_its_own_user_with_its_own_home(ssh_fleet: Fleet) -> None:
    proc = ssh_fleet.ansible("all", "ansible.builtin.command", "id -un", extra_args=["--one-line"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    users = dict(re.findall(r"^(\S+) \| CHANGED \| rc=0 \| \(stdout\) (\S+)", proc.stdout, re.MULTILINE))
    assert users == {name: h.user for name, h in ssh_fleet.hosts.items()}
    assert len(set(users.values())) == 3

    homes = {h.home for h in ssh_fleet.hosts.values()}
    assert len(homes) == 3
    for name, h in ssh_fleet.hosts.items():
        out = ssh_fleet.run(["sh", "-c", 'echo "$HOME"; stat -c %U "$HOME"; test -x "$0"', str(h.venv_python)], name)
        assert out.stdout.split() == [str(h.home), h.user]
        local = ssh_fleet.run(["sh", "-c", 'id -un; echo "$HOME"'], name, via="runuser")
        assert local.stdout.split() == [h.user, str(h.home)]


def test_ssh_login_lacks_controller_ca_variables(ssh_fleet: Fleet) -> None:
    # Why cyclotron_install_environment exists: a fresh login starts without them.
    out = ssh_fleet.run(["env"], "pc1").stdout
    assert "PIP_CERT=" not in out
    assert "NODE_EXTRA_CA_CERTS=" not in out
    # run(env=...) is how a test hands them over for a single command.
    given = ssh_fleet.run(["printenv", "CYCLOTRON_PROBE"], "pc1", env={"CYCLOTRON_PROBE": "a b;c"}).stdout
    assert given == "a b;c\n"


def test_inventory_carries_per_host_facts_settings(ssh_fleet: Fleet) -> None:
    data = yaml.safe_load(ssh_fleet.inventory_path.read_text())
    for name, h in ssh_fleet.hosts.items():
        hv = data["all"]["hosts"][name]
        assert hv["ansible_user"] == h.user
        assert hv["cyclotron_home"] == str(h.home)
        assert hv["cyclotron_facts_python_environments"] == [str(h.venv)]
        assert hv["cyclotron_facts_npm_prefixes"] == [str(h.npm_prefix)]
    env = data["all"]["vars"]["cyclotron_install_environment"]
    for path in (v for k, v in env.items() if k in {"PIP_CERT", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"}):
        assert ssh_fleet.run(["test", "-r", path], "pc2", check=False).returncode == 0, path


def test_pip_install_into_a_users_venv_over_ssh(ssh_fleet: Fleet, tmp_path: Path) -> None:
    playbook = _write_playbook(
        tmp_path / "pip.yml",
        [
            {
                "name": "Install a tiny wheel into the host's venv",
                "hosts": "pc1",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": "Install six",
                        "ansible.builtin.pip": {"name": "six", "virtualenv": "{{ cyclotron_home }}/venv"},
                        "environment": "{{ cyclotron_install_environment }}",
                    }
                ],
            }
        ],
    )
    first = ssh_fleet.ansible_playbook(playbook)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _recap(first.stdout)["pc1"]["changed"] == 1

    h = ssh_fleet.hosts["pc1"]
    out = ssh_fleet.run([str(h.venv_python), "-c", "import six, sys; print(six.__file__)"], "pc1")
    assert out.stdout.startswith(str(h.venv))
    # Only pc1 got it: the venvs are separate.
    other = ssh_fleet.hosts["pc2"]
    assert ssh_fleet.run([str(other.venv_python), "-c", "import six"], "pc2", check=False).returncode != 0

    again = ssh_fleet.ansible_playbook(playbook)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _recap(again.stdout)["pc1"]["changed"] == 0


def test_npm_global_install_into_a_users_prefix_over_ssh(ssh_fleet: Fleet, tmp_path: Path) -> None:
    if not ssh_fleet.has_node:
        pytest.skip(f"node is not runnable by the fleet users (found in {ssh_fleet.node_bin_dir})")
    playbook = _write_playbook(
        tmp_path / "npm.yml",
        [
            {
                "name": "Install a tiny npm package under the host's prefix",
                "hosts": "pc2",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": "Install is-number",
                        "ansible.builtin.command": {
                            "argv": [
                                "npm",
                                "install",
                                "--global",
                                "--no-audit",
                                "--no-fund",
                                "--prefix",
                                "{{ cyclotron_facts_npm_prefixes[0] }}",
                                "is-number",
                            ],
                            "creates": "{{ cyclotron_facts_npm_prefixes[0] }}/lib/node_modules/is-number",
                        },
                        "environment": "{{ cyclotron_install_environment }}",
                    }
                ],
            }
        ],
    )
    proc = ssh_fleet.ansible_playbook(playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _recap(proc.stdout)["pc2"]["changed"] == 1

    h = ssh_fleet.hosts["pc2"]
    listed = ssh_fleet.run(["npm", "ls", "--global", "--json", "--prefix", str(h.npm_prefix)], "pc2")
    assert "is-number" in json.loads(listed.stdout)["dependencies"]
    owner = ssh_fleet.run(["stat", "-c", "%U", str(h.npm_prefix / "lib" / "node_modules" / "is-number")], "pc2")
    assert owner.stdout.strip() == h.user


def test_one_unreachable_host_does_not_stop_the_others(ssh_fleet: Fleet) -> None:
    inventory = ssh_fleet.make_unreachable("pc3")
    proc = ssh_fleet.ansible("all", "ansible.builtin.ping", inventory=inventory, extra_args=["--one-line"])
    # 4: some hosts were unreachable.
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert _host_status(proc.stdout) == {"pc1": "SUCCESS", "pc2": "SUCCESS", "pc3": "UNREACHABLE"}


def test_stopping_sshd_makes_the_fleet_unreachable_until_restarted(ssh_fleet: Fleet) -> None:
    ssh_fleet.stop_sshd()
    try:
        down = ssh_fleet.ansible("pc1", "ansible.builtin.ping", extra_args=["--one-line"])
        assert down.returncode == 4, down.stdout + down.stderr
        assert _host_status(down.stdout) == {"pc1": "UNREACHABLE"}
    finally:
        ssh_fleet.start_sshd()
    up = ssh_fleet.ansible("pc1", "ansible.builtin.ping", extra_args=["--one-line"])
    assert up.returncode == 0, up.stdout + up.stderr
