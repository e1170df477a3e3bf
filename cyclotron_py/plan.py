"""Distribution plan: what each host receives, in which order, through which role.

Input is the comparison's recommended distribution; output is a Plan (written as
``plans/<id>.json``) and a generated playbook (``generated/<id>.yml``) that calls
the installer roles with plain data. Every name that reaches an installer is
checked here against its manager's pattern (cyclotron_py.safety), because the
manifests it came from are untrusted.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from . import install_play, managers, safety
from .catalog import Catalog
from .compare.documents import PRIORITY_RANK
from .compare.layout import EncodedOnce
from .errors import PlanError
from .forked import fork_call
from .manifest_io import atomic_write_text, atomic_writer

ApprovalMode = Literal["all", "low-risk", "none"]
APPROVAL_MODES: tuple[str, ...] = ("all", "low-risk", "none")

# Roles run in this order (runtimes and OS packages first, MCP servers last): cyclotron_py.managers.
ROLE_ORDER: tuple[str, ...] = managers.ROLE_ORDER
_RISK_RANK = {"low": 0, "medium": 1, "high": 2}

# Tools a known MCP server package must list (checked by the tools/list probe).
KNOWN_MCP_TOOLS: dict[str, list[str]] = {
    "@modelcontextprotocol/server-memory": ["create_entities", "read_graph", "search_nodes"],
    "@modelcontextprotocol/server-filesystem": ["read_file", "list_directory"],
    "@modelcontextprotocol/server-everything": ["echo"],
    "@modelcontextprotocol/server-sequential-thinking": ["sequentialthinking"],
}




def _plain(value: Any) -> Any:
    """Subclasses of str, int, float, list and dict (Ansible's tagged values in an action plugin) as
    their plain type: msgspec encodes only the exact built-in types."""
    converters: tuple[tuple[type, Any], ...] = ((str, str), (bool, bool), (int, int), (float, float),
                                               (list, list), (dict, dict))
    for kind, convert in converters:
        if isinstance(value, kind):
            return convert(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_SORTED = msgspec.json.Encoder(order="sorted", enc_hook=_plain)

HOME_FROM_INVENTORY = "{{ {'HOME': cyclotron_home} if cyclotron_home is defined else {} }}"


class PlanItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    type: str
    domain: str
    priority: str
    risk: str
    role: str
    manager: str
    package: str
    version: str = ""
    pinned: bool = False
    reason: str = "missing"
    from_host: str = ""
    requires: list[str] = Field(default_factory=list)
    verify: dict[str, Any] | None = None
    mcp: dict[str, Any] | None = None
    git: dict[str, Any] | None = None
    approval: str = ""

    def role_vars(self) -> dict[str, Any]:
        """The item as the installer role takes it (docs/INSTALLER_CONTRACT.md)."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "pinned": self.pinned,
            "risk": self.risk,
        }
        if self.verify:
            data["verify"] = self.verify
        if self.mcp:
            data["mcp"] = self.mcp
        if self.git:
            data.update(self.git)
        return data


_RoleEntry = tuple[str, str, dict[str, Any]]  # an item's role, its items variable, role_vars()


class HostPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str
    os_family: str
    items: list[PlanItem] = Field(default_factory=list)
    awaiting_approval: list[PlanItem] = Field(default_factory=list)
    unportable: list[dict[str, Any]] = Field(default_factory=list)
    # Items a person rejected (cyclotron reject) for the version now wanted: not installed, not asked again.
    rejected: list[PlanItem] = Field(default_factory=list)

    def items_by_role(self, made: dict[int, _RoleEntry] | None = None) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Role -> the role variable of each item's manager -> items, as the install play passes
        them (cyclotron_py.install_play): pipx items go to cyclotron_pip in cyclotron_pip_pipx_items.
        ``made``: id(item) -> (role, variable, role_vars()), shared by the hosts of one plan (the
        items are alive in it, so no id is reused; the data is read-only)."""
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
        made = {} if made is None else made
        for item in self.items:
            entry = made.get(id(item))
            if entry is None:
                entry = made[id(item)] = (item.role, managers.items_var(item.manager), item.role_vars())
            role, var, data = entry
            by_var = grouped.get(role)
            if by_var is None:
                by_var = grouped[role] = {}
            found = by_var.get(var)
            if found is None:
                by_var[var] = [data]
            else:
                found.append(data)
        return {role: grouped[role] for role in ROLE_ORDER if role in grouped}


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: str
    created_at: str
    approve: ApprovalMode
    hosts: list[HostPlan]

    def host(self, name: str) -> HostPlan | None:
        return next((h for h in self.hosts if h.host == name), None)

    @property
    def total_items(self) -> int:
        return sum(len(h.items) for h in self.hosts)


def approved(risk: str, mode: str) -> bool:
    if mode == "all":
        return True
    if mode == "low-risk":
        return risk == "low"
    return False


def build_plan(
    distribution: Mapping[str, Iterable[Mapping[str, Any]]],
    os_families: Mapping[str, str],
    catalog: Catalog,
    *,
    approve: str = "low-risk",
    unportable: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
    decisions: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    now: datetime | None = None,
) -> Plan:
    """Turn ``{host: [recommendation, ...]}`` into an ordered, checked Plan.

    A recommendation carries id, name, type, domain, priority, risk, manager,
    package, version, reason, from_host, pinned and, for MCP servers, details.
    ``decisions`` are a person's answers from the store: ``{host: {capability id: {"state":
    "approved"|"rejected", "wanted_version": V, "reason": ...}}}``; they apply to the same wanted
    version only (a new version is asked again). Approved items install whatever the mode.
    """
    if approve not in APPROVAL_MODES:
        raise PlanError(f"approval mode {approve!r} is not one of {', '.join(APPROVAL_MODES)}")
    # Most recommendations repeat across hosts (copies of one template per capability and host
    # profile): each distinct one is checked and validated into a PlanItem once, and hosts share
    # that (read-only) item; a host-specific variant (requires, approval) is one copy per variant.
    made = _Made()
    variants: dict[tuple[int, str, Any], PlanItem] = {}

    def variant(item: PlanItem, field: str, value: Any) -> PlanItem:
        key = (id(item), field, tuple(value) if isinstance(value, list) else value)
        found = variants.get(key)
        if found is None:
            found = variants[key] = item.model_copy(update={field: value})
        return found

    waiting: dict[int, PlanItem] = {}  # id(item) -> its copy awaiting approval

    def awaiting(item: PlanItem) -> PlanItem:
        found = waiting.get(id(item))
        if found is None:
            found = waiting[id(item)] = variant(item, "approval", f"risk {item.risk} needs cyclotron_approve=all")
        return found

    hosts: list[HostPlan] = []
    for host in sorted(distribution):
        recs = list(distribution[host])
        made.alive.append(recs)  # their ids key made.by_object: none may be freed and reused
        # An item that cannot be planned (no installer for its manager on this host, a name its
        # manager refuses) becomes unportable with the reason; the rest of the fleet is planned.
        refused: list[dict[str, Any]] = []
        # The comparison shares one recommendation object between the hosts that get it.
        keyed: list[_Keyed | None] = list(map(made.by_object.get, map(id, recs)))
        if None in keyed:
            keyed = [
                k if k is not None else made.find(host, rec, catalog, refused)
                for k, rec in zip(keyed, recs, strict=True)
            ]
            if refused:
                keyed = [k for k in keyed if k is not None]
        ordered: list[_Keyed] = sorted(keyed, key=_ORDER)  # type: ignore[arg-type]  # stable sort
        items = list(map(_ITEM, ordered))
        if made.requirements:
            # An item keeps only the requirements planned on this host with it. Few distinct
            # requirement lists exist (mostly one runtime each), so each is checked once per host;
            # an item none of whose requirements is planned here takes its copy without any.
            present = set(map(_ID, items))
            unmet = {r for r in made.requirements if not present.issuperset(r)}
            if unmet:
                items = [k[3] if k[2] in unmet else k[1] for k in ordered]
                partly = [n for n, k in enumerate(ordered) if len(k[2]) > 1 and k[2] in unmet] if made.several else []
                for n in partly:
                    _, item, requires, _ = ordered[n]
                    items[n] = variant(item, "requires", [r for r in requires if r in present])
        answers = (decisions or {}).get(host)
        take: list[PlanItem] = []
        wait: list[PlanItem] = []
        rejected: list[PlanItem] = []
        if not answers:
            if approve == "all":
                take = items
            elif approve == "low-risk":
                take = [i for i in items if i.risk == "low"]
                wait = [awaiting(i) for i in items if i.risk != "low"]
            else:
                wait = list(map(awaiting, items))
        else:
            for i in items:
                answer = answers.get(i.id)
                state = answer.get("state") if answer and str(answer.get("wanted_version") or "") == i.version else None
                if state == "rejected":
                    rejected.append(variant(i, "approval", f"rejected: {answer.get('reason', '')}".strip()))  # type: ignore[union-attr]
                elif state == "approved" or approved(i.risk, approve):
                    take.append(variant(i, "approval", "approved") if state == "approved" else i)
                else:
                    wait.append(awaiting(i))
        # The comparison's entries as they are (shared by hosts alike, read-only, as items are);
        # another mapping type (an action plugin's argument) as a plain dict.
        gaps = [u if type(u) is dict else dict(u) for u in (unportable or {}).get(host, [])] + refused
        # model_construct: every part is already checked (PlanItems validated when made, gap
        # entries plain dicts), so each host is not validated a second time.
        hosts.append(
            HostPlan.model_construct(
                host=host,
                os_family=os_families.get(host, "linux"),
                items=take,
                awaiting_approval=wait,
                rejected=rejected,
                unportable=sorted(gaps, key=_GAP_ORDER),
            )
        )
    stamp = (now or datetime.now(UTC)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Plan(plan_id=_plan_id(approve, hosts), created_at=stamp, approve=approve, hosts=hosts)  # type: ignore[arg-type]


# (the item's order key as one string, the item, its requirements, the item without them)
_Keyed = tuple[str, "PlanItem", tuple[str, ...], "PlanItem"]
_ORDER = operator.itemgetter(0)
_ITEM = operator.itemgetter(1)
_ID = operator.attrgetter("id")


def _GAP_ORDER(gap: dict[str, Any]) -> str:  # noqa: N802 - used as a key like the getters above
    return str(gap.get("id"))


class _Made:
    """The items built so far, found again by a recommendation with the same fields (see _rec_key)."""

    def __init__(self) -> None:
        self.by_key: dict[Any, _Keyed] = {}
        # By the recommendation object itself (alive in the caller's distribution while the plan
        # is built, so its id is not reused): one lookup for each host sharing it.
        self.by_object: dict[int, _Keyed] = {}
        self.alive: list[list[Mapping[str, Any]]] = []
        self.requirements: set[tuple[str, ...]] = set()  # the distinct non-empty requirement lists
        self.several = False  # one of them has more than one requirement

    def find(self, host: str, rec: Mapping[str, Any], catalog: Catalog, refused: list[dict[str, Any]]) -> _Keyed | None:
        """The item for ``rec``, made once per distinct recommendation; None (and the reason added to
        ``refused``) when it cannot be planned: that reason names the host, so it is not shared."""
        key = _rec_key(rec)
        found = self.by_key.get(key) if key is not None else None
        if found is None:
            try:
                item = _item(host, rec, catalog)
            except PlanError as exc:
                refused.append(_refused(rec, str(exc)))
                return None
            found = self.add(key, item)
        self.by_object[id(rec)] = found
        return found

    def add(self, key: Any, item: PlanItem) -> _Keyed:
        # _order_key as text that sorts the same (the two ranks as one character each): strings
        # compare faster than tuples.
        role, priority, cap_id = _order_key(item)
        requires = tuple(item.requires)
        unrequired = item.model_copy(update={"requires": []}) if requires else item
        found = (f"{chr(65 + role)}{chr(65 + priority)}{cap_id}", item, requires, unrequired)
        if key is not None:
            self.by_key[key] = found
        if requires:
            self.requirements.add(requires)
            self.several = self.several or len(requires) > 1
        return found


# The fields of a recommendation _item reads (besides details): equal fields, equal item.
_REC_FIELDS = operator.itemgetter(
    "id", "name", "type", "domain", "priority", "risk", "manager", "package", "version", "pinned", "reason",
    "from_host",
)


def _rec_key(rec: Mapping[str, Any]) -> Any:
    """A recommendation's identity for sharing its item; None (not shared) for an unusual one."""
    try:
        key = (_REC_FIELDS(rec), id(rec.get("details")))  # details: the same template's dict, or {}
        hash(key)
    except (KeyError, TypeError):
        return None
    return key


