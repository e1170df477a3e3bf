# Copyright: Cyclotron contributors
# Apache-2.0
"""Gather raw capability facts on a POSIX host (Linux, macOS) without spawning what a file read does.

Runs on target hosts inside the ``cyclotron_facts`` module, so it depends on the standard
library only and keeps to Python 3.8 syntax. The output is a plain dict in the shape of
``cyclotron_py.raw.RawFacts`` (format 1).

Every source is wrapped: a missing file is normal and silent, an unreadable or malformed one
becomes an ``errors`` entry ``{"source", "message"}`` with a suggested fix, and gathering goes on.
Secret values (API keys, MCP ``env`` values, credentials in URLs or arguments) are read only
where unavoidable and never returned.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from ansible.module_utils.cyclotron_gather_api_keys import DEFAULT_API_KEY_PATTERNS, gather_api_keys
from ansible.module_utils.cyclotron_gather_common import _add_error, _reason, _which, expand_path
from ansible.module_utils.cyclotron_gather_git import DEFAULT_GIT_ROOTS, find_git_repos, read_git_repo
from ansible.module_utils.cyclotron_gather_mcp import gather_mcp
from ansible.module_utils.cyclotron_gather_npm import gather_npm, npm_prefixes
from ansible.module_utils.cyclotron_gather_os import (
    APT_EXTENDED_STATES,
    DPKG_STATUS,
    brew_prefixes,
    gather_brew,
    gather_dpkg,
    gather_os,
    gather_rpm,
)
from ansible.module_utils.cyclotron_gather_probes import gather_commands
from ansible.module_utils.cyclotron_gather_python import gather_pipx, gather_python, pipx_home, python_environments

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors, Pkg

RAW_FORMAT = 1

ALL_SOURCES = ("os_packages", "python", "pipx", "npm", "mcp", "api_keys", "commands", "git")


# Option defaults, so callers other than the module (tests, benchmarks) can pass a partial dict.
DEFAULTS: dict[str, Any] = {
    "home": None,
    "sources": list(ALL_SOURCES),
    "include_dependencies": False,
    "python_environments": [],
    "pipx_home": None,
    "npm_prefixes": None,
    "mcp_project_dirs": None,
    "api_key_patterns": DEFAULT_API_KEY_PATTERNS,
    "read_environment": True,
    "env_files": ["~/.env"],
    "commands": [],
    "git_roots": DEFAULT_GIT_ROOTS,
    "git_max_depth": 3,
    "probe_cache": "~/.cache/cyclotron/probes.json",
    "check_mode": False,
    "brew_prefixes": None,
    "dpkg_status_path": DPKG_STATUS,
    "apt_extended_states_path": APT_EXTENDED_STATES,
}

# The module's options in AnsibleModule argument_spec form. The cyclotron_facts module and the
# cyclotron_gather action (which validates on the controller, then runs this file as a plain script)
# share it, so both accept and default exactly the same options.
ARGUMENT_SPEC: dict[str, Any] = {
    "home": {"type": "path"},
    "sources": {"type": "list", "elements": "str", "choices": list(ALL_SOURCES), "default": list(ALL_SOURCES)},
    "include_dependencies": {"type": "bool", "default": False},
    # str, not path: "~" must resolve against home, not the module user's HOME.
    "python_environments": {"type": "list", "elements": "str", "default": []},
    "pipx_home": {"type": "str"},
    "npm_prefixes": {"type": "list", "elements": "str"},
    "mcp_project_dirs": {"type": "list", "elements": "str"},
    "api_key_patterns": {"type": "list", "elements": "str", "default": list(DEFAULT_API_KEY_PATTERNS)},
    "read_environment": {"type": "bool", "default": True},
    "env_files": {"type": "list", "elements": "str", "default": ["~/.env"]},
    "commands": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "name": {"type": "str", "required": True},
            "argv": {"type": "list", "elements": "str", "required": True},
            "regex": {"type": "str"},
        },
    },
    "git_roots": {"type": "list", "elements": "str", "default": list(DEFAULT_GIT_ROOTS)},
    "git_max_depth": {"type": "int", "default": 3},
    "probe_cache": {"type": "str", "default": "~/.cache/cyclotron/probes.json"},
    "brew_prefixes": {"type": "list", "elements": "str"},
    "dpkg_status_path": {"type": "path", "default": DPKG_STATUS},
    "apt_extended_states_path": {"type": "path", "default": APT_EXTENDED_STATES},
}
# Options of type path: AnsibleModule expands "~" and $VARS in them on the host.
PATH_OPTIONS = tuple(name for name, spec in ARGUMENT_SPEC.items() if spec["type"] == "path")


# --------------------------------------------------------------------------- orchestration


def _guard(errors: Errors, source: str, func: Callable[[], Any], empty: Any) -> Any:
    """Run one source; an unexpected exception becomes an errors entry instead of aborting the host."""
    try:
        return func()
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        _add_error(errors, source, f"{_reason(exc)}: please report this; other sources were still gathered")
        return empty


def gather(
    params: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Gather all selected sources; returns a dict in the RawFacts (format 1) shape."""
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (params or {}).items() if v is not None})
    env = dict(os.environ if environ is None else environ)
    home = os.path.normpath(opts["home"] or env.get("HOME") or os.path.expanduser("~"))
    sources = set(ALL_SOURCES if opts["sources"] is None else opts["sources"])
    include_deps = bool(opts["include_dependencies"])

    errs: dict[str, Errors] = {name: [] for name in ("os",) + ALL_SOURCES}
    results: dict[str, Any] = {}

    has_dpkg = os.path.isfile(opts["dpkg_status_path"])
    rpm = None if has_dpkg else _which("rpm", env)
    brews = brew_prefixes(opts["brew_prefixes"], home, env)
    pyenvs = python_environments(opts["python_environments"], home, env)
    pipx_dir = pipx_home(opts["pipx_home"], home, env)
    prefixes = npm_prefixes(opts["npm_prefixes"], home, env)

    def os_packages() -> list[Pkg]:
        errors = errs["os_packages"]
        pkgs: list[Pkg] = []
        if has_dpkg:
            pkgs += gather_dpkg(
                opts["dpkg_status_path"], opts["apt_extended_states_path"], include_deps, errors
            )
        elif rpm:
            pkgs += gather_rpm(rpm, env, errors)
        for prefix in brews:
            pkgs += gather_brew(prefix, include_deps, errors)
        return pkgs

    def git_scan() -> list[str]:
        roots = [expand_path(r, home) for r in opts["git_roots"] or []]
        return find_git_repos(roots, int(opts["git_max_depth"]), errs["git"])

    jobs: dict[str, Callable[[], Any]] = {
        "os_packages": os_packages,
        "python": lambda: gather_python(pyenvs, include_deps, env, errs["python"]),
        "pipx": lambda: gather_pipx(pipx_dir, errs["pipx"]),
        "npm": lambda: [p for prefix in prefixes for p in gather_npm(prefix, errs["npm"])],
        "api_keys": lambda: gather_api_keys(
            opts["api_key_patterns"] or [],
            bool(opts["read_environment"]),
            opts["env_files"] or [],
            home,
            env,
            errs["api_keys"],
        ),
        "commands": lambda: gather_commands(
            opts["commands"] or [],
            env,
            errs["commands"],
            expand_path(opts["probe_cache"], home) if opts["probe_cache"] else "",
            save_cache=not opts["check_mode"],
        ),
    }
    need_repos = "git" in sources or ("mcp" in sources and opts["mcp_project_dirs"] is None)
    # Threads overlap the few process spawns (python sys.path, rpm, probes) with file parsing.
    with ThreadPoolExecutor(max_workers=8) as pool:
        repo_future = pool.submit(_guard, errs["git"], "git", git_scan, []) if need_repos else None
        futures = {
            name: pool.submit(_guard, errs[name], name, job, [])
            for name, job in jobs.items()
            if name in sources
        }
        os_info = _guard(
            errs["os"],
            "os",
            lambda: gather_os(env, errs["os"]),
            {"family": "linux", "distribution": "", "version": "", "arch": ""},
        )
        repos: list[str] = []
        if "mcp" in sources:
            results["mcp"] = _guard(
                errs["mcp"],
                "mcp",
                lambda: gather_mcp(
                    home,
                    opts["mcp_project_dirs"],
                    lambda: repo_future.result() if repo_future else [],
                    errs["mcp"],
                ),
                [],
            )
        if repo_future is not None:
            repos = repo_future.result()
        if "git" in sources:
            infos = (_guard(errs["git"], r, partial(read_git_repo, r, errs["git"]), None) for r in repos)
            results["git"] = [info for info in infos if info]
        for name, future in futures.items():
            results[name] = future.result()

    managers = []
    if has_dpkg and _which("apt-get", env):
        managers.append("apt")
    if _which("rpm", env):
        managers.append("rpm")
    if brews or _which("brew", env):
        managers.append("brew")
    if any(os.path.exists(p) for p in pyenvs):
        managers.append("pip")
    if _which("pipx", env) or os.path.isdir(pipx_dir):
        managers.append("pipx")
    if _which("npm", env) or any(
        os.path.isdir(os.path.join(p, "lib", "node_modules", "npm")) for p in prefixes
    ):
        managers.append("npm")
    if _which("git", env):
        managers.append("git")

    packages: list[Pkg] = []
    for name in ("os_packages", "python", "pipx", "npm"):
        packages += results.get(name, [])
    packages.sort(key=lambda p: (p["manager"], p["path"], p["name"].lower()))
    mcp = sorted(
        results.get("mcp", []),
        key=lambda s: (s["assistant"], s["scope"], s["path"], s.get("project", ""), s["name"]),
    )
    api_keys = sorted(
        results.get("api_keys", []), key=lambda k: (k["origin"] != "env", k["origin"], k["name"])
    )
    commands = sorted(results.get("commands", []), key=lambda c: c["name"])
    errors: Errors = []
    for name in ("os",) + ALL_SOURCES:
        errors += errs[name]
    return {
        "format": RAW_FORMAT,
        "os": os_info,
        "managers": managers,
        "packages": packages,
        "mcp_servers": mcp,
        "api_keys": api_keys,
        "commands": commands,
        "git_repos": results.get("git", []),
        "errors": errors,
    }


