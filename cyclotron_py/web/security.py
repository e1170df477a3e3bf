"""The dashboard's guards: the write token, same-origin writes, trusted Host headers, safe headers.

- Reading needs nothing (the server listens on 127.0.0.1 unless told otherwise); every write
  needs the token from ``<state dir>/dashboard-token`` (0600, made at first start) in the
  ``X-Cyclotron-Token`` header. A header, not a cookie: a cross-site form cannot send it.
- A write is refused when the browser says it comes from another site (``Origin`` other than
  this server, ``Sec-Fetch-Site`` other than same-origin/none) or its body is not JSON (a JSON
  body from another origin needs a CORS preflight, which this server never grants).
- A request whose ``Host`` is not a name this server answers to is refused (DNS rebinding).
- Every response forbids framing, sniffing and any script not served from here (CSP).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_NAME: Final = "dashboard-token"
TOKEN_HEADER: Final = "X-Cyclotron-Token"
LOCAL_NAMES: Final = ("127.0.0.1", "localhost", "::1", "[::1]")
_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS: Final = (
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
     b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def load_or_create_token(state: Path) -> tuple[str, bool]:
    """(token, created): the token file's content, made (0600) when missing or empty."""
    path = state / TOKEN_NAME
    if path.is_file():
        os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True


def token_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


class Guard:
    """ASGI middleware: trusted Host, same-origin JSON writes, security headers on every response."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        problem = None
        if "*" not in self.allowed and _hostname(host) not in self.allowed:
            problem = (400, f"Host {host!r} is not a name this dashboard answers to")
        elif scope["method"] in _WRITE_METHODS:
            problem = _cross_site(headers, scope.get("scheme", "http"), host)
        if problem:
            response = JSONResponse({"detail": problem[1]}, status_code=problem[0])
            await response(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))


def _cross_site(headers: Headers, scheme: str, host: str) -> tuple[int, str] | None:
    origin = headers.get("origin")
    if origin is not None and origin != f"{scheme}://{host}":
        return 403, "cross-site request refused: Origin is not this dashboard"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return 403, "cross-site request refused: Sec-Fetch-Site is " + site
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return 415, "a write sends a JSON body (Content-Type: application/json)"
    return None


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped
