"""cyclotron_install / cyclotron_package: decisions, item checks, and real pip runs into a virtualenv.

The pip runs are offline: the packages are wheels written here and found through
``--no-index --find-links`` (extra_args), so they exercise pip itself, not the network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cyclotron_py.hostscript import host_code

REPO = Path(__file__).resolve().parents[3]
VENV_PY = Path(sys.executable).parent / "python"
ANSIBLE = Path(sys.executable).parent / "ansible"

# Loaded from its file, as the action plugins load it (it is not importable as a package).
ci: Any = host_code(REPO / "plugins" / "module_utils" / "cyclotron_install.py")[0]


def _wheel(directory: Path, name: str, version: str) -> None:
    """A minimal pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: cyclotron-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    for version in ("1.0.0", "1.5.0", "2.0.0"):
        _wheel(directory, "cyctoy", version)
    return directory


@pytest.fixture(scope="module")
def virtualenv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("install") / "venv"
    venv.EnvBuilder(with_pip=True).create(path)
    return path


def _pip(virtualenv: Path, wheels: Path, package: str = "cyctoy", **extra: Any) -> dict[str, Any]:
    return {
        "manager": "pip",
        "package": package,
        "virtualenv": str(virtualenv),
        "extra_args": f"--no-index --find-links {wheels}",
        "retries": 0,
        "retry_delay": 0,
        **extra,
    }


def _installed(virtualenv: Path, package: str = "cyctoy") -> str:
    return str(ci.Pip({"package": package, "virtualenv": str(virtualenv)}).read())


@pytest.mark.parametrize(
    ("before", "want", "pinned", "manager", "expected"),
    [
        ("", "", False, "pip", "install"),
        ("", "1.0", True, "pip", "install"),
        ("1.0.0", "", False, "pip", "none"),
        ("1.9.0", "1.10.0", False, "pip", "upgrade"),
        ("2.0.0", "1.0.0", False, "pip", "none"),  # never a downgrade unless pinned
        ("2.0.0", "1.0.0", True, "pip", "pin"),
        ("1.0.0", "1.0.0", True, "pip", "none"),
        ("1.5.0", "1.5", True, "pip", "none"),  # the same version, written shorter
        ("1.0.0", "latest", False, "npm", "none"),  # an npm tag is not a version
        ("7.0.0", "7.0.1", False, "npm", "upgrade"),
        ("2.0.0rc1", "2.0.0", False, "pip", "upgrade"),  # a release candidate is older than its release
        ("8.0.0-beta.2", "8.0.0", False, "npm", "upgrade"),
        ("2.0.0", "2.0.0rc1", False, "pip", "none"),
    ],
)
def test_decide(before: str, want: str, pinned: bool, manager: str, expected: str) -> None:
    assert ci.decide(before, want, pinned, manager) == expected


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"manager": "pip", "package": "foo; touch /tmp/pwned"}, "must be a plain pip name"),
        ({"manager": "pip", "package": "--index-url=https://evil.example"}, "must be a plain pip name"),
        ({"manager": "pip", "package": "../../etc"}, "must be a plain pip name"),
        ({"manager": "pip", "package": "git+https://x/y.git"}, "must be a plain pip name"),
        ({"manager": "pip", "package": "six", "version": "1.0; rm -rf ~"}, "must be a plain version"),
        ({"manager": "npm", "package": "--registry=x", "npm_prefix": "/p"}, "must be a plain npm name"),
        ({"manager": "npm", "package": "is-number"}, "npm_prefix is required"),
        ({"manager": "apt", "package": "jq"}, "manager must be one of pip, npm"),
    ],
)
def test_unsafe_items_are_refused_before_anything_runs(params: dict[str, Any], fragment: str) -> None:
    result = ci.run(params)
    assert result["failed"] is True and result["attempted"] is False
    assert fragment in result["msg"]


