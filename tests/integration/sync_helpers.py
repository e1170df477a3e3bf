"""Shared helpers of the gather/sync end-to-end tests over the SSH fleet.

* ``RunDirs``: one test's own manifests/plans/generated/reports/logs directories, handed to
  gather.yml and sync.yml as extra vars, so no test writes into the repository's manifests/.
* ``write_inventory``: the fleet inventory plus what the installer roles need per host
  (the user's venv and npm prefix), optional group vars (a vault file) and port overrides.
* ``run_playbook``: ansible-playbook through the fleet, output kept as a log for secret scans.
* per-user state: pip/npm installs into the user's own venv/prefix, MCP configs, .env files,
  and ``reset_fleet`` that removes what the tests added (cheaper than a new fleet).
* manifests, PLAY RECAP parsing, and ``scan_for`` (which files hold a secret).

Everything runs as the fleet users: installs through ``runuser`` (fast, same user, same
files as an SSH login), checks of the result through real SSH where it matters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .fleet import SSHD_DEFAULT_PATH, Fleet, FleetHost, _free_port, _kill_user_processes

HOSTS: tuple[str, ...] = ("pc1", "pc2", "pc3")
# Every venv is seeded with these; reset leaves them.
VENV_SEED = frozenset(("pip", "setuptools", "wheel"))
# Files the tests create in a user's home (and the backups roles make next to them).
USER_FILES: tuple[str, ...] = (
    ".claude.json", ".env", ".memory.json", ".cursor", ".config/Code", ".config/Claude", "src"
)
MEMORY_SERVER = "@modelcontextprotocol/server-memory"
# Gather sources that belong to the user. dpkg is the shared machine's: identical for the three
# users by construction, and other work on the machine may change it between two gathers.
USER_SOURCES: tuple[str, ...] = ("python", "pipx", "npm", "mcp", "api_keys", "commands", "git")

# Catalog additions shared by the tests: `six` with a real verify probe (scenario 1's "verified").
TEST_CATALOG: dict[str, Any] = {
    "capabilities": {
        "six": {
            "name": "six (Python 2/3 compatibility)",
            "domain": "development",
            "priority": "normal",
            "risk": "low",
            "packages": {"pip": "six"},
            "verify": {"command": ["python3", "-c", "import six; print('six', six.__version__)"],
                       "regex": r"six (\d+\.\d+\.\d+)"},
        }
    }
}


# Most scenarios need two hosts; localhost runs the plan and report plays.
ONLY_PC1_PC2 = ["--limit", "pc1,pc2,localhost"]


# ---------------------------------------------------------------------- run directories
@dataclass(frozen=True)
class RunDirs:
    base: Path

    @classmethod
    def make(cls, base: Path) -> RunDirs:
        dirs = cls(base)
        for path in (dirs.manifests, dirs.plans, dirs.generated, dirs.reports, dirs.logs):
            path.mkdir(parents=True, exist_ok=True)
        return dirs

    @property
    def manifests(self) -> Path:
        return self.base / "manifests"

    @property
    def plans(self) -> Path:
        return self.base / "plans"

    @property
    def generated(self) -> Path:
        return self.base / "generated"

    @property
    def reports(self) -> Path:
        return self.base / "reports"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def extra_vars(self) -> dict[str, str]:
        return {
            "cyclotron_manifest_dir": str(self.manifests),
            "cyclotron_plans_dir": str(self.plans),
            "cyclotron_generated_dir": str(self.generated),
            "cyclotron_reports_dir": str(self.reports),
        }

    def files(self, *kinds: str) -> list[Path]:
        """Files under the given subdirectories (all of them by default), sorted."""
        roots = [self.base / k for k in kinds] if kinds else [self.base]
        return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())

    def latest_plan(self) -> dict[str, Any]:
        plans = sorted(self.plans.glob("plan-*.json"), key=lambda p: p.stat().st_mtime)
        assert plans, f"no plan written under {self.plans}"
        data: dict[str, Any] = json.loads(plans[-1].read_text())
        return data

    def latest_report(self) -> dict[str, Any]:
        reports = sorted(self.reports.glob("sync-*.json"), key=lambda p: p.stat().st_mtime)
        assert reports, f"no sync report written under {self.reports}"
        data: dict[str, Any] = json.loads(reports[-1].read_text())
        return data


# ---------------------------------------------------------------------- inventory
def host_install_vars(h: FleetHost) -> dict[str, Any]:
    """Where the installer roles put things on this host: the user's own venv and npm prefix
    (the MCP role follows them by default)."""
    return {"cyclotron_pip_virtualenv": str(h.venv), "cyclotron_npm_prefix": str(h.npm_prefix)}


def write_inventory(
    fleet: Fleet,
    dest: Path,
    *,
    group_vars: Mapping[str, Any] | None = None,
    vault_text: str | None = None,
    ports: Mapping[str, int] | None = None,
    catalog: Mapping[str, Any] | None = TEST_CATALOG,
    sources: Sequence[str] | None = USER_SOURCES,
) -> Path:
    """An inventory directory (hosts.yml + group_vars/all/) derived from the fleet's inventory.

    ``vault_text`` is YAML (with ``!vault`` values) written as group_vars/all/vault.yml, the
    way a real inventory keeps its secrets.
    """
    data = yaml.safe_load(fleet.inventory_path.read_text())
    for name, h in fleet.hosts.items():
        data["all"]["hosts"][name].update(host_install_vars(h))
        if ports and name in ports:
            data["all"]["hosts"][name]["ansible_port"] = ports[name]
    if catalog is not None:
        data["all"]["vars"]["cyclotron_catalog"] = dict(catalog)
    if sources is not None:
        data["all"]["vars"]["cyclotron_facts_sources"] = list(sources)
    # Registry hiccups are retried by the roles; keep the waits short in tests.
    data["all"]["vars"].update(
        {
            "cyclotron_pip_retries": 2,
            "cyclotron_pip_retry_delay": 2,
            "cyclotron_npm_retries": 2,
            "cyclotron_npm_retry_delay": 2,
        }
    )
    data["all"]["vars"].update(group_vars or {})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    if vault_text is not None:
        gv = dest / "group_vars" / "all"
        gv.mkdir(parents=True, exist_ok=True)
        (gv / "vault.yml").write_text(vault_text)
    return dest / "hosts.yml"


def vault_encrypt_values(fleet: Fleet, var: str, values: Mapping[str, str], password_file: Path) -> str:
    """YAML defining ``var`` as ``{NAME: !vault ...}``, each value through ansible-vault encrypt_string."""
    tool = Path(_venv_bin()) / "ansible-vault"
    lines = [f"{var}:"]
    for name, value in values.items():
        proc = subprocess.run(
            [str(tool), "encrypt_string", "--vault-password-file", str(password_file), "--stdin-name", name],
            input=value,
            capture_output=True,
            text=True,
            env=fleet.env(),
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"ansible-vault encrypt_string failed: {proc.stderr}")
        lines.extend("  " + line for line in proc.stdout.rstrip("\n").splitlines())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- playbook runs
@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    log: Path
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        return parse_recap(self.stdout)

    def changed(self, hosts: Iterable[str] = HOSTS) -> dict[str, int]:
        recap = self.recap
        return {h: recap.get(h, {}).get("changed", -1) for h in hosts}

    def describe(self) -> str:
        """Everything a failing assertion should show (the tail of a long run)."""
        return (
            f"rc={self.rc} log={self.log}\n--- stdout (tail)\n{self.stdout[-12000:]}\n"
            f"--- stderr\n{self.stderr[-4000:]}"
        )


def run_playbook(
    fleet: Fleet,
    playbook: str,
    dirs: RunDirs,
    inventory: Path,
    *,
    extra_vars: Mapping[str, Any] | None = None,
    check: bool = False,
    tags: str | None = None,
    extra_args: Sequence[str] = (),
    label: str = "run",
) -> PlaybookRun:
    """Run ``playbooks/<playbook>`` against ``inventory`` with this test's directories."""
    variables: dict[str, Any] = {**dirs.extra_vars(), **(extra_vars or {})}
    log = _unique(dirs.logs / f"{label}.log")
    start = time.monotonic()
    proc = fleet.ansible_playbook(
        f"playbooks/{playbook}",
        variables,
        check=check,
        tags=tags,
        inventory=inventory,
        extra_args=extra_args,
        # Ansible's own log file too: the secret scans read it.
        env={"ANSIBLE_LOG_PATH": str(log.with_suffix(".ansible.log"))},
    )
    seconds = time.monotonic() - start
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, log, seconds)


def run_playbook_until(
    fleet: Fleet,
    playbook: str,
    dirs: RunDirs,
    inventory: Path,
    *,
    at_line: Callable[[str], bool],
    action: Callable[[], None],
    extra_vars: Mapping[str, Any] | None = None,
    label: str = "run",
) -> PlaybookRun:
    """Run a playbook and, at the first output line ``at_line`` accepts, freeze the whole run
    (SIGSTOP to its process group), call ``action`` and let it go on: a fault at a chosen stage."""
    variables: dict[str, Any] = {**dirs.extra_vars(), **(extra_vars or {})}
    cmd = [
        str(Path(_venv_bin()) / "ansible-playbook"),
        "-i",
        str(inventory),
        str(fleet.repo_root / "playbooks" / playbook),
        "--extra-vars",
        json.dumps(variables),
    ]
    log = _unique(dirs.logs / f"{label}.log")
    start = time.monotonic()
    lines: list[str] = []
    fired = False
    # stderr goes to a file: a pipe nobody reads while stdout is read could fill and block the run.
    with (
        (dirs.logs / f"{log.stem}.stderr").open("w+") as err,
        subprocess.Popen(
            cmd,
            cwd=fleet.repo_root,
            env=fleet.env({"ANSIBLE_LOG_PATH": str(log.with_suffix(".ansible.log"))}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if not fired and at_line(line):
                    fired = True
                    os.killpg(proc.pid, signal.SIGSTOP)
                    try:
                        action()
                    finally:
                        os.killpg(proc.pid, signal.SIGCONT)
            rc = proc.wait(timeout=1800)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read()
    stdout = "".join(lines)
    log.write_text(stdout + "\n--- stderr ---\n" + stderr)
    assert fired, f"the run never printed the line the fault waits for; see {log}"
    return PlaybookRun(rc, stdout, stderr, log, time.monotonic() - start)


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host (the last recap in the output)."""
    recap: dict[str, dict[str, int]] = {}
    tail = stdout.rsplit("PLAY RECAP", 1)[-1]
    for line in tail.splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if m and "ok=" in m.group(2):
            recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return recap


def task_output(stdout: str, *name_parts: str, nth: int = 0) -> str:
    """The output of the ``nth`` task whose name contains every one of ``name_parts``."""
    blocks = re.split(r"^(?=TASK \[|PLAY \[|PLAY RECAP)", stdout, flags=re.MULTILINE)
    found = [
        b for b in blocks if b.startswith("TASK [") and all(p in b.split("\n", 1)[0] for p in name_parts)
    ]
    assert len(found) > nth, f"no task #{nth} named like {name_parts!r} in the output"
    return found[nth]


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


# ---------------------------------------------------------------------- per-user state
def as_user(
    fleet: Fleet, host: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run argv as the host's user (runuser: same user, files and PATH as an SSH login)."""
    full_env = dict(fleet.install_environment)
    full_env.update(env or {})
    return fleet.run(list(argv), host, via="runuser", env=full_env, check=check)


def pip_install(fleet: Fleet, host: str, *specs: str) -> None:
    h = fleet.hosts[host]
    as_user(fleet, host, [str(h.venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *specs])


def pip_version(fleet: Fleet, host: str, dist: str) -> str | None:
    """Version of ``dist`` in the host's venv, read over SSH; None when absent."""
    h = fleet.hosts[host]
    script = (
        "import sys, importlib.metadata as m\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: pass"
    )
    out = fleet.run([str(h.venv_python), "-c", script, dist], host).stdout.strip()
    return out or None


def venv_packages(fleet: Fleet, host: str) -> dict[str, str]:
    h = fleet.hosts[host]
    script = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    )
    data: dict[str, str] = json.loads(as_user(fleet, host, [str(h.venv_python), "-c", script]).stdout)
    return data


def npm_install(fleet: Fleet, host: str, *specs: str) -> None:
    h = fleet.hosts[host]
    as_user(
        fleet,
        host,
        ["npm", "install", "--global", "--prefix", str(h.npm_prefix), "--no-fund", "--no-audit", "--loglevel=error",
         *specs],
        env=_npm_env(fleet),
    )


def npm_version(fleet: Fleet, host: str, package: str) -> str | None:
    """Version of a global npm package under the host's prefix, read over SSH; None when absent."""
    h = fleet.hosts[host]
    path = h.npm_prefix / "lib" / "node_modules" / package / "package.json"
    proc = fleet.run(["cat", str(path)], host, check=False)
    if proc.returncode != 0:
        return None
    version: str = json.loads(proc.stdout)["version"]
    return version


def npm_packages(fleet: Fleet, host: str) -> list[str]:
    root = fleet.hosts[host].npm_prefix / "lib" / "node_modules"
    if not root.is_dir():
        return []
    names: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("@") and entry.is_dir():
            names.extend(f"{entry.name}/{sub.name}" for sub in sorted(entry.iterdir()))
        elif not entry.name.startswith("."):
            names.append(entry.name)
    return names


def _npm_env(fleet: Fleet) -> dict[str, str]:
    env = {"npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
    if "PATH" not in fleet.install_environment:
        env["PATH"] = SSHD_DEFAULT_PATH
    return env


def write_user_file(fleet: Fleet, host: str, relpath: str, text: str, mode: int = 0o600) -> Path:
    """Create ``~/relpath`` owned by the host's user."""
    h = fleet.hosts[host]
    path = h.home / relpath
    for parent in reversed(path.relative_to(h.home).parents):
        d = h.home / parent
        if not d.exists():
            d.mkdir(mode=0o700)
            os.chown(d, h.uid, h.gid)
    path.write_text(text)
    os.chown(path, h.uid, h.gid)
    path.chmod(mode)
    return path


def git_repo(fleet: Fleet, host: str, relpath: str, remote: str) -> None:
    """``~/relpath``: a git repository with one commit and an ``origin`` remote, made as the user."""
    path = str(fleet.hosts[host].home / relpath)
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    as_user(fleet, host, ["git", "init", "--quiet", "--initial-branch", "main", path])
    as_user(fleet, host, ["git", "-C", path, "commit", "--quiet", "--allow-empty", "-m", "init"], env=ident)
    as_user(fleet, host, ["git", "-C", path, "remote", "add", "origin", remote])


def mcp_config(servers: Mapping[str, Mapping[str, Any]], **extra: Any) -> str:
    """A ~/.claude.json as Claude Code writes it (user-scope mcpServers plus other keys)."""
    return json.dumps({"numStartups": 3, **extra, "mcpServers": dict(servers)}, indent=2) + "\n"


def memory_server_entry() -> dict[str, Any]:
    return {"type": "stdio", "command": "npx", "args": ["-y", MEMORY_SERVER], "env": {}}


def reset_host(fleet: Fleet, host: str) -> None:
    """Remove what tests added: venv packages beyond the seed, global npm packages, configs."""
    h = fleet.hosts[host]
    extra = sorted(set(venv_packages(fleet, host)) - VENV_SEED)
    if extra:
        as_user(fleet, host, [str(h.venv_python), "-m", "pip", "uninstall", "--yes", "--quiet", *extra])
    for sub in ("lib/node_modules", "bin", "lib/node_modules/.bin"):
        root = h.npm_prefix / sub
        if root.is_dir():
            for entry in root.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    for name in USER_FILES:
        for path in h.home.glob(name + "*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def reset_fleet(fleet: Fleet, hosts: Iterable[str] = HOSTS) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda name: reset_host(fleet, name), hosts))


# ---------------------------------------------------------------------- manifests
def read_manifest(dirs: RunDirs, host: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((dirs.manifests / f"{host}.json").read_text())
    return data


def cap_ids(manifest: Mapping[str, Any]) -> set[str]:
    return {c["id"] for c in manifest["capabilities"]}


def caps_by_id(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in manifest["capabilities"]}


def comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest without its timestamp: equal means the host did not change."""
    return {k: v for k, v in manifest.items() if k != "gathered_at"}


def outcomes(report: Mapping[str, Any], host: str) -> dict[str, dict[str, Any]]:
    """A sync report's outcomes of one host, by capability id."""
    return {o["id"]: o for o in report.get("outcomes", {}).get(host, [])}


def pushed_manifest(host: str, packages: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A manifest as another machine would push it (pull mode): ``packages`` are (manager, name)."""
    types = {"pip": "python_package", "npm": "npm_package"}
    packages = list(packages)
    caps = [
        {
            "id": f"{manager}:{name}",
            "type": types[manager],
            "name": name,
            "version": None,
            "domain": "development",
            "priority": "normal",
            "risk": "low",
            "source": {"manager": manager, "package": name, "path": ""},
            "top_level": True,
            "details": {},
        }
        for manager, name in packages
    ]
    return {
        "schema_version": 1,
        "host": host,
        "gathered_at": "2026-01-02T03:04:05Z",
        "os": {"family": "linux", "distribution": "debian", "version": "12", "arch": "x86_64"},
        "managers": sorted({m for m, _ in packages}),
        "capabilities": caps,
        "errors": [],
    }


# ---------------------------------------------------------------------- secrets
def scan_for(secret: str, paths: Iterable[Path], *, skip: Iterable[Path] = ()) -> list[str]:
    """Files (under ``paths``, recursively) whose bytes contain ``secret``; ``skip`` files are left out."""
    needle = secret.encode()
    skipped = {p.resolve() for p in skip}
    hits: list[str] = []
    for root in paths:
        candidates = [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for path in candidates:
            if path.is_symlink() or path.resolve() in skipped:
                continue
            try:
                if needle in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    return sorted(hits)


# ---------------------------------------------------------------------- a second sshd for one host
class HostSshd:
    """A private sshd for one fleet user on its own port: stopping it takes down that host only."""

    def __init__(self, fleet: Fleet, host: str, workdir: Path) -> None:
        self.fleet = fleet
        self.host = fleet.hosts[host]
        self.port = _free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"sshd_config-{host}"
        self.log = workdir / f"sshd-{host}.log"
        lines = []
        for line in fleet.sshd_config.read_text().splitlines():
            key = line.split(" ", 1)[0]
            if key == "Port":
                line = f"Port {self.port}"
            elif key == "PidFile":
                line = f"PidFile {workdir / f'sshd-{host}.pid'}"
            elif key == "AllowUsers":
                line = f"AllowUsers {self.host.user}"
            lines.append(line)
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        sshd = shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin")
        assert sshd, "sshd not found"
        self.proc = subprocess.Popen(
            [str(Path(sshd).resolve()), "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"sshd exited: {self.log.read_text(errors='replace')[-2000:]}"
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"sshd for {self.host.name} did not listen on {self.port}")

    def stop(self) -> None:
        """Stop this sshd and end the user's sessions (so cached connections die too)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        _kill_user_processes(self.host.uid)


def _venv_bin() -> str:
    import sys

    return str(Path(sys.executable).parent)


def wait_for_lock_holder(state: Path, pid: int, timeout: float = 120.0) -> None:
    """Wait until process ``pid`` holds the state dir's lock (its pid is in the lock file), so a
    second tick started now overlaps it whatever the machine's load."""
    lock = state / "lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists() and lock.read_text().strip() == str(pid):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never took {lock}")
