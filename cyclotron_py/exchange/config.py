"""The exchange's settings in config.yml (``exchange: git`` makes ``cyclotron tick`` run ``pull``)."""

from __future__ import annotations

import socket

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..models import HOST_RE


class RetrySettings(BaseModel):
    """A rejected push waits base, 2×base, 4×base ... up to ``max`` seconds, plus up to ``jitter``
    seconds at random, and gives up after ``total`` seconds (the commit stays for the next publish)."""

    model_config = ConfigDict(extra="forbid")
    base: float = Field(default=2.0, gt=0, description="First wait after a rejected push, in seconds.")
    max: float = Field(default=16.0, gt=0, description="Longest single wait, in seconds.")
    jitter: float = Field(default=1.0, ge=0, description="Up to this many seconds added at random to each wait.")
    total: float = Field(default=120.0, gt=0, description="Stop retrying after this many seconds in all.")


class ExchangeSettings(BaseModel):
    """``exchange_git:`` in config.yml."""

    model_config = ConfigDict(extra="forbid")
    repo: str = Field(default="", description="The exchange repository: a path, ssh:// or https:// URL.")
    host: str = Field(default="", description="This machine's name in the exchange (default: its hostname).")
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
    inventory: str = Field(default="", description="An inventory holding this host's variables (pull).")
    ca_file: str = Field(default="", description="PEM file of the CA that signed an https:// remote's certificate "
                         "(git's http.sslCAInfo; GIT_SSL_CAINFO in the environment does the same).")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # A status whose only change is its heartbeat is committed again once the heartbeat is this old.
    heartbeat_every: float = Field(default=600.0, ge=0, description="Seconds between heartbeat-only commits.")

    @model_validator(mode="after")
    def _host_name(self) -> ExchangeSettings:
        if self.host and not HOST_RE.match(self.host):
            raise ValueError(f"host {self.host!r} must be letters, digits, '.', '_' or '-'")
        return self


def default_host() -> str:
    """This machine's short hostname, as the exchange names it."""
    name = socket.gethostname().split(".")[0] or "localhost"
    return name if HOST_RE.match(name) else "localhost"
