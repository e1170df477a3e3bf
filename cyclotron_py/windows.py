"""Controller-side parsers for what ``win_cyclotron_facts`` returns.

The PowerShell module stays minimal and hands back native output (the file
``winget export`` writes, ``choco list -r`` stdout, Uninstall registry values,
sanitised MCP config text, ``.git`` file contents). Everything here turns that
into :class:`cyclotron_py.raw.RawFacts`. The functions are pure and are tested
against recorded real output in ``tests/fixtures/windows/``.

Secrets: MCP ``env``/``headers`` blocks yield variable names only, URLs lose
credentials, query and fragment, and arguments that look secret (after a
``--token``-like flag, token-shaped, ``KEY=VALUE``) are redacted by ``cyclotron_py.secrets``,
whose rules the POSIX module's copy shares. API keys are reported by name.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import PureWindowsPath
from typing import Any

from .errors import CyclotronError
from .raw import (
    RawApiKey,
    RawCommand,
    RawError,
    RawFacts,
    RawGitRepo,
    RawMcpServer,
    RawOs,
    RawPackage,
)
from .secrets import redact_args, redact_value, strip_url

__all__ = [
    "DEFAULT_API_KEY_PATTERNS",
    "WindowsFactsError",
    "merge_windows_packages",
    "parse_choco_list",
    "parse_choco_packages_config",
    "parse_commands",
    "parse_git_repo",
    "parse_mcp_files",
    "parse_registry",
    "parse_winget_export",
    "to_raw",
]

# Same list as the module's api_key_patterns default: names such as
# OPENAI_API_KEY, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID.
DEFAULT_API_KEY_PATTERNS: tuple[str, ...] = (
    r"(?i)(^|_)(api_?key|token|secret|password|access_key(_id)?)($|_)",
    r"(?i)_KEY$",
)

DEFAULT_VERSION_REGEX = r"(\d+(?:\.\d+)+)"

# Environment names a manifest id can carry (Windows has names like "ProgramFiles(x86)").
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_CHOCO_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
_CHOCO_VERSION = r"\d[0-9A-Za-z.+-]*"
_CHOCO_LINE_RE = re.compile(rf"^({_CHOCO_NAME})(?:\|| +)({_CHOCO_VERSION})$")
# choco convention: "git" is a meta package depending on "git.install".
_CHOCO_DEP_SUFFIXES = (".install", ".portable")
_HEX_SHA_RE = re.compile(r"\b([0-9a-f]{40}|[0-9a-f]{64})\b")
# Managers reported when their command was found by a probe.
_MANAGER_COMMANDS = (("pip", ("pip", "pip3")), ("pipx", ("pipx",)), ("npm", ("npm",)), ("git", ("git",)))
_ARCH = {"amd64": "x86_64", "x64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "x86": "x86"}


class WindowsFactsError(CyclotronError, ValueError):
    """Native Windows output cannot be parsed; the message names the source and the fix."""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- winget -------------------------------------------------------------------


def _decode(text: str | bytes) -> str:
    # Windows PowerShell 5.1 writes UTF-8 with a byte-order mark.
    if isinstance(text, bytes):
        return text.decode("utf-8-sig", errors="replace")
    return text.lstrip("\ufeff")


def parse_winget_export(text: str | bytes) -> list[RawPackage]:
    """Packages of a ``winget export`` file, one per source and identifier.

    Every source is recorded (``msstore`` ids too) with the source name in
    ``path`` so an install can pass ``--source``. ``Version`` is present only
    when the export ran with ``--include-versions``.
    """
    body = _decode(text).strip()
    fix = "re-run `winget export -o FILE --include-versions --accept-source-agreements`"
    if not body:
        raise WindowsFactsError(f"winget export is empty; {fix}")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WindowsFactsError(
            f"winget export is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); {fix}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("Sources"), list):
        raise WindowsFactsError(
            "winget export has no 'Sources' list; expected the winget-packages schema 2.0 "
            f"(https://aka.ms/winget-packages.schema.2.0.json); {fix}"
        )
    packages: list[RawPackage] = []
    seen: set[tuple[str, str]] = set()
    for s_index, source in enumerate(data["Sources"]):
        if not isinstance(source, dict) or not isinstance(source.get("Packages", []), list):
            raise WindowsFactsError(f"winget export: Sources[{s_index}] must have a 'Packages' list; {fix}")
        details = _dict(source.get("SourceDetails"))
        source_name = str(details.get("Name") or "winget").strip()
        for p_index, item in enumerate(source.get("Packages", [])):
            ident = item.get("PackageIdentifier") if isinstance(item, dict) else None
            if not isinstance(ident, str) or not ident.strip():
                raise WindowsFactsError(
                    f"winget export: Sources[{s_index}].Packages[{p_index}] has no PackageIdentifier; {fix}"
                )
            ident = ident.strip()
            key = (source_name.lower(), ident.lower())
            if key in seen:
                continue
            seen.add(key)
            version = item.get("Version")
            version = str(version).strip() if version is not None else ""
            packages.append(
                RawPackage(
                    manager="winget",
                    name=ident,
                    version=version if version and version.lower() != "unknown" else None,
                    path=source_name,
                )
            )
    return packages


# --- Chocolatey -----------------------------------------------------------------


def _mark_choco_dependencies(packages: list[RawPackage]) -> list[RawPackage]:
    names = {p.name.lower() for p in packages}
    for package in packages:
        lower = package.name.lower()
        for suffix in _CHOCO_DEP_SUFFIXES:
            if lower.endswith(suffix) and lower[: -len(suffix)] in names:
                package.top_level = False
    return packages


def parse_choco_list(text: str | bytes) -> list[RawPackage]:
    """Local packages from ``choco list -r`` (v2), ``choco list --local-only [-r]`` (v1).

    Both ``name|version`` and plain ``name version`` lines are read; the
    ``Chocolatey v...`` header, the ``N packages installed.`` footer, warnings
    and blank lines do not match the line pattern and are skipped. A
    ``foo.install``/``foo.portable`` package whose meta package ``foo`` is also
    installed is marked ``top_level=False``.
    """
    packages: list[RawPackage] = []
    seen: set[str] = set()
    for line in _decode(text).splitlines():
        match = _CHOCO_LINE_RE.match(line.strip())
        if not match:
            continue
        name, version = match.groups()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        packages.append(RawPackage(manager="choco", name=name, version=version))
    return _mark_choco_dependencies(packages)


def parse_choco_packages_config(xml_text: str | bytes) -> list[RawPackage]:
    """Packages of a ``choco export`` packages.config (``<packages><package id= version=/>``)."""
    body = _decode(xml_text).strip()
    fix = "re-run `choco export --include-version-numbers -o packages.config`"
    if not body:
        raise WindowsFactsError(f"packages.config is empty; {fix}")
    # No DTDs: entity expansion is the classic XML attack and choco never writes one.
    if "<!DOCTYPE" in body.upper():
        raise WindowsFactsError(f"packages.config must not contain a DOCTYPE; {fix}")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise WindowsFactsError(f"packages.config is not valid XML ({exc}); {fix}") from None
    if root.tag != "packages":
        raise WindowsFactsError(f"packages.config: root element is <{root.tag}>, expected <packages>; {fix}")
    packages: list[RawPackage] = []
    seen: set[str] = set()
    for index, element in enumerate(root.findall("package")):
        ident = (element.get("id") or "").strip()
        if not re.fullmatch(_CHOCO_NAME, ident):
            raise WindowsFactsError(f"packages.config: <package> number {index + 1} has no valid id; {fix}")
        if ident.lower() in seen:
            continue
        seen.add(ident.lower())
        version = (element.get("version") or "").strip() or None
        packages.append(RawPackage(manager="choco", name=ident, version=version))
    return _mark_choco_dependencies(packages)


# --- registry -------------------------------------------------------------------


def _truthy_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return int(str(value).strip()) == 1
    except ValueError:
        return False


def parse_registry(entries: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[RawPackage]:
    """Installed programs from Uninstall registry entries (audit data).

    Skips system components, updates (``ParentKeyName``) and entries without a
    ``DisplayName``; dedupes by name and version. ``path`` holds the hive.
    ``ConvertTo-Json`` emits a lone object instead of a one-item list; both work.
    """
    if isinstance(entries, Mapping):
        entries = [entries]
    packages: list[RawPackage] = []
    seen: set[tuple[str, str | None]] = set()
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        values = {str(k).lower(): v for k, v in entry.items()}
        name = str(values.get("displayname") or "").strip()
        if not name or _truthy_flag(values.get("systemcomponent")):
            continue
        if str(values.get("parentkeyname") or "").strip():
            continue
        version = str(values.get("displayversion") or "").strip() or None
        key = (name.lower(), version)
        if key in seen:
            continue
        seen.add(key)
        packages.append(
            RawPackage(manager="registry", name=name, version=version, path=str(values.get("hive") or ""))
        )
    return packages


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _display_key(display_name: str) -> str:
    # "7-Zip 23.01 (x64)" -> "7zip", "Python 3.12.1 (64-bit)" -> "python".
    text = re.sub(r"\([^)]*\)|\b(x64|x86|amd64|arm64|64-bit|32-bit)\b", " ", display_name, flags=re.I)
    text = re.sub(r"(\s*[-v]?\s*\d[\d.]*)+\s*$", "", text.strip())
    return _norm(text)


def _package_keys(package: RawPackage) -> set[str]:
    name = package.name
    if package.manager == "choco":
        for suffix in _CHOCO_DEP_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        return {_norm(name)}
    # winget ids are Publisher.Product[.Variant]: match the whole id, the
    # product part, and its first segment ("OpenJS.NodeJS.LTS" -> "nodejs").
    parts = [p for p in name.split(".") if p]
    keys = {_norm(name)}
    if len(parts) > 1:
        keys.add(_norm("".join(parts[1:])))
        keys.add(_norm(parts[1]))
    return {k for k in keys if k}


def _covers(key: str, display: str) -> bool:
    if key == display:
        return True
    if len(key) >= 4 and (display.startswith(key) or display.endswith(key)):
        return True
    return len(display) >= 4 and key.startswith(display)


def merge_windows_packages(
    winget: Iterable[RawPackage],
    choco: Iterable[RawPackage],
    registry: Iterable[RawPackage],
) -> list[RawPackage]:
    """winget and choco packages, plus registry entries neither of them covers.

    Coverage is a modest name heuristic: the DisplayName without versions and
    parenthesised notes, letters and digits only, compared case-insensitively
    with the package id (and the product part of a winget id) by equality,
    prefix or suffix.
    """
    managed = [*winget, *choco]
    keys = set().union(*(_package_keys(p) for p in managed)) if managed else set()
    merged = list(managed)
    for entry in registry:
        display = _display_key(entry.name)
        if display and any(_covers(key, display) for key in keys):
            continue
        merged.append(entry)
    return merged


# --- MCP configs ----------------------------------------------------------------


def _is_home(directory: PureWindowsPath, home: str) -> bool:
    if home:
        return str(directory).lower().rstrip("\\/") == str(PureWindowsPath(home)).lower().rstrip("\\/")
    return bool(re.fullmatch(r"(?i)[a-z]:\\users\\[^\\]+", str(directory)))


def _classify(path: str, home: str) -> tuple[str, str] | None:
    """(assistant, scope) for a config file path, or None if unknown."""
    p = PureWindowsPath(path)
    name, parent = p.name.lower(), p.parent.name.lower()
    if name == ".claude.json":
        return "claude_code", "user"
    if name == ".mcp.json":
        return "claude_code", "project"
    if name == "claude_desktop_config.json":
        # %APPDATA%\Claude\ and the MSIX %LOCALAPPDATA%\Packages\Claude_*\LocalCache\Roaming\Claude\.
        return "claude_desktop", "user"
    if name == "mcp.json" and parent == ".cursor":
        return "cursor", "global" if _is_home(p.parent.parent, home) else "project"
    if name == "mcp.json" and parent == ".vscode":
        return "vscode", "project"
    if name == "mcp.json" and parent == "user" and p.parent.parent.name.lower().startswith("code"):
        return "vscode", "user"
    return None


def _unwrap_cmd(command: str, args: list[str]) -> tuple[str, list[str]]:
    # `cmd /c npx -y pkg` is how Windows configs start npm servers; the portable
    # form is `npx -y pkg` (Windows installers wrap it again).
    if PureWindowsPath(command).name.lower() not in ("cmd", "cmd.exe"):
        return command, args
    for index, arg in enumerate(args):
        flag = arg.lower()
        if flag in ("/c", "/k") and index + 1 < len(args):
            return args[index + 1], args[index + 2 :]
        if not flag.startswith("/"):
            break
    return command, args


def _server(name: str, entry: Any, assistant: str, scope: str, path: str) -> RawMcpServer | RawError:
    if not isinstance(entry, dict):
        return RawError(source="mcp", message=f"{path}: server {name!r} must be an object; fix the file")
    kind = str(entry.get("type") or entry.get("transport") or "").lower().replace("_", "-")
    url = _str(entry.get("url")) or _str(entry.get("serverUrl"))
    if kind in ("http", "streamable-http", "streamablehttp"):
        transport = "http"
    elif kind in ("sse", "stdio"):
        transport = kind
    else:
        transport = "http" if url else "stdio"
    raw_args = entry.get("args")
    if isinstance(raw_args, dict) and isinstance(raw_args.get("value"), list):
        raw_args = raw_args["value"]  # Windows PowerShell 5.1 can serialise an array as {value, Count}
    args = [str(a) for a in _list(raw_args) if isinstance(a, str | int | float)]
    command, args = _unwrap_cmd(_str(entry.get("command")), args)
    env = _dict(entry.get("env"))
    return RawMcpServer(
        name=name,
        assistant=assistant,
        scope=scope,
        path=path,
        transport=transport,
        command=redact_value(command),
        args=redact_args(args),
        url=strip_url(url),
        env_names=sorted(str(k) for k in env),
    )


def _servers_of(
    block: Any, assistant: str, scope: str, path: str
) -> tuple[list[RawMcpServer], list[RawError]]:
    servers: list[RawMcpServer] = []
    errors: list[RawError] = []
    if block is None:
        return servers, errors
    if not isinstance(block, dict):
        errors.append(RawError(source="mcp", message=f"{path}: the servers block must be an object"))
        return servers, errors
    for name, entry in block.items():
        result = _server(str(name), entry, assistant, scope, path)
        if isinstance(result, RawMcpServer):
            servers.append(result)
        else:
            errors.append(result)
    return servers, errors


def parse_mcp_files(
    files: Mapping[str, str | bytes | None], *, home: str = ""
) -> tuple[list[RawMcpServer], list[RawError]]:
    """MCP servers from config files keyed by their (Windows) path.

    The assistant and scope follow from the path: ``.claude.json`` (Claude Code
    user scope, plus ``projects.<dir>.mcpServers`` as local scope; RawMcpServer has no
    field for the project directory, as on POSIX), ``.mcp.json`` (project), ``claude_desktop_config.json``
    (Claude Desktop, classic or MSIX location), ``.cursor\\mcp.json`` (Cursor; global
    under ``home``), ``.vscode\\mcp.json`` and ``Code\\User\\mcp.json`` (VS Code,
    ``servers`` key). A file that is not JSON becomes a RawError naming it.
    ``None`` text (the module could not read or sanitise it) is skipped.
    """
    servers: list[RawMcpServer] = []
    errors: list[RawError] = []
    for path, text in files.items():
        if text is None:
            continue
        if not isinstance(text, str | bytes):
            message = f"{path}: expected the file's text, got {type(text).__name__}"
            errors.append(RawError(source="mcp", message=message))
            continue
        kind = _classify(path, home)
        if kind is None:
            errors.append(RawError(source="mcp", message=f"{path}: not a known MCP config file; skipped"))
            continue
        assistant, scope = kind
        body = _decode(text).strip()
        if not body:
            continue
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            # exc.msg never quotes the document, so no secret leaks into the error.
            errors.append(
                RawError(
                    source="mcp",
                    message=f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
                    f"fix the file, {assistant} cannot read it either",
                )
            )
            continue
        if not isinstance(data, dict):
            errors.append(RawError(source="mcp", message=f"{path}: expected a JSON object at the top level"))
            continue
        key = "servers" if assistant == "vscode" else "mcpServers"
        found, errs = _servers_of(data.get(key), assistant, scope, path)
        servers += found
        errors += errs
        projects = data.get("projects") if assistant == "claude_code" and scope == "user" else None
        if isinstance(projects, dict):
            for settings in projects.values():
                if isinstance(settings, dict):
                    found, errs = _servers_of(settings.get("mcpServers"), assistant, "local", path)
                    servers += found
                    errors += errs
    return servers, errors


# --- commands, git, API keys ----------------------------------------------------


def parse_commands(entries: Iterable[Mapping[str, Any]]) -> tuple[list[RawCommand], list[RawError]]:
    """Commands found on PATH with the version their probe printed.

    Each entry is ``{name, path, version_output, regex?}``; the regex's first
    group is the version. A Microsoft Store alias stub (``...\\WindowsApps\\``)
    that prints no version is not a real command and is dropped.
    """
    commands: list[RawCommand] = []
    errors: list[RawError] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        name, path = str(entry["name"]), str(entry.get("path") or "")
        pattern = str(entry.get("regex") or DEFAULT_VERSION_REGEX)
        try:
            match = re.search(pattern, str(entry.get("version_output") or ""))
        except re.error as exc:
            errors.append(RawError(source="commands", message=f"{name}: regex {pattern!r} is invalid: {exc}"))
            match = None
        version = (match.group(1) if match.groups() else match.group(0)) if match else None
        if version is None and "\\windowsapps\\" in path.lower():
            continue
        commands.append(RawCommand(name=name, path=path, version=version))
    return commands, errors


def _remote_url(config_text: str) -> str:
    remotes: dict[str, str] = {}
    section = ""
    for line in config_text.splitlines():
        stripped = line.strip()
        header = re.fullmatch(r'\[\s*remote\s+"([^"]+)"\s*\]', stripped)
        if header:
            section = header.group(1)
            continue
        if stripped.startswith("["):
            section = ""
            continue
        match = re.fullmatch(r"url\s*=\s*(.+)", stripped)
        if section and match and section not in remotes:
            remotes[section] = match.group(1).strip().strip('"')
    url = remotes.get("origin") or next(iter(remotes.values()), "")
    return strip_url(url)


def parse_git_repo(entry: Mapping[str, Any]) -> RawGitRepo:
    """A repository from ``{path, head_text, config_text, ref_text?}`` (.git file contents)."""
    head_text = str(entry.get("head_text") or "").strip()
    branch, head = "", ""
    ref = re.fullmatch(r"ref:\s*(\S+)", head_text)
    if ref:
        branch = ref.group(1).removeprefix("refs/heads/")
        sha = _HEX_SHA_RE.search(str(entry.get("ref_text") or ""))
        head = sha.group(1) if sha else ""
    elif _HEX_SHA_RE.fullmatch(head_text):
        head = head_text
    return RawGitRepo(
        path=str(entry.get("path") or ""),
        remote=_remote_url(str(entry.get("config_text") or "")),
        branch=branch,
        head=head,
    )


def _compile_patterns(patterns: Any, errors: list[RawError]) -> list[re.Pattern[str]]:
    if not isinstance(patterns, list) or not patterns:
        patterns = list(DEFAULT_API_KEY_PATTERNS)
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(str(pattern)))
        except re.error as exc:
            errors.append(RawError(source="env", message=f"api_key_patterns: {pattern!r} is invalid: {exc}"))
    return compiled


def _api_keys(data: Mapping[str, Any], errors: list[RawError]) -> list[RawApiKey]:
    patterns = _compile_patterns(data.get("api_key_patterns"), errors)

    def wanted(name: Any) -> bool:
        return (
            isinstance(name, str) and bool(_ENV_NAME_RE.match(name)) and any(p.search(name) for p in patterns)
        )

    keys: list[RawApiKey] = []
    seen: set[tuple[str, str]] = set()
    sources: list[tuple[str, Any]] = [("env", data.get("env_names"))]
    env_files = data.get("env_files")
    if isinstance(env_files, Mapping):
        sources += [(str(path), names) for path, names in env_files.items()]
    for origin, names in sources:
        if not isinstance(names, list):
            continue
        for name in names:
            # Windows environment names are case-insensitive.
            if wanted(name) and (name.upper(), origin) not in seen:
                seen.add((name.upper(), origin))
                keys.append(RawApiKey(name=name, origin=origin))
    return keys


# --- to_raw ---------------------------------------------------------------------


def _module_errors(value: Any) -> list[RawError]:
    errors: list[RawError] = []
    for item in _list(value):
        if isinstance(item, Mapping):
            source = str(item.get("source") or "module")
            errors.append(RawError(source=source, message=str(item.get("message"))))
        else:
            errors.append(RawError(source="module", message=str(item)))
    return errors


def _os(value: Any) -> RawOs:
    info = value if isinstance(value, Mapping) else {}
    arch = str(info.get("arch") or "")
    return RawOs(
        family="windows",
        distribution="windows",
        version=str(info.get("version") or ""),
        arch=_ARCH.get(arch.lower(), arch.lower()),
    )


def to_raw(cyclotron_raw_windows: Mapping[str, Any], *, include_dependencies: bool = False) -> dict[str, Any]:
    """``RawFacts`` (as a JSON-ready dict) from the ``cyclotron_raw_windows`` fact.

    A source that fails to parse becomes an ``errors`` entry; only a value that
    is not a mapping at all raises WindowsFactsError. Packages installed only
    as a dependency (``top_level=False``) are left out unless
    ``include_dependencies``.
    """
    data: Any = cyclotron_raw_windows
    if isinstance(data, Mapping) and isinstance(data.get("ansible_facts"), Mapping):
        data = data["ansible_facts"].get("cyclotron_raw_windows", data)
    if not isinstance(data, Mapping):
        raise WindowsFactsError(
            f"cyclotron_raw_windows must be a mapping, got {type(data).__name__}; "
            "pass the fact set by win_cyclotron_facts"
        )
    errors = _module_errors(data.get("errors"))
    managers: list[str] = []

    def attempt(source: str, func: Any, value: Any) -> list[RawPackage]:
        try:
            result: list[RawPackage] = func(value)
            return result
        except (WindowsFactsError, TypeError, AttributeError) as exc:
            errors.append(RawError(source=source, message=str(exc)))
            return []

    winget: list[RawPackage] = []
    if data.get("winget_export") is not None:
        managers.append("winget")
        winget = attempt("winget", parse_winget_export, data["winget_export"])
    if data.get("winget_error"):
        errors.append(RawError(source="winget", message=str(data["winget_error"])))
    choco: list[RawPackage] = []
    if data.get("choco_list") is not None:
        managers.append("choco")
        choco = attempt("choco", parse_choco_list, data["choco_list"])
    if data.get("choco_error"):
        errors.append(RawError(source="choco", message=str(data["choco_error"])))
    registry = attempt("registry", parse_registry, data.get("registry") or [])
    packages = merge_windows_packages(winget, choco, registry)
    if not include_dependencies:
        packages = [p for p in packages if p.top_level]

    mcp_files = data.get("mcp_files")
    mcp_servers: list[RawMcpServer] = []
    if isinstance(mcp_files, Mapping):
        mcp_servers, mcp_errors = parse_mcp_files(mcp_files, home=str(data.get("home") or ""))
        errors += mcp_errors

    commands, command_errors = parse_commands(_list(data.get("commands")))
    errors += command_errors
    found = {c.name.lower() for c in commands}
    for manager, names in _MANAGER_COMMANDS:
        if found.intersection(names):
            managers.append(manager)

    git_repos: list[RawGitRepo] = []
    for entry in _list(data.get("git_repos")):
        if isinstance(entry, Mapping) and entry.get("path"):
            git_repos.append(parse_git_repo(entry))

    facts = RawFacts(
        os=_os(data.get("os")),
        managers=managers,
        packages=packages,
        mcp_servers=mcp_servers,
        api_keys=_api_keys(data, errors),
        commands=commands,
        git_repos=git_repos,
        errors=errors,
    )
    return facts.model_dump(mode="json")
