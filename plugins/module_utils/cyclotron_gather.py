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

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # annotations are strings at run time, so targets on Python 3.8 never evaluate these
    from typing import TypeAlias

    Errors: TypeAlias = list[dict[str, str]]
    Pkg: TypeAlias = dict[str, Any]

RAW_FORMAT = 1

ALL_SOURCES = ("os_packages", "python", "pipx", "npm", "mcp", "api_keys", "commands", "git")

DEFAULT_API_KEY_PATTERNS = [
    r"(?i).*_API_KEY$",
    r"(?i).*_TOKEN$",
    r"(?i).*_SECRET(_KEY)?$",
    r"(?i)^(OPENAI|ANTHROPIC|GEMINI|GOOGLE|GROQ|MISTRAL|HF|HUGGINGFACE|GITHUB|GITLAB|AWS|AZURE)_.*KEY.*$",
]
DEFAULT_GIT_ROOTS = ["~/src", "~/code", "~/projects", "~/git", "~/repos"]
DEFAULT_BREW_PREFIXES = ["/opt/homebrew", "/usr/local", "/home/linuxbrew/.linuxbrew", "~/.linuxbrew"]
DPKG_STATUS = "/var/lib/dpkg/status"
APT_EXTENDED_STATES = "/var/lib/apt/extended_states"

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

COMMAND_TIMEOUT = 10
PYTHON_PROBE_TIMEOUT = 20
RPM_TIMEOUT = 120
REDACTED = "<redacted>"


# --------------------------------------------------------------------------- helpers


def _add_error(errors: Errors, source: str, message: str) -> None:
    errors.append({"source": str(source), "message": message})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
    if isinstance(exc, OSError):
        return exc.strerror or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {exc}"


def _file_error(errors: Errors, path: str, exc: BaseException, fix: str = "") -> None:
    if isinstance(exc, PermissionError):
        fix = fix or "make it readable by the connecting user, or run the module as its owner"
    elif isinstance(exc, (ValueError, UnicodeDecodeError)):
        fix = fix or "fix or remove the file; the rest of the host was still gathered"
    else:
        fix = fix or "check the file; the rest of the host was still gathered"
    _add_error(errors, path, f"{_reason(exc)}: {fix}")


def expand_path(path: str, home: str) -> str:
    """Expand ``~`` and ``$HOME`` against *home* (not the process HOME), then other variables."""
    path = str(path)
    if path == "~":
        path = home
    elif path.startswith("~/"):
        path = os.path.join(home, path[2:])
    path = path.replace("${HOME}", home)
    if path.startswith("$HOME"):
        path = home + path[5:]
    path = os.path.expandvars(path)
    return os.path.normpath(os.path.join(home, path)) if not os.path.isabs(path) else os.path.normpath(path)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="strict") as handle:
        return handle.read()


def _strip_jsonc(text: str) -> str:
    """Remove // and /* */ comments (outside strings) and trailing commas: VS Code files are JSONC."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
            i += 1
            continue
        if ch == '"':
            in_str = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(ch)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def load_json_file(path: str, jsonc: bool = False) -> Any:
    """Parse a JSON file; with *jsonc* retry after stripping comments and trailing commas."""
    text = _read_text(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text)
    except ValueError:
        if not jsonc:
            raise
        try:
            return json.loads(_strip_jsonc(text))
        except ValueError:
            pass
        raise


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def _c_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    env["LANG"] = "C"
    env["LC_ALL"] = "C"
    # A version probe must not write: HashiCorp tools otherwise create ~/.terraform.d/checkpoint_*.
    env["CHECKPOINT_DISABLE"] = "1"
    return env


def _run(argv: Sequence[str], environ: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run argv (never a shell) with LANG=C; return (rc, stdout+stderr)."""
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_c_env(environ),
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------- secrets in URLs and args

_SENSITIVE_NAME = re.compile(r"(?i)(token|api[-_]?key|^-*key$|passw(or)?d|secret|credential|auth)")
_SENSITIVE_HEADER_FLAGS = ("--header", "--headers", "-H")
_TOKEN_VALUE = re.compile(
    r"^(sk-|sk_|rk_|pk_live_|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|AIza|hf_|gsk_|"
    r"pplx-|r8_|npm_)[A-Za-z0-9_\-]{8,}"
)


