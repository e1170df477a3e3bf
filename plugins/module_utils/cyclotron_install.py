# Copyright: Cyclotron contributors
# Apache-2.0
"""Install one pip or npm package on a host: read before, decide, install, read back; or restore.

Runs on target hosts, inside the ``cyclotron_package`` module or piped to the host's Python as a
plain script by the ``cyclotron_package`` action, so it depends on the standard library only and
keeps to Python 3.8 syntax. Every command is an argv list; names and versions are checked against
the same patterns as ``cyclotron_py/safety.py`` before anything runs.

Result keys: ``changed``, ``decision`` (install, upgrade, pin, none; remove or reinstall when
restoring), ``before`` and ``after`` (version, "" = absent), ``want``, ``attempted`` (the host may
have changed, so a rollback is due), ``attempts`` (runs of the install command; only transient
network/registry errors are retried), and on failure ``failed`` and ``msg``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.module_utils.cyclotron_versions import same_version, version_key

MANAGERS = ("pip", "npm")
NAME_PATTERNS = {
    "pip": re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"),
    "npm": re.compile(r"(?:@[a-z0-9][a-z0-9._~-]{0,100}/)?[A-Za-z0-9][A-Za-z0-9._~-]{0,213}"),
}
VERSION_PATTERN = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,63})?")
INSTALL_TIMEOUT = 900
READ_TIMEOUT = 60

# The options, in AnsibleModule argument_spec form, shared by the module and the action.
ARGUMENT_SPEC: dict[str, Any] = {
    "manager": {"type": "str", "required": True, "choices": list(MANAGERS)},
    "package": {"type": "str", "required": True},
    "version": {"type": "str", "default": ""},
    "pinned": {"type": "bool", "default": False},
    "state": {"type": "str", "default": "present", "choices": ["present", "restored"]},
    "before": {"type": "str", "default": ""},
    "virtualenv_created": {"type": "bool", "default": False},
    "python": {"type": "str", "default": ""},
    "virtualenv": {"type": "str", "default": ""},
    "virtualenv_command": {"type": "str", "default": "python3 -m venv"},
    "pip_executable": {"type": "str", "default": ""},
    "extra_args": {"type": "str", "default": ""},
    "npm_executable": {"type": "str", "default": "npm"},
    "npm_prefix": {"type": "str", "default": ""},
    "retries": {"type": "int", "default": 3},
    "retry_delay": {"type": "float", "default": 5.0},
}

PIP_READ_SCRIPT = (
    "import sys\n"
    "from importlib.metadata import PackageNotFoundError, version\n"
    "try:\n"
    "    print(version(sys.argv[1]))\n"
    "except PackageNotFoundError:\n"
    "    pass\n"
)


class InstallError(Exception):
    """A problem with the item or the host; the message says what and how to fix it."""


def option_errors(params: Mapping[str, Any]) -> list[str]:
    """Item problems found before touching the host."""
    manager = params.get("manager")
    problems = []
    if manager not in NAME_PATTERNS:
        return [f"manager must be one of {', '.join(MANAGERS)}, got {manager!r}"]
    package = params.get("package") or ""
    if not NAME_PATTERNS[manager].fullmatch(package):
        problems.append(
            f"invalid {manager} item: package {package!r} must be a plain {manager} name "
            "(no options, URLs, paths or spaces)"
        )
    for key in ("version", "before"):
        value = params.get(key) or ""
        if not VERSION_PATTERN.fullmatch(value):
            problems.append(f"invalid {manager} item: {key} {value!r} must be a plain version")
    if manager == "npm" and not params.get("npm_prefix"):
        problems.append("npm_prefix is required for npm: give the global prefix (npm prefix --global)")
    if int(params.get("retries") or 0) < 0:
        problems.append("retries must be 0 or more")
    return problems


def _run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


class Manager:
    """argv and version reading for one package manager on this host."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.package = str(params["package"])

    def spec(self, version: str) -> str:
        raise NotImplementedError

    def read(self) -> str:
        raise NotImplementedError

    def install_argv(self, spec: str) -> list[str]:
        raise NotImplementedError

    def remove_argv(self) -> list[str]:
        raise NotImplementedError

    def prepare(self, check_mode: bool) -> None:
        """Anything the manager needs before the first command (a virtualenv)."""


