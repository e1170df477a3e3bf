"""Reports over a capability matrix: the terminal inventory, a Markdown diff report, JSON.

Everything printed here came from manifests of other machines, so names are stripped of
control characters (no terminal escapes) and escaped for Markdown. Install commands are
display strings for people, built from argv lists with ``shlex.join``; nothing here runs them.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from . import __version__, managers
from .compare import PRIORITIES, dumps

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]|#<>!])")
_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

PRESENT, MISSING, NOT_WANTED = "✅", "❌", "➖"


def use_color(stream: TextIO) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def clean(text: Any) -> str:
    """Text from a manifest, safe for a terminal: control characters become '?'."""
    text = str(text)
    # Printable text holds no control character (they are all Cc): most text skips the regex.
    return text if text.isprintable() else _CONTROL_RE.sub("?", text)


class _Cleaned(dict[Any, str]):
    """``clean`` memoised for one report: ``shown[text]``."""

    def __missing__(self, text: Any) -> str:
        found = self[text] = clean(text)
        return found


def md(text: Any) -> str:
    """Text from a manifest, safe inside a Markdown table cell."""
    return _MD_SPECIAL_RE.sub(r"\\\1", clean(text))


def code(text: str) -> str:
    """A Markdown code span that survives backticks in ``text``."""
    text = clean(text).replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _painter(color: bool) -> Callable[[str, str], str]:
    def paint(style: str, text: str) -> str:
        if not color:
            return text
        codes = ";".join(_ANSI[s] for s in style.split("+"))
        return f"\033[{codes}m{text}\033[0m"

    return paint


def _pct(value: float) -> str:
    return f"{int(value + 0.5)}%"  # 66.7 -> 67%, as people round


def describe_age(seconds: int) -> str:
    """A manifest's age as people say it: '40 s', '12 min', '3 h', '2 d'."""
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def last_seen(status: Mapping[str, Any]) -> str:
    """'last gathered 3 h ago', or 'never gathered' when the host has no manifest (a fleet_status entry)."""
    age = status.get("age_seconds")
    return f"last gathered {describe_age(age)} ago" if isinstance(age, int) else "never gathered"


def describe_unreachable(host: str, status: Mapping[str, Any]) -> str:
    """'pc3 unreachable, last gathered 3 h ago'."""
    return f"{clean(host)} {clean(status.get('status', 'unreachable'))}, {last_seen(status)}"


def with_host_status(report: str, status: Mapping[str, Mapping[str, Any]], fmt: str = "text") -> str:
    """``report`` (render_text / render_markdown) with the hosts not gathered in this run named at
    its top: first in the terminal report, under the title in Markdown."""
    section = render_host_status(status, fmt)
    if not section or fmt != "markdown" or not report.startswith("# "):
        return section + report
    title, _, rest = report.partition("\n")
    return f"{title}\n\n{section}{rest.lstrip()}"


def render_host_status(status: Mapping[str, Mapping[str, Any]], fmt: str = "text") -> str:
    """The hosts of ``status`` (cyclotron_py.sync.fleet_status) not gathered in this run, as a
    section for the top of a report of the matrix; '' when every host was gathered."""
    missing = sorted(h for h, s in status.items() if s.get("status") != "gathered")
    if not missing:
        return ""
    reached = len(status) - len(missing)
    if fmt == "markdown":
        out = [
            "## Not gathered in this run",
            "",
            f"**{reached} of {len(status)} hosts gathered; the fleet is not known to be at parity.** "
            "A host below is compared from its last manifest, if it has one.",
            "",
            "| Host | Last gathered | Age |",
            "|---|---|---|",
        ]
        for h in missing:
            age = status[h].get("age_seconds")
            out.append(
                f"| {md(h)} | {md(status[h].get('last_gathered_at') or 'never')} "
                f"| {describe_age(age) if isinstance(age, int) else '-'} |"
            )
        return "\n".join(out) + "\n\n"
    if fmt == "text":
        lines = [f"NOT GATHERED IN THIS RUN ({reached} of {len(status)} hosts gathered; not known to be at parity):"]
        for h in missing:
            when = status[h].get("last_gathered_at")
            compared = f" ({clean(when)}); compared from that manifest" if when else "; not compared"
            lines.append(f"  - {describe_unreachable(h, status[h])}{compared}")
        return "\n".join(lines) + "\n\n"
    raise ValueError(f"unknown host status format {fmt!r}; use text or markdown")


