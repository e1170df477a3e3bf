"""Unattended runs: the config file, the lock, the schedule and ``tick``.

``cyclotron tick`` is what a timer calls. It is idempotent: it takes the state dir's lock
(lock.py) without blocking (a second tick says "already running (pid N)" and exits 0), marks runs left
``running`` by a dead process ``abandoned``, beats the heartbeat, and runs the configured job
only when it is due. After downtime it runs once when the latest due time is within the grace
period, and otherwise records that run as ``missed``; it never runs a burst of catch-up runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import CyclotronError
from .exchange.config import ExchangeSettings
from .runner import SECRET_NAME as _SECRET_NAME
from .store import Store, iso, utc_now

CONFIG_NAME = "config.yml"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(CyclotronError):
    """The state dir's config.yml is malformed; the message names the file, field and fix."""


def parse_duration(text: str | int) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``7d``, ``2w`` or a number of seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        return timedelta(seconds=text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h, 7d or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every: str | None = Field(default=None, description="An interval: 30m, 1h, 1d.")
    cron: str | None = Field(default=None, description="A cron expression, e.g. '0 */2 * * *'.")

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) < timedelta(minutes=1):
            raise ValueError("the interval must be at least 1m")
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(value, utc_now())
            except CronSimError as exc:
                raise ValueError(f"{value!r} is not a cron expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of every (e.g. 1h) or cron (e.g. '0 * * * *')")
        return self

    def next_after(self, when: datetime) -> datetime:
        """The first due time strictly after ``when``."""
        if self.every:
            return when + parse_duration(self.every)
        from cronsim import CronSim

        return next(CronSim(str(self.cron), when))

    def interval(self, around: datetime) -> timedelta:
        """The time between two due times (for a cron schedule, the next two after ``around``)."""
        if self.every:
            return parse_duration(self.every)
        first = self.next_after(around)
        return self.next_after(first) - first

    def latest_due(self, after: datetime, now: datetime) -> datetime | None:
        """The newest due time in (after, now], or None when nothing has fallen due."""
        if self.every:
            step = parse_duration(self.every)
            first = after + step
            if first > now:
                return None
            return first + step * ((now - first) // step)
        from cronsim import CronSim

        latest = None
        for count, due in enumerate(CronSim(str(self.cron), after)):
            if due > now:
                break
            latest = due
            if count > 1_000_000:  # pragma: no cover - a per-minute schedule after ~2 years off
                break
        return latest


class ApprovalExpiry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(default=None, description="Pending approvals expire after this long (e.g. 7d).")
    outcome: Literal["expired", "approved", "rejected"] = "expired"


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: int | None = Field(default=500, ge=1)
    days: int | None = Field(default=180, ge=1)


class Config(BaseModel):
    """``<state dir>/config.yml``."""

    model_config = ConfigDict(extra="forbid")
    schedule: Schedule | None = None
    grace: str = Field(default="15m", description="A missed run still runs when this late at most.")
    mode: Literal["manual", "semi-auto", "full-auto"] = "semi-auto"
    playbook: Literal["sync", "gather", "plan"] = "sync"
    inventory: str = ""
    vault_password_file: str = ""
    keep_runs: int = Field(default=10, ge=1, description="Run dirs (artifacts) kept on disk.")
    extra_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Plain playbook settings passed as -e KEY=VALUE (e.g. cyclotron_manifest_dir); never a "
        "secret: they appear in process arguments. Secrets stay in the inventory's vault.",
    )
    retention: Retention = Field(default_factory=Retention)
    approval_expiry: ApprovalExpiry = Field(default_factory=ApprovalExpiry)
    # git: tick runs `cyclotron pull` with exchange_git's repository (machines that can't reach each other)
    exchange: Literal["none", "git"] = "none"
    exchange_git: ExchangeSettings = Field(default_factory=ExchangeSettings)

    @field_validator("grace")
    @classmethod
    def _grace(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("extra_vars")
    @classmethod
    def _plain_settings(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _VARIABLE_NAME.match(key):
                raise ValueError(f"{key!r} is not an Ansible variable name")
            if _SECRET_NAME.search(key):
                raise ValueError(f"{key!r} names a secret: keep it in the inventory's vault, not in config.yml")
        return value

    def extra_args(self) -> list[str]:
        """``extra_vars`` as ansible-playbook arguments."""
        return [arg for key, value in self.extra_vars.items() for arg in ("-e", f"{key}={value}")]


def load_config(state: Path) -> Config:
    path = state / CONFIG_NAME
    if not path.exists():
        return Config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML ({exc}); fix the file or remove it") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (schedule:, mode:, ...), got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def save_config(state: Path, config: Config) -> Path:
    from .manifest_io import atomic_write_text

    path = state / CONFIG_NAME
    body = config.model_dump(mode="json", exclude_defaults=True)
    atomic_write_text(path, "# Cyclotron settings (cyclotron schedule install writes the schedule)\n"
                      + yaml.safe_dump(body, sort_keys=False), mode=0o600)
    return path


@dataclass
class TickDecision:
    action: Literal["run", "wait", "missed", "unscheduled"]
    due: datetime | None
    next_due: datetime | None
    message: str


def decide(config: Config, last_started: datetime | None, now: datetime) -> TickDecision:
    """What a tick at ``now`` does, given when the newest run (missed included) started."""
    schedule = config.schedule
    if schedule is None:
        why = "no schedule in config.yml: cyclotron schedule install --every 1h"
        return TickDecision("unscheduled", None, None, why)
    if last_started is None:
        return TickDecision("run", now, schedule.next_after(now), "first scheduled run")
    due = schedule.latest_due(last_started, now)
    if due is None:
        upcoming = schedule.next_after(last_started)
        return TickDecision("wait", None, upcoming, f"not due until {iso(upcoming)}")
    late = now - due
    upcoming = schedule.next_after(now)
    if late <= parse_duration(config.grace):
        return TickDecision("run", due, upcoming, f"due {iso(due)}")
    return TickDecision(
        "missed", due, upcoming,
        f"due {iso(due)}, {int(late.total_seconds() // 60)} min late (grace {config.grace}): recorded as missed; "
        f"next due {iso(upcoming)}",
    )


def next_due(store: Store, config: Config, now: datetime | None = None) -> datetime | None:
    if config.schedule is None:
        return None
    last = store.last_started()
    return config.schedule.next_after(last) if last else (now or utc_now())


def heartbeat_interval(config: Config, now: datetime | None = None) -> timedelta | None:
    return config.schedule.interval(now or utc_now()) if config.schedule else None


def housekeeping(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    expiry = config.approval_expiry
    expired = store.expire_approvals(on_expiry=expiry.outcome, now=now) if expiry.after else []
    pruned = store.prune(keep_runs=config.retention.runs, keep_days=config.retention.days, now=now)
    return {"expired_approvals": expired, "pruned_runs": pruned}


def approval_expiry(config: Config) -> timedelta | None:
    return parse_duration(config.approval_expiry.after) if config.approval_expiry.after else None
