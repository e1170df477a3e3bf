# Copyright: Cyclotron contributors
# Apache-2.0
"""Python packages from dist-info/egg-info metadata (with environment markers), and pipx venvs.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ansible.module_utils.cyclotron_gather_common import (
    PYTHON_PROBE_TIMEOUT,
    _add_error,
    _file_error,
    _read_text,
    _reason,
    _run,
    _which,
    expand_path,
    load_json_file,
)
from ansible.module_utils.cyclotron_versions import version_key

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors, Pkg


# --------------------------------------------------------------------------- Python packages


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


_MARKER_TOKEN = re.compile(
    r"\s*(\(|\)|not\s+in\b|and\b|or\b|in\b|===|==|!=|<=|>=|~=|<|>|'[^']*'|\"[^\"]*\"|[A-Za-z_][A-Za-z0-9_.]*)"
)


def _marker_env(python_version: str) -> dict[str, str]:
    system = platform.system()
    return {
        "python_version": python_version,
        "python_full_version": python_version,
        "implementation_version": python_version,
        "sys_platform": sys.platform,
        "platform_system": system,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "implementation_name": sys.implementation.name,
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def evaluate_marker(marker: str, env: Mapping[str, str]) -> bool:
    """Small PEP 508 marker evaluator; anything it cannot parse counts as true (a real requirement)."""
    tokens = []
    pos = 0
    marker = marker.strip()
    while pos < len(marker):
        match = _MARKER_TOKEN.match(marker, pos)
        if not match:
            return True
        tokens.append(re.sub(r"\s+", " ", match.group(1)))
        pos = match.end()
        while pos < len(marker) and marker[pos].isspace():
            pos += 1
    index = [0]

    def peek() -> str:
        return tokens[index[0]] if index[0] < len(tokens) else ""

    def take() -> str:
        tok = peek()
        index[0] += 1
        return tok

    def value() -> tuple[str, bool]:
        tok = take()
        if tok[:1] in ("'", '"'):
            return tok[1:-1], False
        if tok not in env:
            raise ValueError(tok)
        return env[tok], tok.startswith(("python_", "implementation_version"))

    def compare(left: str, op: str, right: str, versions: bool) -> bool:
        if op in ("in", "not in"):
            return (left in right) == (op == "in")
        if versions and op not in ("==", "!=", "==="):
            lk, rk = version_key(left), version_key(right)
            return {"<": lk < rk, "<=": lk <= rk, ">": lk > rk, ">=": lk >= rk, "~=": lk >= rk}[op]
        if versions and op in ("==", "!=") and right.endswith(".*"):
            equal = (left + ".").startswith(right[:-1])
        elif versions and op in ("==", "!="):
            equal = version_key(left) == version_key(right)
        else:
            equal = left == right
        if op in ("==", "==="):
            return equal
        if op == "!=":
            return not equal
        raise ValueError(op)

    def atom() -> bool:
        if peek() == "(":
            take()
            result = expr()
            if take() != ")":
                raise ValueError(")")
            return result
        left, lver = value()
        op = take()
        right, rver = value()
        return compare(left, op, right, lver or rver)

    def conj() -> bool:
        result = atom()
        while peek() == "and":
            take()
            result = atom() and result
        return result

    def expr() -> bool:
        result = conj()
        while peek() == "or":
            take()
            result = conj() or result
        return result

    try:
        result = expr()
        return result if index[0] == len(tokens) else True
    except (ValueError, KeyError, IndexError):
        return True


_REQ_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(line: str, marker_env: Mapping[str, str]) -> str | None:
    """Normalised name of a Requires-Dist line that applies (not behind an extra, marker true)."""
    spec, _, marker = line.partition(";")
    if marker and re.search(r"\bextra\b", marker):
        return None
    if marker and not evaluate_marker(marker, marker_env):
        return None
    match = _REQ_NAME.match(spec)
    return normalize_name(match.group(1)) if match else None


def _read_headers(path: str) -> list[tuple[str, str]]:
    """RFC 822 style headers of METADATA/PKG-INFO, up to the first blank line."""
    headers: list[tuple[str, str]] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line in ("\n", "\r\n"):
                break
            if line[:1] in (" ", "\t"):
                continue  # folded continuation of a long header (License, Description)
            key, sep, value = line.partition(":")
            if sep and key in ("Name", "Version", "Requires-Dist"):
                headers.append((key, value.strip()))
    return headers


def _read_dist(site: str, entry: str, marker_env: Mapping[str, str]) -> tuple[str, str, list[str]] | None:
    """(name, version, required names) of one *.dist-info / *.egg-info entry, None if not a distribution."""
    full = os.path.join(site, entry)
    requires: list[str] = []
    if entry.endswith(".dist-info"):
        meta = os.path.join(full, "METADATA")
    elif os.path.isdir(full):
        meta = os.path.join(full, "PKG-INFO")
        try:
            with open(os.path.join(full, "requires.txt"), encoding="utf-8", errors="replace") as handle:
                section = ""
                for line in handle:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if line.startswith("["):
                        section = line[1:-1]
                        continue
                    # "[extra]" or "[extra:marker]" sections are optional; "[:marker]" is conditional.
                    extra, _, marker = section.partition(":")
                    if extra or (marker and not evaluate_marker(marker, marker_env)):
                        continue
                    name = requirement_name(line, marker_env)
                    if name:
                        requires.append(name)
        except OSError:
            pass
    else:
        meta = full  # single-file egg-info is PKG-INFO itself
    try:
        headers = _read_headers(meta)
    except FileNotFoundError:
        return None
    name = version = ""
    for key, value in headers:
        if key == "Name" and not name:
            name = value
        elif key == "Version" and not version:
            version = value
        elif key == "Requires-Dist":
            req = requirement_name(value, marker_env)
            if req:
                requires.append(req)
    if not name:
        # Fall back to the directory name: name-version.dist-info.
        stem = entry.rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
    return name, version, requires


def scan_site_packages(
    sites: Sequence[str], python_version: str, include_deps: bool, label: str, errors: Errors
) -> list[Pkg]:
    """Packages of one environment; the first site dir that has a project wins, as at import time."""
    marker_env = _marker_env(python_version)
    dists: dict[str, tuple[str, str]] = {}
    required: set[str] = set()
    for site in sites:
        try:
            entries = [e for e in os.listdir(site) if e.endswith((".dist-info", ".egg-info"))]
        except FileNotFoundError:
            continue
        except OSError as exc:
            _file_error(errors, site, exc)
            continue
        for entry in entries:
            try:
                info = _read_dist(site, entry, marker_env)
            except OSError as exc:
                _file_error(errors, os.path.join(site, entry), exc, "reinstall that package")
                continue
            if info is None:
                continue
            name, version, requires = info
            key = normalize_name(name)
            if key in dists:
                continue
            dists[key] = (name, version)
            required.update(requires)
    packages = []
    for key, (name, version) in dists.items():
        top = key not in required
        if top or include_deps:
            packages.append(
                {"manager": "pip", "name": name, "version": version or None, "top_level": top, "path": label}
            )
    return packages


def _venv_sites(venv: str) -> list[str]:
    sites = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages"))
    sites += glob.glob(os.path.join(venv, "lib64", "python3*", "site-packages"))
    sites += glob.glob(os.path.join(venv, "Lib", "site-packages"))
    seen = set()
    unique = []
    for site in sorted(sites):
        real = os.path.realpath(site)
        if real not in seen:
            seen.add(real)
            unique.append(site)
    return unique


def _version_from_sites(sites: Sequence[str]) -> str:
    for site in sites:
        match = re.search(r"python(\d+\.\d+)", site)
        if match:
            return match.group(1)
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def python_environments(option: Sequence[str], home: str, environ: Mapping[str, str]) -> list[str]:
    """The environments to read: the option's paths, else python3 on PATH."""
    if option:
        return [expand_path(p, home) for p in option]
    found = _which("python3", environ)
    return [found] if found else []