def _domain_order(matrix: Mapping[str, Any]) -> dict[str, int]:
    return {d: i for i, d in enumerate(matrix.get("domains", []))}


def _title(domain: str) -> str:
    name = clean(domain).replace("_", " ").replace("-", " ")
    return name.upper() if len(name) <= 2 else name.title()  # "ai" -> "AI"


def _rows_by_domain(matrix: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    order = _domain_order(matrix)
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for cid, row in matrix["capabilities"].items():
        groups.setdefault(row["domain"], []).append((cid, row))
    out = []
    for domain in sorted(groups, key=lambda d: (order.get(d, len(order)), d)):
        rows = sorted(groups[domain], key=lambda item: (item[1]["name"].lower(), item[0]))
        out.append((domain, rows))
    return out


def _mark(row: Mapping[str, Any], host: str) -> str:
    if host in row["versions"]:
        return PRESENT
    if host in row["ignored"] or host in row["excluded"]:
        return NOT_WANTED
    return MISSING


def _recs(
    matrix: Mapping[str, Any], key: str = "recommended_distribution"
) -> list[tuple[str, dict[str, Any]]]:
    section = matrix.get(key, {})
    return [(h, item) for h in matrix["hosts"] for item in section.get(f"to_{h}", [])]


def _grouped(
    items: Sequence[tuple[str, Mapping[str, Any]]], matrix: Mapping[str, Any]
) -> list[tuple[Mapping[str, Any], list[str]]]:
    """Items of several hosts grouped per capability id, in domain then name order."""
    groups: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for host, item in items:
        group = groups.get(item["id"])
        if group is None:
            group = groups[item["id"]] = (item, [])
        group[1].append(host)
    return _in_order(groups, matrix)


def _in_order(
    groups: Mapping[str, tuple[Mapping[str, Any], list[str]]], matrix: Mapping[str, Any]
) -> list[tuple[Mapping[str, Any], list[str]]]:
    """_grouped's groups (id -> (first item, hosts)) in domain then name order."""
    order = _domain_order(matrix)
    return sorted(
        groups.values(),
        key=lambda g: (order.get(g[0]["domain"], len(order)), str(g[0]["name"]).lower(), g[0]["id"]),
    )


# --------------------------------------------------------------------------- terminal report


def render_text(matrix: Mapping[str, Any], *, color: bool = False) -> str:
    """The inventory report of the original design (Task 5.2), grouped by domain."""
    paint = _painter(color)
    hosts: list[str] = matrix["hosts"]
    title = "CYCLOTRON CAPABILITY INVENTORY"
    lines = [paint("bold", title), "=" * len(title)]
    info = matrix.get("host_info", {})
    described = ", ".join(f"{clean(h)} ({info.get(h, {}).get('os', '?')})" for h in hosts)
    lines.append(f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}: {described}")
    lines.append(f"Newest manifest: {matrix['comparison_timestamp']}")
    coverage = matrix["coverage"]
    per_host = " · ".join(f"{clean(h)} {_pct(coverage['by_host'][h]['percent'])}" for h in hosts)
    lines.append(f"Coverage: {_pct(coverage['overall']['percent'])} overall · {per_host}")

    rows = matrix["capabilities"]
    width = min(max((len(clean(r["name"])) for r in rows.values()), default=0) + 1, 40)
    # Each host's three possible cells, painted once; a row starts from "everyone has it" and
    # changes the cells of the hosts that lack it (a row touches its gaps, not every host).
    painted = {
        mark: [paint(style, f"{mark} {clean(h)}") for h in hosts]
        for mark, style in ((PRESENT, "green"), (MISSING, "red+bold"), (NOT_WANTED, "dim"))
    }
    everyone, position = painted[PRESENT], {h: i for i, h in enumerate(hosts)}
    for domain, domain_rows in _rows_by_domain(matrix):
        figure = coverage["by_domain"].get(domain)
        suffix = f" ({_pct(figure['percent'])})" if figure else ""
        lines += ["", paint("bold", f"Domain: {_title(domain)}") + suffix]
        for _cid, row in domain_rows:
            cells = everyone
            lacking = [h for h in hosts if h not in row["versions"]] if len(row["versions"]) < len(hosts) else ()
            if lacking:
                cells = list(everyone)
                for h in lacking:
                    i = position[h]
                    cells[i] = painted[_mark(row, h)][i]
            label = f"{clean(row['name'])}:".ljust(width)
            lines.append(f"  {label} {'  '.join(cells)}  (Coverage: {_pct(row['coverage'])})")

    shown = _Cleaned()  # names, hosts and versions repeat across the fleet: each cleaned once
    # Missing items grouped per priority and id in one pass (what _grouped does, per priority).
    # Updates likewise, each host as its line shows it: "host (current → wanted)".
    missing: dict[str, dict[str, tuple[Mapping[str, Any], list[str]]]] = {p: {} for p in PRIORITIES}
    updates: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    arrows: dict[tuple[Any, Any], str] = {}
    recommended = matrix.get("recommended_distribution", {})
    for host in hosts:
        for rec in recommended.get(f"to_{host}", ()):
            if rec["reason"] != "missing":
                change = (rec["current_version"], rec["version"])
                arrow = arrows.get(change)
                if arrow is None:
                    arrow = arrows[change] = f" ({shown[change[0] or '?']} → {shown[change[1] or 'latest']})"
                group = updates.get(rec["id"])
                if group is None:
                    updates[rec["id"]] = (rec, [shown[host] + arrow])
                else:
                    group[1].append(shown[host] + arrow)
                continue
            by_id = missing.get(rec["priority"])
            if by_id is not None:
                group = by_id.get(rec["id"])
                if group is None:
                    by_id[rec["id"]] = (rec, [host])
                else:
                    group[1].append(host)
    sections = [
        ("CRITICAL GAPS (install immediately):", "red+bold", "high"),
        ("RECOMMENDED (install soon):", "yellow+bold", "normal"),
        ("OPTIONAL (when convenient):", "bold", "low"),
    ]
    for heading, style, priority in sections:
        items = missing[priority]
        if not items and heading.startswith("OPTIONAL"):
            continue
        lines += ["", paint(style, heading)]
        groups = _in_order(items, matrix)
        lines += [f"  - {shown[item['name']]} on {', '.join(map(shown.__getitem__, hs))}" for item, hs in groups]
        if not groups:
            lines.append("  (none)")

    if updates:
        lines += ["", paint("bold", "UPDATES (behind the fleet or off their pinned version):")]
        for item, details in _in_order(updates, matrix):
            lines.append(f"  - {shown[item['name']]} on {', '.join(details)}")

    unportable = _recs(matrix, "unportable")
    if unportable:
        lines += ["", paint("bold", "CANNOT BE DISTRIBUTED:")]
        by_reason: dict[tuple[str, str], list[str]] = {}
        names: dict[str, str] = {}
        for h, item in unportable:
            by_reason.setdefault((item["id"], item["reason"]), []).append(h)
            names[item["id"]] = item["name"]
        for (cid, reason), hs in sorted(by_reason.items()):
            lines.append(f"  - {shown[names[cid]]} to {', '.join(map(shown.__getitem__, hs))}: {shown[reason]}")

    excluded = _recs(matrix, "policy_excluded")
    if excluded:
        lines += ["", paint("bold", "KEPT AWAY BY POLICY:")]
        for item, hs in _grouped(excluded, matrix):
            lines.append(f"  - {shown[item['name']]} on {', '.join(map(shown.__getitem__, hs))}")
    return "\n".join(lines) + "\n"


def render_matrix_table(matrix: Mapping[str, Any], *, color: bool = False) -> str:
    """`cyclotron matrix` without --json: one line per capability, one column per host."""
    paint = _painter(color)
    hosts: list[str] = matrix["hosts"]
    rows = matrix["capabilities"]
    id_width = min(max([len("CAPABILITY"), *(len(clean(c)) for c in rows)]), 48)
    col = {h: max(len(clean(h)), 12) for h in hosts}

    def cell(text: str, width: int) -> str:
        text = clean(text)
        return text if len(text) <= width else text[: width - 1] + "…"

    header = "CAPABILITY".ljust(id_width) + "  " + "  ".join(cell(h, col[h]).ljust(col[h]) for h in hosts)
    lines = [paint("bold", header + "  COVERAGE")]
    # A present host's cell is a function of (version, width): versions repeat, each is drawn once.
    drawn: dict[tuple[Any, int], str] = {}

    def draw(text: Any, width: int) -> str:
        found = drawn[(text, width)] = paint("green", cell(text, width).ljust(width))
        return found

    widths = [col[h] for h in hosts]
    gone = {h: paint("red", cell("-", col[h]).ljust(col[h])) for h in hosts}
    kept_away = {h: paint("dim", cell("policy", col[h]).ljust(col[h])) for h in hosts}
    for cid in sorted(rows):
        row = rows[cid]
        versions = row["versions"]
        cells = []
        for h, width in zip(hosts, widths, strict=True):
            if h in versions:
                text = versions[h] or "yes"
                found = drawn.get((text, width))
                cells.append(found if found is not None else draw(text, width))
            elif h in row["ignored"] or h in row["excluded"]:
                cells.append(kept_away[h])
            else:
                cells.append(gone[h])
        lines.append(f"{cell(cid, id_width).ljust(id_width)}  {'  '.join(cells)}  {_pct(row['coverage'])}")
    summary = matrix["summary"]
    lines.append(
        f"{summary['capabilities']} capabilities on {summary['hosts']} hosts: "
        f"{summary['universal']} universal, {summary['partial']} partial, {summary['unique']} unique, "
        f"{summary['drifted']} with version drift; "
        f"{summary['recommendations']} recommended installs, {summary['unportable']} unportable"
    )
    return "\n".join(lines) + "\n"


def render_gaps_text(gaps: Mapping[str, Any]) -> str:
    """`cyclotron diff --format text`: what each of two hosts lacks."""
    a, b = gaps["pc_a"], gaps["pc_b"]
    lines = [f"{clean(a)} vs {clean(b)} (newest manifest {gaps['comparison_timestamp']})"]
    for host, other in ((a, b), (b, a)):
        lines += ["", f"Missing from {clean(host)} (on {clean(other)}):"]
        found = False
        for key in sorted(gaps["gaps"]):
            if not key.endswith(f"_missing_from_{host}"):
                continue
            category = key[: -len(f"_missing_from_{host}")].replace("_", " ")
            for item in gaps["gaps"][key]:
                version = f" {clean(item['version'])}" if item.get("version") else ""
                lines.append(
                    f"  - [{category}] {clean(item['name'])}{version} ({item['domain']}, {item['priority']})"
                )
                found = True
        if not found:
            lines.append("  (nothing)")
    if gaps["version_drift"]:
        lines += ["", "Version drift:"]
        for entry in gaps["version_drift"]:
            versions = ", ".join(f"{clean(h)} {clean(v)}" for v, hs in entry["versions"].items() for h in hs)
            lines.append(f"  - {clean(entry['name'])}: {versions}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Markdown report


def install_command(rec: Mapping[str, Any], os_family: str = "linux") -> tuple[str, bool]:
    """(display text, is_a_command) for one recommendation. For people only; never executed."""
    manager, package = str(rec.get("manager", "")), str(rec.get("package", ""))
    version = rec.get("version") or ""
    details = rec.get("details") or {}
    argv = managers.install_hint(manager, package, str(version), upgrade=rec.get("reason") not in (None, "missing"))
    if argv is not None:
        return shlex.join(argv), True
    if manager == "git":
        branch = str(details.get("branch") or "")
        argv = ["git", "clone", *(["--branch", branch] if branch else []), package]
        return shlex.join(argv), True
    if manager == "env":
        return f"set {package} from the vault", False
    if manager == "mcp":
        if details.get("transport", "stdio") != "stdio":
            return f"add MCP server {package} ({details.get('transport')}): {details.get('url', '')}", False
        launch = [str(details.get("command", "")), *(str(a) for a in details.get("args", []))]
        if os_family != "windows" and len(launch) > 2 and launch[0].lower() in ("cmd", "cmd.exe") \
                and launch[1].lower() == "/c":
            launch = launch[2:]  # Windows wraps npx in cmd /c; other hosts run it directly
        return f"add MCP server {package}: {shlex.join(launch)}", False
    return f"install {package} with {manager}", False


def render_markdown(matrix: Mapping[str, Any]) -> str:
    """A diff report for a pull request or wiki page, prioritised by domain and criticality."""
    hosts: list[str] = matrix["hosts"]
    info = matrix.get("host_info", {})
    summary = matrix["summary"]
    coverage = matrix["coverage"]
    order = _domain_order(matrix)
    out: list[str] = ["# Cyclotron capability report", ""]
    out.append(
        f"_{len(hosts)} hosts compared · newest manifest {matrix['comparison_timestamp']} · "
        f"{summary['capabilities']} capabilities, {_pct(coverage['overall']['percent'])} overall coverage · "
        f"cyclotron {__version__}_"
    )
    out += ["", "## Summary", ""]
    out += [
        "| Host | OS | Coverage | To install | Updates | Cannot install | Kept away by policy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for h in hosts:
        recs = matrix["recommended_distribution"].get(f"to_{h}", [])
        fig = coverage["by_host"][h]
        out.append(
            f"| {md(h)} | {md(info.get(h, {}).get('os', ''))} | {_pct(fig['percent'])} "
            f"({fig['present']}/{fig['total']}) | {sum(r['reason'] == 'missing' for r in recs)} "
            f"| {sum(r['reason'] != 'missing' for r in recs)} "
            f"| {len(matrix['unportable'].get(f'to_{h}', []))} "
            f"| {len(matrix['policy_excluded'].get(f'to_{h}', []))} |"
        )

    out += ["", "## Gaps by domain", ""]
    any_gap = False
    for domain, rows in _rows_by_domain(matrix):
        gaps = [(cid, r) for cid, r in rows if r["status"] != "universal" or r["drift"]]
        fig = coverage["by_domain"].get(domain)
        everyone = len(rows) - len(gaps)
        if not gaps:
            continue
        any_gap = True
        out += [f"### {md(_title(domain))} ({_pct(fig['percent']) if fig else '-'})", ""]
        out.append("| Capability | Priority | " + " | ".join(md(h) for h in hosts) + " | Coverage |")
        out.append("|---|---|" + ":-:|" * len(hosts) + "---:|")
        gaps.sort(key=lambda item: (PRIORITIES.index(item[1]["priority"]), item[1]["name"].lower(), item[0]))
        for cid, row in gaps:
            cells = []
            for h in hosts:
                mark = _mark(row, h)
                version = row["versions"].get(h)
                cells.append(f"{mark} {md(version)}" if version else mark)
            out.append(
                f"| **{md(row['name'])}** {code(cid)} | {row['priority']} | " + " | ".join(cells)
                + f" | {_pct(row['coverage'])} |"
            )
        if everyone:
            out.append("")
            out.append(f"_…and {everyone} more every host has at the same version._")
        out.append("")
    if not any_gap:
        out += ["Every host has every capability at the same version.", ""]

    out += ["## Install plan per host", ""]
    for h in hosts:
        recs = list(matrix["recommended_distribution"].get(f"to_{h}", []))
        family = info.get(h, {}).get("os", "linux")
        out.append(f"### {md(h)} ({md(family)}): {len(recs)} item{'s' if len(recs) != 1 else ''}")
        out.append("")
        if not recs:
            out += ["Nothing to install.", ""]
            continue
        recs.sort(key=lambda r: (PRIORITIES.index(r["priority"]), order.get(r["domain"], len(order)),
                                 r["name"].lower(), r["id"]))
        out += ["| Priority | Capability | Domain | Why | From | Install |", "|---|---|---|---|---|---|"]
        for r in recs:
            text, is_command = install_command(r, family)
            why = r["reason"]
            if r["reason"] != "missing":
                why += f" ({md(r['current_version'] or '?')} → {md(r['version'] or 'latest')})"
            shown = code(text) if is_command else md(text)
            out.append(
                f"| {r['priority']} | {md(r['name'])} | {md(r['domain'])} | {why} | {md(r['from_host'])} "
                f"| {shown} |"
            )
        out.append("")

    drift = matrix.get("version_drift", [])
    if drift:
        out += ["## Version drift", "", "| Capability | Latest | Behind | Versions |", "|---|---|---|---|"]
        for e in drift:
            versions = "; ".join(
                f"{md(v)}: {', '.join(md(x) for x in hs)}" for v, hs in e["versions"].items()
            )
            behind = ", ".join(md(x) for x in e["behind"]) or "-"
            flag = " (compared as text)" if not e["comparable"] else ""
            out.append(f"| {md(e['name'])} | {md(e['latest'])}{flag} | {behind} | {versions} |")
        out.append("")

    unportable = _recs(matrix, "unportable")
    if unportable:
        out += ["## Cannot be distributed", "", "| Capability | Host | Reason |", "|---|---|---|"]
        for h, item in sorted(unportable, key=lambda x: (x[1]["id"], x[0])):
            out.append(f"| {md(item['name'])} {code(item['id'])} | {md(h)} | {md(item['reason'])} |")
        out.append("")
    excluded = _recs(matrix, "policy_excluded")
    if excluded:
        out += ["## Kept away by policy", "", "| Capability | Host | Reason |", "|---|---|---|"]
        for h, item in sorted(excluded, key=lambda x: (x[1]["id"], x[0])):
            out.append(f"| {md(item['name'])} {code(item['id'])} | {md(h)} | {md(item['reason'])} |")
        out.append("")
    out.append("_Install commands are shown for people to read; Cyclotron itself installs through its "
               "installer roles from a reviewed plan (`cyclotron plan`)._")
    return "\n".join(out) + "\n"


def render_json(doc: Mapping[str, Any]) -> str:
    return dumps(doc)


def render(matrix: Mapping[str, Any], fmt: str, *, color: bool = False) -> str:
    """One of the report formats: text, markdown or json."""
    if fmt == "text":
        return render_text(matrix, color=color)
    if fmt == "markdown":
        return render_markdown(matrix)
    if fmt == "json":
        return render_json(matrix)
    raise ValueError(f"unknown report format {fmt!r}; use text, markdown or json")


__all__ = [
    "clean",
    "code",
    "describe_age",
    "describe_unreachable",
    "install_command",
    "last_seen",
    "md",
    "render",
    "render_gaps_text",
    "render_host_status",
    "render_json",
    "render_markdown",
    "render_matrix_table",
    "render_text",
    "use_color",
    "with_host_status",
]