class Pip(Manager):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        venv = params.get("virtualenv") or ""
        self.venv = os.path.expanduser(venv) if venv else ""
        self.created_venv = False
        python = params.get("python") or ""
        if python:
            self.python = os.path.expanduser(python)
        elif self.venv:
            self.python = os.path.join(self.venv, "bin", "python")
        else:
            self.python = sys.executable
        executable = params.get("pip_executable") or ""
        if self.venv:  # the virtualenv's own pip, whichever Python reads the versions
            self.pip = [os.path.join(self.venv, "bin", "python"), "-m", "pip"]
        elif executable:
            self.pip = [os.path.expanduser(executable)]
        else:
            self.pip = [self.python, "-m", "pip"]
        self.extra = shlex.split(params.get("extra_args") or "")

    def spec(self, version: str) -> str:
        return f"{self.package}=={version}" if version else self.package

    def prepare(self, check_mode: bool) -> None:
        if not self.venv or os.path.exists(os.path.join(self.venv, "bin", "python")) or check_mode:
            return
        argv = shlex.split(self.params.get("virtualenv_command") or "python3 -m venv") + [self.venv]
        self.created_venv = not os.path.exists(self.venv)
        rc, out = _run(argv, INSTALL_TIMEOUT)
        if rc != 0:
            raise InstallError(f"creating the virtualenv {self.venv} failed (exit {rc}): {out.strip()[-500:]}")

    def discard_venv(self) -> None:
        """Remove the virtualenv this item's install created (the rollback of prepare)."""
        if self.venv and os.path.isfile(os.path.join(self.venv, "pyvenv.cfg")):
            shutil.rmtree(self.venv)

    def read(self) -> str:
        if not os.path.exists(self.python):
            return ""  # no virtualenv yet (check mode): nothing installed in it
        rc, out = _run([self.python, "-c", PIP_READ_SCRIPT, self.package], READ_TIMEOUT)
        if rc != 0:
            raise InstallError(f"reading the version of {self.package} with {self.python} failed: {out.strip()[-300:]}")
        lines = out.strip().splitlines()
        return lines[-1].strip() if lines else ""

    def install_argv(self, spec: str) -> list[str]:
        return self.pip + ["install", "--disable-pip-version-check", "--no-input"] + self.extra + [spec]

    def remove_argv(self) -> list[str]:
        return self.pip + ["uninstall", "--disable-pip-version-check", "--yes", self.package]


class Npm(Manager):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.npm = os.path.expanduser(params.get("npm_executable") or "npm")
        self.prefix = os.path.expanduser(str(params["npm_prefix"]))

    def spec(self, version: str) -> str:
        return f"{self.package}@{version}" if version else self.package

    def read(self) -> str:
        path = os.path.join(self.prefix, "lib", "node_modules", *self.package.split("/"), "package.json")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return ""
        except (OSError, ValueError) as exc:
            raise InstallError(f"cannot read {path}: {exc}") from None
        return str(data.get("version") or "") if isinstance(data, dict) else ""

    def _argv(self, verb: str, spec: str) -> list[str]:
        return [self.npm, verb, "--global", "--prefix", self.prefix, "--no-fund", "--no-audit", spec]

    def install_argv(self, spec: str) -> list[str]:
        return self._argv("install", spec)

    def remove_argv(self) -> list[str]:
        return self._argv("uninstall", self.package)


def decide(before: str, want: str, pinned: bool, manager: str) -> str:
    """install, pin, upgrade or none; never a downgrade unless the version is pinned."""
    if not before:
        return "install"
    if pinned and want and not same_version(before, want):
        return "pin"
    comparable = bool(want) and (manager != "npm" or want[0].isdigit())  # npm tags (latest, next) are not versions
    if not pinned and comparable and version_key(before) < version_key(want):
        return "upgrade"
    return "none"


# Output of a failed pip/npm run that says the registry or the network had a passing problem.
# Anything else (no such package or version, a build error, a conflict) fails the same way on
# every try, so it is reported at once: retrying "No matching distribution" only costs minutes.
TRANSIENT_PATTERN = re.compile(
    r"timed? ?out|timeout|connection (?:reset|refused|aborted|broken)|connectionreseterror|"
    r"newconnectionerror|remotedisconnected|incompleteread|protocolerror|socket hang up|"
    r"temporary failure in name resolution|network is unreachable|"
    r"\b(?:etimedout|esockettimedout|econnreset|econnrefused|econnaborted|eai_again|enetunreach|"
    r"ehostunreach|e429|e5\d\d)\b|"
    # HTTP 429 / 5xx as pip ("HTTP error 503", "503 Server Error") and npm ("npm error 503") say it.
    r"(?:http(?:error)?:? (?:error )?|status(?: code)? |npm (?:err!|error) )(?:429|5\d\d)\b|"
    r"\b(?:429|5\d\d) (?:server error|too many requests|service unavailable|bad gateway|gateway time)",
    re.IGNORECASE,
)


def is_transient(output: str) -> bool:
    """True when a failed install's output names a network or registry problem worth a retry."""
    return bool(TRANSIENT_PATTERN.search(output))