def test_pip_install_upgrade_pin_and_restore(virtualenv: Path, wheels: Path) -> None:
    installed = ci.run(_pip(virtualenv, wheels, version="1.0.0"))
    assert installed == {
        "changed": True, "decision": "install", "before": "", "after": "1.0.0", "want": "1.0.0",
        "attempted": True, "attempts": 1, "manager": "pip", "package": "cyctoy",
    }  # fmt: skip
    assert ci.run(_pip(virtualenv, wheels))["decision"] == "none"  # present, no version wanted

    upgraded = ci.run(_pip(virtualenv, wheels, version="1.5.0"))
    assert (upgraded["decision"], upgraded["before"], upgraded["after"]) == ("upgrade", "1.0.0", "1.5.0")
    assert ci.run(_pip(virtualenv, wheels, version="1.0.0"))["decision"] == "none"  # no downgrade
    pinned = ci.run(_pip(virtualenv, wheels, version="1.0", pinned=True))
    assert (pinned["decision"], pinned["after"], pinned.get("failed")) == ("pin", "1.0.0", None)

    checked = ci.run(_pip(virtualenv, wheels, version="2.0.0"), check_mode=True)
    assert (checked["decision"], checked["changed"], checked["attempted"]) == ("upgrade", True, False)
    assert _installed(virtualenv) == "1.0.0"

    # The rollback of a failed upgrade reinstalls the version before; of a new package, removes it.
    assert ci.run(_pip(virtualenv, wheels, version="2.0.0"))["after"] == "2.0.0"
    restored = ci.run(_pip(virtualenv, wheels, state="restored", before="1.0.0"))
    assert (restored["decision"], restored["after"], restored["changed"]) == ("reinstall", "1.0.0", True)
    removed = ci.run(_pip(virtualenv, wheels, state="restored", before=""))
    assert (removed["decision"], removed["after"]) == ("remove", "")
    assert _installed(virtualenv) == ""


def test_pip_failures_say_why_and_report_the_attempt(virtualenv: Path, wheels: Path) -> None:
    missing = ci.run(_pip(virtualenv, wheels, version="9.9.9"))
    assert missing["failed"] is True and missing["attempted"] is True
    assert "pip install cyctoy==9.9.9 failed" in missing["msg"] and "9.9.9" in missing["msg"]
    assert missing["after"] == missing["before"]

    # pip succeeds, but the Python that reads versions back is another one: failed, rollback due.
    other = virtualenv.parent / "other-venv"
    venv.EnvBuilder(with_pip=False).create(other)
    elsewhere = ci.run(_pip(virtualenv, wheels, python=str(other / "bin" / "python")))
    assert elsewhere["failed"] is True and elsewhere["attempted"] is True
    assert "cyctoy is missing after the pip install" in elsewhere["msg"]
    assert ci.run(_pip(virtualenv, wheels, state="restored", before=""))["after"] == ""


def test_virtualenv_is_created_when_missing(tmp_path: Path, wheels: Path) -> None:
    fresh = tmp_path / "new-venv"
    checked = ci.run(_pip(fresh, wheels), check_mode=True)
    assert (checked["decision"], checked["before"]) == ("install", "")
    assert not fresh.exists()  # check mode creates nothing
    assert ci.run(_pip(fresh, wheels))["after"] == "2.0.0"
    assert (fresh / "bin" / "python").exists()


def test_rollback_removes_the_virtualenv_the_install_created(tmp_path: Path, wheels: Path) -> None:
    fresh = tmp_path / "made-by-the-install"
    failed = ci.run(_pip(fresh, wheels, version="9.9.9"))
    assert failed["failed"] is True and failed["created_virtualenv"] is True and fresh.exists()
    restored = ci.run(_pip(fresh, wheels, state="restored", before="", virtualenv_created=True))
    assert restored.get("failed") is None and restored["virtualenv_removed"] is True
    assert not fresh.exists()

    # A virtualenv that was there before the install stays.
    kept = tmp_path / "already-there"
    venv.EnvBuilder(with_pip=True).create(kept)
    failed = ci.run(_pip(kept, wheels, version="9.9.9"))
    assert "created_virtualenv" not in failed
    assert "virtualenv_removed" not in ci.run(_pip(kept, wheels, state="restored", before=""))
    assert kept.exists()


def test_npm_reads_package_json(tmp_path: Path) -> None:
    package_dir = tmp_path / "lib" / "node_modules" / "@scope" / "tool"
    package_dir.mkdir(parents=True)
    (package_dir / "package.json").write_text(json.dumps({"name": "@scope/tool", "version": "1.2.3"}))
    npm = ci.Npm({"package": "@scope/tool", "npm_prefix": str(tmp_path)})
    assert npm.read() == "1.2.3"
    assert ci.Npm({"package": "absent", "npm_prefix": str(tmp_path)}).read() == ""
    assert npm.install_argv("@scope/tool@1.2.4") == [
        "npm", "install", "--global", "--prefix", str(tmp_path), "--no-fund", "--no-audit", "@scope/tool@1.2.4",
    ]  # fmt: skip
    (package_dir / "package.json").write_text("{not json")
    with pytest.raises(ci.InstallError, match="cannot read"):
        npm.read()