def strip_url(url: str, keep_query: bool = False) -> str:
    """Drop userinfo (and the query/fragment unless *keep_query*) from a URL; scp-like git URLs pass."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        # ssh://git@host keeps a bare user name: it is an account, not a credential.
        if parts.scheme in ("ssh", "git+ssh", "ssh+git") and ":" not in userinfo:
            netloc = userinfo + "@" + hostport
        else:
            netloc = hostport
    query = parts.query if keep_query else ""
    fragment = parts.fragment if keep_query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_value(value: str) -> str:
    """Redact a free-standing value: KEY=VALUE with a sensitive key, a token-like string, or a URL."""
    if _TOKEN_VALUE.match(value):
        return REDACTED
    if "://" in value:
        return strip_url(value)
    key, sep, _ = value.partition("=")
    if sep and key and re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", key) and _SENSITIVE_NAME.search(key):
        return key + "=" + REDACTED
    return value


def _redact_header(value: str) -> str:
    name, sep, _ = value.partition(":")
    return name + ": " + REDACTED if sep else REDACTED


def redact_args(args: Iterable[Any]) -> list[str]:
    """Hide values that follow or are attached to --token/--api-key/--key/--password/...secret flags."""
    out: list[str] = []
    redact_next = ""
    for raw in args:
        arg = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, (dict, list)) else str(raw)
        if redact_next:
            mode, redact_next = redact_next, ""
            if not arg.startswith("-"):
                out.append(_redact_header(arg) if mode == "header" else REDACTED)
                continue
        if arg.startswith("-") and len(arg) > 1:
            flag, sep, _ = arg.partition("=")
            if flag in _SENSITIVE_HEADER_FLAGS or flag.lower() in _SENSITIVE_HEADER_FLAGS[:2]:
                if sep:
                    out.append(flag + "=" + _redact_header(arg[len(flag) + 1 :]))
                else:
                    out.append(arg)
                    redact_next = "header"
                continue
            if _SENSITIVE_NAME.search(flag.lstrip("-")):
                if sep:
                    out.append(flag + "=" + REDACTED)
                else:
                    out.append(arg)
                    redact_next = "value"
                continue
            out.append(arg)
            continue
        out.append(_redact_value(arg))
    return out


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


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[._\-+]", text))


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
        version = linked if linked in versions else max(versions, key=_version_key)
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
                "version": max(versions, key=_version_key) if versions else None,
                "top_level": True,
                "path": prefix,
            }
        )
    return packages


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
            lk, rk = _version_key(left), _version_key(right)
            width = max(len(lk), len(rk))
            lk, rk = lk + (0,) * (width - len(lk)), rk + (0,) * (width - len(rk))
            return {"<": lk < rk, "<=": lk <= rk, ">": lk > rk, ">=": lk >= rk, "~=": lk >= rk}[op]
        if versions and op in ("==", "!=") and right.endswith(".*"):
            equal = (left + ".").startswith(right[:-1])
        elif versions and op in ("==", "!="):
            equal = _version_key(left) == _version_key(right)
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


# --------------------------------------------------------------------------- git


def find_git_repos(roots: Sequence[str], max_depth: int, errors: Errors) -> list[str]:
    """Dirs containing .git under roots, down to max_depth levels; repos, node_modules, .venv not entered."""
    found: list[str] = []
    seen = set()
    skip = {"node_modules", ".venv", "venv", "__pycache__", ".tox", ".cache"}
    for root in roots:
        if not os.path.isdir(root):
            continue
        stack = [(root, 0)]
        while stack:
            path, depth = stack.pop()
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            if os.path.exists(os.path.join(path, ".git")):
                found.append(path)
                continue
            if depth >= max_depth:
                continue
            try:
                children = [
                    e.path
                    for e in os.scandir(path)
                    if e.name not in skip and not e.name.startswith(".") and e.is_dir()
                ]
            except OSError as exc:
                if path == root:
                    _file_error(errors, path, exc, "fix its permissions or drop it from git_roots")
                continue
            stack.extend((child, depth + 1) for child in sorted(children, reverse=True))
    return sorted(found)


def _git_dirs(repo: str) -> tuple[str, str]:
    """(gitdir, commondir) of a work tree; .git may be a 'gitdir:' file (worktrees, submodules)."""
    dotgit = os.path.join(repo, ".git")
    gitdir = dotgit
    if os.path.isfile(dotgit):
        text = _read_text(dotgit).strip()
        if text.startswith("gitdir:"):
            gitdir = os.path.normpath(os.path.join(repo, text[7:].strip()))
    common = gitdir
    try:
        rel = _read_text(os.path.join(gitdir, "commondir")).strip()
        common = os.path.normpath(os.path.join(gitdir, rel))
    except (OSError, ValueError):
        pass
    return gitdir, common


def _resolve_ref(ref: str, gitdir: str, common: str) -> str:
    for base in (gitdir, common):
        try:
            sha = _read_text(os.path.join(base, ref)).strip()
            if sha:
                return sha
        except (OSError, ValueError):
            continue
    try:
        for line in _read_text(os.path.join(common, "packed-refs")).splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return sha
    except (OSError, ValueError):
        pass
    return ""  # unborn branch


def parse_git_remotes(text: str) -> dict[str, str]:
    """{remote name: url} from a git config file."""
    remotes: dict[str, str] = {}
    section: tuple[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            match = re.match(r'\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]', stripped)
            if not match:
                section = None
            elif match.group(2) is not None:
                section = (match.group(1).lower(), match.group(2))
            else:
                kind, _, sub = match.group(1).partition(".")  # legacy [remote.origin]
                section = (kind.lower(), sub)
            continue
        if section and section[0] == "remote":
            key, sep, value = stripped.partition("=")
            if sep and key.strip().lower() == "url" and section[1] not in remotes:
                remotes[section[1]] = value.strip().strip('"')
    return remotes


def read_git_repo(repo: str, errors: Errors) -> dict[str, str] | None:
    try:
        gitdir, common = _git_dirs(repo)
        head_text = _read_text(os.path.join(gitdir, "HEAD")).strip()
    except (OSError, ValueError) as exc:
        _file_error(
            errors, os.path.join(repo, ".git"), exc, "check the repository (git status) or its permissions"
        )
        return None
    branch = head = ""
    if head_text.startswith("ref:"):
        ref = head_text[4:].strip()
        branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
        head = _resolve_ref(ref, gitdir, common)
    else:
        head = head_text
    remote = ""
    config = os.path.join(common, "config")
    try:
        remotes = parse_git_remotes(_read_text(config))
        remote = remotes.get("origin") or next(iter(remotes.values()), "")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        _file_error(errors, config, exc)
    return {"path": repo, "remote": strip_url(remote), "branch": branch, "head": head}


# --------------------------------------------------------------------------- MCP


def _transport(entry: Mapping[str, Any], url: str) -> str:
    kind = str(entry.get("type") or entry.get("transport") or "").lower().replace("_", "-")
    if kind == "sse":
        return "sse"
    if kind in ("http", "streamable-http", "streamablehttp"):
        return "http"
    if kind == "stdio":
        return "stdio"
    return "http" if url else "stdio"


def mcp_entry(
    name: str, entry: Any, assistant: str, scope: str, path: str, project: str = ""
) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        return None
    url = entry.get("url") or entry.get("serverUrl") or ""
    url = strip_url(str(url)) if url else ""
    env = entry.get("env")
    args = entry.get("args")
    server = {
        "name": str(name),
        "assistant": assistant,
        "scope": scope,
        "path": path,
        "transport": _transport(entry, url),
        "command": _redact_value(str(entry.get("command") or "")),
        "args": redact_args(args) if isinstance(args, list) else [],
        "url": url,
        "env_names": sorted(str(k) for k in env) if isinstance(env, dict) else [],
    }
    if project:
        server["project"] = project  # extra key: RawFacts ignores it, a later format may use it
    return server


def _servers_from(
    data: Any,
    key: str,
    assistant: str,
    scope: str,
    path: str,
    errors: Errors,
    project: str = "",
    where: str = "",
) -> list[dict[str, Any]]:
    block = data.get(key) if isinstance(data, dict) else None
    if block is None:
        return []
    if not isinstance(block, dict):
        _add_error(errors, path, f"{where}{key} is not an object of servers: fix the file")
        return []
    servers = []
    for name, entry in block.items():
        server = mcp_entry(name, entry, assistant, scope, path, project)
        if server is None:
            _add_error(errors, path, f"{where}{key}.{name} is not an object: fix or remove that entry")
        else:
            servers.append(server)
    return servers


def _load_config(path: str, errors: Errors, jsonc: bool = True) -> Any:
    try:
        return load_json_file(path, jsonc=jsonc)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        _file_error(
            errors,
            path,
            exc,
            "fix the JSON (the assistant will not load it either); other MCP configs were still read",
        )
        return None


def claude_json_path(home: str) -> str:
    return os.path.join(home, ".claude.json")


def claude_projects(data: Any) -> list[str]:
    projects = data.get("projects") if isinstance(data, dict) else None
    return (
        [p for p in projects if isinstance(p, str) and os.path.isabs(p)] if isinstance(projects, dict) else []
    )


def gather_mcp(
    home: str, project_dirs: Sequence[str] | None, git_repos: Callable[[], list[str]], errors: Errors
) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    claude = claude_json_path(home)
    data = _load_config(claude, errors, jsonc=False)
    if data is not None:
        servers += _servers_from(data, "mcpServers", "claude_code", "user", claude, errors)
        projects = data.get("projects") if isinstance(data, dict) else None
        if isinstance(projects, dict):
            for proj, pdata in projects.items():
                servers += _servers_from(
                    pdata,
                    "mcpServers",
                    "claude_code",
                    "local",
                    claude,
                    errors,
                    project=str(proj),
                    where=f"projects[{proj}].",
                )
    user_configs = [
        (
            os.path.join(home, ".config", "Claude", "claude_desktop_config.json"),
            "claude_desktop",
            "user",
            "mcpServers",
        ),
        (
            os.path.join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json"),
            "claude_desktop",
            "user",
            "mcpServers",
        ),
        (os.path.join(home, ".cursor", "mcp.json"), "cursor", "global", "mcpServers"),
        (os.path.join(home, ".config", "Code", "User", "mcp.json"), "vscode", "user", "servers"),
        (
            os.path.join(home, "Library", "Application Support", "Code", "User", "mcp.json"),
            "vscode",
            "user",
            "servers",
        ),
    ]
    read = set()
    for path, assistant, scope, key in user_configs:
        read.add(path)
        servers += _servers_from(_load_config(path, errors), key, assistant, scope, path, errors)
    dirs = claude_projects(data) + git_repos() if project_dirs is None else [expand_path(p, home) for p in project_dirs]
    seen = set()
    for proj in dirs:
        proj = os.path.normpath(proj)
        if proj in seen:
            continue
        seen.add(proj)
        for rel, assistant, key in (
            (".mcp.json", "claude_code", "mcpServers"),
            (os.path.join(".cursor", "mcp.json"), "cursor", "mcpServers"),
            (os.path.join(".vscode", "mcp.json"), "vscode", "servers"),
        ):
            path = os.path.join(proj, rel)
            if path in read:
                continue  # the home dir as a project: ~/.cursor/mcp.json is the global file
            read.add(path)
            servers += _servers_from(
                _load_config(path, errors), key, assistant, "project", path, errors, project=proj
            )
    return servers


# --------------------------------------------------------------------------- API key names


def env_file_names(path: str) -> list[str]:
    """Variable names defined in a .env file; values are skipped as they are read."""
    names = []
    quote = ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if quote:  # inside a multi-line quoted value
                if quote in line:
                    quote = ""
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("export "):
                stripped = stripped[7:].lstrip()
            key, sep, rest = stripped.partition("=")
            key = key.strip()
            if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", key):
                continue
            rest = rest.strip()
            if rest[:1] in ("'", '"') and rest[1:].find(rest[0]) < 0:
                quote = rest[0]
            names.append(key)
    return names


def gather_api_keys(
    patterns: Sequence[str],
    read_environment: bool,
    env_files: Sequence[str],
    home: str,
    environ: Mapping[str, str],
    errors: Errors,
) -> list[dict[str, str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            _add_error(errors, "api_key_patterns", f"invalid regex {pattern!r} ({exc}): fix the pattern")

    def matches(name: str) -> bool:
        return any(rx.search(name) for rx in compiled)

    found: list[dict[str, str]] = []
    if read_environment:
        found += [{"name": n, "origin": "env"} for n in sorted(environ) if matches(n)]
    for env_file in env_files:
        path = expand_path(env_file, home)
        try:
            names = env_file_names(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            _file_error(errors, path, exc)
            continue
        for name in sorted(set(names)):
            if matches(name):
                found.append({"name": name, "origin": path})
    return found


# --------------------------------------------------------------------------- command probes


class ProbeCache:
    """Versions keyed on the executable's identity (path, inode, size, mtime).

    Starting every tool to ask its version is most of a gather's cost; a binary that has
    not changed since the last run reports the version it reported then.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.dirty = False
        if path:
            try:
                data = load_json_file(path)
                if isinstance(data, dict) and data.get("format") == 1 and isinstance(data.get("entries"), dict):
                    self.entries = data["entries"]
            except (OSError, ValueError):
                self.entries = {}  # a missing or damaged cache is rebuilt

    @staticmethod
    def key(exe: str, argv: Sequence[str], regex: str) -> str | None:
        try:
            st = os.stat(exe)
        except OSError:
            return None
        ident = f"{os.path.realpath(exe)}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
        return ident + "|" + "\x1f".join(argv[1:]) + "|" + regex

    def get(self, key: str | None) -> Any:
        return self.entries.get(key) if key else None

    def put(self, key: str | None, version: str | None) -> None:
        if key and self.path:
            self.entries[key] = version
            self.dirty = True

    def save(self) -> None:
        if not (self.path and self.dirty):
            return
        try:
            directory = os.path.dirname(self.path)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump({"format": 1, "entries": self.entries}, handle)
            os.replace(tmp, self.path)
        except OSError:
            pass  # the cache only saves time; gathering is correct without it