def _plan_id(approve: str, hosts: list[HostPlan]) -> str:
    """``plan-`` and a digest of what is planned: sha256 of ``json.dumps({"approve", "hosts"},
    sort_keys=True)`` over the hosts' JSON form. That text is written here by msgspec, each shared
    item once, when it is ASCII (as json's ensure_ascii writes it); otherwise json itself writes it.
    It is hashed a host at a time, never held whole."""
    # Each item or gap hosts share is written once (they are alive in ``hosts``).
    texts = EncodedOnce(lambda entries: [_json_text(_fields(entry)) for entry in entries])
    digest = hashlib.sha256(b'{"approve": ' + _json_text(approve) + b', "hosts": [')
    for n, host in enumerate(hosts):
        parts = [b", {" if n else b"{"]
        for k, (name, value) in enumerate(sorted(host.__dict__.items())):
            parts += (b", " if k else b"", _json_text(name), b": ")
            if isinstance(value, list) and value and isinstance(value[0], PlanItem | dict):  # items and gaps
                parts += (b"[", b", ".join(texts(value)), b"]")
            else:
                parts.append(_json_text(value))
        parts.append(b"}")
        text = b"".join(parts)
        if not text.isascii():
            body = [h.model_dump(mode="json") for h in hosts]
            text = json.dumps({"approve": approve, "hosts": body}, sort_keys=True).encode()
            return f"plan-{hashlib.sha256(text).hexdigest()[:12]}"
        digest.update(text)
    digest.update(b"]}")
    return f"plan-{digest.hexdigest()[:12]}"


