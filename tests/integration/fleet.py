"""A fleet of simulated PCs on this one machine, reached over real SSH.

Each PC is its own Unix user (``cyc-pc1`` ...) with its own home, Python venv and npm
prefix, behind a private ``sshd`` listening on 127.0.0.1 at a free high port. The
fixture in ``conftest.py`` builds one per test session; tests drive it with Ansible
exactly as a real fleet would be driven.

Choices worth knowing:

* Users get the password ``*`` (not the ``!`` useradd leaves): with ``UsePAM no``
  sshd treats ``!`` as a locked account and refuses even key logins.
* The target interpreter is ``/usr/bin/python3``: pyenv pythons under ``/root`` are
  not readable by other users.
* SSH logins do not inherit the controller's CA and proxy variables, so they are
  copied into the ``cyclotron_install_environment`` inventory variable (a CA file the
  test users cannot read is copied to a world-readable place first).
* ``node``/``npm``: when ``node`` is in a directory outside sshd's default PATH but
  readable by the users, that directory is prepended to ``PATH`` in
  ``cyclotron_install_environment``; when the users cannot run it at all,
  ``Fleet.has_node`` is False and npm tests skip.
* Several sessions may run at once on a shared machine: each takes a slot (an flock
  under /tmp) and slot N > 0 names its users ``cycN-pc1`` ...; stale users of the
  slot left by a crashed run are removed before new ones are made.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

HOST_NAMES: tuple[str, ...] = ("pc1", "pc2", "pc3")
MAX_SLOTS = 8
LOCK_DIR = Path("/tmp")
# Shared (world-readable) scratch for files the test users must read, e.g. a CA copy.
SHARED_BASE = Path("/var/tmp")
# What sshd gives a non-interactive login on Debian when nothing else sets PATH.
SSHD_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"
CA_VARS: tuple[str, ...] = ("NODE_EXTRA_CA_CERTS", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
# Proxy and index settings travel with the CA: without them a login may not reach the registries.
PASSTHROUGH_VARS: tuple[str, ...] = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
)
REPO_ROOT = Path(__file__).resolve().parents[2]


class FleetError(RuntimeError):
    """The fleet could not be built or driven; the message says which step failed."""


@dataclass(frozen=True)
class FleetHost:
    name: str
    user: str
    uid: int
    gid: int
    home: Path
    venv: Path
    venv_python: Path
    npm_prefix: Path
    port: int


@dataclass
class Fleet:
    workdir: Path
    slot: int
    port: int
    hosts: dict[str, FleetHost]
    inventory_path: Path
    key_path: Path
    sshd_config: Path
    sshd_log: Path
    ansible_home: Path
    python_interpreter: str
    install_environment: dict[str, str]
    node_bin_dir: Path | None
    has_node: bool
    shared_dir: Path
    repo_root: Path = REPO_ROOT
    _sshd: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _lock: IO[str] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ commands
    def run(
        self,
        argv: Sequence[str],
        host: str,
        *,
        via: str = "ssh",
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as the host's user, over SSH (a real login) or with ``runuser``."""
        h = self.hosts[host]
        prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())] if env else []
        if via == "ssh":
            cmd = [*self._ssh_base(h.port), f"{h.user}@127.0.0.1", "--", shlex.join([*prefix, *argv])]
        elif via == "runuser":
            base_env = {"HOME": str(h.home), "USER": h.user, "LOGNAME": h.user, "PATH": SSHD_DEFAULT_PATH}
            base_env.update(env or {})
            cmd = ["runuser", "-u", h.user, "--", "env", "-i", *(f"{k}={v}" for k, v in base_env.items())]
            cmd += list(argv)
        else:
            raise ValueError(f"via must be 'ssh' or 'runuser', not {via!r}")
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=h.home if via == "runuser" else None,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise FleetError(
                f"{shlex.join(argv)} as {h.user} via {via} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for ansible commands on the controller."""
        env = dict(os.environ)
        env.pop("ANSIBLE_FORCE_COLOR", None)
        env.update(
            ANSIBLE_CONFIG=str(self.repo_root / "ansible.cfg"),
            ANSIBLE_HOME=str(self.ansible_home),
            # Own fact cache: the demo fleet uses the same host names.
            ANSIBLE_CACHE_PLUGIN_CONNECTION=str(self.workdir / "facts"),
            ANSIBLE_NOCOLOR="1",
            PYTHONUNBUFFERED="1",
            npm_config_cache=str(self.workdir / "npm-cache"),
        )
        env.update(extra or {})
        return env

    def ansible_playbook(
        self,
        playbook: str | os.PathLike[str],
        extra_vars: Mapping[str, Any] | None = None,
        check: bool = False,
        tags: str | Iterable[str] | None = None,
        *,
        inventory: str | os.PathLike[str] | None = None,
        limit: str | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 1800,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ansible-playbook`` against the fleet; never raises on a failed play."""
        path = Path(playbook)
        if not path.is_absolute():
            path = self.repo_root / path
        cmd = [_venv_tool("ansible-playbook"), "-i", str(inventory or self.inventory_path), str(path)]
        if extra_vars:
            cmd += ["--extra-vars", json.dumps(dict(extra_vars))]
        if check:
            cmd.append("--check")
        if tags:
            cmd += ["--tags", tags if isinstance(tags, str) else ",".join(tags)]
        if limit:
            cmd += ["--limit", limit]
        cmd += list(extra_args)
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=self.repo_root,
            env=self.env(env),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ansible(
        self,
        pattern: str,
        module: str,
        args: str | None = None,
        *,
        inventory: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run an ad-hoc ``ansible PATTERN -m MODULE [-a ARGS]`` against the fleet."""
        cmd = [_venv_tool("ansible"), pattern, "-i", str(inventory or self.inventory_path), "-m", module]
        if args is not None:
            cmd += ["-a", args]
        cmd += list(extra_args)
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=self.repo_root,
            env=self.env(),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    # ------------------------------------------------------------------ faults
    def make_unreachable(self, *hosts: str) -> Path:
        """Write a copy of the inventory where ``hosts`` point at a port nobody listens on."""
        for host in hosts:
            if host not in self.hosts:
                raise KeyError(f"no fleet host {host!r}; hosts are {sorted(self.hosts)}")
        data = yaml.safe_load(self.inventory_path.read_text())
        dead_port = _free_port()
        for host in hosts:
            data["all"]["hosts"][host]["ansible_port"] = dead_port
        path = self.workdir / f"inventory-unreachable-{'-'.join(hosts)}.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def stop_sshd(self) -> None:
        """Stop the fleet's sshd (and cached SSH connections): every host becomes unreachable."""
        self.close_connections()
        if self._sshd is not None:
            _terminate(self._sshd)
            self._sshd = None
        # Sessions forked before the stop would otherwise keep answering.
        for h in self.hosts.values():
            _kill_user_processes(h.uid)

    def start_sshd(self) -> None:
        if self._sshd is not None and self._sshd.poll() is None:
            return
        self._sshd = _start_sshd(self.sshd_config, self.sshd_log, self.port)
        _write_state(self.slot, {"sshd_pid": self._sshd.pid, "sshd_config": str(self.sshd_config)})

    @property
    def sshd_running(self) -> bool:
        return self._sshd is not None and self._sshd.poll() is None

    def close_connections(self) -> None:
        """End ControlPersist masters Ansible left under this fleet's ANSIBLE_HOME."""
        cp = self.ansible_home / "cp"
        if not cp.is_dir():
            return
        for sock in cp.iterdir():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "fleet"],
                capture_output=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()

    # ------------------------------------------------------------------ teardown
    def teardown(self) -> None:
        self.stop_sshd()
        for h in self.hosts.values():
            _delete_user(h.user)
        shutil.rmtree(self.shared_dir, ignore_errors=True)
        _clear_state(self.slot)
        if self._lock is not None:
            self._lock.close()  # releases the slot
            self._lock = None

    def _ssh_base(self, port: int) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.key_path),
            "-p",
            str(port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
        ]


