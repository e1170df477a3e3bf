# Copyright: Cyclotron contributors
# Apache-2.0
"""npm global packages, read from the prefixes' package.json files without running npm.

Part of the POSIX gatherer (``cyclotron_gather.py``): standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ansible.module_utils.cyclotron_gather_common import (
    _add_error,
    _file_error,
    _read_text,
    _which,
    expand_path,
    load_json_file,
)

if TYPE_CHECKING:
    from ansible.module_utils.cyclotron_gather_common import Errors, Pkg


# --------------------------------------------------------------------------- npm


def _npmrc_prefix(path: str, home: str) -> str | None:
    try:
        text = _read_text(path)
    except (OSError, ValueError):
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "prefix":
            value = value.strip().strip("\"'")
            return expand_path(value, home) if value else None
    return None


def npm_prefixes(option: Sequence[str] | None, home: str, environ: Mapping[str, str]) -> list[str]:
    """The option's prefixes, else the one npm would use: env, ~/.npmrc, then the node install prefix."""
    if option is not None:
        return [expand_path(p, home) for p in option]
    for var in ("NPM_CONFIG_PREFIX", "npm_config_prefix"):
        if environ.get(var):
            return [expand_path(environ[var], home)]
    prefix = _npmrc_prefix(os.path.join(home, ".npmrc"), home)
    if prefix:
        return [prefix]
    node = _which("node", environ)
    return [os.path.dirname(os.path.dirname(node))] if node else []


def _npm_package(pkg_dir: str, prefix: str, errors: Errors) -> Pkg | None:
    manifest = os.path.join(pkg_dir, "package.json")
    try:
        data = load_json_file(manifest)
    except FileNotFoundError:
        return None  # leftovers such as .staging dirs
    except (OSError, ValueError) as exc:
        _file_error(errors, manifest, exc, "reinstall the package with npm install -g")
        return None
    if not isinstance(data, dict):
        _add_error(errors, manifest, "not a JSON object: reinstall the package with npm install -g")
        return None
    name = data.get("name") or os.path.basename(pkg_dir)
    version = data.get("version")
    return {
        "manager": "npm",
        "name": str(name),
        "version": str(version) if version else None,
        "top_level": True,
        "path": prefix,
    }


def gather_npm(prefix: str, errors: Errors) -> list[Pkg]:
    packages: list[Pkg] = []
    for modules in (os.path.join(prefix, "lib", "node_modules"), os.path.join(prefix, "node_modules")):
        try:
            entries = sorted(os.scandir(modules), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            _file_error(errors, modules, exc)
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if entry.name.startswith("@"):
                try:
                    scoped = sorted(os.scandir(entry.path), key=lambda e: e.name)
                except OSError as exc:
                    _file_error(errors, entry.path, exc)
                    continue
                for sub in scoped:
                    if not sub.name.startswith(".") and sub.is_dir():
                        pkg = _npm_package(sub.path, prefix, errors)
                        if pkg:
                            packages.append(pkg)
                continue
            pkg = _npm_package(entry.path, prefix, errors)
            if pkg:
                packages.append(pkg)
    return packages