def _json_text(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True)`` for ASCII text (json's default separators)."""
    return _spaced(_SORTED.encode(value))


def _fields(entry: Any) -> Any:
    """A plan item's fields (its JSON form: every field is a plain type), or a gap entry as it is."""
    return entry.__dict__ if isinstance(entry, BaseModel) else entry


def _refused(rec: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """An unportable entry for a recommendation the plan refused (same keys as the matrix's)."""
    entry = {k: rec[k] for k in ("id", "name", "type", "domain", "priority") if k in rec}
    return {**entry, "gap": str(rec.get("reason") or "missing"), "reason": reason}


_ROLE_RANK = {role: n for n, role in enumerate(ROLE_ORDER)}


def _order_key(item: PlanItem) -> tuple[int, int, str]:
    return (_ROLE_RANK[item.role], PRIORITY_RANK.get(item.priority, 1), item.id)


def _item(host: str, rec: Mapping[str, Any], catalog: Catalog) -> PlanItem:
    cap_id = str(rec.get("id", ""))
    where = f"plan for {host}: {cap_id}: "
    manager = str(rec.get("manager", ""))
    role = managers.role_for(manager)
    if role is None:
        raise PlanError(f"{where}no installer role for manager {manager!r} (cyclotron_py/managers.py)")
    package = str(rec.get("package", ""))
    version = safety.check_version(str(rec.get("version") or ""), where=where)
    entry = catalog.get(cap_id)
    requires = list(entry.requires) if entry else []
    runtime = managers.runtime(manager)
    if runtime and runtime != cap_id:
        requires.append(runtime)
    item = PlanItem(
        id=cap_id,
        name=str(rec.get("name") or cap_id),
        type=str(rec.get("type", "")),
        domain=str(rec.get("domain", "")),
        priority=str(rec.get("priority", "normal")),
        risk=str(rec.get("risk", "medium")),
        role=role,
        manager=manager,
        package=package,
        version=version,
        pinned=bool(rec.get("pinned", False)),
        reason=str(rec.get("reason", "missing")),
        from_host=str(rec.get("from_host", "")),
        requires=requires,
        verify=entry.verify.model_dump() if entry and entry.verify else None,
    )
    if role == "api_keys":
        safety.check_env_name(package, where=where)
    elif role == "git":
        details = rec.get("details") or {}
        remote = safety.check_git_remote(str(details.get("remote") or package), where=where)
        item.git = {"remote": remote, "dest": f"~/src/{_repo_dir(cap_id)}"}
    elif role == "mcp":
        item.mcp = _mcp_spec(rec, where)
    else:
        safety.check_package(manager, package, where=where)
    return item


def _repo_dir(cap_id: str) -> str:
    """``git:github.com/me/notes`` -> ``notes``: the clone's directory under ~/src."""
    name = cap_id.rsplit("/", 1)[-1].removeprefix("git:")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name) or name in (".", ".."):
        raise PlanError(f"{cap_id}: repository name {name!r} cannot be a directory name")
    return name


def _mcp_spec(rec: Mapping[str, Any], where: str) -> dict[str, Any]:
    details = rec.get("details") or {}
    name = safety.check_mcp_name(str(rec.get("package") or rec.get("id", "")).removeprefix("mcp:"), where=where)
    spec: dict[str, Any] = {
        "name": name,
        "transport": str(details.get("transport", "stdio")),
        "command": safety.check_arg(str(details.get("command", "")), where=where),
        "args": [safety.check_arg(str(a), where=where) for a in details.get("args", [])],
        "url": str(details.get("url", "")),
        "env_names": [safety.check_env_name(str(n), where=where) for n in details.get("env_names", [])],
        "assistants": sorted({str(c.get("assistant")) for c in details.get("configured_in", [])})
        or ["claude_code"],
    }
    package = details.get("package")
    if package:
        manager = str(package.get("manager", ""))
        pkg_name = safety.check_package(manager, str(package.get("name", "")), where=where)
        spec["package"] = {
            "manager": manager,
            "name": pkg_name,
            "version": safety.check_version(str(package.get("version") or ""), where=where),
        }
        spec["expected_tools"] = KNOWN_MCP_TOOLS.get(pkg_name, [])
    elif spec["transport"] == "stdio":
        raise PlanError(
            f"{where}stdio MCP server with no package Cyclotron can install "
            "(its command is not npx/uvx); configure it by hand or add it to the catalog"
        )
    return spec


def render_playbook(plan: Plan) -> str:
    """A playbook a person can read, review and run alone with ansible-playbook."""
    plays: list[dict[str, Any]] = []
    made: dict[int, _RoleEntry] = {}  # hosts share items: each item's data made (and written) once
    for host in plan.hosts:
        tasks = install_play.literal_tasks(host.items_by_role(made))
        if not tasks:
            continue
        tasks.append(
            {
                "name": "Show the outcome of every item",
                "ansible.builtin.debug": {"var": "cyclotron_outcomes"},
            }
        )
        plays.append(
            {
                "name": f"Cyclotron {plan.plan_id}: install on {host.host}",
                "hosts": host.host,
                "gather_facts": False,
                # As in sync.yml: "~/..." resolves against the host's cyclotron_home when set.
                "environment": HOME_FROM_INVENTORY,
                "tasks": tasks,
            }
        )
    header = [
        f"# Generated by Cyclotron from {plan.plan_id} ({plan.created_at}); approval mode: {plan.approve}.",
        "# Review it, then run: ansible-playbook -i <inventory> " + f"generated/{plan.plan_id}.yml",
        "# Every item is installed, verified and rolled back on failure by its role.",
    ]
    for host in plan.hosts:
        for item in host.awaiting_approval:
            header.append(f"# awaiting approval on {host.host}: {item.id} ({item.approval})")
    body = install_play.dump(plays or [_empty_play(plan)])
    return "\n".join(header) + "\n---\n" + body


def _empty_play(plan: Plan) -> dict[str, Any]:
    return {
        "name": f"Cyclotron {plan.plan_id}: nothing to install (fleet at parity)",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "Nothing to do", "ansible.builtin.debug": {"msg": "The fleet is at parity."}}],
    }


