"""Per-manager name checks for data that came from another machine.

A manifest or plan is untrusted input: a package called ``foo; touch /tmp/pwned``
or ``--index-url=http://evil`` must never reach an installer, even as argv.
Each manager's pattern (cyclotron_py.managers) admits exactly the names that manager allows.
"""

from __future__ import annotations

import re

from . import managers
from .errors import PlanError

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_GIT_REMOTE = re.compile(
    r"^(?:(?:https|ssh|git|file)://[A-Za-z0-9@._~:/%+-]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/+-]+"
    r"|/[A-Za-z0-9._~/+-]+)$"
)
_MCP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_package(manager: str, package: str, *, where: str = "") -> str:
    pattern = managers.package_pattern(manager)
    if pattern is None:
        raise PlanError(f"{where}no installer for manager {manager!r}")
    if not pattern.fullmatch(package):
        raise PlanError(
            f"{where}{manager} package name {package!r} is not a valid {manager} name "
            "(shell metacharacters, spaces or a leading '-' are refused); fix the manifest it came from"
        )
    return package


def check_version(version: str, *, where: str = "") -> str:
    if version and not _VERSION.fullmatch(version):
        raise PlanError(f"{where}version {version!r} is not a plain version string; fix the manifest")
    return version


def check_env_name(name: str, *, where: str = "") -> str:
    if not _ENV_NAME.fullmatch(name):
        raise PlanError(f"{where}{name!r} is not a valid environment variable name")
    return name


def check_git_remote(remote: str, *, where: str = "") -> str:
    if not _GIT_REMOTE.fullmatch(remote) or "::" in remote:
        raise PlanError(
            f"{where}git remote {remote!r} is not an https, ssh, git, file URL or absolute path"
        )
    return remote


def check_mcp_name(name: str, *, where: str = "") -> str:
    if not _MCP_NAME.fullmatch(name):
        raise PlanError(f"{where}MCP server name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def check_arg(arg: str, *, where: str = "") -> str:
    """MCP args are passed as argv to the assistant; refuse control characters."""
    if any(ord(ch) < 32 for ch in arg) or len(arg) > 1000:
        raise PlanError(f"{where}argument {arg[:40]!r} holds control characters or is too long")
    return arg
