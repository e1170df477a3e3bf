# Copyright: Cyclotron contributors
# Apache-2.0
"""The OS and its packages: dpkg status with apt marks, rpm, Homebrew Cellar and Caskroom.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ansible.module_utils.cyclotron_gather_common import (
    RPM_TIMEOUT,
    _add_error,
    _file_error,
    _read_text,
    _reason,
    _run,
    expand_path,
    load_json_file,
)
from ansible.module_utils.cyclotron_versions import version_key

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors, Pkg

DEFAULT_BREW_PREFIXES = ["/opt/homebrew", "/usr/local", "/home/linuxbrew/.linuxbrew", "~/.linuxbrew"]
DPKG_STATUS = "/var/lib/dpkg/status"
APT_EXTENDED_STATES = "/var/lib/apt/extended_states"


# --------------------------------------------------------------------------- os and managers


def gather_os(environ: Mapping[str, str], errors: Errors) -> dict[str, str]:
    system = platform.system().lower()
    info = {"family": "linux", "distribution": "", "version": "", "arch": platform.machine()}
    if system == "darwin":
        info.update(family="darwin", distribution="macos", version=platform.mac_ver()[0])
        return info
    if system != "linux":
        _add_error(
            errors,
            "os",
            f"unsupported OS {platform.system()!r} reported as linux: cyclotron_facts targets Linux and "
            "macOS; use win_cyclotron_facts on Windows",
        )
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = _read_text(path)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            _file_error(errors, path, exc)
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if not sep:
                continue
            value = value.strip().strip("\"'")
            if key == "ID":
                info["distribution"] = value
            elif key == "VERSION_ID":
                info["version"] = value
        break
    return info


# --------------------------------------------------------------------------- OS packages


def parse_extended_states(text: str, native_arch: str = "") -> set[tuple[str, str]]:
    """Return {(name, arch)} of packages apt marked Auto-Installed: 1."""
    auto = set()
    for stanza in text.split("\n\n"):
        name = arch = ""
        is_auto = False
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                name = line[8:].strip()
            elif line.startswith("Architecture:"):
                arch = line[13:].strip()
            elif line.startswith("Auto-Installed:"):
                is_auto = line[15:].strip() == "1"
        if name and is_auto:
            auto.add((name, arch or native_arch))
    return auto


def parse_dpkg_status(text: str) -> list[tuple[str, str, str]]:
    """Return (name, version, arch) of installed packages in a dpkg status file."""
    result = []
    for stanza in text.split("\n\n"):
        name = version = arch = ""
        installed = False
        for line in stanza.split("\n"):
            head = line[:4]
            if head == "Pack" and line.startswith("Package:"):
                name = line[8:].strip()
            elif head == "Stat" and line.startswith("Status:"):
                # "want flag status": installed covers "install ok installed" and "hold ok installed".
                installed = line.rsplit(None, 1)[-1] == "installed"
            elif head == "Vers" and line.startswith("Version:"):
                version = line[8:].strip()
            elif head == "Arch" and line.startswith("Architecture:"):
                arch = line[13:].strip()
        if name and installed:
            result.append((name, version, arch))
    return result


def gather_dpkg(status_path: str, states_path: str, include_deps: bool, errors: Errors) -> list[Pkg]:
    try:
        text = _read_text(status_path)
    except (OSError, ValueError) as exc:
        _file_error(errors, status_path, exc)
        return []
    installed = parse_dpkg_status(text)
    arches: dict[str, int] = {}
    native = ""
    for name, _, arch in installed:
        if name == "dpkg":
            native = arch
        arches[arch] = arches.get(arch, 0) + 1
    if not native:
        native = max((a for a in arches if a != "all"), key=lambda a: arches[a], default="")
    auto: set[tuple[str, str]] = set()
    try:
        auto = parse_extended_states(_read_text(states_path), native)
    except FileNotFoundError:
        pass  # no apt marks yet: every package counts as manually installed
    except (OSError, ValueError) as exc:
        _file_error(errors, states_path, exc, "make it readable; until then every package counts as manual")
    packages = []
    for name, version, arch in installed:
        # apt records Architecture: all packages under the native architecture.
        key_arch = native if arch in ("all", "") else arch
        top = (name, key_arch) not in auto
        if not top and not include_deps:
            continue
        shown = name if arch in ("all", "", native) else f"{name}:{arch}"
        packages.append(
            {"manager": "apt", "name": shown, "version": version or None, "top_level": top, "path": ""}
        )
    return packages


def gather_rpm(rpm: str, environ: Mapping[str, str], errors: Errors) -> list[Pkg]:
    argv = [rpm, "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"]
    try:
        rc, out = _run(argv, environ, RPM_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        _add_error(errors, " ".join(argv[:2]), f"{_reason(exc)}: check that rpm runs for the connecting user")
        return []
    if rc != 0:
        _add_error(errors, " ".join(argv[:2]), f"rpm exited {rc}: {out.strip()[-300:]}")
    packages = []
    for line in out.splitlines():
        name, sep, version = line.partition("\t")
        if sep and name and name != "gpg-pubkey":  # imported signing keys, not software
            packages.append(
                {"manager": "rpm", "name": name, "version": version or None, "top_level": True, "path": ""}
            )
    return packages


def brew_prefixes(option: Sequence[str] | None, home: str, environ: Mapping[str, str]) -> list[str]:
    candidates = (
        list(option)
        if option is not None
        else ([environ["HOMEBREW_PREFIX"]] if environ.get("HOMEBREW_PREFIX") else []) + DEFAULT_BREW_PREFIXES
    )
    seen = set()
    found = []
    for prefix in candidates:
        prefix = expand_path(prefix, home)
        real = os.path.realpath(prefix)
        if real in seen:
            continue
        if os.path.isdir(os.path.join(prefix, "Cellar")) or os.path.isdir(os.path.join(prefix, "Caskroom")):
            seen.add(real)
            found.append(prefix)
    return found


def _subdirs(path: str, errors: Errors, missing_ok: bool = False) -> list[str] | None:
    """Sorted names of the visible subdirectories of path; None (error recorded) if unreadable."""
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        if missing_ok:
            return []
        _file_error(errors, path, FileNotFoundError(f"{path} disappeared while reading"))
        return None
    except OSError as exc:
        _file_error(errors, path, exc)
        return None


def gather_brew(prefix: str, include_deps: bool, errors: Errors) -> list[Pkg]:
    packages: list[Pkg] = []
    cellar = os.path.join(prefix, "Cellar")
    for name in _subdirs(cellar, errors, missing_ok=True) or []:
        fdir = os.path.join(cellar, name)
        versions = _subdirs(fdir, errors)
        if not versions:
            continue
        # The opt/ link names the version brew considers current.
        linked = os.path.basename(os.path.realpath(os.path.join(prefix, "opt", name)))
        version = linked if linked in versions else max(versions, key=version_key)
        top = True
        receipt = os.path.join(fdir, version, "INSTALL_RECEIPT.json")
        try:
            data = load_json_file(receipt)
            if isinstance(data, dict) and isinstance(data.get("installed_on_request"), bool):
                top = data["installed_on_request"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            _file_error(errors, receipt, exc, f"reinstall the formula with brew reinstall {name}")
        if top or include_deps:
            packages.append(
                {"manager": "brew", "name": name, "version": version, "top_level": top, "path": prefix}
            )
    caskroom = os.path.join(prefix, "Caskroom")
    for name in _subdirs(caskroom, errors, missing_ok=True) or []:
        versions = _subdirs(os.path.join(caskroom, name), errors)
        if versions is None:
            continue
        packages.append(
            {
                "manager": "brew",
                "name": name,
                "version": max(versions, key=version_key) if versions else None,
                "top_level": True,
                "path": prefix,
            }
        )
    return packages