def write_plan(
    plan: Plan, plans_dir: str | Path, generated_dir: str | Path, *, parallel: bool = False,
    meanwhile: Callable[[], Any] | None = None,
) -> tuple[Path, Path]:
    """Write plans/<id>.json and generated/<id>.yml atomically; same id, same content.
    ``parallel`` (the CLI, a large plan): a forked child writes the playbook meanwhile, and this
    process also runs ``meanwhile`` (the CLI prints the summary) before it waits for the child."""
    plan_path = Path(plans_dir) / f"{plan.plan_id}.json"
    playbook_path = Path(generated_dir) / f"{plan.plan_id}.yml"
    worker = None
    if parallel and plan.total_items >= PARALLEL_MIN_ITEMS:
        worker = fork_call(lambda: _write_playbook(plan, playbook_path))
    with atomic_writer(plan_path) as write:
        dump_plan_json(plan, write)
    if meanwhile is not None:
        meanwhile()
    if worker is None or worker.result() is not True:  # no child, or it failed: written here
        _write_playbook(plan, playbook_path)
    return plan_path, playbook_path


# Planned items from which writing the playbook is worth a second process.
PARALLEL_MIN_ITEMS = 20_000


def _write_playbook(plan: Plan, path: Path) -> bool:
    atomic_write_text(path, render_playbook(plan))
    return True