def _with_retries(argv: Sequence[str], retries: int, delay: float) -> tuple[int, str, int]:
    """Run argv; only a transient failure is retried, with a doubling delay. Returns the exit
    code, the output and the number of attempts."""
    rc, out = _run(argv, INSTALL_TIMEOUT)
    attempts = 1
    for attempt in range(retries):
        if rc == 0 or not is_transient(out):
            break
        time.sleep(delay * (2**attempt))
        rc, out = _run(argv, INSTALL_TIMEOUT)
        attempts += 1
    return rc, out, attempts


def _failure(result: dict[str, Any], message: str) -> dict[str, Any]:
    # Changed only if the version did move (a failed upgrade that left the old one is no change).
    result.update(failed=True, msg=message, changed=result.get("after", "") != result.get("before", ""))
    return result


def ensure_present(manager: Manager, params: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    kind = params["manager"]
    want = params.get("version") or ""
    pinned = bool(params.get("pinned"))
    result: dict[str, Any] = {"changed": False, "decision": "none", "before": "", "after": "", "want": want}
    result["attempted"] = False
    try:
        before = manager.read()
        result["before"] = result["after"] = before
        decision = decide(before, want, pinned, kind)
        result["decision"] = decision
        if decision == "none":
            return result
        result["changed"] = True
        if check_mode:
            return result
        result["attempted"] = True
        try:
            manager.prepare(check_mode)
        finally:
            if getattr(manager, "created_venv", False):
                result["created_virtualenv"] = True  # the rollback removes it again
        argv = manager.install_argv(manager.spec(want))
        rc, out, result["attempts"] = _with_retries(
            argv, int(params.get("retries") or 0), float(params.get("retry_delay") or 0)
        )
        result["after"] = after = manager.read()
        if rc != 0:
            return _failure(result, f"{kind} install {manager.spec(want)} failed (exit {rc}): {out.strip()[-1500:]}")
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        return _failure(result, f"{kind} {manager.package}: {exc}")
    if not after:
        return _failure(result, f"{manager.package} is missing after the {kind} install; output: {out.strip()[-500:]}")
    if pinned and want and not same_version(after, want):
        return _failure(result, f"{manager.package} is at {after} after the install; pinned to {want}")
    comparable = bool(want) and (kind != "npm" or want[0].isdigit())
    if comparable and version_key(after) < version_key(want):
        return _failure(result, f"{manager.package} is at {after} after the install; wanted {want} or newer")
    result["changed"] = after != before
    return result


def restore(manager: Manager, params: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Put the package back to ``before`` ("" = absent): the rollback of ensure_present.

    With ``virtualenv_created`` (the install made the virtualenv), a package that was absent
    before takes the virtualenv with it.
    """
    kind = params["manager"]
    before = params.get("before") or ""
    result: dict[str, Any] = {"changed": False, "before": before, "want": before, "attempted": False}
    rc, out = 0, ""
    try:
        now = manager.read()
        result["decision"] = "none" if now == before else "reinstall" if before else "remove"
        result["after"] = now
        if check_mode:
            result["changed"] = now != before
            return result
        if now != before:
            argv = manager.install_argv(manager.spec(before)) if before else manager.remove_argv()
            rc, out, result["attempts"] = _with_retries(
                argv, int(params.get("retries") or 0), float(params.get("retry_delay") or 0)
            )
            result["after"] = manager.read()
            result["changed"] = True
        if not before and not result["after"] and params.get("virtualenv_created") and isinstance(manager, Pip):
            manager.discard_venv()
            result.update(changed=True, virtualenv_removed=True)
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        return _failure(result, f"{kind} {manager.package}: rollback: {exc}")
    if not same_version(result["after"], before) or bool(result["after"]) != bool(before):
        return _failure(
            result,
            f"{manager.package} is at {result['after'] or 'absent'} after the rollback, not {before or 'absent'}"
            + (f" (exit {rc}: {out.strip()[-500:]})" if rc else ""),
        )
    return result


def run(params: Mapping[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Check the item, then install it (state present) or put it back (state restored)."""
    problems = option_errors(params)
    if problems:
        return {"failed": True, "changed": False, "attempted": False, "msg": "; ".join(problems)}
    manager: Manager = Pip(params) if params["manager"] == "pip" else Npm(params)
    result = restore(manager, params, check_mode) if params.get("state") == "restored" else ensure_present(
        manager, params, check_mode
    )
    result.update(manager=params["manager"], package=manager.package)
    return result


def run_as_script(params: Mapping[str, Any]) -> None:
    """Entry point when this file is piped to the host's Python (see cyclotron_gather.run_as_script)."""
    try:
        result = run(params, bool(params.get("check_mode")))
    except Exception as exc:  # noqa: BLE001 - reported to the controller as a failed task
        result = {"failed": True, "changed": False, "attempted": True, "msg": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    sys.exit(1 if result.get("failed") else 0)