def _adhoc(args: dict[str, Any], tmp_path: Path, pipelining: bool) -> dict[str, Any]:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_HOME=str(tmp_path / "ah"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "at"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_PIPELINING=str(pipelining),
    )
    argv = [
        str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local", "-m", "cyclotron_package",
        "-e", f"ansible_python_interpreter={VENV_PY}", "-a", json.dumps(args),
    ]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result


def test_action_script_and_module_agree(tmp_path: Path, wheels: Path) -> None:
    """Through Ansible: the piped script installs, the module (no pipelining) restores."""
    target = tmp_path / "venv"
    by_script = _adhoc(_pip(target, wheels, version="1.5.0"), tmp_path, pipelining=True)
    assert (by_script["decision"], by_script["after"], by_script["changed"]) == ("install", "1.5.0", True)
    by_module = _adhoc(_pip(target, wheels, state="restored", before=""), tmp_path, pipelining=False)
    assert (by_module["decision"], by_module["after"], by_module["changed"]) == ("remove", "", True)
    refused = _adhoc({"manager": "pip", "package": "x; id"}, tmp_path, pipelining=True)
    assert refused["failed"] is True and "must be a plain pip name" in refused["msg"]


@pytest.mark.parametrize(
    ("output", "transient"),
    [
        ("ERROR: No matching distribution found for nosuchpkg", False),
        ("ERROR: Could not find a version that satisfies the requirement cyctoy==9.9.9", False),
        ("npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nosuch", False),
        ("npm ERR! code ETARGET\nnpm ERR! notarget No matching version found for left-pad@99.0.0.", False),
        ("npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree", False),
        ("error: subprocess-exited-with-error\n  Building wheel for x (pyproject.toml) did not run", False),
        ("Collecting six==1.500 (from x)", False),
        ("WARNING: Retrying ... ReadTimeoutError(\"HTTPSConnectionPool(host='pypi.org'): Read timed out.\")", True),
        ("ERROR: HTTP error 503 while getting https://files.pythonhosted.org/x.whl", True),
        ("pip._vendor.requests.exceptions.HTTPError: 502 Server Error: Bad Gateway for url", True),
        ("ConnectionResetError(104, 'Connection reset by peer')", True),
        ("npm error code ETIMEDOUT\nnpm error network request to https://registry.npmjs.org failed", True),
        ("npm ERR! code ECONNRESET", True),
        ("npm error code E503\nnpm error 503 Service Unavailable - GET https://registry.npmjs.org/x", True),
        ("npm ERR! 429 Too Many Requests - GET https://registry.npmjs.org/x", True),
        ("npm error code EAI_AGAIN\nnpm error request to https://registry.npmjs.org/x failed", True),
    ],
)
def test_only_transient_errors_are_retried(output: str, transient: bool) -> None:
    assert ci.is_transient(output) is transient


def test_a_missing_package_is_tried_once(virtualenv: Path, wheels: Path) -> None:
    # A real pip run against the offline index: "No matching distribution" is permanent.
    missing = ci.run(_pip(virtualenv, wheels, package="cyclotron-no-such-package", retries=3, retry_delay=0))
    assert missing["failed"] is True
    assert "No matching distribution" in missing["msg"]
    assert missing["attempts"] == 1


def test_an_unreachable_index_is_retried(virtualenv: Path, tmp_path: Path) -> None:
    # A port nothing listens on: connection refused, a transient error, so every retry is used.
    # --isolated: the machine's pip config must not add its own (offline) find-links; pip
    # reports the refused connection only when it retries itself (--retries 1).

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    params = _pip(virtualenv, tmp_path, package="cyctoy", retries=2, retry_delay=0)
    params["extra_args"] = f"--index-url http://127.0.0.1:{port}/simple --isolated --retries 1 --timeout 2"
    refused = ci.run(params)
    assert refused["failed"] is True
    assert refused["attempts"] == 3