_IN_ORDER = msgspec.json.Encoder(enc_hook=_plain)  # fields in the models' order


def plan_json(plan: Plan) -> bytes:
    """The plan's JSON (what ``Plan.model_validate_json`` reads back), an entry per line: the
    top level and each host laid out, and each item or gap on a line of its own, so a plan reads
    (and diffs) a capability at a time. Fields in the models' order."""
    parts: list[bytes] = []
    dump_plan_json(plan, parts.append)
    return b"".join(parts)


def dump_plan_json(plan: Plan, write: Callable[[bytes], Any]) -> None:
    """``plan_json(plan)`` handed to ``write`` a host at a time (manifest_io.atomic_writer writes
    it meanwhile). An item hosts share is encoded once."""
    # Each item or gap hosts share is written once (they are alive in ``plan``).
    lines = EncodedOnce(
        lambda entries: [b"        " + bytes(raw)
                         for raw in _LINES.decode(_spaced(_IN_ORDER.encode(list(map(_fields, entries)))))]
    )

    def entries(values: list[Any]) -> bytes:
        return b"[\n" + b",\n".join(lines(values)) + b"\n      ]" if values else b"[]"

    head = b"".join(b'  "%s": %s,\n' % (name.encode(), _spaced(_IN_ORDER.encode(getattr(plan, name))))
                    for name in ("plan_id", "created_at", "approve"))
    write(b"{\n" + head + b'  "hosts": [' + (b"" if plan.hosts else b"]\n}\n"))
    for n, host in enumerate(plan.hosts):
        fields = [
            b'      "%s": %s' % (name.encode(), _value(value, entries))
            for name, value in host.__dict__.items()
        ]
        write((b",\n    {\n" if n else b"\n    {\n") + b",\n".join(fields) + b"\n    }")
    if plan.hosts:
        write(b"\n  ]\n}\n")


def _value(value: Any, entries: Callable[[list[Any]], bytes]) -> bytes:
    return entries(value) if isinstance(value, list) else _spaced(_IN_ORDER.encode(value))


_LINES = msgspec.json.Decoder(list[msgspec.Raw])


def _spaced(text: bytes) -> bytes:
    return msgspec.json.format(text, indent=0)