def option_errors(params: Mapping[str, Any]) -> list[str]:
    """Option values that are mistakes in the play rather than in the host, as messages."""
    problems = []
    for pattern in params.get("api_key_patterns") or []:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"api_key_patterns: invalid regular expression {pattern!r}: {exc}")
    for index, spec in enumerate(params.get("commands") or []):
        if not spec.get("argv"):
            problems.append(f"commands[{index}] ({spec.get('name')}): argv must list the command to run")
        if spec.get("regex"):
            try:
                re.compile(spec["regex"])
            except re.error as exc:
                problems.append(f"commands[{index}] ({spec.get('name')}): invalid regex {spec['regex']!r}: {exc}")
    depth = params.get("git_max_depth")
    if depth is not None and int(depth) < 0:
        problems.append(f"git_max_depth must be 0 or more, got {depth}")
    return problems


def run_as_script(params: Mapping[str, Any]) -> None:
    """Entry point when this file is piped to the host's Python as a plain script (no AnsiballZ).

    ``params`` were validated against ARGUMENT_SPEC on the controller, except path expansion, which
    belongs on the host. Prints one JSON result in the module's shape and exits.
    """
    opts = dict(params)
    for name in PATH_OPTIONS:
        if opts.get(name):
            opts[name] = os.path.expanduser(os.path.expandvars(opts[name]))
    problems = option_errors(opts)
    if problems:
        result: dict[str, Any] = {"failed": True, "msg": "; ".join(problems)}
    else:
        try:
            result = {"changed": False, "ansible_facts": {"cyclotron_raw": gather(opts)}}
        except Exception as exc:  # noqa: BLE001 - reported to the controller as a failed task
            result = {"failed": True, "msg": f"cyclotron_gather failed on the host: {_reason(exc)}"}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    sys.exit(1 if result.get("failed") else 0)