# ---------------------------------------------------------------------- building
def skip_reason() -> str | None:
    """Why this machine cannot host the fleet, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to create users and sshd; CI runs these"
    if _sshd_binary() is None:
        return "sshd not found (apt-get install openssh-server); CI runs these"
    for tool in ("useradd", "userdel", "usermod", "runuser", "ssh", "ssh-keygen"):
        if shutil.which(tool, path=_sbin_path()) is None:
            return f"{tool} not found; CI runs these"
    if not Path("/usr/bin/python3").exists() and shutil.which("python3", path=SSHD_DEFAULT_PATH) is None:
        return "no system python3 the fleet users could run (apt-get install python3 python3-venv)"
    return None


def build_fleet(workdir: Path, hosts: Sequence[str] = HOST_NAMES) -> Fleet:
    """Create users, keys, sshd and inventory under ``workdir``; the caller must ``teardown()``."""
    workdir.mkdir(parents=True, exist_ok=True)
    slot, lock = _take_slot()
    _clear_stale(slot)
    prefix = "cyc" if slot == 0 else f"cyc{slot}"
    shared_dir = SHARED_BASE / f"cyclotron-fleet-slot{slot}"
    shutil.rmtree(shared_dir, ignore_errors=True)
    shared_dir.mkdir(mode=0o755)
    shared_dir.chmod(0o755)

    port = _free_port()
    fleet_hosts: dict[str, FleetHost] = {}
    partial = Fleet(
        workdir=workdir,
        slot=slot,
        port=port,
        hosts=fleet_hosts,
        inventory_path=workdir / "inventory.yml",
        key_path=workdir / "id_ed25519",
        sshd_config=workdir / "sshd_config",
        sshd_log=workdir / "sshd.log",
        ansible_home=workdir / "ansible-home",
        python_interpreter="",
        install_environment={},
        node_bin_dir=None,
        has_node=False,
        shared_dir=shared_dir,
        _lock=lock,
    )
    try:
        _ssh_keygen(partial.key_path)
        _ssh_keygen(workdir / "ssh_host_ed25519_key")
        pubkey = (workdir / "id_ed25519.pub").read_text()
        for name in hosts:
            user = f"{prefix}-{name}"
            fleet_hosts[name] = _create_user(name, user, port, pubkey)

        first = next(iter(fleet_hosts.values()))
        partial.python_interpreter = _pick_interpreter(first)
        with ThreadPoolExecutor(max_workers=len(fleet_hosts)) as pool:
            list(pool.map(lambda h: _prepare_home(h, partial.python_interpreter), fleet_hosts.values()))

        partial.install_environment = _install_environment(first, shared_dir)
        partial.node_bin_dir, partial.has_node = _node_location(first)
        if partial.has_node and partial.node_bin_dir is not None:
            login_path = SSHD_DEFAULT_PATH.split(":")
            if str(partial.node_bin_dir) not in login_path:
                partial.install_environment["PATH"] = f"{partial.node_bin_dir}:{SSHD_DEFAULT_PATH}"

        partial.ansible_home.mkdir(exist_ok=True)
        _write_sshd_config(partial, [h.user for h in fleet_hosts.values()])
        _write_inventory(partial)
        partial.start_sshd()
        _wait_for_login(partial, first)
    except BaseException:
        partial.teardown()
        raise
    return partial


def _create_user(name: str, user: str, port: int, pubkey: str) -> FleetHost:
    home = Path("/home") / user
    _run(
        [
            "useradd",
            "--create-home",
            "--home-dir",
            str(home),
            "--shell",
            "/bin/bash",
            "--comment",
            f"cyclotron test fleet {name}",
            user,
        ]
    )
    # '!' (useradd's default) is a locked account to sshd without PAM, even for keys.
    _run(["usermod", "-p", "*", user])
    pw = pwd.getpwnam(user)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey)
    (ssh_dir / "authorized_keys").chmod(0o600)
    for p in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    venv = home / "venv"
    return FleetHost(
        name=name,
        user=user,
        uid=pw.pw_uid,
        gid=pw.pw_gid,
        home=home,
        venv=venv,
        venv_python=venv / "bin" / "python",
        npm_prefix=home / ".npm-global",
        port=port,
    )


def _prepare_home(h: FleetHost, python: str) -> None:
    """Give the user a venv and an npm prefix of their own, as a real developer has."""
    as_user = ["runuser", "-u", h.user, "--", "env", "-i", f"HOME={h.home}", f"PATH={SSHD_DEFAULT_PATH}"]
    _run([*as_user, python, "-m", "venv", str(h.venv)], cwd=h.home)
    _run([*as_user, "mkdir", "-p", str(h.npm_prefix)], cwd=h.home)
    # A per-user npm prefix so `npm -g` works without root, as on a developer's machine.
    npmrc = h.home / ".npmrc"
    npmrc.write_text(f"prefix={h.npm_prefix}\n")
    os.chown(npmrc, h.uid, h.gid)


def _pick_interpreter(h: FleetHost) -> str:
    candidates = ["/usr/bin/python3", *(p for p in [shutil.which("python3", path=SSHD_DEFAULT_PATH)] if p)]
    for candidate in candidates:
        if _user_can(h, ["test", "-x", candidate]) and _user_can(h, [candidate, "-c", "import venv"]):
            return candidate
    raise FleetError(
        f"no python3 that user {h.user} can run and that has venv (tried {candidates}); "
        "apt-get install python3 python3-venv"
    )


def _install_environment(h: FleetHost, shared_dir: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    copies: dict[str, str] = {}
    for var in CA_VARS:
        value = os.environ.get(var)
        if not value:
            continue
        if _user_can(h, ["test", "-r", value]):
            env[var] = value
            continue
        if not Path(value).is_file():
            continue  # a dangling setting on the controller; nothing to pass on
        if value not in copies:
            dest = shared_dir / f"ca-{len(copies)}-{Path(value).name}"
            shutil.copyfile(value, dest)
            dest.chmod(0o644)
            copies[value] = str(dest)
        env[var] = copies[value]
    for var in PASSTHROUGH_VARS:
        if os.environ.get(var):
            env[var] = os.environ[var]
    return env


def _node_location(h: FleetHost) -> tuple[Path | None, bool]:
    node = shutil.which("node") or shutil.which("node", path=SSHD_DEFAULT_PATH)
    if node is None:
        return None, False
    node_dir = Path(node).parent
    npm = node_dir / "npm"
    ok = _user_can(h, [str(Path(node)), "--version"]) and (
        not npm.exists() or _user_can(h, ["test", "-x", str(npm.resolve())])
    )
    return node_dir, ok


def _write_sshd_config(fleet: Fleet, users: Sequence[str]) -> None:
    fleet.sshd_config.write_text(
        "\n".join(
            [
                f"Port {fleet.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {fleet.workdir / 'ssh_host_ed25519_key'}",
                f"PidFile {fleet.workdir / 'sshd.pid'}",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin no",
                f"AllowUsers {' '.join(users)}",
                "UseDNS no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                # Ansible opens several sessions per host at once (forks, ControlMaster).
                "MaxStartups 100:30:200",
                "MaxSessions 100",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    sshd = _sshd_binary()
    assert sshd is not None
    _privsep_dir()
    check = subprocess.run([sshd, "-t", "-f", str(fleet.sshd_config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise FleetError(f"sshd rejected {fleet.sshd_config}: {check.stderr.strip()}")


def _write_inventory(fleet: Fleet) -> None:
    hosts: dict[str, Any] = {}
    for name, h in fleet.hosts.items():
        hosts[name] = {
            "ansible_port": h.port,
            "ansible_user": h.user,
            "cyclotron_home": str(h.home),
            "cyclotron_facts_python_environments": [str(h.venv)],
            "cyclotron_facts_npm_prefixes": [str(h.npm_prefix)],
            "cyclotron_facts_env_files": [str(h.home / ".env")],
            "cyclotron_facts_git_roots": [str(h.home / "src")],
        }
    data = {
        "all": {
            "vars": {
                "ansible_connection": "ssh",
                "ansible_host": "127.0.0.1",
                "ansible_ssh_private_key_file": str(fleet.key_path),
                "ansible_ssh_extra_args": "-o IdentitiesOnly=yes",
                "ansible_python_interpreter": fleet.python_interpreter,
                "cyclotron_install_environment": fleet.install_environment,
            },
            "hosts": hosts,
        }
    }
    fleet.inventory_path.write_text(yaml.safe_dump(data, sort_keys=False))


# ---------------------------------------------------------------------- sshd
def _sbin_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"


def _sshd_binary() -> str | None:
    found = shutil.which("sshd", path=_sbin_path())
    # sshd re-execs itself and insists on an absolute path.
    return str(Path(found).resolve()) if found else None


def _privsep_dir() -> None:
    # Privilege separation directory; the distribution's service unit normally creates it.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def _start_sshd(config: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    sshd = _sshd_binary()
    if sshd is None:
        raise FleetError("sshd not found")
    _privsep_dir()
    proc = subprocess.Popen(
        [sshd, "-D", "-f", str(config), "-E", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FleetError(f"sshd exited {proc.returncode}; log {log}:\n{_tail(log)}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    _terminate(proc)
    raise FleetError(f"sshd did not listen on 127.0.0.1:{port} within 15 s; log {log}:\n{_tail(log)}")


def _wait_for_login(fleet: Fleet, h: FleetHost) -> None:
    proc = fleet.run(["true"], h.name, check=False, timeout=60)
    if proc.returncode != 0:
        raise FleetError(
            f"key login as {h.user} on port {fleet.port} failed: {proc.stderr.strip()}\n"
            f"sshd log {fleet.sshd_log}:\n{_tail(fleet.sshd_log)}"
        )


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ---------------------------------------------------------------------- users, slots
def _take_slot() -> tuple[int, IO[str]]:
    for slot in range(MAX_SLOTS):
        fh = (LOCK_DIR / f"cyclotron-fleet-slot{slot}.lock").open("a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        return slot, fh
    raise FleetError(f"all {MAX_SLOTS} fleet slots are in use by other test sessions")


def _state_path(slot: int) -> Path:
    return LOCK_DIR / f"cyclotron-fleet-slot{slot}.json"


def _write_state(slot: int, state: dict[str, Any]) -> None:
    _state_path(slot).write_text(json.dumps(state))


def _clear_state(slot: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        _state_path(slot).unlink()


def _clear_stale(slot: int) -> None:
    """Remove what a crashed session of this slot left: its sshd and its users."""
    path = _state_path(slot)
    if path.exists():
        try:
            state = json.loads(path.read_text())
            pid = int(state["sshd_pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "sshd" in cmdline and state["sshd_config"] in cmdline:
                os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, KeyError):
            pass
        _clear_state(slot)
    prefix = "cyc-pc" if slot == 0 else f"cyc{slot}-pc"
    for entry in pwd.getpwall():
        rest = entry.pw_name.removeprefix(prefix)
        if rest != entry.pw_name and rest.isdigit():
            _delete_user(entry.pw_name)


def _delete_user(user: str) -> None:
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    _kill_user_processes(uid)
    proc = subprocess.run(["userdel", "--remove", user], capture_output=True, text=True)
    # 12: home could not be removed fully; 6: no such user. Retry once after a late process exits.
    if proc.returncode not in (0, 6):
        time.sleep(1)
        _kill_user_processes(uid)
        subprocess.run(["userdel", "--remove", "--force", user], capture_output=True, text=True)


def _user_pids(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                pids.append(int(entry.name))
                break
    return pids


def _kill_user_processes(uid: int) -> None:
    """Signal, by pid, only processes owned by a fleet user (sessions, npm, pip)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _user_pids(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _user_pids(uid):
            time.sleep(0.1)


# ---------------------------------------------------------------------- small helpers
def _user_can(h: FleetHost, argv: Sequence[str]) -> bool:
    proc = subprocess.run(
        ["runuser", "-u", h.user, "--", "env", "-i", f"HOME={h.home}", f"PATH={SSHD_DEFAULT_PATH}", *argv],
        capture_output=True,
        cwd=h.home,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode == 0


def _ssh_keygen(path: Path) -> None:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cyclotron-test-fleet", "-f", str(path)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(argv: Sequence[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise FleetError(f"{shlex.join(argv)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _venv_tool(name: str) -> str:
    """The tool next to the running interpreter (the project venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FleetError(f"{name} not found next to {sys.executable} or on PATH; run `make test`")
    return found
