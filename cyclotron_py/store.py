"""The run store: one SQLite file in the state dir, for the CLI, the dashboard and the exchange.

What it keeps is what the outcome contract names (ids, versions, outcome, reason) and counts,
never a raw Ansible result: results recorded as-is leak secrets (ara #394, awx #854). Writes
come in batches, one transaction per burst of events (ara #80: a write per result over HTTP
tripled run time). The file is opened in WAL mode with a busy timeout, foreign keys on and
numbered migrations (``PRAGMA user_version``); a corrupt or locked file is a StoreError that
names the file and how to recover, never a traceback.

State dir: ``$CYCLOTRON_STATE_DIR``, else ``$XDG_STATE_HOME/cyclotron``, else
``~/.local/state/cyclotron``; created 0700. It holds ``cyclotron.db``, the ``lock``, the
``runs/`` data dirs and ``config.yml``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple

from .errors import CyclotronError

DB_NAME: Final = "cyclotron.db"
RUN_STATUSES: Final = ("running", "successful", "failed", "abandoned", "missed", "canceled")
RUN_KINDS: Final = ("sync", "gather", "plan", "pull", "publish")
# The kinds a schedule runs: a standalone `exchange publish` does not move the next due time.
SCHEDULED_KINDS: Final = ("sync", "gather", "plan", "pull")
MODES: Final = ("manual", "semi-auto", "full-auto")
ITEM_OUTCOMES: Final = (
    "installed",
    "upgraded",
    "already-present",
    "failed-rolled-back",
    "failed",
    "skipped-policy",
    "awaiting-approval",
    "rejected",
)
APPROVAL_STATES: Final = ("pending", "approved", "rejected", "expired", "closed")
_HOST_COUNTS: Final = ("ok", "changed", "failed", "unreachable", "skipped")


class StoreError(CyclotronError):
    """The store file cannot be opened or used; the message names the file and the recovery."""


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The state dir (created 0700): $CYCLOTRON_STATE_DIR, else the XDG state home."""
    env = os.environ if environ is None else environ
    if env.get("CYCLOTRON_STATE_DIR"):
        path = Path(env["CYCLOTRON_STATE_DIR"]).expanduser()
    else:
        base = Path(env["XDG_STATE_HOME"]).expanduser() if env.get("XDG_STATE_HOME") else Path.home() / ".local/state"
        path = base / "cyclotron"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Each entry moves the schema one version up; never edit one that has shipped, add the next.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('sync', 'gather', 'plan')),
        mode TEXT NOT NULL CHECK (mode IN ('manual', 'semi-auto', 'full-auto')),
        inventory TEXT NOT NULL DEFAULT '',
        started TEXT NOT NULL,
        finished TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'successful', 'failed', 'abandoned', 'missed', 'canceled')),
        rc INTEGER,
        pid INTEGER,
        heartbeat_at TEXT,
        -- the schedule slot a tick ran (or missed) it for: the next slot counts from here, not from
        -- when it actually started, so an interval schedule does not drift
        due_at TEXT,
        plan_id TEXT NOT NULL DEFAULT '',
        data_dir TEXT NOT NULL DEFAULT '',
        check_mode INTEGER NOT NULL DEFAULT 0,
        hosts_ok INTEGER NOT NULL DEFAULT 0,
        hosts_failed INTEGER NOT NULL DEFAULT 0,
        hosts_unreachable INTEGER NOT NULL DEFAULT 0,
        items_total INTEGER NOT NULL DEFAULT 0,
        items_done INTEGER NOT NULL DEFAULT 0,
        items_failed INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX runs_started ON runs (started);
    CREATE INDEX runs_status ON runs (status);
    CREATE TABLE host_outcomes (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        ok INTEGER NOT NULL DEFAULT 0,
        changed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        unreachable INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        items_total INTEGER NOT NULL DEFAULT 0,
        items_done INTEGER NOT NULL DEFAULT 0,
        current_task TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, host)
    );
    CREATE INDEX host_outcomes_host ON host_outcomes (host, run_id);
    CREATE TABLE item_outcomes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        capability_id TEXT NOT NULL,
        manager TEXT NOT NULL DEFAULT '',
        package TEXT NOT NULL DEFAULT '',
        version_before TEXT NOT NULL DEFAULT '',
        version_after TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL CHECK (outcome IN ('installed', 'upgraded', 'already-present', 'failed-rolled-back',
                                                  'failed', 'skipped-policy', 'awaiting-approval', 'rejected')),
        reason TEXT NOT NULL DEFAULT '',
        censored INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX item_outcomes_run ON item_outcomes (run_id, host);
    CREATE INDEX item_outcomes_cap ON item_outcomes (host, capability_id);
    CREATE TABLE manifests (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        gathered_at TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        capabilities INTEGER NOT NULL,
        run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        body TEXT NOT NULL,
        UNIQUE (host, sha256)
    );
    CREATE INDEX manifests_host ON manifests (host, gathered_at);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        capability_id TEXT NOT NULL,
        manager TEXT NOT NULL DEFAULT '',
        package TEXT NOT NULL DEFAULT '',
        wanted_version TEXT NOT NULL DEFAULT '',
        risk TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        plan_id TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'closed')),
        requested_by TEXT NOT NULL DEFAULT '',
        decided_by TEXT NOT NULL DEFAULT '',
        decided_at TEXT,
        decision_reason TEXT NOT NULL DEFAULT '',
        expires_at TEXT,
        consumed_run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL
    );
    CREATE INDEX approvals_state ON approvals (state, host);
    CREATE UNIQUE INDEX approvals_one_open ON approvals (host, capability_id, wanted_version)
        WHERE state IN ('pending', 'approved');
    CREATE TABLE heartbeats (
        name TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        pid INTEGER,
        run_id INTEGER,
        note TEXT NOT NULL DEFAULT ''
    );
    """,
    # 2: a snapshot is new when it differs from the host's latest one (not from any earlier one), so
    # history sees a package removed again; last_seen_at is the newest gather that found this content.
    """
    CREATE TABLE manifests_v2 (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        gathered_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        capabilities INTEGER NOT NULL,
        run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        body TEXT NOT NULL
    );
    INSERT INTO manifests_v2 (id, host, gathered_at, last_seen_at, sha256, capabilities, run_id, body)
        SELECT id, host, gathered_at, gathered_at, sha256, capabilities, run_id, body FROM manifests;
    DROP TABLE manifests;
    ALTER TABLE manifests_v2 RENAME TO manifests;
    CREATE INDEX manifests_host ON manifests (host, gathered_at);
    """,
    # 3: the git exchange (cyclotron_py.exchange): run kinds pull and publish, and its event log
    # (every fetch, push, rejection, retry and outcome). SQLite cannot ALTER a CHECK constraint;
    # loosening one is the schema edit https://sqlite.org/lang_altertable.html#otheralter describes
    # (the rows on disk already satisfy it), and RESET makes this connection read the schema again.
    """
    PRAGMA writable_schema = ON;
    UPDATE sqlite_master SET sql = replace(sql, 'CHECK (kind IN (', 'CHECK (kind IN (''pull'', ''publish'', ')
        WHERE type = 'table' AND name = 'runs' AND instr(sql, '''pull''') = 0;
    PRAGMA writable_schema = RESET;
    CREATE TABLE exchange_events (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        host TEXT NOT NULL,
        repo TEXT NOT NULL,
        action TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX exchange_events_run ON exchange_events (run_id, id);
    """,
)


class ItemOutcome(NamedTuple):  # not a dataclass: `cyclotron run` imports this module before it starts
    host: str
    capability_id: str
    outcome: str
    manager: str = ""
    package: str = ""
    version_before: str = ""
    version_after: str = ""
    reason: str = ""
    censored: bool = False


def outcome_name(status: str) -> str:
    """A role's outcome status (``failed_rolled_back``) as the store spells it (``failed-rolled-back``)."""
    name = str(status).strip().lower().replace("_", "-")
    return "already-present" if name in ("present", "unchanged", "none") else name


class Store:
    """The SQLite store. Open with ``Store.open(path_or_state_dir)``; use as a context manager."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, location: str | Path | None = None, *, timeout: float = 5.0) -> Store:
        path = Path(location) if location is not None else state_dir() / DB_NAME
        if path.is_dir():
            path = path / DB_NAME
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{path}: cannot open the store ({exc}); check the directory exists and is writable"
            ) from exc
        db.row_factory = sqlite3.Row
        store = cls(path, db)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            store._migrate()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise store._error(exc) from exc
        os.chmod(path, 0o600)
        return store

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"{self.path}: the store is locked by another process ({text}); wait for the running "
                "cyclotron command to finish, or stop it, then retry"
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreError(
                f"{self.path}: the store file is corrupt ({text}); move it aside "
                f"(mv {self.path} {self.path}.corrupt) and run again: a new, empty store is created "
                "(run history is lost, manifests and plans on disk are not)"
            )
        return StoreError(f"{self.path}: store error: {text}")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: the store has schema version {version}, newer than this cyclotron "
                f"knows ({len(MIGRATIONS)}); upgrade cyclotron or use another CYCLOTRON_STATE_DIR"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in _statements(script):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @property
    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's data_version): a cheap "anything new?"."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: a writer waits for the lock up front)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    # ----------------------------------------------------------------- runs

    def start_run(
        self,
        kind: str,
        mode: str,
        *,
        inventory: str = "",
        pid: int | None = None,
        check_mode: bool = False,
        data_dir: str = "",
        now: datetime | None = None,
        due: datetime | None = None,
    ) -> int:
        if kind not in RUN_KINDS:
            raise StoreError(f"run kind {kind!r} is not one of {', '.join(RUN_KINDS)}")
        if mode not in MODES:
            raise StoreError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        stamp = iso(now or utc_now())
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (kind, mode, inventory, started, status, pid, heartbeat_at, check_mode, data_dir,"
                " due_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (kind, mode, inventory, stamp, os.getpid() if pid is None else pid, stamp, int(check_mode), data_dir,
                 iso(due) if due else None),
            )
            return int(cur.lastrowid or 0)

    def record_missed(self, kind: str, mode: str, *, due: datetime, message: str, now: datetime | None = None) -> int:
        """A scheduled run that did not happen (downtime past the grace period)."""
        stamp = iso(now or utc_now())
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (kind, mode, started, finished, status, message, due_at)"
                " VALUES (?, ?, ?, ?, 'missed', ?, ?)",
                (kind, mode, iso(due), stamp, message, iso(due)),
            )
            return int(cur.lastrowid or 0)

    def update_run(self, run_id: int, **fields: Any) -> None:
        allowed = {"plan_id", "heartbeat_at", "items_total", "items_done", "items_failed", "message", "data_dir"}
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"cannot update run fields {sorted(bad)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def finish_run(self, run_id: int, status: str, rc: int, *, message: str = "", now: datetime | None = None) -> None:
        if status not in RUN_STATUSES or status == "running":
            raise StoreError(f"a run cannot finish as {status!r}")
        with self.transaction() as db:
            counts = db.execute(
                "SELECT SUM(status IN ('ok', 'complete')) AS ok, SUM(status = 'failed') AS failed,"
                " SUM(status = 'unreachable') AS unreachable FROM host_outcomes WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            items = db.execute(
                "SELECT COUNT(*) AS done, SUM(outcome IN ('failed', 'failed-rolled-back')) AS failed"
                " FROM item_outcomes WHERE run_id = ? AND outcome NOT IN ('awaiting-approval', 'skipped-policy')",
                (run_id,),
            ).fetchone()
            db.execute(
                "UPDATE runs SET status = ?, rc = ?, finished = ?, message = CASE WHEN ? = '' THEN message ELSE ? END,"
                " hosts_ok = ?, hosts_failed = ?, hosts_unreachable = ?, items_done = MAX(items_done, ?),"
                " items_failed = ? WHERE id = ?",
                (
                    status,
                    rc,
                    iso(now or utc_now()),
                    message,
                    message,
                    counts["ok"] or 0,
                    counts["failed"] or 0,
                    counts["unreachable"] or 0,
                    items["done"] or 0,
                    items["failed"] or 0,
                    run_id,
                ),
            )

    def beat(
        self, run_id: int | None = None, *, name: str = "scheduler", note: str = "", now: datetime | None = None
    ) -> None:
        """The heartbeat (``status`` flags it stale past twice the schedule interval)."""
        stamp = iso(now or utc_now())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO heartbeats (name, at, pid, run_id, note) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET at = excluded.at, pid = excluded.pid,"
                " run_id = excluded.run_id, note = excluded.note",
                (name, stamp, os.getpid(), run_id, note),
            )
            if run_id is not None:
                db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (stamp, run_id))

    def heartbeat(self, name: str = "scheduler") -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM heartbeats WHERE name = ?", (name,))
        return dict(rows[0]) if rows else None

    def abandon_dead_runs(self, *, now: datetime | None = None, alive: Any = None) -> list[int]:
        """Runs left ``running`` by a process that is gone become ``abandoned``; returns their ids."""
        is_alive = alive or pid_alive
        stale = [
            int(r["id"])
            for r in self._query("SELECT id, pid FROM runs WHERE status = 'running'")
            if r["pid"] is None or not is_alive(int(r["pid"]))
        ]
        if stale:
            stamp = iso(now or utc_now())
            with self.transaction() as db:
                db.executemany(
                    "UPDATE runs SET status = 'abandoned', finished = ?, rc = COALESCE(rc, -9),"
                    " message = 'the process running it is gone (killed or crashed); the next run re-gathers'"
                    " WHERE id = ? AND status = 'running'",
                    [(stamp, run_id) for run_id in stale],
                )
                db.executemany(
                    "UPDATE host_outcomes SET status = 'abandoned'"
                    " WHERE run_id = ? AND status IN ('pending', 'running', 'in progress')",
                    [(run_id,) for run_id in stale],
                )
        return stale

    def run(self, run_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return _run_dict(rows[0]) if rows else None

    def runs(
        self, *, limit: int = 20, offset: int = 0, host: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        where, params = [], []  # type: ignore[var-annotated]
        if host:
            where.append("id IN (SELECT run_id FROM host_outcomes WHERE host = ?)")
            params.append(host)
        if status:
            where.append("status = ?")
            params.append(status)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        return [_run_dict(r) for r in self._query(sql, (*params, limit, offset))]

    def count_runs(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM runs")[0][0])

    def current_run(self) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM runs WHERE status = 'running' ORDER BY id DESC LIMIT 1")
        return _run_dict(rows[0]) if rows else None

    def last_run(self, *, finished: bool = True) -> dict[str, Any] | None:
        sql = (
            "SELECT * FROM runs WHERE status NOT IN ('running', 'missed') ORDER BY id DESC LIMIT 1"
            if finished
            else "SELECT * FROM runs ORDER BY id DESC LIMIT 1"
        )
        rows = self._query(sql)
        return _run_dict(rows[0]) if rows else None

    def last_started(self, kinds: Iterable[str] = SCHEDULED_KINDS) -> datetime | None:
        """The schedule slot of the newest run (missed included), else when it started."""
        kinds = tuple(kinds)
        marks = ",".join("?" * len(kinds))
        rows = self._query(f"SELECT MAX(COALESCE(due_at, started)) FROM runs WHERE kind IN ({marks})", kinds)
        value = rows[0][0]
        return parse_iso(value) if value else None

    # ----------------------------------------------------------------- hosts and items

    def record_hosts(self, run_id: int, hosts: Mapping[str, Mapping[str, Any]]) -> None:
        """Upsert per-host progress and counts: ``{host: {status, ok, changed, ..., error}}``."""
        rows = []
        for host, data in hosts.items():
            rows.append(
                (
                    run_id,
                    host,
                    str(data.get("status", "pending")),
                    *(int(data.get(k, 0) or 0) for k in _HOST_COUNTS),
                    int(data.get("items_total", 0) or 0),
                    int(data.get("items_done", 0) or 0),
                    str(data.get("current_task", ""))[:300],
                    str(data.get("error", ""))[:2000],
                )
            )
        if not rows:
            return
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO host_outcomes (run_id, host, status, ok, changed, failed, unreachable, skipped,"
                " items_total, items_done, current_task, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, host) DO UPDATE SET status = excluded.status, ok = excluded.ok,"
                " changed = excluded.changed, failed = excluded.failed, unreachable = excluded.unreachable,"
                " skipped = excluded.skipped, items_total = excluded.items_total, items_done = excluded.items_done,"
                " current_task = excluded.current_task, error = excluded.error",
                rows,
            )

    def host_outcomes(self, run_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._query("SELECT * FROM host_outcomes WHERE run_id = ? ORDER BY host", (run_id,))]

    def record_items(self, run_id: int, items: Iterable[ItemOutcome]) -> int:
        """Item outcomes in one transaction (10,000 in well under a second: benchmarks/bench_store.py)."""
        rows = []
        for it in items:
            outcome = outcome_name(it.outcome)
            if outcome not in ITEM_OUTCOMES:
                raise StoreError(
                    f"{it.host}: {it.capability_id}: outcome {it.outcome!r} is not one of {', '.join(ITEM_OUTCOMES)}"
                )
            rows.append(
                (
                    run_id,
                    it.host,
                    it.capability_id,
                    it.manager,
                    it.package,
                    it.version_before or "",
                    it.version_after or "",
                    outcome,
                    (it.reason or "")[:2000],
                    int(it.censored),
                )
            )
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO item_outcomes (run_id, host, capability_id, manager, package, version_before,"
                " version_after, outcome, reason, censored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def item_outcomes(self, run_id: int, host: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM item_outcomes WHERE run_id = ?" + (" AND host = ?" if host else "") + " ORDER BY host, id"
        return [dict(r) for r in self._query(sql, (run_id, host) if host else (run_id,))]

    # ----------------------------------------------------------------- manifests

    def snapshot_manifest(self, document: Mapping[str, Any], *, run_id: int | None = None) -> bool:
        """Keep a manifest if its content differs from the host's latest snapshot; same content only
        moves that snapshot's ``last_seen_at``. True if a new snapshot was stored."""
        host = str(document.get("host", ""))
        gathered_at = str(document.get("gathered_at", ""))
        body = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        content = json.dumps({k: v for k, v in document.items() if k != "gathered_at"}, sort_keys=True)
        digest = hashlib.sha256(content.encode()).hexdigest()
        count = len(document.get("capabilities") or [])
        with self.transaction() as db:
            latest = db.execute(
                "SELECT id, sha256 FROM manifests WHERE host = ? ORDER BY gathered_at DESC, id DESC LIMIT 1", (host,)
            ).fetchone()
            if latest is not None and latest["sha256"] == digest:
                db.execute("UPDATE manifests SET last_seen_at = MAX(last_seen_at, ?) WHERE id = ?",
                           (gathered_at, latest["id"]))
                return False
            db.execute(
                "INSERT INTO manifests (host, gathered_at, last_seen_at, sha256, capabilities, run_id, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (host, gathered_at, gathered_at, digest, count, run_id, body),
            )
            return True

    def manifest_history(self, host: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, host, gathered_at, last_seen_at, sha256, capabilities, run_id FROM manifests WHERE host = ?"
            " ORDER BY gathered_at DESC, id DESC LIMIT ?",
            (host, limit),
        )
        return [dict(r) for r in rows]

    def manifest_body(self, snapshot_id: int) -> dict[str, Any]:
        rows = self._query("SELECT body FROM manifests WHERE id = ?", (snapshot_id,))
        if not rows:
            raise StoreError(f"no manifest snapshot {snapshot_id}")
        body: dict[str, Any] = json.loads(rows[0][0])
        return body

    def host_changes(self, host: str, limit: int = 20) -> list[dict[str, Any]]:
        """What changed on a host between consecutive stored manifests: capabilities added, removed,
        and changed in version (each marked upgraded, downgraded or changed when versions do not compare)."""
        from .versions import compare_versions

        snapshots = list(reversed(self.manifest_history(host, limit + 1)))
        changes: list[dict[str, Any]] = []
        previous: dict[str, str | None] | None = None
        for snap in snapshots:
            body = self.manifest_body(snap["id"]).get("capabilities", [])
            caps = {c["id"]: c.get("version") for c in body}
            managers = {c["id"]: str((c.get("source") or {}).get("manager") or "") or None for c in body}
            if previous is not None:
                changed = []
                for cap in sorted(set(caps) & set(previous), key=str):
                    if caps[cap] == previous[cap]:
                        continue
                    order = compare_versions(str(caps[cap] or ""), str(previous[cap] or ""), managers[cap])
                    direction = {1: "upgraded", -1: "downgraded"}.get(order or 0, "changed")
                    changed.append({"id": cap, "from": previous[cap], "to": caps[cap], "direction": direction})
                changes.append(
                    {
                        "gathered_at": snap["gathered_at"],
                        "added": sorted(set(caps) - set(previous)),
                        "removed": sorted(set(previous) - set(caps)),
                        "changed": changed,
                    }
                )
            previous = caps
        return list(reversed(changes))

    def latest_manifests(self) -> dict[str, int]:
        """Per host, the id of its newest stored manifest snapshot (what the dashboard compares)."""
        rows = self._query(
            "SELECT host, id FROM (SELECT host, id, ROW_NUMBER() OVER (PARTITION BY host"
            " ORDER BY gathered_at DESC, id DESC) AS n FROM manifests) WHERE n = 1"
        )
        return {r["host"]: int(r["id"]) for r in rows}

    def last_gathered(self) -> dict[str, str]:
        """Per host, when it was last gathered (a gather that found nothing new counts too)."""
        return {
            r["host"]: r["at"]
            for r in self._query("SELECT host, MAX(last_seen_at) AS at FROM manifests GROUP BY host")
        }

    # ----------------------------------------------------------------- approvals

    def queue_approvals(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        plan_id: str,
        requested_by: str = "",
        expires_in: timedelta | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Queue items awaiting approval. An item already pending/approved, or rejected for the same
        wanted version, is not asked again. Returns the ids of new approvals."""
        stamp = now or utc_now()
        created: list[int] = []
        with self.transaction() as db:
            for item in items:
                host, cap = str(item["host"]), str(item["capability_id"])
                wanted = str(item.get("wanted_version") or "")
                known = db.execute(
                    "SELECT 1 FROM approvals WHERE host = ? AND capability_id = ? AND wanted_version = ?"
                    " AND state IN ('pending', 'approved', 'rejected')",
                    (host, cap, wanted),
                ).fetchone()
                if known:
                    continue
                cur = db.execute(
                    "INSERT INTO approvals (host, capability_id, manager, package, wanted_version, risk, reason,"
                    " plan_id, created, requested_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        host,
                        cap,
                        str(item.get("manager", "")),
                        str(item.get("package", "")),
                        wanted,
                        str(item.get("risk", "")),
                        str(item.get("reason", "")),
                        plan_id,
                        iso(stamp),
                        requested_by,
                        iso(stamp + expires_in) if expires_in else None,
                    ),
                )
                created.append(int(cur.lastrowid or 0))
        return created

    def approvals(self, *, states: Sequence[str] = ("pending",), host: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM approvals WHERE state IN ({','.join('?' * len(states))})"
        params: list[Any] = list(states)
        if host:
            sql += " AND host = ?"
            params.append(host)
        return [dict(r) for r in self._query(sql + " ORDER BY id", params)]

    def approval(self, approval_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        return dict(rows[0]) if rows else None

    def decisions(self) -> dict[str, dict[str, dict[str, str]]]:
        """A person's standing answers for the plan: ``{host: {capability id: {state, wanted_version,
        reason}}}`` from approved (not yet installed) and rejected approvals, the newest per item."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for row in self._query("SELECT * FROM approvals WHERE state IN ('approved', 'rejected') ORDER BY id"):
            out.setdefault(row["host"], {})[row["capability_id"]] = {
                "state": row["state"],
                "wanted_version": row["wanted_version"],
                "reason": row["decision_reason"],
                "approval_id": str(row["id"]),
            }
        return out

    def decide(
        self, ids: Sequence[int], state: str, *, by: str, reason: str = "", now: datetime | None = None
    ) -> list[int]:
        """Approve or reject pending approvals; returns the ids that changed (unknown/decided ids are skipped)."""
        if state not in ("approved", "rejected"):
            raise StoreError(f"an approval is decided as approved or rejected, not {state!r}")
        stamp = iso(now or utc_now())
        changed: list[int] = []
        with self.transaction() as db:
            for approval_id in ids:
                cur = db.execute(
                    "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, decision_reason = ?"
                    " WHERE id = ? AND state = 'pending'",
                    (state, by, stamp, reason, int(approval_id)),
                )
                if cur.rowcount:
                    changed.append(int(approval_id))
        return changed

    def expire_approvals(self, *, on_expiry: str = "expired", now: datetime | None = None) -> list[int]:
        """Pending approvals past their expiry become ``expired`` (or ``approved``/``rejected``, as configured)."""
        if on_expiry not in ("expired", "approved", "rejected"):
            raise StoreError(f"approval expiry outcome {on_expiry!r} is not expired, approved or rejected")
        stamp = iso(now or utc_now())
        rows = self._query(
            "SELECT id FROM approvals WHERE state = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?", (stamp,)
        )
        ids = [int(r[0]) for r in rows]
        if ids:
            with self.transaction() as db:
                db.executemany(
                    "UPDATE approvals SET state = ?, decided_by = 'expiry', decided_at = ?,"
                    " decision_reason = 'expired before anyone decided' WHERE id = ?",
                    [(on_expiry, stamp, i) for i in ids],
                )
        return ids

    def close_resolved(self, open_gaps: Mapping[str, Iterable[str]], *, now: datetime | None = None) -> list[int]:
        """Pending/approved approvals whose gap has closed by other means (``open_gaps``: host -> ids
        still missing) become ``closed``. Hosts absent from ``open_gaps`` are left alone."""
        stamp = iso(now or utc_now())
        closing = [
            int(a["id"])
            for a in self.approvals(states=("pending", "approved"))
            if a["host"] in open_gaps and a["capability_id"] not in set(open_gaps[a["host"]])
        ]
        if closing:
            with self.transaction() as db:
                db.executemany(
                    "UPDATE approvals SET state = 'closed', decided_by = 'cyclotron', decided_at = ?,"
                    " decision_reason = 'the gap closed by other means' WHERE id = ?",
                    [(stamp, i) for i in closing],
                )
        return closing

    def consume_approved(self, run_id: int, ids: Sequence[int]) -> None:
        """Approved items a run installed: they leave the approved set (the run's outcomes keep the result)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE approvals SET state = 'closed', consumed_run_id = ?,"
                " decision_reason = CASE WHEN decision_reason = '' THEN 'installed' ELSE decision_reason END"
                " WHERE id = ? AND state = 'approved'",
                [(run_id, int(i)) for i in ids],
            )

    # ----------------------------------------------------------------- exchange

    def record_exchange_events(self, run_id: int | None, events: Iterable[Mapping[str, Any]]) -> None:
        """The git exchange's steps: ``{at, host, repo, action, attempt, outcome, detail}`` each."""
        rows = [
            (run_id, str(e.get("at") or iso(utc_now())), str(e.get("host", "")), str(e.get("repo", "")),
             str(e.get("action", "")), int(e.get("attempt", 0) or 0), str(e.get("outcome", "")),
             str(e.get("detail", ""))[:2000])
            for e in events
        ]
        if rows:
            with self.transaction() as db:
                db.executemany(
                    "INSERT INTO exchange_events (run_id, at, host, repo, action, attempt, outcome, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def exchange_events(self, run_id: int | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
        """A run's exchange steps in order, or (no run) the newest ``limit`` of them."""
        if run_id is None:
            rows = self._query("SELECT * FROM exchange_events ORDER BY id DESC LIMIT ?", (limit,))
            return [dict(r) for r in reversed(rows)]
        return [dict(r) for r in self._query("SELECT * FROM exchange_events WHERE run_id = ? ORDER BY id", (run_id,))]

    # ----------------------------------------------------------------- retention

    def prune(self, *, keep_runs: int | None = None, keep_days: int | None = None, now: datetime | None = None) -> int:
        """Delete runs beyond the newest ``keep_runs`` and older than ``keep_days`` (their host and
        item outcomes go with them), then old manifest snapshots no run refers to; VACUUM after."""
        doomed: set[int] = set()
        if keep_runs is not None:
            doomed |= {
                int(r[0])
                for r in self._query("SELECT id FROM runs ORDER BY id DESC LIMIT -1 OFFSET ?", (max(keep_runs, 0),))
            }
        if keep_days is not None:
            cutoff = iso((now or utc_now()) - timedelta(days=keep_days))
            doomed |= {int(r[0]) for r in self._query("SELECT id FROM runs WHERE started < ?", (cutoff,))}
        doomed -= {int(r[0]) for r in self._query("SELECT id FROM runs WHERE status = 'running'")}
        if doomed:
            with self.transaction() as db:
                db.executemany("DELETE FROM runs WHERE id = ?", [(i,) for i in sorted(doomed)])
            self.db.execute("VACUUM")
        return len(doomed)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["check_mode"] = bool(data.get("check_mode"))
    return data


def _statements(script: str) -> list[str]:
    """A migration script as single statements (executescript would commit the transaction)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise StoreError(f"migration ends in an incomplete statement: {pending.strip()[:80]}")
    return statements