def _system_site_packages(venv: str) -> bool:
    try:
        text = _read_text(os.path.join(venv, "pyvenv.cfg"))
    except (OSError, ValueError):
        return False
    return bool(re.search(r"(?im)^\s*include-system-site-packages\s*=\s*true\s*$", text))


def resolve_python_sites(env_path: str, environ: Mapping[str, str], errors: Errors) -> list[str] | None:
    """site-packages dirs of a venv dir or a python executable (run once only outside a venv)."""
    if os.path.isdir(env_path):
        sites = _venv_sites(env_path)
        if not sites:
            _add_error(
                errors,
                env_path,
                "no lib/python3*/site-packages here: give a virtualenv directory or "
                "a python executable in python_environments",
            )
            return None
        return sites
    if not os.path.exists(env_path):
        _add_error(errors, env_path, "python environment not found: fix python_environments")
        return None
    # bin/python inside a venv: read the venv directly unless it also sees system site-packages.
    venv = os.path.dirname(os.path.dirname(env_path))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")) and not _system_site_packages(venv):
        sites = _venv_sites(venv)
        if sites:
            return sites
    argv = [env_path, "-c", "import sys,json;print(json.dumps(sys.path))"]
    try:
        rc, out = _run(argv, environ, PYTHON_PROBE_TIMEOUT)
        if rc != 0:
            raise ValueError(f"exited {rc}: {out.strip()[-300:]}")
        paths = json.loads(out.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError) as exc:
        _add_error(
            errors,
            env_path,
            f"cannot read sys.path ({_reason(exc)}): check the interpreter runs, or list its "
            "virtualenv directory in python_environments",
        )
        return None
    return [
        p
        for p in paths
        if isinstance(p, str)
        and os.path.basename(p) in ("site-packages", "dist-packages")
        and os.path.isdir(p)
    ]