def _probe(
    spec: Mapping[str, Any], environ: Mapping[str, str], errors: Errors, cache: ProbeCache | None = None
) -> dict[str, Any] | None:
    argv = [str(a) for a in spec.get("argv") or []]
    if not argv:
        _add_error(errors, str(spec.get("name") or "commands"), "argv is empty: give the command as a list")
        return None
    exe = _which(argv[0], environ)
    if not exe:
        return None
    name = str(spec.get("name") or os.path.basename(argv[0]))
    result: dict[str, Any] = {"name": name, "path": exe, "version": None}
    cache_key = cache.key(exe, argv, str(spec.get("regex") or "")) if cache else None
    if cache is not None and cache_key in cache.entries:
        result["version"] = cache.get(cache_key)
        return result
    try:
        _, out = _run([exe] + argv[1:], environ, COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        _add_error(
            errors,
            " ".join(argv),
            f"timed out after {COMMAND_TIMEOUT} s: check the command runs non-interactively",
        )
        return result
    except (OSError, subprocess.SubprocessError) as exc:
        _add_error(errors, " ".join(argv), f"{_reason(exc)}: check the command runs for the connecting user")
        return result
    regex = spec.get("regex")
    if regex:
        try:
            match = re.search(regex, out)
        except re.error as exc:
            _add_error(errors, name, f"invalid regex {regex!r} ({exc}): fix commands[].regex")
            return result
        if match:
            result["version"] = match.group(1) if match.re.groups else match.group(0)
    if cache is not None:
        cache.put(cache_key, result["version"])
    return result


def gather_commands(
    specs: Sequence[Mapping[str, Any]],
    environ: Mapping[str, str],
    errors: Errors,
    cache_path: str = "",
    save_cache: bool = True,
) -> list[dict[str, Any]]:
    if not specs:
        return []
    cache = ProbeCache(cache_path) if cache_path else None
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda s: _probe(s, environ, errors, cache), specs))
    if cache is not None and save_cache:
        cache.save()
    return [r for r in results if r]


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