def gather_python(
    envs: Sequence[str], include_deps: bool, environ: Mapping[str, str], errors: Errors
) -> list[Pkg]:
    packages: list[Pkg] = []
    for env_path in envs:
        sites = resolve_python_sites(env_path, environ, errors)
        if sites is None:
            continue
        packages.extend(scan_site_packages(sites, _version_from_sites(sites), include_deps, env_path, errors))
    return packages


# --------------------------------------------------------------------------- pipx


def pipx_home(option: str | None, home: str, environ: Mapping[str, str]) -> str:
    if option:
        return expand_path(option, home)
    if environ.get("PIPX_HOME"):
        return expand_path(environ["PIPX_HOME"], home)
    candidates = ["~/.local/share/pipx", "~/.local/pipx"]
    if platform.system() == "Darwin":
        candidates.append("~/Library/Application Support/pipx")
    for candidate in candidates:
        path = expand_path(candidate, home)
        if os.path.isdir(path):
            return path
    return expand_path(candidates[0], home)


def gather_pipx(home_dir: str, errors: Errors) -> list[Pkg]:
    venvs = os.path.join(home_dir, "venvs")
    try:
        names = sorted(e.name for e in os.scandir(venvs) if e.is_dir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        _file_error(errors, venvs, exc)
        return []
    packages = []
    for name in names:
        meta_path = os.path.join(venvs, name, "pipx_metadata.json")
        try:
            meta = load_json_file(meta_path)
            main = meta["main_package"]
            package = main.get("package") or name
            version = main.get("package_version") or None
        except FileNotFoundError:
            _add_error(errors, meta_path, f"missing: reinstall with pipx reinstall {name}")
            continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            _file_error(errors, meta_path, exc, f"reinstall with pipx reinstall {name}")
            continue
        packages.append(
            {"manager": "pipx", "name": str(package), "version": version, "top_level": True, "path": home_dir}
        )
    return packages
